"""Infisical's folders API (v1 and v2, the same operations) and environments (list, create)."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from django.http import HttpRequest
from ninja import Query, Router

from devpilot import secrets
from devpilot.api import answers, iso, require_workspace, require_workspace_ref, token
from devpilot.errors import Invalid, NotFound
from devpilot.models import Environment, Folder, Secret
from devpilot.schemas import (EnvironmentCreate, EnvironmentCreated, EnvironmentsEnvelope, FolderCreate, FolderDelete,
                              FolderEnvelope, FolderListQuery, FolderScope, FoldersEnvelope, FolderUpdate)

router = Router(tags=["Folders and environments"])


def folder_json(folder: Folder, *, base: str = "/", parent: Folder | None = None) -> dict:
    env = folder.environment
    last = (Secret.objects.filter(folder=folder).order_by("-updated_at").values_list("updated_at", flat=True).first())
    relative = folder.path[len(base):] if base != "/" and folder.path.startswith(base) else folder.path
    return {
        "id": str(folder.pk),
        "name": folder.name,
        "envId": str(folder.environment_id),
        "description": folder.description or None,
        "createdAt": iso(folder.created_at),
        "updatedAt": iso(folder.created_at),
        "parentId": str(parent.pk) if parent is not None else None,
        "isReserved": False,
        "lastSecretModified": iso(last),
        "version": 1,
        "path": folder.path,
        "relativePath": relative,
        "projectId": str(folder.workspace_id),
        "environment": {"envId": str(env.pk), "envName": env.name, "envSlug": env.slug},
    }


def _environment(request: HttpRequest, scope: FolderScope) -> Environment:
    require_workspace_ref(request, *scope.workspace_ref(), field="workspaceId")
    environment = request.workspace.environments.filter(slug=scope.environment).first()  # type: ignore[attr-defined]
    if environment is None:
        raise NotFound(f"Environment {scope.environment} not found.")
    return environment


def _by_id(request: HttpRequest, folder_id: str) -> Folder:
    try:
        pk = UUID(folder_id)
    except ValueError:
        raise NotFound(f"Folder {folder_id} not found.") from None
    folder = Folder.objects.select_related("environment").filter(workspace=request.workspace, pk=pk).first()  # type: ignore[attr-defined]
    if folder is None:
        raise NotFound(f"Folder {folder_id} not found.")
    return folder


def _parent(folder: Folder) -> Folder | None:
    if folder.path == "/":
        return None
    return folder.environment.folders.filter(path=secrets.parent_path(folder.path)).first()


def list_folders(request: HttpRequest, q: FolderListQuery) -> dict:
    environment = _environment(request, q)
    parent = secrets.get_folder(environment, q.parent())
    below = environment.folders.select_related("environment").exclude(path="/")
    prefix = "/" if parent.path == "/" else parent.path + "/"
    rows = [f for f in below.filter(path__startswith=prefix)
            if q.recursive or "/" not in f.path[len(prefix):]]
    parents = {f.path: f for f in environment.folders.all()}
    folders = [folder_json(f, base=parent.path, parent=parents.get(secrets.parent_path(f.path))) for f in rows]
    if q.lastSecretModified is not None:
        try:
            since = datetime.fromisoformat(q.lastSecretModified)
        except ValueError:
            raise Invalid.for_field("lastSecretModified", "Use an ISO 8601 date and time.") from None
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        folders = [f for f in folders
                   if f["lastSecretModified"] and datetime.fromisoformat(f["lastSecretModified"]) >= since]
    return {"folders": folders}


def create_folder(request: HttpRequest, payload: FolderCreate) -> dict:
    environment = _environment(request, payload)
    folder = secrets.create_folder(environment, payload.parent(), payload.name, request=request)
    if payload.description:
        folder.description = payload.description
        folder.save(update_fields=["description"])
    return {"folder": folder_json(folder, parent=_parent(folder))}


def get_folder(request: HttpRequest, folder_id: str) -> dict:
    folder = _by_id(request, folder_id)
    return {"folder": folder_json(folder, parent=_parent(folder))}


def update_folder(request: HttpRequest, folder_id: str, payload: FolderUpdate) -> dict:
    folder = _by_id(request, folder_id)
    environment = _environment(request, payload)
    if folder.environment_id != environment.pk:
        raise NotFound(f"Folder {folder_id} not found in {environment.slug}.")
    if (payload.path or payload.directory) and secrets.parent_path(folder.path) != payload.parent():
        raise Invalid.for_field("path", f"The folder {folder.path} is not in {payload.parent()} "
                                        "(path names the folder's parent).")
    secrets.rename_folder(folder, payload.name, request=request)
    if payload.description is not None and payload.description != folder.description:
        folder.description = payload.description
        folder.save(update_fields=["description"])
    folder.refresh_from_db()
    return {"folder": folder_json(folder, parent=_parent(folder))}


def delete_folder(request: HttpRequest, folder_id: str, payload: FolderDelete) -> dict:
    """By id, or by name within `path`. The folder goes with everything in it, as in Infisical."""
    environment = _environment(request, payload)
    try:
        UUID(folder_id)
        folder = _by_id(request, folder_id)
        if folder.environment_id != environment.pk:
            raise NotFound(f"Folder {folder_id} not found in {environment.slug}.")
    except ValueError:
        parent = secrets.get_folder(environment, payload.parent())
        try:
            path = secrets.join_path(parent.path, folder_id)
        except secrets.SecretsError:
            raise NotFound(f"Folder {folder_id} not found in {environment.slug}:{parent.path}.") from None
        folder = environment.folders.filter(path=path).first()
        if folder is None:
            raise NotFound(f"Folder {folder_id} not found in {environment.slug}:{parent.path}.")
    body = folder_json(folder, parent=_parent(folder))
    secrets.delete_folder(folder, confirmed=True, request=request)
    return {"folder": body}


def _register(version: str) -> None:
    base = f"/{version}/folders"

    @router.get(base, auth=token(), response=answers(FoldersEnvelope), operation_id=f"list_folders_{version}",
                summary=f"List folders ({version})")
    def _list(request: HttpRequest, q: Query[FolderListQuery]) -> dict:
        """Direct subfolders of `path` (every level below with `recursive=true`)."""
        return list_folders(request, q)

    @router.post(base, auth=token("secrets.write"), response=answers(FolderEnvelope),
                 operation_id=f"create_folder_{version}", summary=f"Create a folder ({version})")
    def _create(request: HttpRequest, payload: FolderCreate) -> dict:
        return create_folder(request, payload)

    one = base + "/{folder_id}"
    if version == "v2":
        @router.get(one, auth=token(), response=answers(FolderEnvelope), operation_id="get_folder_v2",
                    summary="Get a folder by id (v2)")
        def _get(request: HttpRequest, folder_id: str) -> dict:
            return get_folder(request, folder_id)

    @router.patch(one, auth=token("secrets.write"), response=answers(FolderEnvelope),
                  operation_id=f"update_folder_{version}", summary=f"Rename a folder ({version})")
    def _update(request: HttpRequest, folder_id: str, payload: FolderUpdate) -> dict:
        """`name` is the new name; `path` is the folder's parent."""
        return update_folder(request, folder_id, payload)

    @router.delete(one, auth=token("secrets.write"), response=answers(FolderEnvelope),
                   operation_id=f"delete_folder_{version}", summary=f"Delete a folder ({version})")
    def _delete(request: HttpRequest, folder_id: str, payload: FolderDelete) -> dict:
        """`folder_id` is the folder's id, or its name inside `path`."""
        return delete_folder(request, folder_id, payload)


for _version in ("v1", "v2"):
    _register(_version)


# --- Environments ---------------------------------------------------------------------------


def environment_json(env: Environment) -> dict:
    return {"id": str(env.pk), "name": env.name, "slug": env.slug, "position": env.position,
            "projectId": str(env.workspace_id), "createdAt": iso(env.created_at), "updatedAt": iso(env.created_at)}


ENVIRONMENTS = "/v1/workspace/{uuid:workspace_id}/environments"


@router.get(ENVIRONMENTS, auth=token(), response=answers(EnvironmentsEnvelope))
def list_environments(request: HttpRequest, workspace_id: UUID) -> dict:
    workspace = require_workspace(request, workspace_id, field="workspaceId")
    return {"environments": [environment_json(e) for e in workspace.environments.all()]}


@router.post(ENVIRONMENTS, auth=token("environments.manage"), response=answers(EnvironmentCreated))
def create_environment(request: HttpRequest, workspace_id: UUID, payload: EnvironmentCreate) -> dict:
    """Infisical's body: `{name, slug, position?}` (the Node SDK also sends `projectId`, which must match)."""
    workspace = require_workspace(request, workspace_id, field="workspaceId")
    for named in (payload.projectId, payload.workspaceId):
        if named is not None and named != workspace.pk:
            raise Invalid.for_field("projectId", "projectId must be the workspace in the path.")
    env = secrets.create_environment(workspace, payload.name, payload.slug, request=request)
    if payload.position is not None and payload.position != env.position:
        env.position = payload.position
        env.save(update_fields=["position"])
    return {"message": "Successfully created new environment", "workspace": str(workspace.pk),
            "environment": environment_json(env)}

"""Infisical's raw secrets API (v3): list, read, create, update, delete, batch."""

from __future__ import annotations

import uuid

from django.http import HttpRequest, HttpResponse
from django.views.decorators.debug import sensitive_variables
from ninja import Query, Router

from devpilot import crypto, references, secrets
from devpilot.api import answers, api, iso, require_workspace_ref, token
from devpilot.errors import Invalid, NotFound
from devpilot.models import Environment, Folder, Secret, SecretImport
from devpilot.permissions import can
from devpilot.prepared import PreparedQuery
from devpilot.schemas import (BatchCreate, BatchDelete, BatchUpdate, SecretCreate, SecretDelete, SecretEnvelope,
                              SecretGetQuery, SecretListQuery, SecretScope, SecretsEnvelope, SecretUpdate)

router = Router(tags=["Secrets"])
SECRET_NAME = "/v3/secrets/raw/{secret_name}"


# What Infisical's clients parse that Devpilot does not have (tags, reminders, rotation): always the same.
_FIXED_FIELDS = {"type": "shared", "skipMultilineEncoding": False, "secretReminderNote": None,
                 "secretReminderRepeatDays": None, "isRotatedSecret": False, "rotationId": None}


def _secret_dict(pk, workspace_id, environment_slug: str, folder_id, path: str, key: str, value: str | None,
                 comment: str, version: int, created_at, updated_at) -> dict:
    """One secret as Infisical's API answers it; value None means hidden."""
    sid, wid = str(pk), str(workspace_id)  # no copy when they are text already
    return {
        "id": sid, "_id": sid, "workspace": wid, "workspaceId": wid, "environment": environment_slug,
        "folderId": str(folder_id), "secretPath": path, "secretKey": key, "secretValue": value,
        "secretValueHidden": value is None, "secretComment": comment, "version": version, **_FIXED_FIELDS,
        "tags": [], "secretMetadata": [], "createdAt": iso(created_at), "updatedAt": iso(updated_at),
    }


def secret_json(secret: Secret, *, with_value: bool, value: str | None = None, version: int | None = None) -> dict:
    shown = (secret.value if value is None else value) if with_value else None
    return _secret_dict(secret.pk, secret.workspace_id, secret.environment.slug, secret.folder_id, secret.folder.path,
                        secret.key, shown, secret.comment, version or secret.version, secret.created_at,
                        secret.updated_at)


def _folder(request: HttpRequest, scope: SecretScope) -> tuple[Environment, Folder]:
    require_workspace_ref(request, *scope.workspace_ref(), field="workspaceId")
    environment = request.workspace.environments.filter(slug=scope.environment).first()  # type: ignore[attr-defined]
    if environment is None:
        raise NotFound(f"Environment {scope.environment} not found.")
    return environment, secrets.get_folder(environment, scope.secretPath)


def _list_folder(request: HttpRequest, scope: SecretScope) -> tuple[Environment, Folder]:
    """_folder() in one query when both exist; when not, _folder() says which is missing."""
    require_workspace_ref(request, *scope.workspace_ref(), field="workspaceId")
    try:
        path = secrets.normalize_path(scope.secretPath)
    except secrets.SecretsError:
        return _folder(request, scope)
    workspace = request.workspace  # type: ignore[attr-defined]
    folder = (Folder.objects.select_related("environment")
              .filter(environment__workspace=workspace, environment__slug=scope.environment, path=path).first())
    return (folder.environment, folder) if folder else _folder(request, scope)


def _secret(folder: Folder, name: str) -> Secret:
    secret = Secret.objects.select_related("environment", "folder").filter(folder=folder, key=name).first()
    if secret is None:
        raise NotFound(f"Secret {name} not found in {folder.environment.slug}:{folder.path}.")
    return secret


def _secret_or_imported(folder: Folder, name: str) -> Secret:
    """The folder's own secret `name`, else the one its imports give it (the later import wins, as everywhere)."""
    own = Secret.objects.select_related("environment", "folder").filter(folder=folder, key=name).first()
    if own is not None:
        return own
    here = (folder.environment.slug, folder.path)
    found = references.Resolver(folder.workspace_id, keys_only=True).lookup(here, name)
    if found is None:
        raise NotFound(f"Secret {name} not found in {folder.environment.slug}:{folder.path} or its imports.")
    (slug, path), _ = found
    return Secret.objects.select_related("environment", "folder").get(
        workspace_id=folder.workspace_id, environment__slug=slug, folder__path=path, key=name)


def _with_values(request: HttpRequest, asked: bool) -> bool:
    return asked and can(request.role, "secrets.read_values")  # type: ignore[attr-defined]


@router.get("/v3/secrets/raw", auth=token(), response=answers(SecretsEnvelope), by_alias=True)
def list_secrets(request: HttpRequest, q: Query[SecretListQuery]) -> dict | HttpResponse:
    """Keys and metadata for every token; values for member tokens and up (null for viewers).

    `recursive=true` includes every folder below `secretPath`; each secret's `secretPath` says where it is."""
    values, where = _one_folder_rows(request, q) if not q.recursive else (None, "")
    if values is None:  # recursive, or an empty folder: the folder is looked up (and a missing one is a 404)
        environment, folder = _list_folder(request, q)
        rows = Secret.objects.filter(environment=environment)
        if q.recursive and folder.path != "/":
            rows = rows.filter(folder__path__startswith=folder.path + "/") | rows.filter(folder=folder)
        elif not q.recursive:
            rows = rows.filter(folder=folder)
        values = list(rows.order_by("folder__path", "key").values_list(*_LIST_COLUMNS))
        where = f"{environment.slug}:{folder.path}" + (" (recursive)" if q.recursive else "")
    if q.tagSlugs.strip():
        return {"secrets": []}  # Devpilot secrets have no tags, so none matches a tag filter.
    with_value = _with_values(request, q.viewSecretValue)
    if with_value and values:
        secrets.record_values_read(request.workspace, where, [row[3] for row in values], "api",  # type: ignore[attr-defined]
                                   request=request)
    # Rendered as the API renders every answer, without validating each row against SecretOut again:
    # _list_json builds exactly that shape (tests compare it with secret_json), and re-validating
    # thousands of rows per request would cost more than building them.
    listed = _list_json(values, str(request.workspace.pk), q.environment, with_value=with_value)  # type: ignore[attr-defined]
    resolver = None
    if with_value and q.expandSecretReferences and any("${" in (item["secretValue"] or "") for item in listed):
        resolver = references.Resolver(request.workspace.pk)  # type: ignore[attr-defined]
        _expand(resolver, q.environment, listed)
    body: dict = {"secrets": listed}
    if q.include_imports or q.includeImports:
        body["imports"] = _imports_json(request, q, with_value=with_value, expand=q.expandSecretReferences,
                                        resolver=resolver)
    return api.create_response(request, body, status=200)


@sensitive_variables("listed", "value")
def _expand(resolver: references.Resolver, environment_slug: str, listed: list[dict]) -> None:
    """Each listed secret's value with its references expanded (one read of every folder involved)."""
    resolver.load({(environment_slug, item["secretPath"]) for item in listed})
    for item in listed:
        value, _ = resolver.expand((environment_slug, item["secretPath"]), item["secretKey"])
        item["secretValue"] = value


def _imports_json(request: HttpRequest, q: SecretListQuery, *, with_value: bool, expand: bool,
                  resolver: references.Resolver | None) -> list[dict]:
    """The folder's imports in order, each with its secrets (as the imported folder shows them)."""
    try:
        path = secrets.normalize_path(q.secretPath)
    except secrets.SecretsError:
        return []
    imports = list(SecretImport.objects.filter(folder__environment__workspace=request.workspace,  # type: ignore[attr-defined]
                                               folder__environment__slug=q.environment, folder__path=path)
                   .select_related("source_folder__environment"))
    if not imports:
        return []
    resolver = resolver or references.Resolver(request.workspace.pk)  # type: ignore[attr-defined]
    sources = [(i.source_folder.environment.slug, i.source_folder.path) for i in imports]
    resolver.load(sources)
    answer = []
    for item, source in zip(imports, sources, strict=True):
        resolved = resolver.resolve(source, expand=expand)
        if with_value and resolved.entries:
            secrets.record_values_read(request.workspace, f"{source[0]}:{source[1]} (imported)",  # type: ignore[attr-defined]
                                       list(resolved.entries), "api", request=request)
        rows = [_secret_dict(item.pk, item.workspace_id, entry.source[0], item.source_folder_id, entry.source[1],
                             entry.key, entry.value if with_value else None, "", 1, item.created_at, item.updated_at)
                for entry in resolved.entries.values()]
        answer.append({"secretPath": source[1], "environment": source[0], "folderId": str(item.source_folder_id),
                       "secrets": rows})
    return answer


def _one_folder_rows(request: HttpRequest, scope: SecretScope) -> tuple[list[tuple] | None, str]:
    """One folder's rows found by environment slug and path in a single query; None when there are none (the
    caller then looks the folder up, to tell an empty folder from a missing one)."""
    require_workspace_ref(request, *scope.workspace_ref(), field="workspaceId")
    try:
        path = secrets.normalize_path(scope.secretPath)
    except secrets.SecretsError:
        return None, ""
    values = _FOLDER_ROWS(workspace_id=request.workspace.pk, environment=scope.environment, path=path)  # type: ignore[attr-defined]
    return (values or None), f"{scope.environment}:{path}"


# Not the workspace id: every row's is the request's (the query says so), so it is not read 5,000 times.
_LIST_COLUMNS = ("id", "folder_id", "folder__path", "key", "value_ciphertext", "comment", "version", "created_at",
                 "updated_at")
# Plain rows, not model instances (one key ring decrypts every value: a big folder lists in one pass), from SQL
# built once per process (devpilot/prepared.py): the list's one query when the folder has secrets.
_FOLDER_ROWS = PreparedQuery(
    lambda workspace_id, environment, path: Secret.objects.filter(
        environment__workspace_id=workspace_id, environment__slug=environment, folder__path=path,
    ).order_by("key").values_list(*_LIST_COLUMNS),
    workspace_id=uuid.UUID, environment=str, path=str)


def _list_json(rows: list[tuple], workspace_id: str, environment_slug: str, *, with_value: bool) -> list[dict]:
    """secret_json() for `_LIST_COLUMNS` rows of one workspace: the same answer, built without a Secret per row."""
    field: crypto.EncryptedValue = Secret.value  # type: ignore[assignment]  # the descriptor: the same AAD
    keyring = crypto.KeyRing() if with_value else None
    text = _TextOfIds()  # a folder's rows share their folder id: it is made text once
    listed = []
    for pk, folder_id, path, key, ciphertext, comment, version, created_at, updated_at in rows:
        sid = str(pk)
        listed.append(_secret_dict(sid, workspace_id, environment_slug, text[folder_id], path, key,
                                   field.decrypt_value(ciphertext, sid, keyring) if keyring else None, comment,
                                   version, created_at, updated_at))
    return listed


class _TextOfIds(dict):
    def __missing__(self, uuid) -> str:
        self[uuid] = str(uuid)
        return self[uuid]


@router.get(SECRET_NAME, auth=token("secrets.read_values"), response=answers(SecretEnvelope), by_alias=True)
def get_secret(request: HttpRequest, secret_name: str, q: Query[SecretGetQuery]) -> dict:
    if q.secretName is not None and q.secretName != secret_name:
        raise Invalid.for_field("secretName", f"secretName ({q.secretName}) differs from the path ({secret_name}).")
    environment, folder = _folder(request, q)
    secret = _secret_or_imported(folder, secret_name) if (q.include_imports or q.includeImports) and q.version is None \
        else _secret(folder, secret_name)
    if q.viewSecretValue:
        how = "api" if q.version is None else f"api (version {q.version})"
        secrets.record_values_read(request.workspace, f"{environment.slug}:{folder.path}", [secret.key], how,  # type: ignore[attr-defined]
                                   request=request, target=secret)
    if q.version is None or q.version == secret.version:
        expanded = None
        if q.viewSecretValue and q.expandSecretReferences:
            expanded, _ = references.Resolver(secret.workspace_id).expand(
                (secret.environment.slug, secret.folder.path), secret.key)
        return {"secret": secret_json(secret, with_value=q.viewSecretValue, value=expanded)}
    old = secret.versions.filter(version=q.version).first()
    if old is None:
        raise NotFound(f"{secret_name} has no version {q.version} (the current one is {secret.version}).")
    return {"secret": secret_json(secret, with_value=q.viewSecretValue, value=old.value, version=old.version)}


@router.post(SECRET_NAME, auth=token("secrets.write"), response=answers(SecretEnvelope), by_alias=True)
def create_secret(request: HttpRequest, secret_name: str, payload: SecretCreate) -> dict:
    environment, folder = _folder(request, payload)
    secret = secrets.create_secret(environment, folder.path, secret_name, payload.secretValue,
                                   payload.secretComment, request=request)
    return {"secret": secret_json(secret, with_value=True)}


@router.patch(SECRET_NAME, auth=token("secrets.write"), response=answers(SecretEnvelope), by_alias=True)
def update_secret(request: HttpRequest, secret_name: str, payload: SecretUpdate) -> dict:
    _, folder = _folder(request, payload)
    secret = secrets.update_secret(
        _secret(folder, secret_name), value=payload.secretValue, comment=payload.secretComment,
        key=payload.newSecretName, expected_version=payload.version, request=request)
    return {"secret": secret_json(secret, with_value=True)}


@router.delete(SECRET_NAME, auth=token("secrets.write"), response=answers(SecretEnvelope), by_alias=True)
def delete_secret(request: HttpRequest, secret_name: str, payload: SecretDelete) -> dict:
    _, folder = _folder(request, payload)
    secret = _secret(folder, secret_name)
    secrets.delete_secret(secret, request=request)
    return {"secret": secret_json(secret, with_value=False)}


# --- Batch: many secrets in one request and one transaction, all or nothing, one change event ---


def _existing(folder: Folder, keys: list[str]) -> dict[str, Secret]:
    rows = folder.secrets.filter(key__in=keys).select_related("environment", "folder")
    return {s.key: s for s in rows}


def _every_one(folder: Folder, keys: list[str], hint: str = "") -> dict[str, Secret]:
    """The secrets named `keys`, or NotFound listing the missing ones (nothing is written then)."""
    found = _existing(folder, keys)
    missing = sorted(set(keys) - set(found))
    if missing:
        raise NotFound(f"Not found in {folder.environment.slug}:{folder.path}: {', '.join(missing)}. {hint}".strip())
    return found


@router.post("/v3/secrets/batch/raw", auth=token("secrets.write"), response=answers(SecretsEnvelope), by_alias=True)
def create_secrets(request: HttpRequest, payload: BatchCreate) -> dict:
    environment, folder = _folder(request, payload)
    keys = [item.secretKey for item in payload.secrets]
    taken = sorted(_existing(folder, keys))
    if taken:
        raise Invalid(f"Already exist: {', '.join(taken)}. Use PATCH to update them.")
    secrets.bulk_import(environment, folder.path, {i.secretKey: i.secretValue for i in payload.secrets},
                        overwrite=False, comments={i.secretKey: i.secretComment for i in payload.secrets},
                        request=request)
    return {"secrets": [secret_json(s, with_value=True) for s in _existing(folder, keys).values()]}


@router.patch("/v3/secrets/batch/raw", auth=token("secrets.write"), response=answers(SecretsEnvelope), by_alias=True)
def update_secrets(request: HttpRequest, payload: BatchUpdate) -> dict:
    environment, folder = _folder(request, payload)
    keys = [item.secretKey for item in payload.secrets]
    existing = _every_one(folder, keys, "Use POST to create them.")
    # An item without secretValue (or secretComment) keeps what is stored.
    values = {i.secretKey: existing[i.secretKey].value if i.secretValue is None else i.secretValue
              for i in payload.secrets}
    comments = {i.secretKey: i.secretComment for i in payload.secrets if i.secretComment is not None}
    secrets.bulk_import(environment, folder.path, values, overwrite=True, comments=comments, request=request)
    return {"secrets": [secret_json(s, with_value=True) for s in _existing(folder, keys).values()]}


@router.delete("/v3/secrets/batch/raw", auth=token("secrets.write"), response=answers(SecretsEnvelope), by_alias=True)
def delete_secrets(request: HttpRequest, payload: BatchDelete) -> dict:
    environment, folder = _folder(request, payload)
    keys = [item.secretKey for item in payload.secrets]
    doomed = _every_one(folder, keys)
    secrets.delete_secrets(environment, folder.path, keys, request=request)
    return {"secrets": [secret_json(s, with_value=False) for s in doomed.values()]}


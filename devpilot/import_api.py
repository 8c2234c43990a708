"""Infisical's secret imports API (v1): list, create, update (move or re-point), delete."""

from __future__ import annotations

from uuid import UUID

from django.db import transaction
from django.http import HttpRequest
from ninja import Query, Router

from devpilot import imports, secrets
from devpilot.api import answers, iso, require_workspace_ref, token
from devpilot.errors import NotFound
from devpilot.models import Folder, SecretImport
from devpilot.schemas import (SecretImportCreate, SecretImportEnvelope, SecretImportScope, SecretImportsEnvelope,
                              SecretImportUpdate)

router = Router(tags=["Secret imports"])
ONE = "/v1/secret-imports/{secret_import_id}"


def import_json(item: SecretImport) -> dict:
    env = item.source_folder.environment
    return {
        "id": str(item.pk), "version": 1, "importPath": item.source_folder.path,
        "importEnv": {"id": str(env.pk), "name": env.name, "slug": env.slug},
        "position": item.position, "folderId": str(item.folder_id),
        # Replication (copying instead of importing) is not part of Devpilot.
        "isReplication": False, "isReplicationSuccess": None, "replicationStatus": None, "lastReplicated": None,
        "isReserved": False, "createdAt": iso(item.created_at), "updatedAt": iso(item.updated_at),
    }


def _folder(request: HttpRequest, scope: SecretImportScope) -> Folder:
    require_workspace_ref(request, *scope.workspace_ref(), field="workspaceId")
    environment = request.workspace.environments.filter(slug=scope.environment).first()  # type: ignore[attr-defined]
    if environment is None:
        raise NotFound(f"Environment {scope.environment} not found.")
    folder = secrets.get_folder(environment, scope.path)
    folder.environment = environment
    return folder


def _one(request: HttpRequest, secret_import_id: str, scope: SecretImportScope) -> SecretImport:
    folder = _folder(request, scope)
    try:
        pk = UUID(secret_import_id)
    except ValueError:
        raise NotFound(f"Secret import {secret_import_id} not found.") from None
    item = (SecretImport.objects.select_related("folder__environment", "folder__workspace",
                                                "source_folder__environment")
            .filter(pk=pk, folder=folder).first())
    if item is None:
        raise NotFound(f"Secret import {secret_import_id} not found in {folder.environment.slug}:{folder.path}.")
    return item


@router.get("/v1/secret-imports", auth=token(), response=answers(SecretImportsEnvelope), by_alias=True)
def list_imports(request: HttpRequest, q: Query[SecretImportScope]) -> dict:
    folder = _folder(request, q)
    return {"message": "Successfully fetched secret imports",
            "secretImports": [import_json(item) for item in imports.imports_of(folder)]}


@router.post("/v1/secret-imports", auth=token("secrets.write"), response=answers(SecretImportEnvelope), by_alias=True)
def create_import(request: HttpRequest, payload: SecretImportCreate) -> dict:
    folder = _folder(request, payload)
    source = imports.source_folder(folder, payload.source.environment, payload.source.path)
    created = imports.add_import(folder, source, request=request)
    created.source_folder = source
    return {"message": "Successfully created secret import", "secretImport": import_json(created)}


@router.patch(ONE, auth=token("secrets.write"), response=answers(SecretImportEnvelope), by_alias=True)
def update_import(request: HttpRequest, secret_import_id: str, payload: SecretImportUpdate) -> dict:
    item = _one(request, secret_import_id, payload)
    change = payload.change
    with transaction.atomic():
        if change.environment is not None or change.path is not None:
            source = imports.source_folder(item.folder, change.environment or item.source_folder.environment.slug,
                                           change.path if change.path is not None else item.source_folder.path)
            item = imports.change_source(item, source, request=request)
        if change.position is not None and change.position != item.position:
            item = imports.move_import(item, change.position, request=request)
    return {"message": "Successfully updated secret import", "secretImport": import_json(
        SecretImport.objects.select_related("source_folder__environment").get(pk=item.pk))}


@router.delete(ONE, auth=token("secrets.write"), response=answers(SecretImportEnvelope), by_alias=True)
def delete_import(request: HttpRequest, secret_import_id: str, payload: SecretImportScope) -> dict:
    item = _one(request, secret_import_id, payload)
    answer = import_json(item)
    imports.remove_import(item, request=request)
    return {"message": "Successfully deleted secret import", "secretImport": answer}

"""Infisical-compatible Secret Syncs API for DigitalOcean App Platform."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Query, Router

from connections.models import Connection
from devpilot import secrets
from devpilot.api import answers, iso, require_workspace, token
from devpilot.errors import Invalid
from devpilot.schemas import Id, Strict
from devpilot.models import Environment, Folder
from syncs import services
from syncs.models import Sync, Trigger
from syncs.schemas import SyncCreate, SyncDeleteQuery, SyncEnvelope, SyncsEnvelope, SyncUpdate, auto_sync

router = Router(tags=["Secret syncs"])
BASE = "/v1/secret-syncs/digital-ocean-app-platform"
ONE = BASE + "/{uuid:sync_id}"
DESTINATION = "digital-ocean-app-platform"  # the other destination has its own endpoints (syncs/server_api.py)


def sync_json(sync: Sync) -> dict:
    return {
        "id": str(sync.pk),
        "name": sync.name,
        "description": sync.description or None,
        "isEnabled": True,
        "isAutoSyncEnabled": sync.auto_sync_enabled,
        "version": sync.version,
        "folderId": str(sync.folder_id),
        "connectionId": str(sync.connection_id) if sync.connection_id else None,
        "createdAt": iso(sync.created_at),
        "updatedAt": iso(sync.updated_at),
        "syncStatus": sync.sync_status or None,
        "lastSyncJobId": str(sync.last_sync_job_id) if sync.last_sync_job_id else None,
        "lastSyncMessage": sync.last_sync_message or None,
        "lastSyncedAt": iso(sync.last_synced_at),
        "removeStatus": sync.remove_status or None,
        "lastRemoveJobId": str(sync.last_remove_job_id) if sync.last_remove_job_id else None,
        "lastRemoveMessage": sync.last_remove_message or None,
        "lastRemovedAt": iso(sync.last_removed_at),
        "deleteAfterRemoval": sync.delete_after_removal,
        "syncOptions": {
            "initialSyncBehavior": sync.initial_sync_behavior,
            "keySchema": sync.key_schema or None,
            "autoSyncEnabled": sync.auto_sync_enabled,
            "disableSecretDeletion": sync.disable_secret_deletion,
        },
        "projectId": str(sync.workspace_id),
        "connection": {"app": "digital-ocean", "name": sync.connection.name, "id": str(sync.connection_id)}
        if sync.connection else None,
        "environment": {"slug": sync.environment.slug, "name": sync.environment.name, "id": str(sync.environment_id)},
        "folder": {"id": str(sync.folder_id), "path": sync.folder.path},
        "destination": "digital-ocean",
        "destinationConfig": {
            "appId": sync.app_id, "appName": sync.app_name, "component": sync.component or None,
            "variableType": sync.env_type, "scope": sync.env_scope,
        },
        "driftKeys": sync.drift_keys,
    }


def _sync(request: HttpRequest, sync_id: UUID) -> Sync:
    return get_object_or_404(Sync.objects.select_related("connection", "environment", "folder"),
                             workspace=request.workspace, destination=DESTINATION, pk=sync_id)  # type: ignore[attr-defined]


def _connection(request: HttpRequest, connection_id: UUID) -> Connection:
    connection = request.workspace.connections.filter(pk=connection_id).first()  # type: ignore[attr-defined]
    if connection is None:
        raise Invalid.for_field("connectionId", "connectionId does not name a connection of this workspace.")
    return connection


def _source(request: HttpRequest, slug: str, path: str) -> tuple[Environment, Folder]:
    environment = request.workspace.environments.filter(slug=slug).first()  # type: ignore[attr-defined]
    if environment is None:
        raise Invalid.for_field("environment", f"Environment {slug!r} not found.")
    try:
        return environment, secrets.get_folder(environment, path)
    except secrets.SecretsError as e:
        raise Invalid.for_field("secretPath", e.message) from None


def _changes(request: HttpRequest, body: SyncCreate | SyncUpdate, sync: Sync) -> dict[str, Any]:
    """The model fields the body sets, already checked against this workspace."""
    changes = common_changes(request, body, sync)
    if body.connectionId is not None:
        changes["connection"] = _connection(request, body.connectionId)
    config = body.destinationConfig
    if config is not None:
        changes.update(app_id=config.appId, app_name=config.appName or sync.app_name, component=config.component or "",
                       env_type=config.variableType, env_scope=config.scope)
    return changes


def common_changes(request: HttpRequest, body: Any, sync: Sync) -> dict[str, Any]:
    """The fields every destination's create and update bodies share (name, description, source, options,
    auto-sync), as model fields checked against this workspace."""
    changes: dict[str, Any] = {}
    if body.name is not None:
        changes["name"] = body.name
    if body.description is not None:
        changes["description"] = body.description
    if body.environment is not None or body.secretPath is not None:
        changes["environment"], changes["folder"] = _source(
            request, body.environment or sync.environment.slug, body.secretPath or sync.folder.path)
    if body.syncOptions is not None:
        if body.syncOptions.keySchema is not None:
            changes["key_schema"] = body.syncOptions.keySchema
        if body.syncOptions.disableSecretDeletion is not None:
            changes["disable_secret_deletion"] = body.syncOptions.disableSecretDeletion
    if auto_sync(body) is not None:
        changes["auto_sync_enabled"] = auto_sync(body)
    return changes


@router.get(BASE, auth=token(), response=answers(SyncsEnvelope))
def list_syncs(request: HttpRequest) -> dict:
    rows = request.workspace.syncs.filter(destination=DESTINATION).select_related(  # type: ignore[attr-defined]
        "connection", "environment", "folder")
    return {"secretSyncs": [sync_json(s) for s in rows]}


@router.post(BASE, auth=token("syncs.manage"), response=answers(SyncEnvelope))
def create_sync(request: HttpRequest, payload: SyncCreate) -> dict:
    if payload.projectId is not None:
        require_workspace(request, payload.projectId)
    sync = Sync(workspace=request.workspace, description="")  # type: ignore[attr-defined]
    for field, value in _changes(request, payload, sync).items():
        setattr(sync, field, value)
    services.create(sync, trigger=Trigger.API, request=request)
    return {"secretSync": sync_json(sync)}


class SyncByNameQuery(Strict):
    projectId: Id = None  # type: ignore[assignment]


@router.get(BASE + "/sync-name/{sync_name}", auth=token(), response=answers(SyncEnvelope))
def get_sync_by_name(request: HttpRequest, sync_name: str, q: Query[SyncByNameQuery]) -> dict:
    """Infisical's lookup by name; projectId, when sent, must be the token's workspace."""
    if q.projectId is not None:
        require_workspace(request, q.projectId)
    sync = get_object_or_404(Sync.objects.select_related("connection", "environment", "folder"),
                             workspace=request.workspace, destination=DESTINATION, name=sync_name)  # type: ignore[attr-defined]
    return {"secretSync": sync_json(sync)}


@router.get(ONE, auth=token(), response=answers(SyncEnvelope))
def get_sync(request: HttpRequest, sync_id: UUID) -> dict:
    return {"secretSync": sync_json(_sync(request, sync_id))}


@router.patch(ONE, auth=token("syncs.manage"), response=answers(SyncEnvelope))
def update_sync(request: HttpRequest, sync_id: UUID, payload: SyncUpdate) -> dict:
    sync = _sync(request, sync_id)
    services.update(sync, _changes(request, payload, sync), request=request)
    return {"secretSync": sync_json(sync)}


@router.delete(ONE, auth=token("syncs.manage"), response=answers(SyncEnvelope))
def delete_sync(request: HttpRequest, sync_id: UUID, q: Query[SyncDeleteQuery]) -> dict:
    """Deletes at once; with removeSecrets=true a worker removes the variables first, then deletes the sync."""
    sync = _sync(request, sync_id)
    body = sync_json(sync)
    services.delete(sync, remove_secrets_first=q.removeSecrets, request=request)
    if q.removeSecrets:
        sync.refresh_from_db()
        body = sync_json(sync)
    return {"secretSync": body}


@router.post(ONE + "/sync-secrets", auth=token("syncs.manage"), response=answers(SyncEnvelope))
def sync_secrets(request: HttpRequest, sync_id: UUID) -> dict:
    sync = _sync(request, sync_id)
    services.sync_now(sync, trigger=Trigger.API, request=request)
    return {"secretSync": sync_json(sync)}


@router.post(ONE + "/remove-secrets", auth=token("syncs.manage"), response=answers(SyncEnvelope))
def remove_secrets(request: HttpRequest, sync_id: UUID) -> dict:
    sync = _sync(request, sync_id)
    services.remove_secrets(sync, trigger=Trigger.API, request=request)
    return {"secretSync": sync_json(sync)}

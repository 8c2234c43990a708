"""Infisical-style Secret Syncs API for the destination "devpilot-server": the same create, list, get, update,
delete, sync-secrets and remove-secrets shapes as the App Platform sync (syncs/api.py)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Query, Router

from devpilot.api import answers, iso, require_workspace, token
from devpilot.errors import Invalid
from syncs import services
from syncs.api import SyncByNameQuery, common_changes
from syncs.destinations import devpilot_server
from syncs.models import Sync, Trigger
from syncs.schemas import (
    ServerSyncCreate, ServerSyncEnvelope, ServerSyncsEnvelope, ServerSyncUpdate, SyncDeleteQuery,
)

router = Router(tags=["Secret syncs"])
BASE = "/v1/secret-syncs/devpilot-server"
ONE = BASE + "/{uuid:sync_id}"


def _server_json(row: dict) -> dict:
    return {"serverId": row["serverId"], "serverName": row["server"], "state": row["state"], "message": row["message"],
            "isTarget": not row["leaving"],
            "versionApplied": row["version"], "appliedAt": iso(row["appliedAt"]), "fileSha256": row["sha256"] or None,
            "reloadExitStatus": row["reloadExitStatus"]}


def sync_json(sync: Sync) -> dict:
    return {
        "id": str(sync.pk), "name": sync.name, "description": sync.description or None, "isEnabled": True,
        "isAutoSyncEnabled": sync.auto_sync_enabled, "version": sync.version, "folderId": str(sync.folder_id),
        "createdAt": iso(sync.created_at), "updatedAt": iso(sync.updated_at),
        "syncStatus": sync.sync_status or None, "lastSyncMessage": sync.last_sync_message or None,
        "lastSyncedAt": iso(sync.last_synced_at), "removeStatus": sync.remove_status or None,
        "lastRemoveMessage": sync.last_remove_message or None, "lastRemovedAt": iso(sync.last_removed_at),
        "syncOptions": {"initialSyncBehavior": sync.initial_sync_behavior, "keySchema": sync.key_schema or None,
                        "autoSyncEnabled": sync.auto_sync_enabled,
                        "disableSecretDeletion": sync.disable_secret_deletion},
        "projectId": str(sync.workspace_id),
        "environment": {"slug": sync.environment.slug, "name": sync.environment.name, "id": str(sync.environment_id)},
        "folder": {"id": str(sync.folder_id), "path": sync.folder.path},
        "destination": devpilot_server.name,
        "destinationConfig": {
            "serverId": str(sync.server_id) if sync.server_id else None, "tag": sync.server_tag or None,
            "filePath": sync.file_path, "format": sync.file_format, "owner": sync.file_owner,
            "group": sync.file_group, "mode": sync.file_mode, "reloadCommand": sync.reload_command or None},
        "servers": [_server_json(devpilot_server.delivery_state(d)) for d in devpilot_server.deliveries(sync)]
        if sync.pk and Sync.objects.filter(pk=sync.pk).exists() else [],
    }


def _syncs(request: HttpRequest):
    return Sync.objects.select_related("environment", "folder").filter(
        workspace=request.workspace, destination=devpilot_server.name)  # type: ignore[attr-defined]


def _sync(request: HttpRequest, sync_id: UUID) -> Sync:
    return get_object_or_404(_syncs(request), pk=sync_id)


def _changes(request: HttpRequest, body: ServerSyncCreate | ServerSyncUpdate, sync: Sync) -> dict[str, Any]:
    changes = common_changes(request, body, sync)
    config = body.destinationConfig
    if config is not None:
        if (config.serverId is None) == (config.tag is None):
            raise Invalid.for_field("destinationConfig.serverId", "Give serverId or tag (one of them).")
        server = None
        if config.serverId is not None:
            server = request.workspace.servers.live().filter(pk=config.serverId).first()  # type: ignore[attr-defined]
            if server is None:
                raise Invalid.for_field("destinationConfig.serverId", "No server of this workspace has that id.")
        name = changes.get("name") or sync.name
        changes.update(server=server, server_tag=config.tag or "",
                       file_path=config.filePath or sync.file_path or devpilot_server.default_path(name),
                       file_format=config.format, file_owner=config.owner, file_group=config.group,
                       file_mode=config.mode, reload_command=config.reloadCommand)
    return changes


@router.get(BASE, auth=token(), response=answers(ServerSyncsEnvelope))
def list_server_syncs(request: HttpRequest) -> dict:
    return {"secretSyncs": [sync_json(s) for s in _syncs(request)]}


@router.post(BASE, auth=token("syncs.manage"), response=answers(ServerSyncEnvelope))
def create_server_sync(request: HttpRequest, payload: ServerSyncCreate) -> dict:
    """A file on one server (serverId) or on every server with a Devpilot tag (tag), written by their agents."""
    if payload.projectId is not None:
        require_workspace(request, payload.projectId)
    sync = Sync(workspace=request.workspace, description="", destination=devpilot_server.name)  # type: ignore[attr-defined]
    for field, value in _changes(request, payload, sync).items():
        setattr(sync, field, value)
    services.create(sync, trigger=Trigger.API, request=request)
    sync.refresh_from_db()
    return {"secretSync": sync_json(sync)}


@router.get(BASE + "/sync-name/{sync_name}", auth=token(), response=answers(ServerSyncEnvelope))
def get_server_sync_by_name(request: HttpRequest, sync_name: str, q: Query[SyncByNameQuery]) -> dict:
    if q.projectId is not None:
        require_workspace(request, q.projectId)
    return {"secretSync": sync_json(get_object_or_404(_syncs(request), name=sync_name))}


@router.get(ONE, auth=token(), response=answers(ServerSyncEnvelope))
def get_server_sync(request: HttpRequest, sync_id: UUID) -> dict:
    """The sync, with each target server's delivery: pending, sent, applied or failed, version and file hash."""
    return {"secretSync": sync_json(_sync(request, sync_id))}


@router.patch(ONE, auth=token("syncs.manage"), response=answers(ServerSyncEnvelope))
def update_server_sync(request: HttpRequest, sync_id: UUID, payload: ServerSyncUpdate) -> dict:
    sync = _sync(request, sync_id)
    services.update(sync, _changes(request, payload, sync), request=request)
    sync.refresh_from_db()
    return {"secretSync": sync_json(sync)}


@router.delete(ONE, auth=token("syncs.manage"), response=answers(ServerSyncEnvelope))
def delete_server_sync(request: HttpRequest, sync_id: UUID, q: Query[SyncDeleteQuery]) -> dict:
    """Deletes at once; with removeSecrets=true the agents take the sync's keys out of the file first."""
    sync = _sync(request, sync_id)
    body = sync_json(sync)
    services.delete(sync, remove_secrets_first=q.removeSecrets, request=request)
    if q.removeSecrets and Sync.objects.filter(pk=sync.pk).exists():
        sync.refresh_from_db()
        body = sync_json(sync)
    return {"secretSync": body}


@router.post(ONE + "/sync-secrets", auth=token("syncs.manage"), response=answers(ServerSyncEnvelope))
def sync_server_secrets(request: HttpRequest, sync_id: UUID) -> dict:
    sync = _sync(request, sync_id)
    services.sync_now(sync, trigger=Trigger.API, request=request)
    sync.refresh_from_db()
    return {"secretSync": sync_json(sync)}


@router.post(ONE + "/remove-secrets", auth=token("syncs.manage"), response=answers(ServerSyncEnvelope))
def remove_server_secrets(request: HttpRequest, sync_id: UUID) -> dict:
    sync = _sync(request, sync_id)
    services.remove_secrets(sync, trigger=Trigger.API, request=request)
    sync.refresh_from_db()
    return {"secretSync": sync_json(sync)}

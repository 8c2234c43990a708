"""Infisical's secret snapshots API (list, count, read, roll back) over Devpilot's folder snapshots, and
Devpilot's own compare and promote (Infisical has no equivalent)."""

from __future__ import annotations

from uuid import UUID

from django.http import HttpRequest
from ninja import Query, Router

from devpilot import compare, secrets, snapshots
from devpilot.api import answers, iso, require_workspace, require_workspace_ref, token
from devpilot.errors import NotFound
from devpilot.models import Folder, FolderSnapshot, SnapshotEntry
from devpilot.permissions import can
from devpilot.schemas import (CompareOut, CompareQuery, CountOut, PromoteIn, PromoteOut, SnapshotCountQuery,
                              SnapshotEnvelope, SnapshotListQuery, SnapshotRolledBack, SnapshotsEnvelope)

router = Router(tags=["Folder snapshots, compare and promote"])


def _folder(request: HttpRequest, workspace_id: UUID, q: SnapshotCountQuery) -> Folder:
    workspace = require_workspace(request, workspace_id, field="workspaceId")
    folder = (Folder.objects.select_related("environment")
              .filter(workspace=workspace, environment__slug=q.environment, path=q.path).first())
    if folder is None:
        if not workspace.environments.filter(slug=q.environment).exists():
            raise NotFound(f"Environment {q.environment} not found.")
        raise NotFound(f"There is no folder {q.path} in {q.environment}.")
    return folder


def _parent_id(folder: Folder) -> str | None:
    if folder.path == "/":
        return None
    parent = (folder.environment.folders.filter(path=secrets.parent_path(folder.path))
              .values_list("pk", flat=True).first())
    return str(parent) if parent else None


def snapshot_json(snapshot: FolderSnapshot, parent_id: str | None) -> dict:
    return {
        "id": str(snapshot.pk), "envId": str(snapshot.folder.environment_id), "folderId": str(snapshot.folder_id),
        "parentFolderId": parent_id, "createdAt": iso(snapshot.created_at), "updatedAt": iso(snapshot.created_at),
        "number": snapshot.number, "kind": snapshot.kind, "actor": snapshot.actor_label, "summary": snapshot.summary,
    }


def _snapshot(request: HttpRequest, secret_snapshot_id: UUID) -> FolderSnapshot:
    workspace = request.workspace  # type: ignore[attr-defined]
    snapshot = (FolderSnapshot.objects.select_related("folder__environment")
                .filter(folder__workspace=workspace, pk=secret_snapshot_id).first())
    if snapshot is None:
        raise NotFound(f"Secret snapshot {secret_snapshot_id} not found.")
    return snapshot


SNAPSHOTS = "/v1/workspace/{uuid:workspace_id}/secret-snapshots"


@router.get(SNAPSHOTS, auth=token(), response=answers(SnapshotsEnvelope))
def list_snapshots(request: HttpRequest, workspace_id: UUID, q: Query[SnapshotListQuery]) -> dict:
    """A folder's snapshots, newest first (`offset`, `limit` up to 100)."""
    folder = _folder(request, workspace_id, q)
    rows = folder.snapshots.order_by("-number")[q.offset: q.offset + q.limit]
    parent_id = _parent_id(folder)
    for snapshot in rows:
        snapshot.folder = folder
    return {"secretSnapshots": [snapshot_json(s, parent_id) for s in rows]}


@router.get(SNAPSHOTS + "/count", auth=token(), response=answers(CountOut))
def count_snapshots(request: HttpRequest, workspace_id: UUID, q: Query[SnapshotCountQuery]) -> dict:
    return {"count": _folder(request, workspace_id, q).snapshots.count()}


@router.get("/v1/secret-snapshot/{uuid:secret_snapshot_id}", auth=token(), response=answers(SnapshotEnvelope))
def get_snapshot(request: HttpRequest, secret_snapshot_id: UUID) -> dict:
    """The folder as it was at the snapshot: every secret's version then. Values for roles that may read them
    (each read is audited); null for viewers."""
    snapshot = _snapshot(request, secret_snapshot_id)
    folder, environment = snapshot.folder, snapshot.folder.environment
    entries = list(snapshots.state_at(folder, snapshot.number).values())
    with_values = can(request.role, "secrets.read_values")  # type: ignore[attr-defined]
    if with_values and entries:
        secrets.record_values_read(request.workspace, f"{environment.slug}:{folder.path}",  # type: ignore[attr-defined]
                                   [e.key for e in entries], f"api (snapshot #{snapshot.number})", request=request)
    prefix = "/" if folder.path == "/" else folder.path + "/"
    children = [f for f in environment.folders.filter(path__startswith=prefix).exclude(pk=folder.pk)
                if "/" not in f.path[len(prefix):]]
    return {"secretSnapshot": {
        "id": str(snapshot.pk), "projectId": str(folder.workspace_id),
        "environment": {"id": str(environment.pk), "slug": environment.slug, "name": environment.name},
        "secretVersions": [_version_json(e, with_values) for e in entries],
        "folderVersion": [{"id": str(f.pk), "name": f.name} for f in children],
        "createdAt": iso(snapshot.created_at), "updatedAt": iso(snapshot.created_at),
        "number": snapshot.number, "kind": snapshot.kind, "actor": snapshot.actor_label, "summary": snapshot.summary,
    }}


def _version_json(entry: SnapshotEntry, with_value: bool) -> dict:
    version = entry.version
    assert version is not None  # state_at leaves deleted keys out
    return {
        "id": str(version.pk), "secretId": str(version.secret_id) if version.secret_id else None,
        "version": version.version, "secretKey": entry.key, "secretValue": version.value if with_value else None,
        "secretValueHidden": not with_value, "secretComment": version.comment, "secretReminderNote": None,
        "secretReminderRepeatDays": None, "skipMultilineEncoding": False, "tags": [], "isRotatedSecret": False,
        "createdAt": iso(version.created_at), "updatedAt": iso(version.created_at),
    }


@router.post("/v1/secret-snapshot/{uuid:secret_snapshot_id}/rollback", auth=token("secrets.write"),
             response=answers(SnapshotRolledBack))
def rollback_snapshot(request: HttpRequest, secret_snapshot_id: UUID) -> dict:
    """Roll the folder back to the snapshot as one new change (itself a snapshot, so undoable): deleted
    secrets are recreated, changed ones reverted, ones added since deleted. Answers the snapshot rolled to."""
    snapshot = _snapshot(request, secret_snapshot_id)
    snapshots.rollback(snapshot, request=request)
    return {"secretSnapshot": snapshot_json(snapshot, _parent_id(snapshot.folder))}


# --- Devpilot: compare and promote ----------------------------------------------------------------


@router.get("/v1/devpilot/secrets/compare", auth=token(), response=answers(CompareOut))
def compare_environments(request: HttpRequest, q: Query[CompareQuery]) -> dict:
    """Keys of `path` in every environment: present or not and, for roles that may read values, which keys
    hold the same value (`valueGroup`: equal numbers, equal values). Never a value or a hash."""
    workspace = require_workspace_ref(request, *q.workspace_ref(), field="workspaceId")
    with_values = can(request.role, "secrets.read_values")  # type: ignore[attr-defined]
    comparison = compare.compare(workspace, q.path, with_values=with_values)
    rows = comparison.differences if q.differencesOnly else comparison.rows
    slugs = [e.slug for e in comparison.environments]
    return {
        "path": comparison.path, "valuesCompared": comparison.with_values,
        "environments": [{"id": str(e.pk), "slug": e.slug, "name": e.name} for e in comparison.environments],
        "keys": [{"key": row.key, "differs": row.differs, "environments": [
            {"environment": slug, "present": cell.present, "valueGroup": cell.group}
            for slug, cell in zip(slugs, row.cells, strict=True)]} for row in rows],
    }


@router.post("/v1/devpilot/secrets/promote", auth=token("secrets.write"), response=answers(PromoteOut))
def promote(request: HttpRequest, payload: PromoteIn) -> dict:
    """Copy `keys` from one environment's `path` to another's as one change (the target folder is created if
    missing); `dryRun` answers what would be created and overwritten without writing."""
    workspace = require_workspace_ref(request, *payload.workspace_ref(), field="workspaceId")
    args = (workspace, payload.path, payload.sourceEnvironment, payload.targetEnvironment, payload.keys)
    plan = compare.preview(*args) if payload.dryRun else compare.promote(*args, request=request)
    return {"path": plan.path, "sourceEnvironment": plan.source.slug, "targetEnvironment": plan.target.slug,
            "created": plan.create, "overwritten": plan.overwrite, "unchanged": plan.unchanged,
            "folderCreated": plan.folder_missing and bool(plan.keys) and not payload.dryRun, "dryRun": payload.dryRun}

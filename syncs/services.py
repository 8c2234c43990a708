"""Creating, changing and deleting syncs: shared by the pages and the API."""

from django.db import IntegrityError, transaction

from devpilot import audit
from syncs import engine, tasks
from syncs.models import Sync, Trigger


class SyncError(Exception):
    """A change the rules refuse; the message is for the user."""


@transaction.atomic
def create(sync, *, trigger=Trigger.CREATED, user=None, request=None):
    """Save a new sync; run it at once when auto-sync is on."""
    sync.created_by = user
    try:
        with transaction.atomic():
            sync.save()
    except IntegrityError:
        raise SyncError(f"A sync named {sync.name} already exists in this workspace.") from None
    audit.record(sync.workspace, "sync.created", request=request, actor=user, target=sync,
                 app=sync.app_name, source=f"{sync.environment.slug}:{sync.folder.path}")
    if sync.auto_sync_enabled:
        tasks.enqueue_run(sync, trigger)
    return sync


def sync_now(sync, *, trigger=Trigger.MANUAL, user=None, request=None):
    if sync.connection_id is None:
        raise SyncError("This sync has no connection any more. Edit it and choose a connection first.")
    audit.record(sync.workspace, "sync.run_requested", request=request, actor=user, target=sync)
    tasks.enqueue_run(sync, trigger)


def remove_secrets(sync, *, trigger=Trigger.MANUAL, user=None, request=None):
    if sync.connection_id is None:
        raise SyncError("This sync has no connection any more, so its secrets cannot be removed.")
    audit.record(sync.workspace, "sync.remove_requested", request=request, actor=user, target=sync)
    tasks.enqueue_remove(sync, trigger)


@transaction.atomic
def update(sync, changes, *, user=None, request=None):
    """Change options or destination; the next run applies them (at once if auto-sync is on)."""
    for field, value in changes.items():
        setattr(sync, field, value)
    sync.version += 1
    try:
        with transaction.atomic():
            sync.save()
    except IntegrityError:
        raise SyncError(f"A sync named {sync.name} already exists in this workspace.") from None
    audit.record(sync.workspace, "sync.updated", request=request, actor=user, target=sync, fields=sorted(changes))
    if sync.auto_sync_enabled and sync.connection_id and set(changes) - {"name", "description"}:
        tasks.enqueue_run(sync, Trigger.MANUAL)
    return sync


def delete(sync, *, remove_secrets_first=False, user=None, request=None):
    """Delete a sync, optionally removing the variables it manages first (synchronously, so errors show)."""
    if remove_secrets_first:
        run = engine.remove_secrets(sync, Trigger.MANUAL)
        if run.status != "succeeded":
            raise SyncError(f"The sync was not deleted: removing its secrets failed. {run.message}")
    audit.record(sync.workspace, "sync.deleted", request=request, actor=user, target=sync,
                 removed_secrets=remove_secrets_first)
    sync.delete()

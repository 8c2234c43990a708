"""Creating, changing and deleting syncs: shared by the pages and the API."""

from django.db import IntegrityError, transaction

from devpilot import audit
from devpilot.errors import Invalid
from syncs import ownership, tasks
from syncs.models import Sync, Trigger


class SyncError(Invalid):
    """A change the rules refuse; the message is for the user."""


def refuse_shared_variables(sync) -> None:
    """Two syncs never manage the same variable (syncs/ownership.py); checked after the name, in the save's
    transaction, so a refusal leaves nothing saved."""
    shared = ownership.conflict(sync)
    if shared:
        raise SyncError.for_field("syncOptions.keySchema", shared)


def validate(sync) -> None:
    """The destination and options as the API's schema defines them, whichever edge filled them in."""
    from devpilot.schemas import parse
    from syncs.destinations import devpilot_server
    from syncs.schemas import DestinationConfig, SyncOptions

    if sync.destination == devpilot_server.name:
        devpilot_server.validate(sync)
    else:
        parse(DestinationConfig, {"appId": sync.app_id, "appName": sync.app_name, "component": sync.component or None,
                                  "variableType": sync.env_type, "scope": sync.env_scope})
    parse(SyncOptions, {"initialSyncBehavior": sync.initial_sync_behavior, "keySchema": sync.key_schema,
                        "autoSyncEnabled": sync.auto_sync_enabled,
                        "disableSecretDeletion": sync.disable_secret_deletion})


@transaction.atomic
def create(sync, *, trigger=Trigger.CREATED, user=None, request=None):
    """Save a new sync; run it at once when auto-sync is on."""
    validate(sync)
    sync.created_by = user
    try:
        with transaction.atomic():
            sync.save()
    except IntegrityError:
        raise SyncError.for_field("name", f"A sync named {sync.name} already exists in this workspace.") from None
    refuse_shared_variables(sync)
    audit.record(sync.workspace, "sync.created", request=request, actor=user, target=sync,
                 app=sync.app_name, source=f"{sync.environment.slug}:{sync.folder.path}")
    if sync.auto_sync_enabled:
        tasks.enqueue_run(sync, trigger)
    return sync


def sync_now(sync, *, trigger=Trigger.MANUAL, user=None, request=None):
    if not sync.has_destination:
        raise SyncError("This sync has no connection any more. Edit it and choose a connection first.")
    audit.record(sync.workspace, "sync.run_requested", request=request, actor=user, target=sync)
    tasks.enqueue_run(sync, trigger)


def remove_secrets(sync, *, trigger=Trigger.MANUAL, user=None, request=None):
    from syncs.destinations import devpilot_server

    if not sync.has_destination:
        raise SyncError("This sync has no connection any more, so its secrets cannot be removed.")
    audit.record(sync.workspace, "sync.remove_requested", request=request, actor=user, target=sync)
    if sync.destination == devpilot_server.name:
        devpilot_server.queue(sync, removing=True)
        sync.refresh_from_db()
    else:
        tasks.enqueue_remove(sync, trigger)


@transaction.atomic
def update(sync, changes, *, user=None, request=None):
    """Change options or destination; the next run applies them (at once if auto-sync is on)."""
    for field, value in changes.items():
        setattr(sync, field, value)
    validate(sync)
    sync.version += 1
    try:
        with transaction.atomic():
            sync.save()
    except IntegrityError:
        raise SyncError.for_field("name", f"A sync named {sync.name} already exists in this workspace.") from None
    refuse_shared_variables(sync)
    audit.record(sync.workspace, "sync.updated", request=request, actor=user, target=sync, fields=sorted(changes))
    if sync.auto_sync_enabled and sync.has_destination and set(changes) - {"name", "description"}:
        tasks.enqueue_run(sync, Trigger.MANUAL)
    return sync


def delete(sync, *, remove_secrets_first=False, user=None, request=None):
    """Delete a sync now, or queue the removal of its variables and delete it once that succeeded.

    Removal talks to DigitalOcean and may wait for the app's lease, so it never runs in a web request.
    """
    if not remove_secrets_first:
        audit.record(sync.workspace, "sync.deleted", request=request, actor=user, target=sync, removed_secrets=False)
        sync.delete()
        return
    from syncs.destinations import devpilot_server

    if not sync.has_destination:
        raise SyncError("This sync has no connection any more, so its secrets cannot be removed. "
                        "Delete it without removing secrets.")
    if sync.destination == devpilot_server.name:
        with transaction.atomic():
            Sync.objects.filter(pk=sync.pk).update(delete_after_removal=True, auto_sync_enabled=False)
            sync.delete_after_removal, sync.auto_sync_enabled = True, False
            audit.record(sync.workspace, "sync.delete_requested", request=request, actor=user, target=sync)
            if not devpilot_server.queue(sync, removing=True):  # no server holds the file: nothing to remove
                audit.record(sync.workspace, "sync.deleted", request=request, actor=user, target=sync,
                             removed_secrets=True)
                sync.delete()
        return
    with transaction.atomic():
        Sync.objects.filter(pk=sync.pk).update(delete_after_removal=True, auto_sync_enabled=False)
        sync.delete_after_removal, sync.auto_sync_enabled = True, False
        audit.record(sync.workspace, "sync.delete_requested", request=request, actor=user, target=sync)
        tasks.enqueue_remove(sync, Trigger.MANUAL)


def finish_delete(sync, run):
    """After a queued removal: delete the sync if its secrets are gone, otherwise keep it and say why."""
    if run.status == "succeeded":
        audit.record(sync.workspace, "sync.deleted", target=sync, removed_secrets=True)
        sync.delete()
        return
    Sync.objects.filter(pk=sync.pk).update(
        delete_after_removal=False,
        last_remove_message=f"The sync was not deleted: removing its secrets failed. {run.message}")

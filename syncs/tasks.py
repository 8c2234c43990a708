"""Background work for syncs (django-q2). Tasks take ids, never secrets."""

import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import async_task

from syncs import engine, notifications
from syncs.models import Sync, SyncStatus, Trigger

DISPATCH_MAX_WAIT = 60  # seconds a dispatcher waits for edits to stop before running anyway


def enqueue_run(sync, trigger):
    """Mark the sync pending and run it in a worker once the current transaction commits."""
    Sync.objects.filter(pk=sync.pk).update(sync_status=SyncStatus.PENDING, last_sync_message="Waiting for a worker…")
    sync.sync_status = SyncStatus.PENDING
    transaction.on_commit(lambda: async_task("syncs.tasks.run_sync", str(sync.pk), trigger))


def enqueue_remove(sync, trigger):
    Sync.objects.filter(pk=sync.pk).update(remove_status=SyncStatus.PENDING, last_remove_message="Waiting for a worker…")
    sync.remove_status = SyncStatus.PENDING
    transaction.on_commit(lambda: async_task("syncs.tasks.remove_sync_secrets", str(sync.pk), trigger))


def run_sync(sync_id, trigger=Trigger.MANUAL):
    sync = Sync.objects.select_related("connection", "environment", "folder", "workspace").filter(pk=sync_id).first()
    if sync is None:
        return None
    was_failed = sync.sync_status == SyncStatus.FAILED
    try:
        result = engine.run(sync, trigger)
    except engine.Retry as retry:
        schedule_retry(sync, retry.when)
        return "retry"
    if result.status == SyncStatus.FAILED and not was_failed:
        notifications.sync_failed(sync, result)
    return result.status


def remove_sync_secrets(sync_id, trigger=Trigger.MANUAL):
    sync = Sync.objects.select_related("connection", "environment", "folder").filter(pk=sync_id).first()
    if sync is not None:
        return engine.remove_secrets(sync, trigger).status


def schedule_retry(sync, when):
    Schedule.objects.create(
        name=f"retry sync {sync.pk} {when:%H%M%S%f}", func="syncs.tasks.run_sync",
        args=f"'{sync.pk}', '{Trigger.RETRY}'", schedule_type=Schedule.ONCE, next_run=when, repeats=1,
    )


# --- Auto-sync --------------------------------------------------------------------------------


def source_changed(workspace_id, environment_id, path):
    """A folder's secrets changed (after commit): debounce a run of every auto-sync reading it."""
    due = timezone.now() + timedelta(seconds=settings.DEVPILOT_AUTOSYNC_DEBOUNCE)
    syncs = Sync.objects.filter(workspace_id=workspace_id, environment_id=environment_id, folder__path=path,
                                auto_sync_enabled=True, connection__isnull=False)
    for sync_id in syncs.values_list("pk", flat=True):
        Sync.objects.filter(pk=sync_id).update(pending_run_at=due, sync_status=SyncStatus.PENDING,
                                               last_sync_message="Secrets changed: syncing shortly…")
        # One dispatcher at a time per sync; edits during its wait only push pending_run_at.
        if Sync.objects.filter(pk=sync_id, dispatch_queued=False).update(dispatch_queued=True):
            enqueue_dispatch(sync_id)


def enqueue_dispatch(sync_id):
    async_task("syncs.tasks.dispatch", str(sync_id))


def dispatch(sync_id, sleep=time.sleep):
    """Wait until the edits have stopped for the debounce window, then run once."""
    deadline = time.monotonic() + DISPATCH_MAX_WAIT
    while True:
        due = Sync.objects.filter(pk=sync_id).values_list("pending_run_at", flat=True).first()
        if due is None:
            Sync.objects.filter(pk=sync_id).update(dispatch_queued=False)
            return None
        wait = (due - timezone.now()).total_seconds()
        if wait <= 0 or time.monotonic() >= deadline:
            break
        sleep(min(wait, 1.0))
    # Edits from now on start another dispatcher, which runs after this run (the app lock).
    Sync.objects.filter(pk=sync_id).update(dispatch_queued=False, pending_run_at=None)
    return run_sync(sync_id, Trigger.AUTO)


# --- Housekeeping (scheduled) -----------------------------------------------------------------


def housekeeping():
    """Retry failed auto-syncs and record drift on the others (one read of each app)."""
    retried = checked = 0
    for sync in Sync.objects.filter(auto_sync_enabled=True, connection__isnull=False).select_related(
            "connection", "environment", "folder"):
        if sync.sync_status == SyncStatus.FAILED:
            enqueue_run(sync, Trigger.SCHEDULE)
            retried += 1
        elif sync.sync_status == SyncStatus.SUCCEEDED:
            try:
                engine.check_drift(sync)
                checked += 1
            except (engine.SyncFailed, engine.Retry):
                continue
    return {"retried": retried, "checked": checked}

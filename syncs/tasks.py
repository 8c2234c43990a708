"""Background work for syncs (django-q2). Tasks take ids, never secrets.

A run or removal is first written to the sync's row (the outbox: `queued_run`, `queued_remove`,
`pending_run_at` for auto-sync) in the requester's transaction; the task carries the request's id
and runs under the lease `sync:<id>`. A task whose request was already served returns at once, so a
duplicate delivery runs once; a request whose worker died is re-enqueued by the sweeper.
"""

import uuid
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from devpilot import locks, outbox
from syncs import engine, notifications
from syncs.models import Sync, SyncStatus, Trigger

EARLY = timedelta(seconds=2)  # a check this close to its due time runs


def enqueue_run(sync, trigger):
    """Mark the sync pending and owed a run (in the caller's transaction); queue it once that commits."""
    request = uuid.uuid4()
    Sync.objects.filter(pk=sync.pk).update(sync_status=SyncStatus.PENDING, last_sync_message="Waiting for a worker…",
                                           queued_run=request, queued_run_at=timezone.now(), queued_run_trigger=trigger)
    sync.sync_status = SyncStatus.PENDING
    transaction.on_commit(lambda: outbox.enqueue("syncs.tasks.run_sync", str(sync.pk), trigger, str(request)))


def enqueue_remove(sync, trigger):
    request = uuid.uuid4()
    Sync.objects.filter(pk=sync.pk).update(remove_status=SyncStatus.PENDING, last_remove_message="Waiting for a worker…",
                                           queued_remove=request, queued_remove_at=timezone.now(),
                                           queued_remove_trigger=trigger)
    sync.remove_status = SyncStatus.PENDING
    transaction.on_commit(lambda: outbox.enqueue("syncs.tasks.remove_sync_secrets", str(sync.pk), trigger, str(request)))


def _owed(sync_id, field, request) -> bool:
    """The request this task stands for is still owed and due (None: a direct call, always runs)."""
    if request is None:
        return True
    row = Sync.objects.filter(pk=sync_id).values_list(field, f"{field}_at").first()
    return row is not None and str(row[0]) == str(request) and (row[1] is None or row[1] <= timezone.now() + EARLY)


def run_sync(sync_id, trigger=Trigger.MANUAL, request=None):
    if not _owed(sync_id, "queued_run", request):
        return "already done"
    try:
        with locks.held(f"sync:{sync_id}", wait=0):
            return _run_sync(sync_id, trigger)
    except locks.LockBusy:
        return "busy"  # the holder sends what is still owed when it finishes; if it dies, the sweeper does
    finally:
        _send_what_is_owed(sync_id)


def _run_sync(sync_id, trigger):
    sync = Sync.objects.select_related("connection", "environment", "folder", "workspace").filter(pk=sync_id).first()
    if sync is None:
        return None
    claimed, started = sync.queued_run, timezone.now()
    was_failed = sync.sync_status == SyncStatus.FAILED
    try:
        result = engine.run(sync, trigger)
    except engine.Retry as retry:
        schedule_retry(sync, retry.when, claimed)
        return "retry"
    # This run read the secrets as they are now: it serves every request made before it began.
    Sync.objects.filter(pk=sync_id, queued_run=claimed).update(queued_run=None, queued_run_at=None)
    Sync.objects.filter(pk=sync_id, pending_run_at__lte=started).update(pending_run_at=None, dispatch_queued=False)
    if result.status == SyncStatus.FAILED and not was_failed:
        notifications.sync_failed(sync, result)
    return result.status


def _send_what_is_owed(sync_id):
    """A request that arrived while this run held the lease (its own task found it busy) goes out now."""
    row = Sync.objects.filter(pk=sync_id, queued_run__isnull=False, queued_run_at__lte=timezone.now()).values_list(
        "queued_run", "queued_run_trigger").first()
    if row and not locks.is_live(f"sync:{sync_id}"):
        outbox.enqueue("syncs.tasks.run_sync", str(sync_id), row[1] or Trigger.MANUAL, str(row[0]))


def remove_sync_secrets(sync_id, trigger=Trigger.MANUAL, request=None):
    if not _owed(sync_id, "queued_remove", request):
        return "already done"
    try:
        with locks.held(f"sync:{sync_id}", wait=0):
            sync = Sync.objects.select_related("connection", "environment", "folder", "workspace").filter(
                pk=sync_id).first()
            if sync is None:
                return None
            claimed = sync.queued_remove
            run = engine.remove_secrets(sync, trigger)
            Sync.objects.filter(pk=sync_id, queued_remove=claimed).update(queued_remove=None, queued_remove_at=None)
            if sync.delete_after_removal:
                from syncs import services

                services.finish_delete(sync, run)
            return run.status
    except locks.LockBusy:
        Sync.objects.filter(pk=sync_id, queued_remove=request).update(
            queued_remove_at=timezone.now() + timedelta(seconds=30))
        outbox.run_later(f"remove {sync_id}", "syncs.tasks.remove_sync_secrets", (str(sync_id), trigger, request),
                         timezone.now() + timedelta(seconds=30))
        return "busy"


def schedule_retry(sync, when, request=None):
    """Owe a run at `when` (kept in the row, so a lost schedule is swept) and schedule it."""
    request = request or uuid.uuid4()
    Sync.objects.filter(pk=sync.pk).update(queued_run=request, queued_run_at=when, queued_run_trigger=Trigger.RETRY)
    outbox.run_later(f"retry sync {sync.pk}", "syncs.tasks.run_sync", (str(sync.pk), Trigger.RETRY, str(request)), when)


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
    due = Sync.objects.filter(pk=sync_id).values_list("pending_run_at", flat=True).first() or timezone.now()
    outbox.run_later(f"autosync {sync_id}", "syncs.tasks.dispatch", (str(sync_id),), due)


def dispatch(sync_id):
    """A scheduled check: once the edits have stopped for the debounce window, turn them into one owed run."""
    due = Sync.objects.filter(pk=sync_id).values_list("pending_run_at", flat=True).first()
    if due is None:
        Sync.objects.filter(pk=sync_id).update(dispatch_queued=False)
        return None
    if due > timezone.now() + EARLY:  # edited since this check was scheduled: look again then
        outbox.run_later(f"autosync {sync_id}", "syncs.tasks.dispatch", (str(sync_id),), due)
        return "waiting"
    request = uuid.uuid4()
    # Edits from now on start another dispatcher, which runs after this run (the app lock).
    if not Sync.objects.filter(pk=sync_id, pending_run_at=due).update(
            dispatch_queued=False, pending_run_at=None, queued_run=request, queued_run_at=timezone.now(),
            queued_run_trigger=Trigger.AUTO):
        outbox.run_later(f"autosync {sync_id}", "syncs.tasks.dispatch", (str(sync_id),), timezone.now())
        return "moved"  # an edit landed just now: look again
    return run_sync(sync_id, Trigger.AUTO, str(request))


# --- The sweeper ------------------------------------------------------------------------------


def sweep(cutoff) -> dict[str, int]:
    """Runs, removals and auto-syncs owed since before `cutoff` whose sync nobody holds."""
    live = locks.live_names("sync:")
    counts = {"runs": 0, "removals": 0, "autosyncs": 0}
    owed = Sync.objects.filter(Q(queued_run_at__lte=cutoff) | Q(queued_remove_at__lte=cutoff) |
                               Q(pending_run_at__lte=cutoff))
    for sync in owed.only("pk", "queued_run", "queued_run_at", "queued_run_trigger", "queued_remove",
                          "queued_remove_at", "queued_remove_trigger", "pending_run_at"):
        if f"sync:{sync.pk}" in live:
            continue
        if sync.queued_run and sync.queued_run_at <= cutoff:
            outbox.enqueue("syncs.tasks.run_sync", str(sync.pk), sync.queued_run_trigger or Trigger.MANUAL,
                           str(sync.queued_run))
            counts["runs"] += 1
        elif sync.pending_run_at and sync.pending_run_at <= cutoff:
            outbox.enqueue("syncs.tasks.dispatch", str(sync.pk))
            counts["autosyncs"] += 1
        if sync.queued_remove and sync.queued_remove_at <= cutoff:
            outbox.enqueue("syncs.tasks.remove_sync_secrets", str(sync.pk), sync.queued_remove_trigger or Trigger.MANUAL,
                           str(sync.queued_remove))
            counts["removals"] += 1
    return counts


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

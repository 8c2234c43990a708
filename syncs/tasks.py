"""Background work for syncs (django-q2). Tasks take ids, never secrets.

A run or removal is first written to the sync's row (the outbox: `queued_run`, `queued_remove`,
`pending_run_at` for auto-sync) in the requester's transaction. Runs are done per app: the task
`run_app` takes the app's lease and runs every sync owed a run into that app as one batch (one
GET, at most one PUT: one deployment), so a duplicate delivery finds nothing owed; removals run
under `sync:<id>`. Work whose worker died is re-enqueued by the sweeper. Nothing sleeps in a
worker: debounce and retries are scheduled checks.
"""

import hashlib
import uuid
from collections import defaultdict
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from devpilot import locks, outbox, references
from syncs import engine, notifications
from syncs.models import Sync, SyncStatus, Trigger

EARLY = timedelta(seconds=2)  # a check this close to its due time runs
REMOVE_RETRY = timedelta(seconds=5)  # a removal that found its app busy looks again after this


def enqueue_run(sync, trigger):
    """Mark the sync pending and owed a run (in the caller's transaction); queue its app's batch once that commits."""
    owe([sync], trigger)
    sync.sync_status = SyncStatus.PENDING


def owe(syncs, trigger):
    """Owe each sync a run (one UPDATE) and queue one batch per app they write to, after the commit.

    A sync to Devpilot servers needs no worker: its commands for the servers' agents are stored now."""
    from syncs.destinations import devpilot_server

    for sync in [s for s in syncs if s.destination == devpilot_server.name]:
        devpilot_server.queue(Sync.objects.get(pk=sync.pk))
    syncs = [s for s in syncs if s.destination != devpilot_server.name]
    now = timezone.now()
    Sync.objects.filter(pk__in=[s.pk for s in syncs]).update(
        sync_status=SyncStatus.PENDING, last_sync_message="Waiting for a worker…", queued_run=uuid.uuid4(),
        queued_run_at=now, queued_run_trigger=trigger)
    for connection_id, app_id in {(s.connection_id, s.app_id) for s in syncs}:
        transaction.on_commit(lambda c=connection_id, a=app_id: enqueue_app(c, a))


def enqueue_app(connection_id, app_id):
    outbox.enqueue("syncs.tasks.run_app", str(connection_id) if connection_id else None, app_id)


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
    """One sync's run: it runs in its app's batch (with every other sync owed a run into that app)."""
    if not _owed(sync_id, "queued_run", request):
        return "already done"
    row = Sync.objects.filter(pk=sync_id).values_list("connection_id", "app_id").first()
    if row is None:
        return None
    if request is None:  # a direct call: owe the run now, so the batch takes it
        Sync.objects.filter(pk=sync_id).update(queued_run=uuid.uuid4(), queued_run_at=timezone.now(),
                                               queued_run_trigger=trigger)
    outcome = run_app(*row)
    return outcome.get(str(sync_id), "already done") if isinstance(outcome, dict) else outcome


MAX_ROUNDS = 5  # batches one task runs back to back while more runs come due, before it hands over


def run_app(connection_id, app_id):
    """Every run owed into one app, as one batch: one GET, at most one PUT and one deployment.

    Runs that come due while a batch holds the app's lease are taken by its next round, or sent
    again when it lets go; a task that finds the lease held returns at once (never waits in a worker)."""
    try:
        with engine.app_lock(app_id, wait=0):
            results = {}
            for _ in range(MAX_ROUNDS):
                owed = list(_owed_runs(connection_id, app_id))
                if not owed:
                    break
                results.update(_run_batch(owed))
            return results or "already done"
    except locks.LockBusy:
        return "busy"  # the holder sends what is still owed when it lets go; if it dies, the sweeper does
    finally:
        _send_what_is_owed(connection_id, app_id)


def _owed_runs(connection_id, app_id):
    return Sync.objects.select_related("connection", "environment", "folder", "workspace").filter(
        connection_id=connection_id or None, app_id=app_id, queued_run__isnull=False,
        queued_run_at__lte=timezone.now() + EARLY).order_by("created_at")


def _run_batch(syncs):
    claimed = {sync.pk: sync.queued_run for sync in syncs}
    was_failed = {sync.pk for sync in syncs if sync.sync_status == SyncStatus.FAILED}
    started = timezone.now()
    results = engine.run_batch([(sync, sync.queued_run_trigger or Trigger.MANUAL) for sync in syncs])
    retries = [(sync, retry) for sync, _, retry in results if retry]
    for sync, retry in retries:  # still owed, at the retry's time (a lost schedule is swept)
        Sync.objects.filter(pk=sync.pk).update(queued_run_at=retry.when, queued_run_trigger=Trigger.RETRY)
    if retries:
        when = min(retry.when for _, retry in retries)
        outbox.run_later(f"retry app {retries[0][0].app_id}", "syncs.tasks.run_app",
                         (str(retries[0][0].connection_id), retries[0][0].app_id), when)
    # These runs read the secrets as they are now: each serves every request made before it began.
    for sync, run, retry in results:
        if retry:
            continue
        Sync.objects.filter(pk=sync.pk, queued_run=claimed[sync.pk]).update(queued_run=None, queued_run_at=None)
        Sync.objects.filter(pk=sync.pk, pending_run_at__lte=started).update(pending_run_at=None)
        if run.status == SyncStatus.FAILED and sync.pk not in was_failed:
            notifications.sync_failed(sync, run)
    return {str(sync.pk): "retry" if retry else run.status for sync, run, retry in results}


def _send_what_is_owed(connection_id, app_id):
    """Runs that came due while this batch held the lease (their own task found it busy) go out now."""
    if _owed_runs(connection_id, app_id).exists() and not locks.is_live(engine.app_lease(app_id)):
        enqueue_app(connection_id, app_id)


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
    except locks.LockBusy:  # this sync's other task, or a batch into its app: look again shortly, never wait here
        when = timezone.now() + REMOVE_RETRY
        Sync.objects.filter(pk=sync_id, queued_remove=request).update(queued_remove_at=when)
        outbox.run_later(f"remove {sync_id}", "syncs.tasks.remove_sync_secrets", (str(sync_id), trigger, request), when)
        return "busy"


# --- Auto-sync --------------------------------------------------------------------------------


def source_changed(workspace_id, environment_id, path):
    """A folder's secrets changed (after commit): debounce one batch per app for the auto-syncs reading it.

    The syncs of every folder whose resolved secrets depend on this one (importing it or referring to it,
    at any depth: devpilot.references.dependent_folders) are marked too. One UPDATE and one scheduled check
    per folder with auto-syncs, however many syncs read it: the edit's request never waits for them. Edits
    during the debounce only push the check later."""
    due = timezone.now() + timedelta(seconds=settings.DEVPILOT_AUTOSYNC_DEBOUNCE)
    folders = references.dependent_folders(workspace_id, environment_id, path)
    where = Q()
    for folder_environment_id, folder_path in folders:
        where |= Q(environment_id=folder_environment_id, folder__path=folder_path)
    syncs = Sync.objects.filter(where, Q(connection__isnull=False) | ~Q(destination="digital-ocean-app-platform"),
                                workspace_id=workspace_id, auto_sync_enabled=True)
    marks = {"pending_run_at": due, "sync_status": SyncStatus.PENDING,
             "last_sync_message": "Secrets changed: syncing shortly…"}
    if len(folders) == 1:  # nothing depends on this folder (the usual case): one UPDATE says if it has auto-syncs
        touched = {(environment_id, path)} if syncs.update(**marks) else set()
    else:
        touched = set(syncs.values_list("environment_id", "folder__path").distinct())
        if touched:
            syncs.update(**marks)
    for folder_environment_id, folder_path in sorted(touched, key=str):
        _check_folder_at(folder_environment_id, folder_path, due)


def _check_folder_at(environment_id, path, when):
    name = f"autosync {environment_id} {hashlib.sha256(path.encode()).hexdigest()[:16]}"
    outbox.run_later(name, "syncs.tasks.dispatch_folder", (str(environment_id), path), when)


def dispatch_folder(environment_id, path):
    """A scheduled check: once a folder's edits have stopped for the debounce window, owe its auto-syncs a run."""
    pending = Sync.objects.filter(environment_id=environment_id, folder__path=path, pending_run_at__isnull=False)
    latest = pending.aggregate(latest=Max("pending_run_at"))["latest"]
    if latest is None:
        return None
    now = timezone.now()
    if latest > now + EARLY:  # edited since this check was scheduled: look again then
        _check_folder_at(environment_id, path, latest)
        return "waiting"
    due = list(pending.filter(pending_run_at__lte=now + EARLY).only("pk", "connection_id", "app_id", "destination"))
    Sync.objects.filter(pk__in=[s.pk for s in due], pending_run_at__lte=now + EARLY).update(pending_run_at=None)
    owe(due, Trigger.AUTO)
    return len(due)


# --- The sweeper ------------------------------------------------------------------------------


def sweep(cutoff) -> dict[str, int]:
    """Runs, removals and auto-syncs owed since before `cutoff` whose app or sync nobody holds."""
    from syncs import deployments

    live = locks.live_names("sync:") | locks.live_names(engine.app_lease(""))
    counts = {"runs": 0, "removals": 0, "autosyncs": 0}
    apps = set(Sync.objects.filter(queued_run_at__lte=cutoff).values_list("connection_id", "app_id"))
    for connection_id, app_id in apps:
        if engine.app_lease(app_id) not in live:
            enqueue_app(connection_id, app_id)
            counts["runs"] += 1
    folders = set(Sync.objects.filter(pending_run_at__lte=cutoff).values_list("environment_id", "folder__path"))
    for environment_id, path in folders:
        outbox.enqueue("syncs.tasks.dispatch_folder", str(environment_id), path)
        counts["autosyncs"] += 1
    removals = Sync.objects.filter(queued_remove_at__lte=cutoff).only("pk", "queued_remove", "queued_remove_trigger")
    for sync in removals:
        if f"sync:{sync.pk}" not in live:
            outbox.enqueue("syncs.tasks.remove_sync_secrets", str(sync.pk), sync.queued_remove_trigger or Trigger.MANUAL,
                           str(sync.queued_remove))
            counts["removals"] += 1
    return {**counts, **deployments.sweep(cutoff)}


# --- Housekeeping (scheduled) -----------------------------------------------------------------


def housekeeping():
    """Retry failed auto-syncs and record drift on the others: one read of each app."""
    syncs = list(Sync.objects.filter(auto_sync_enabled=True, connection__isnull=False).select_related(
        "connection", "environment", "folder"))
    failed = [sync for sync in syncs if sync.sync_status == SyncStatus.FAILED]
    if failed:
        owe(failed, Trigger.SCHEDULE)
    checked = 0
    by_app = defaultdict(list)
    for sync in syncs:  # a failed deployment still wrote the variables: their drift counts too
        if sync.sync_status in (SyncStatus.SUCCEEDED, SyncStatus.DEPLOY_FAILED):
            by_app[(sync.connection_id, sync.app_id)].append(sync)
    for members in by_app.values():
        try:
            checked += sum(drift is not None for drift in engine.check_drift_batch(members))
        except (engine.SyncFailed, engine.Retry):
            continue
    return {"retried": len(failed), "checked": checked}

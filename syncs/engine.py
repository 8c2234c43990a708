"""Running a sync: read the source, plan against the destination, write at most once.

The dry run and the real run share plan(); only run() writes. Runs aimed at one app are
serialised by a lease in the database (devpilot/locks.py), across workers and machines, so
a GET-modify-PUT never overwrites another sync's update.
"""

import time
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from connections import digitalocean
from devpilot import locks, secrets
from syncs import keyschema
from syncs.destinations import CREATE, DELETE, UNCHANGED, UPDATE, DestinationError, get_destination, value_hash
from syncs.models import RunKind, SyncedKey, SyncRun, SyncStatus

TRANSIENT_WINDOW = timedelta(minutes=30)
APP_LOCK_WAIT = 20  # seconds a run waits for another sync of the same app before it is retried later


class SyncFailed(Exception):
    """A run that cannot succeed as things are; the message says why and what to do."""


class Retry(Exception):
    """A run that may succeed later: retry at `when`."""

    def __init__(self, message, when):
        super().__init__(message)
        self.when = when


def desired_variables(sync):
    """Source secrets under their destination names."""
    values = secrets.read_folder(sync.environment, sync.folder.path)
    return {keyschema.render(sync.key_schema, key, sync.environment.slug): value for key, value in values.items()}


def _client(sync):
    if sync.connection is None:
        raise SyncFailed("The connection was removed. Choose another connection to sync again.")
    return sync.connection.client()


def _records(sync):
    return {r.key: r for r in sync.synced_keys.all()}


def dry_run(sync, desired=None):
    """What a sync would do now: one read of the destination, no write."""
    desired = desired_variables(sync) if desired is None else desired
    try:
        return get_destination(sync.destination).plan(sync, _client(sync), desired, _records(sync) if sync.pk else {})
    except digitalocean.DigitalOceanError as e:
        raise _explain(sync, e) from None
    except DestinationError as e:
        raise SyncFailed(str(e)) from None


def _explain(sync, error, *, failing_since=None):
    """Turn a DigitalOcean error into SyncFailed (permanent) or Retry (transient)."""
    now = timezone.now()
    if isinstance(error, digitalocean.InvalidToken):
        return SyncFailed(f"DigitalOcean rejected the token of connection {sync.connection}: it was revoked or has "
                          "expired. Rotate it under Settings > Integrations.")
    if isinstance(error, digitalocean.MissingScope):
        return SyncFailed(error.message + " Give the token the app:read and app:update scopes.")
    if isinstance(error, digitalocean.NotFound):
        return SyncFailed(f"The app {sync.app_name or sync.app_id} no longer exists at DigitalOcean (it was deleted "
                          "or the connection belongs to another account).")
    if isinstance(error, digitalocean.RateLimited):
        return Retry(error.message + " The sync runs again then.", error.reset_at)
    transient = isinstance(error, digitalocean.Unavailable) or (
        isinstance(error, digitalocean.Rejected) and "progress" in error.message.lower()
    )
    if not transient:
        return SyncFailed(error.message)
    if failing_since and now - failing_since > TRANSIENT_WINDOW:
        return SyncFailed(error.message + " Still failing after 30 minutes of retries.")
    attempt_delay = 30 if failing_since is None else min(300, max(30, (now - failing_since).total_seconds()))
    return Retry(error.message + " Retrying shortly.", now + timedelta(seconds=attempt_delay))


def app_lock(app_id):
    """One writer per app: held for the whole GET-modify-PUT, by whichever sync, worker or machine."""
    return locks.held(f"digitalocean-app:{app_id}", wait=APP_LOCK_WAIT)


def _start(sync, kind, trigger):
    run = SyncRun.objects.create(sync=sync, kind=kind, trigger=trigger)
    fields = ("sync_status", "last_sync_job_id") if kind == RunKind.SYNC else ("remove_status", "last_remove_job_id")
    type(sync).objects.filter(pk=sync.pk).update(**{fields[0]: SyncStatus.RUNNING, fields[1]: run.pk})
    return run


def _finish(sync, run, status, message, started):
    now = timezone.now()
    run.status, run.message, run.finished_at = status, message, now
    run.duration_ms = int((time.monotonic() - started) * 1000)
    run.save()
    if run.kind == RunKind.SYNC:
        update = {"sync_status": status, "last_sync_message": message}
        if status == SyncStatus.SUCCEEDED:
            update.update(last_synced_at=now, failing_since=None, drift_keys=[], drift_checked_at=now)
    else:
        update = {"remove_status": status, "last_remove_message": message}
        if status == SyncStatus.SUCCEEDED:
            update["last_removed_at"] = now
    type(sync).objects.filter(pk=sync.pk).update(**update)
    for name, value in update.items():
        setattr(sync, name, value)


def _summary(run, plan):
    parts = [f"{run.created} created", f"{run.updated} updated", f"{run.deleted} deleted", f"{run.unchanged} unchanged"]
    text = ", ".join(parts) + "."
    if plan.drift:
        text += f" Overwrote values changed outside Devpilot: {', '.join(plan.drift)}."
    text += " A deployment was started." if run.deployment_started else " Nothing to write: no deployment."
    return text


def run(sync, trigger):
    """Sync now. Returns the SyncRun; raises Retry when a transient failure should be retried."""
    started = time.monotonic()
    run_record = _start(sync, RunKind.SYNC, trigger)
    client = None
    try:
        client = _client(sync)
        destination = get_destination(sync.destination)
        with app_lock(sync.app_id):
            desired = desired_variables(sync)
            records = _records(sync)
            plan = destination.plan(sync, client, desired, records)
            if plan.invalid_keys:
                raise SyncFailed("DigitalOcean would reject these keys, so nothing was written: " + "; ".join(
                    f"{key} ({reason})" for key, reason in plan.invalid_keys))
            applied = destination.apply(sync, client, plan, desired)
            _remember(sync, plan, applied, desired, records)
        run_record.created, run_record.updated = len(plan.keys(CREATE)), len(plan.keys(UPDATE))
        run_record.deleted, run_record.unchanged = len(plan.keys(DELETE)), len(plan.keys(UNCHANGED))
        run_record.deployment_started = applied.deployment_started
        run_record.drift_keys = plan.drift
        run_record.request_ids = _request_ids(client)
        _finish(sync, run_record, SyncStatus.SUCCEEDED, _summary(run_record, plan), started)
        return run_record
    except digitalocean.DigitalOceanError as e:
        outcome = _explain(sync, e, failing_since=sync.failing_since)
        run_record.request_ids = _request_ids(client) + ([e.request_id] if e.request_id else [])
    except DestinationError as e:
        outcome = SyncFailed(str(e))
    except SyncFailed as e:
        outcome = e
    except locks.LockBusy:
        outcome = Retry("Another sync to this app is still running; this one runs after it.",
                        timezone.now() + timedelta(seconds=30))
    if isinstance(outcome, Retry):
        type(sync).objects.filter(pk=sync.pk, failing_since__isnull=True).update(failing_since=timezone.now())
        _finish(sync, run_record, SyncStatus.PENDING, str(outcome), started)
        raise outcome
    _finish(sync, run_record, SyncStatus.FAILED, str(outcome), started)
    return run_record


def _request_ids(client):
    return list(getattr(client, "request_ids", []))


def _remember(sync, plan, applied, desired, records):
    """Record, per key, the hash of what was sent and what DigitalOcean stores for it."""
    fresh = dict(applied.remote_values)
    fresh.update({key: plan.remote[key] for key in plan.keys(UNCHANGED) if key in plan.remote and key not in records})
    with transaction.atomic():
        SyncedKey.objects.filter(sync=sync, key__in=[*plan.keys(DELETE), *fresh]).delete()
        SyncedKey.objects.bulk_create([
            SyncedKey(sync=sync, key=key, value_hash=value_hash(desired[key]), remote_value=remote)
            for key, remote in fresh.items()
        ])


def remove_secrets(sync, trigger):
    """Delete the variables this sync put at the destination (and nothing else)."""
    started = time.monotonic()
    run_record = _start(sync, RunKind.REMOVE, trigger)
    try:
        client = _client(sync)
        destination = get_destination(sync.destination)
        with app_lock(sync.app_id):
            plan = destination.removal_plan(sync, client, _records(sync))
            applied = destination.apply(sync, client, plan, {})
            sync.synced_keys.all().delete()
        run_record.deleted = len(plan.keys(DELETE))
        run_record.deployment_started = applied.deployment_started
        message = f"Removed {run_record.deleted} variable{'s' if run_record.deleted != 1 else ''}."
        _finish(sync, run_record, SyncStatus.SUCCEEDED, message, started)
    except digitalocean.DigitalOceanError as e:
        outcome = _explain(sync, e)
        # Removal is never retried on its own: say so instead of promising a retry.
        message = f"{e.message} Nothing was removed; try again." if isinstance(outcome, Retry) else str(outcome)
        _finish(sync, run_record, SyncStatus.FAILED, message, started)
    except (SyncFailed, DestinationError) as e:
        _finish(sync, run_record, SyncStatus.FAILED, str(e), started)
    except locks.LockBusy:
        _finish(sync, run_record, SyncStatus.FAILED,
                "Another sync to this app was still running, so nothing was removed; try again.", started)
    return run_record


def check_drift(sync):
    """Read the destination and record which values were changed outside Devpilot."""
    plan = dry_run(sync)
    sync.drift_keys = plan.drift
    sync.drift_checked_at = timezone.now()
    type(sync).objects.filter(pk=sync.pk).update(drift_keys=sync.drift_keys, drift_checked_at=sync.drift_checked_at)
    return plan.drift

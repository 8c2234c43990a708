"""Running syncs: read the sources, plan against the destination, write at most once per app.

Every sync owed a run into one app runs in one batch (`run_batch`): one GET of the app, each
sync planned against it, one PUT with all their changes, so one change costs at most two calls
and one deployment per app, whatever the number of syncs. The dry run and the real run share
the planning; only a batch writes. Batches aimed at one app are serialised by a lease in the
database (devpilot/locks.py), across workers and machines, so a GET-modify-PUT never overwrites
another batch's update.
"""

import copy
import json
import time
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from connections import digitalocean
from devpilot import locks, references
from syncs import keyschema
from syncs.destinations import (
    Applied, CREATE, DELETE, UNCHANGED, UPDATE, DestinationError, Plan, get_destination, value_hash,
)
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


class UnresolvedReferences(DestinationError):
    """The source holds a Devpilot reference that does not resolve: nothing is pushed (never a literal `${...}`)."""


def desired_variables(sync):
    """Source secrets under their destination names: the folder resolved (imports merged, its own secrets over
    them, references expanded; App Platform's bindable variables stay as written for App Platform to fill)."""
    source = references.resolve_folder(sync.environment, sync.folder.path)
    if source.unresolved:
        raise UnresolvedReferences(
            f"Unresolved references in {sync.environment.slug}:{sync.folder.path}, so nothing was pushed: "
            f"{source.unresolved_message()}")
    return {keyschema.render(sync.key_schema, key, sync.environment.slug): value
            for key, value in source.values.items()}


def _client(sync):
    if sync.connection is None:
        raise SyncFailed("The connection was removed. Choose another connection to sync again.")
    return sync.connection.client()


def _records(sync):
    return {r.key: r for r in sync.synced_keys.all()}


def dry_run(sync, desired=None):
    """What a sync would do now: one read of the destination, no write."""
    try:
        desired = desired_variables(sync) if desired is None else desired
        return get_destination(sync.destination).plan(sync, _client(sync), desired, _records(sync) if sync.pk else {})
    except digitalocean.DigitalOceanError as e:
        raise _explain(sync, e) from None
    except DestinationError as e:
        raise SyncFailed(str(e)) from None


def transient(error):
    """An error a later try may not meet: DigitalOcean unavailable or rate limiting, or the app busy with a
    deployment ("…in progress")."""
    return isinstance(error, digitalocean.Unavailable | digitalocean.RateLimited) or (
        isinstance(error, digitalocean.Rejected) and "progress" in error.message.lower())


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
    if not transient(error):
        return SyncFailed(error.message)
    if failing_since and now - failing_since > TRANSIENT_WINDOW:
        return SyncFailed(error.message + " Still failing after 30 minutes of retries.")
    attempt_delay = 30 if failing_since is None else min(300, max(30, (now - failing_since).total_seconds()))
    return Retry(error.message + " Retrying shortly.", now + timedelta(seconds=attempt_delay))


def app_lease(app_id):
    return f"digitalocean-app:{app_id}"


def app_lock(app_id, wait=APP_LOCK_WAIT):
    """One writer per app: held for the whole GET-modify-PUT, by whichever batch, worker or machine."""
    return locks.held(app_lease(app_id), wait=wait)


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
    """Sync one sync now (a batch of one). Returns the SyncRun; raises Retry when it should be retried."""
    try:
        with app_lock(sync.app_id):
            ((_, run_record, retry),) = run_batch([(sync, trigger)])
    except locks.LockBusy:
        run_record = _start(sync, RunKind.SYNC, trigger)
        retry = Retry("Another sync to this app is still running; this one runs after it.",
                      timezone.now() + timedelta(seconds=30))
        _finish(sync, run_record, SyncStatus.PENDING, str(retry), time.monotonic())
    if retry:
        raise retry
    return run_record


@dataclass
class _Member:
    """One sync of a batch: its run record, what it wants, its plan, or why it ends without writing."""

    sync: object
    trigger: str
    run: SyncRun
    desired: dict = field(default_factory=dict)
    records: dict = field(default_factory=dict)
    plan: Plan | None = None
    outcome: Exception | None = None  # SyncFailed or Retry: this member ends so, whatever the others do
    succeeded: bool = False

    @property
    def open(self):
        return self.outcome is None and not self.succeeded


def run_batch(members):
    """Every sync into one app (same connection) from one read and at most one write: one deployment.

    `members` are (sync, trigger) pairs; the caller holds the app's lease. Each sync keeps its own
    run, counts, drift and status: one whose part is invalid fails alone and the others still apply.
    Returns (sync, run, Retry or None) per member.
    """
    started = time.monotonic()
    batch = [_Member(sync, trigger, _start(sync, RunKind.SYNC, trigger)) for sync, trigger in members]
    try:
        _run(batch, started)
    except Exception as e:  # a bug: end every run (none stays "running") and let the worker log the traceback
        _fail_open(batch, lambda member: SyncFailed(f"{type(e).__name__}. The error was logged."))
        _end(batch, started)
        raise
    _end(batch, started)
    deployment_id = next((m.run.deployment_id for m in batch if m.run.deployment_id), "")
    if deployment_id:
        _follow(batch[0].sync, deployment_id)
    return [(m.sync, m.run, m.outcome if isinstance(m.outcome, Retry) else None) for m in batch]


def _run(batch, started):
    client = None
    try:
        client = _client(batch[0].sync)
        destination = get_destination(batch[0].sync.destination)
        app = destination.read(client, batch[0].sync.app_id)
    except digitalocean.DigitalOceanError as e:
        return _fail_open(batch, _explaining(e), _request_ids(client) + ([e.request_id] if e.request_id else []))
    except SyncFailed as e:
        return _fail_open(batch, lambda member: e)
    for member in batch:
        _plan_member(member, destination, app)
    _refuse_overlaps(batch)
    writers = [m for m in batch if m.open and m.plan.has_writes]
    written = None
    if writers:
        try:
            written = _write(writers, destination, client, app)
        except digitalocean.DigitalOceanError as e:  # the others hold what they want already: they succeed
            _fail_open(writers, _explaining(e), _request_ids(client) + ([e.request_id] if e.request_id else []))
    for member in batch:
        if member.open:
            _succeed(member, destination, written, client, started)


def _explaining(error):
    return lambda member: _explain(member.sync, error, failing_since=member.sync.failing_since)


def _plan_member(member, destination, app):
    sync = member.sync
    try:
        member.desired = desired_variables(sync)
        member.records = _records(sync)
        member.plan = destination.plan_against(sync, app, member.desired, member.records)
    except DestinationError as e:
        member.outcome = SyncFailed(str(e))
        return
    if member.plan.invalid_keys:
        member.outcome = SyncFailed("DigitalOcean would reject these keys, so nothing was written: " + "; ".join(
            f"{key} ({reason})" for key, reason in member.plan.invalid_keys))


def _refuse_overlaps(batch):
    """A variable written or deleted by two syncs: the sync created later fails and writes nothing.

    Creating such a sync is refused (syncs/ownership.py); this catches keys added to a folder since."""
    claimed = {}
    for member in sorted(batch, key=lambda m: m.sync.created_at):
        if not member.open:
            continue
        touched = {(member.sync.component, key) for key in member.plan.keys(CREATE) + member.plan.keys(UPDATE)
                   + member.plan.keys(DELETE)}
        clashing = sorted(target for target in touched if target in claimed)
        if clashing:
            clash = [key for _, key in clashing]
            owners = sorted({claimed[target] for target in clashing})
            member.outcome = SyncFailed(
                f"{', '.join(clash)} {'is' if len(clash) == 1 else 'are'} managed by sync {', '.join(owners)} too, "
                "which was created first; nothing of this sync was written. Change its key schema or destination.")
            continue
        claimed.update({target: member.sync.name for target in touched})


def _write(writers, destination, client, app):
    """The one PUT with every writing member's changes."""
    spec = copy.deepcopy(app.get("spec") or {})
    for member in writers:
        destination.write_into(spec, member.sync, member.plan, member.desired)
    app_id = writers[0].sync.app_id
    try:
        return destination.put(client, app_id, spec)
    except digitalocean.Unavailable as error:
        if not error.request_sent:
            raise
        return _read_back(writers, destination, client, app_id, error)


def _read_back(writers, destination, client, app_id, error):
    """The PUT's answer was lost: a PUT takes effect whole or not at all, so the app read back either
    holds every writer's change (it is not sent again: that would be a second deployment) or `error` stands."""
    try:
        app = destination.read(client, app_id)
    except digitalocean.DigitalOceanError:
        raise error from None
    for member in writers:
        destination.took_effect(member.sync, app, member.plan, member.desired, error)
    return app


def _succeed(member, destination, written, client, started):
    plan, run_record = member.plan, member.run
    applied = destination.applied(member.sync, written, plan) if plan.has_writes else Applied({}, False)
    _remember(member.sync, plan, applied, member.desired, member.records)
    run_record.created, run_record.updated = len(plan.keys(CREATE)), len(plan.keys(UPDATE))
    run_record.deleted, run_record.unchanged = len(plan.keys(DELETE)), len(plan.keys(UNCHANGED))
    run_record.deployment_started = applied.deployment_started
    run_record.drift_keys = plan.drift
    run_record.request_ids = _request_ids(client)
    _record_write(member.sync, run_record, plan, applied)
    _finish(member.sync, run_record, SyncStatus.SUCCEEDED, _summary(run_record, plan), started)
    member.succeeded = True


def _record_write(sync, run_record, plan, applied):
    """The deployment the write started (followed to its end) and, for Restore, the variables it changed
    as they were before."""
    if not applied.deployment_started:
        return
    run_record.deployment_started = True
    run_record.deployment_id, run_record.deployment_phase = applied.deployment_id, applied.deployment_phase
    touched = plan.keys(CREATE) + plan.keys(UPDATE) + plan.keys(DELETE)
    run_record.previous = json.dumps({"app_id": sync.app_id, "component": sync.component,
                                      "variables": {key: plan.previous.get(key) for key in touched}})


def _fail_open(members, outcome_for, request_ids=()):
    """Give every member still open the outcome of a failure that stopped them all."""
    for member in members:
        if member.open:
            member.outcome = outcome_for(member)
            member.run.request_ids = list(request_ids)


def _end(batch, started):
    for member in batch:
        outcome = member.outcome
        if isinstance(outcome, Retry):
            type(member.sync).objects.filter(pk=member.sync.pk, failing_since__isnull=True).update(
                failing_since=timezone.now())
            _finish(member.sync, member.run, SyncStatus.PENDING, str(outcome), started)
        elif isinstance(outcome, SyncFailed):
            _finish(member.sync, member.run, SyncStatus.FAILED, str(outcome), started)


def _follow(sync, deployment_id):
    from syncs import deployments

    connection_id, app_id = sync.connection_id, sync.app_id
    transaction.on_commit(lambda: deployments.start_following(connection_id, app_id, deployment_id))


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
    """Delete the variables this sync put at the destination (and nothing else).

    Raises LockBusy, before anything is recorded, when a batch holds the app: the task tries again shortly."""
    with app_lock(sync.app_id, wait=0):
        return _remove_secrets(sync, trigger)


def _remove_secrets(sync, trigger):
    started = time.monotonic()
    run_record = _start(sync, RunKind.REMOVE, trigger)
    try:
        client = _client(sync)
        destination = get_destination(sync.destination)
        plan = destination.removal_plan(sync, client, _records(sync))
        applied = destination.apply(sync, client, plan, {})
        sync.synced_keys.all().delete()
        run_record.deleted = len(plan.keys(DELETE))
        _record_write(sync, run_record, plan, applied)
        message = f"Removed {run_record.deleted} variable{'s' if run_record.deleted != 1 else ''}."
        _finish(sync, run_record, SyncStatus.SUCCEEDED, message, started)
        if run_record.deployment_id:
            _follow(sync, run_record.deployment_id)
    except digitalocean.DigitalOceanError as e:
        outcome = _explain(sync, e)
        # Removal is never retried on its own: say so instead of promising a retry.
        message = f"{e.message} Nothing was removed; try again." if isinstance(outcome, Retry) else str(outcome)
        _finish(sync, run_record, SyncStatus.FAILED, message, started)
    except (SyncFailed, DestinationError) as e:
        _finish(sync, run_record, SyncStatus.FAILED, str(e), started)
    return run_record


def check_drift(sync):
    """Read the destination and record which values were changed outside Devpilot."""
    return check_drift_batch([sync])[0]


def check_drift_batch(syncs):
    """The drift of several syncs into one app (same connection), from one read of it."""
    destination = get_destination(syncs[0].destination)
    try:
        app = destination.read(_client(syncs[0]), syncs[0].app_id)
    except digitalocean.DigitalOceanError as e:
        raise _explain(syncs[0], e) from None
    found = []
    for sync in syncs:
        try:
            drift = destination.plan_against(sync, app, desired_variables(sync), _records(sync)).drift
        except DestinationError:
            found.append(None)  # misconfigured: its next run fails and says why
            continue
        sync.drift_keys, sync.drift_checked_at = drift, timezone.now()
        type(sync).objects.filter(pk=sync.pk).update(drift_keys=drift, drift_checked_at=sync.drift_checked_at)
        found.append(drift)
    return found

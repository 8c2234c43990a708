"""Following the deployments DigitalOcean starts when Devpilot writes an app, and undoing a write.

Every PUT of an app's spec starts a deployment. The engine records its id on each SyncRun of the
write and calls start_following(); `follow` reads the deployment once, records its phase on those
runs and schedules the next look (outbox.run_later: no worker sleeps) until it ends: ACTIVE, ERROR,
CANCELED, SUPERSEDED, or two hours without an end. `deployment_ended_at` is what says "still followed":
a check delivered twice or after the end changes nothing, and the sweeper re-schedules a deployment
whose next check is overdue (its scheduled check was lost with a worker or the broker).

A failed or canceled deployment marks the sync whose latest run started it "deployed with errors" and
emails its admins, once: each run's end is claimed by one conditional UPDATE.

Restore previous values: each run keeps (encrypted) the variables it changed as they were before it.
A restore is a SyncRun of kind RESTORE, created in the requester's transaction and run by a task
under the app's lease: one GET, one PUT putting those variables back and deleting the ones the run
created; every other part of the spec goes back as read. The task runs once per request (it checks
the run's status under the lease `restore:<run id>`); one whose worker died stays pending or running
and is re-sent by the sweeper; a re-run reads the app first, so a PUT that took effect is not resent.
Reads are retried (by the client, then by rescheduling for 30 minutes); the PUT is never resent
blindly: after a lost answer the app is read back to decide.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from django.db import transaction
from django.utils import timezone

from connections import digitalocean
from connections.models import Connection
from devpilot import audit, locks, outbox
from devpilot.errors import Conflict, DevpilotError, Invalid
from syncs import engine, notifications
from syncs.destinations import DestinationError
from syncs.destinations.digitalocean_app_platform import (
    DEFAULT_SCOPE, DEFAULT_TYPE, deployment_of, fingerprint, target_envs,
)
from syncs.models import DEPLOYMENT_ENDED, DeploymentPhase, RunKind, Sync, SyncedKey, SyncRun, SyncStatus, Trigger

logger = logging.getLogger("devpilot.deployments")

FIRST_CHECK = timedelta(seconds=5)
FOLLOW_LIMIT = timedelta(hours=2)
RESTORE_WINDOW = timedelta(minutes=30)  # a restore still failing transiently after this long fails
RETRY_AFTER = timedelta(seconds=30)
FAILED_PHASES = {DeploymentPhase.ERROR, DeploymentPhase.CANCELED}
MESSAGE_LIMIT = 500
WRITES = (SyncStatus.SUCCEEDED, SyncStatus.DEPLOY_FAILED)  # runs that wrote, so may be restored

# What a restore does to one key (RestoreStep.action).
RESTORE, RECREATE, DELETE, UNCHANGED = "restore", "recreate", "delete", "unchanged"


# --- Following a deployment -------------------------------------------------------------------


def _check_name(deployment_id: str) -> str:
    return f"deployment {deployment_id}"


def start_following(connection_id: Any, app_id: str, deployment_id: str, *, when: datetime | None = None) -> None:
    """Schedule a look at the deployment soon (called after the write's transaction commits)."""
    args = (str(connection_id) if connection_id else None, str(app_id), str(deployment_id))
    outbox.run_later(_check_name(deployment_id), "syncs.deployments.follow", args,
                     when or timezone.now() + FIRST_CHECK)


def interval(age: timedelta) -> timedelta:
    """How long to wait between looks: often while a deployment is young, less as it drags on.

    Every look is a call on the token's budget (240 a minute, shared with the syncs): at one look every
    10 s, twenty apps deploying at once take 120 a minute, and half the budget stays for the writes."""
    if age < timedelta(minutes=2):
        return timedelta(seconds=10)
    if age < timedelta(minutes=10):
        return timedelta(seconds=20)
    if age < timedelta(minutes=30):
        return timedelta(seconds=30)
    return timedelta(seconds=60)


def is_following(run: SyncRun) -> bool:
    return bool(run.deployment_id) and run.deployment_ended_at is None


def follow(connection_id: str | None, app_id: str, deployment_id: str) -> str:
    """One look at the deployment: record it on every run that wrote it, then end or schedule the next."""
    runs = list(SyncRun.objects.filter(deployment_id=deployment_id, deployment_ended_at__isnull=True)
                .select_related("sync"))
    if not runs:
        return "not followed"  # ended already, or a duplicate delivery after the end
    began, now = min(r.started_at for r in runs), timezone.now()
    if now - began > FOLLOW_LIMIT:
        _end(runs, None, "Stopped following: no end after 2 hours.")
        return "stopped"
    connection = Connection.objects.filter(pk=connection_id).first() if connection_id else None
    if connection is None:
        _end(runs, None, "Stopped following: the sync's connection was removed.")
        return "stopped"
    try:
        deployment = connection.client().get_deployment(app_id, deployment_id)
    except digitalocean.DigitalOceanError as error:
        return _unanswered(runs, error, connection_id, app_id, deployment_id)
    phase = _phase(deployment)
    message = describe(deployment, phase)
    if phase in DEPLOYMENT_ENDED:
        _end(runs, phase, message)
        return phase
    SyncRun.objects.filter(pk__in=[r.pk for r in runs], deployment_ended_at__isnull=True).update(
        deployment_phase=phase, deployment_message=message, deployment_checked_at=now)
    start_following(connection_id, app_id, deployment_id, when=now + interval(now - began))
    return phase


def _unanswered(runs: list[SyncRun], error: digitalocean.DigitalOceanError, connection_id, app_id: str,
                deployment_id: str) -> str:
    """DigitalOcean did not tell: look again later when that may help, otherwise stop and say why."""
    now = timezone.now()
    if isinstance(error, digitalocean.RateLimited | digitalocean.Unavailable):
        when = error.reset_at if isinstance(error, digitalocean.RateLimited) else now + RETRY_AFTER
        # The look happened (no answer): the sweeper measures overdue checks from here.
        SyncRun.objects.filter(pk__in=[r.pk for r in runs]).update(deployment_checked_at=now)
        start_following(connection_id, app_id, deployment_id, when=max(when, now + FIRST_CHECK))
        return "later"
    if isinstance(error, digitalocean.NotFound):
        _end(runs, None, "Stopped following: DigitalOcean no longer has this deployment "
                         "(the app or the deployment was deleted).")
        return "gone"
    if isinstance(error, digitalocean.InvalidToken):
        _end(runs, None, "Stopped following: DigitalOcean rejected the connection's token (revoked or expired). "
                         "Rotate it under Settings > Integrations.")
    else:
        _end(runs, None, f"Stopped following: {error.message}")
    return "stopped"


def _phase(deployment: dict) -> str:
    phase = deployment.get("phase") or DeploymentPhase.UNKNOWN
    return phase if phase in DeploymentPhase.values else DeploymentPhase.UNKNOWN


def _steps(steps: list) -> list[dict]:
    """Every step, parents before their children (child steps have the same shape)."""
    found = []
    for step in steps or []:
        if isinstance(step, dict):
            found.append(step)
            found += _steps(step.get("steps") or [])
    return found


def _label(step: dict) -> str:
    base = step.get("message_base") or step.get("name") or "a step"
    return f"{base} {step['component_name']}" if step.get("component_name") and step.get("message_base") else base


def _failure(deployment: dict) -> str:
    """The failing step's own words: the deepest step in ERROR that gives a reason."""
    failed = [s for s in _steps((deployment.get("progress") or {}).get("steps")) if s.get("status") == "ERROR"]
    for step in reversed(failed):
        reason = step.get("reason") or {}
        text = reason.get("message") or reason.get("code")
        if text:
            return f"{_label(step)}: {text}"
    if failed:
        return f"{_label(failed[-1])} failed; DigitalOcean's build and deploy logs of the app say why"
    return "DigitalOcean gave no reason; the app's build and deploy logs say more"


def describe(deployment: dict, phase: str) -> str:
    """A line about the deployment for the sync's page (DigitalOcean's words for a failure)."""
    if phase == DeploymentPhase.ERROR:
        text = _failure(deployment)
    elif phase == DeploymentPhase.CANCELED:
        text = "Canceled at DigitalOcean before it finished"
    elif phase == DeploymentPhase.SUPERSEDED:
        text = "A newer deployment replaced it before it finished"
    elif phase == DeploymentPhase.ACTIVE:
        text = "The app runs with these values"
    else:
        running = [s for s in _steps((deployment.get("progress") or {}).get("steps")) if s.get("status") == "RUNNING"]
        text = _label(running[-1]) if running else DeploymentPhase(phase).label
    return text[:MESSAGE_LIMIT]


def _end(runs: list[SyncRun], phase: str | None, message: str) -> None:
    """End the following of each run (None keeps the last phase seen); a failure is acted on once per run."""
    now = timezone.now()
    for run in runs:
        fields: dict[str, Any] = {"deployment_message": message, "deployment_checked_at": now,
                                  "deployment_ended_at": now}
        if phase:
            fields["deployment_phase"] = phase
        failed = phase in FAILED_PHASES
        if failed and run.status == SyncStatus.SUCCEEDED:
            fields["status"] = SyncStatus.DEPLOY_FAILED
        claimed = SyncRun.objects.filter(pk=run.pk, deployment_ended_at__isnull=True).update(**fields)
        if claimed and failed:
            for name, value in fields.items():
                setattr(run, name, value)
            _deployment_failed(run)


def _deployment_failed(run: SyncRun) -> None:
    """Mark the sync when this run is still its latest, and tell its admins (a restore's failure too)."""
    ended = f"failed: {run.deployment_message}" if run.deployment_phase == DeploymentPhase.ERROR else "was canceled"
    text = (f"The variables were written, but DigitalOcean's deployment {ended}. "
            "Restore previous values, or fix the secrets and sync again.")
    status_field, job_field, message_field = (
        ("remove_status", "last_remove_job_id", "last_remove_message") if run.kind == RunKind.REMOVE
        else ("sync_status", "last_sync_job_id", "last_sync_message"))
    latest = Sync.objects.filter(pk=run.sync_id, **{job_field: run.pk})
    # A run queued since keeps its "pending": the page goes on following it.
    latest.filter(**{f"{status_field}__in": WRITES}).update(**{status_field: SyncStatus.DEPLOY_FAILED,
                                                                message_field: text})
    if latest.exists() or run.kind == RunKind.RESTORE:
        sync = Sync.objects.select_related("workspace", "environment", "folder").get(pk=run.sync_id)
        try:
            notifications.deployment_failed(sync, run)
        except Exception:  # the end is recorded already (and must be, for the batch's other runs): log, go on
            logger.exception("Could not email the admins of sync %s about deployment %s", sync.pk, run.deployment_id)


# --- Restore previous values -------------------------------------------------------------------


class RestoreStep(NamedTuple):
    """What restoring does to one key; `changed_since`: a later write or an edit at DigitalOcean changed it."""

    key: str
    action: str
    changed_since: bool = False


def run_time(run: SyncRun) -> str:
    """A run's time as the sync's history shows it."""
    return timezone.localtime(run.started_at).strftime("%Y-%m-%d %H:%M:%S")


def previous_of(run: SyncRun) -> dict | None:
    """The run's variables as they were before it: {"component", "variables"} (and "app_id" when known)."""
    if not run.previous_ciphertext:
        return None
    previous = json.loads(run.previous or "{}")
    return previous if previous.get("variables") else None


def is_restorable(run: SyncRun) -> bool:
    return bool(run.previous_ciphertext) and run.status in WRITES


def _check_destination(sync: Sync, previous: dict) -> None:
    """Restoring writes to where the run wrote: refuse when the sync has been pointed elsewhere since."""
    moved = (previous.get("app_id") and previous["app_id"] != sync.app_id) or \
        (previous.get("component") or "") != (sync.component or "")
    if moved:
        raise Invalid("The sync writes elsewhere since this run (its app or component changed), so its previous "
                      "values cannot be restored.")


def _client(sync: Sync) -> digitalocean.DigitalOceanClient:
    if sync.connection is None:
        raise Invalid("This sync has no connection any more. Edit it and choose a connection first.")
    return sync.connection.client()


def _same(current: dict | None, before: dict | None) -> bool:
    """DigitalOcean holds `before` (None: the key is absent) for this key."""
    if current is None or before is None:
        return current is None and before is None
    return (current.get("value") == before.get("value")
            and current.get("type", DEFAULT_TYPE) == before.get("type", DEFAULT_TYPE)
            and current.get("scope", DEFAULT_SCOPE) == before.get("scope", DEFAULT_SCOPE))


def _action(current: dict | None, before: dict | None) -> str:
    if _same(current, before):
        return UNCHANGED
    if before is None:
        return DELETE
    return RECREATE if current is None else RESTORE


def _current(app: dict, component: str) -> dict[str, dict]:
    return {e.get("key"): e for e in target_envs(copy.deepcopy(app.get("spec") or {}), component)}


def _changed_since(run: SyncRun, keys: set[str], current: dict[str, dict]) -> set[str]:
    """Keys a later run of the sync wrote, or that DigitalOcean holds differently from the sync's last write."""
    changed = set()
    later = run.sync.runs.filter(started_at__gt=run.started_at, status__in=WRITES).exclude(previous_ciphertext="")
    for other in later[:50]:
        changed |= set((previous_of(other) or {}).get("variables", {})) & keys
    for record in SyncedKey.objects.filter(sync=run.sync, key__in=keys):
        if record.key in current and fingerprint(current[record.key].get("value")) != record.remote_value:
            changed.add(record.key)
    return changed


def restore_plan(run: SyncRun) -> list[RestoreStep]:
    """A dry run: one GET of the app; what restoring the run's previous values would do, key by key."""
    previous = previous_of(run)
    if previous is None:
        raise Invalid("Nothing to restore: this run changed no variables.")
    sync = run.sync
    _check_destination(sync, previous)
    try:
        current = _current(_client(sync).get_app(sync.app_id), previous.get("component") or "")
    except digitalocean.DigitalOceanError as e:
        raise digitalocean.as_devpilot_error(e) from None
    except DestinationError as e:
        raise Invalid(str(e)) from None
    variables = previous["variables"]
    later = _changed_since(run, set(variables), current)
    return [RestoreStep(key, _action(current.get(key), before), key in later)
            for key, before in sorted(variables.items())]


@transaction.atomic
def request_restore(run: SyncRun, user, *, request=None) -> SyncRun:
    """Owe a restore of `run`'s previous values (in the caller's transaction); queue it once that commits."""
    sync = Sync.objects.select_for_update().select_related("workspace").get(pk=run.sync_id)  # one click at a time
    if sync.connection_id is None:
        raise Invalid("This sync has no connection any more, so nothing can be restored.")
    if not is_restorable(run) or previous_of(run) is None:
        raise Invalid("Nothing to restore: this run changed no variables.")
    if sync.runs.filter(kind=RunKind.RESTORE, status__in=[SyncStatus.PENDING, SyncStatus.RUNNING]).exists():
        raise Conflict("A restore of this sync is already under way; wait for it to end.")
    restore_run = SyncRun.objects.create(sync=sync, kind=RunKind.RESTORE, trigger=Trigger.MANUAL,
                                         status=SyncStatus.PENDING, restores=run, message="Waiting for a worker…")
    audit.record(sync.workspace, "sync.restore_requested", request=request, actor=user, target=sync,
                 run_time=run_time(run))
    transaction.on_commit(lambda: outbox.enqueue("syncs.deployments.restore", str(restore_run.pk)))
    return restore_run


class _Later(Exception):
    """The restore may succeed later (DigitalOcean busy or unreachable, the app's lease held)."""


def restore(run_id: str) -> str:
    """The task: run an owed restore once (a duplicate delivery, or one after its end, returns at once)."""
    try:
        with locks.held(f"restore:{run_id}", wait=0):
            run = SyncRun.objects.select_related("sync__connection", "restores").filter(
                pk=run_id, kind=RunKind.RESTORE).first()
            if run is None or run.status not in (SyncStatus.PENDING, SyncStatus.RUNNING):
                return "already done"
            return _restore(run)
    except locks.LockBusy:
        return "busy"  # its holder is at it; if the holder dies, the sweeper sends it again


def _restore(run: SyncRun) -> str:
    started = time.monotonic()
    try:
        if run.restores is None:
            raise Invalid("The run to restore was deleted.")
        previous = previous_of(run.restores)
        if previous is None:
            raise Invalid("Nothing to restore: the run changed no variables.")
        _check_destination(run.sync, previous)
        client = _client(run.sync)
        with engine.app_lock(run.sync.app_id, wait=0):  # busy: _later looks again (a worker never waits)
            SyncRun.objects.filter(pk=run.pk).update(status=SyncStatus.RUNNING)
            _write_back(run, client, previous, started)
        return run.status
    except _Later as later:
        return _later(run, str(later), started)
    except locks.LockBusy:
        return _later(run, "Another sync to this app is still running; the restore runs after it.", started)
    except (DevpilotError, DestinationError) as e:
        _finish(run, SyncStatus.FAILED, str(e), started)
    except digitalocean.DigitalOceanError as e:
        _finish(run, SyncStatus.FAILED, _explain(run.sync, e), started)
    except Exception as e:  # a bug: the restore still ends (never "running" forever); the worker logs the traceback
        _finish(run, SyncStatus.FAILED, f"{type(e).__name__}. The error was logged; nothing more was done.", started)
        raise
    return run.status


def _explain(sync: Sync, error: digitalocean.DigitalOceanError) -> str:
    """A permanent DigitalOcean refusal in the words of the restore run."""
    if isinstance(error, digitalocean.InvalidToken):
        return (f"DigitalOcean rejected the token of connection {sync.connection}: it was revoked or has expired. "
                "Rotate it under Settings > Integrations, then restore again.")
    if isinstance(error, digitalocean.NotFound):
        return f"The app {sync.app_name or sync.app_id} no longer exists at DigitalOcean; nothing was restored."
    return f"Nothing was restored: {error.message}"


def _read(client: digitalocean.DigitalOceanClient, app_id: str) -> dict:
    try:
        return client.get_app(app_id)
    except digitalocean.DigitalOceanError as e:
        if engine.transient(e):
            raise _Later(e.message) from None
        raise


def _write_back(run: SyncRun, client: digitalocean.DigitalOceanClient, previous: dict, started: float) -> None:
    """Under the app's lease: one GET, at most one PUT, the outcome recorded on the restore run."""
    sync, component, variables = run.sync, previous.get("component") or "", previous["variables"]
    app = _read(client, sync.app_id)
    spec = copy.deepcopy(app.get("spec") or {})
    envs = target_envs(spec, component)
    current = {e.get("key"): e for e in envs}
    changes = {key: before for key, before in variables.items() if not _same(current.get(key), before)}
    mine = previous_of(run)  # recorded by an earlier attempt just before its PUT
    if not changes and mine is not None:
        # That PUT took effect before its worker stopped: count from the app as it was, and do not send it again.
        basis = {**current, **mine["variables"]}
        done = {key: before for key, before in variables.items() if not _same(basis.get(key), before)}
        _succeed(run, _counts(basis, variables, done), app, started)
        return
    if not changes:
        _succeed(run, _counts(current, variables, changes), None, started)
        return
    if mine is None:  # a re-run keeps the first attempt's record: by now the app may hold restored values
        run.previous = json.dumps({"app_id": sync.app_id, "component": component,
                                   "variables": {key: current.get(key) for key in changes}})
        SyncRun.objects.filter(pk=run.pk).update(previous_ciphertext=run.previous_ciphertext)
    envs[:] = _rewritten(envs, changes)
    written = _put(client, sync.app_id, spec, component, changes)
    run.request_ids = list(client.request_ids)
    _succeed(run, _counts(current, variables, changes), written, started)


def _counts(current: dict, variables: dict, changes: dict) -> dict[str, int]:
    return {"created": sum(1 for k, v in changes.items() if v is not None and current.get(k) is None),
            "updated": sum(1 for k, v in changes.items() if v is not None and current.get(k) is not None),
            "deleted": sum(1 for v in changes.values() if v is None),
            "unchanged": len(variables) - len(changes)}


def _rewritten(envs: list[dict], changes: dict[str, dict | None]) -> list[dict]:
    """The variables with the changed keys put back where they are (or at the end); every other one as read."""
    rewritten = []
    for variable in envs:
        key = variable.get("key")
        if key not in changes:
            rewritten.append(variable)
        elif changes[key] is not None:
            rewritten.append(copy.deepcopy(changes[key]))
    present = {v.get("key") for v in envs}
    rewritten += [copy.deepcopy(v) for k, v in changes.items() if v is not None and k not in present]
    return rewritten


def _put(client: digitalocean.DigitalOceanClient, app_id: str, spec: dict, component: str, changes: dict) -> dict:
    """The one write. After a lost answer the app is read back: sent again it would deploy twice."""
    try:
        return client.update_app(app_id, spec)
    except digitalocean.DigitalOceanError as error:
        if isinstance(error, digitalocean.Unavailable) and error.request_sent:
            app = _read(client, app_id)
            current = _current(app, component)
            if all(_same(current.get(key), before) for key, before in changes.items()):
                return app
        if engine.transient(error):
            raise _Later(error.message) from None
        raise


def _succeed(run: SyncRun, counts: dict[str, int], app: dict | None, started: float) -> None:
    """Record the restore and follow the deployment it started (`app` as written; None: nothing was)."""
    sync, original = run.sync, run.restores
    for name, value in counts.items():
        setattr(run, name, value)
    run.deployment_started = app is not None
    run.deployment_id, run.deployment_phase = deployment_of(app or {})
    if app is None:
        message = f"Nothing to restore: the app already holds the values from before {run_time(original)}."
    else:
        message = (f"Restored the values from before {run_time(original)}: {counts['updated']} put back, "
                   f"{counts['created']} recreated, {counts['deleted']} deleted. A deployment was started.")
    # Restored values are not what the sync last sent: forgetting its record of them makes the next sync
    # treat them as a first sync (an update), not as drift "changed outside Devpilot".
    SyncedKey.objects.filter(sync=sync, key__in=list((previous_of(original) or {}).get("variables", {}))).delete()
    _finish(run, SyncStatus.SUCCEEDED, message, started)
    if app is not None:
        Sync.objects.filter(pk=sync.pk, last_sync_job_id=original.pk, sync_status=SyncStatus.DEPLOY_FAILED).update(
            last_sync_message=f"The deployment of the sync at {run_time(original)} failed; its previous values were "
                              f"restored at {run_time(run)}. Fix the secrets and sync again.")
    if run.deployment_id:
        connection_id, app_id, deployment_id = sync.connection_id, sync.app_id, run.deployment_id
        transaction.on_commit(lambda: start_following(connection_id, app_id, deployment_id))


def _finish(run: SyncRun, status: str, message: str, started: float) -> None:
    run.status, run.message, run.finished_at = status, message, timezone.now()
    run.duration_ms = int((time.monotonic() - started) * 1000)
    run.save()


def _later(run: SyncRun, reason: str, started: float) -> str:
    """Try again in a while, for at most RESTORE_WINDOW; then the restore fails and says why."""
    if timezone.now() - run.started_at > RESTORE_WINDOW:
        _finish(run, SyncStatus.FAILED, f"{reason} Still failing after 30 minutes; nothing was restored.", started)
        return run.status
    SyncRun.objects.filter(pk=run.pk).update(status=SyncStatus.PENDING, message=f"{reason} Retrying shortly.")
    outbox.run_later(f"restore {run.pk}", "syncs.deployments.restore", (str(run.pk),), timezone.now() + RETRY_AFTER)
    return "retry"


# --- The sweeper ------------------------------------------------------------------------------


def sweep(cutoff: datetime) -> dict[str, int]:
    """Deployments whose next look is overdue since before `cutoff`, and owed restores nobody holds."""
    counts = {"deployments": 0, "restores": 0}
    now, seen = timezone.now(), set()
    followed = SyncRun.objects.filter(deployment_ended_at__isnull=True).exclude(deployment_id="").select_related(
        "sync").order_by("started_at")
    for run in followed:
        if run.deployment_id in seen:
            continue
        seen.add(run.deployment_id)
        last = run.deployment_checked_at or run.started_at
        if last + interval(now - run.started_at) <= cutoff:
            start_following(run.sync.connection_id, run.sync.app_id, run.deployment_id, when=now)
            counts["deployments"] += 1
    live = locks.live_names("restore:")
    owed = SyncRun.objects.filter(kind=RunKind.RESTORE, status__in=[SyncStatus.PENDING, SyncStatus.RUNNING],
                                  started_at__lte=cutoff)
    for run_id in owed.values_list("pk", flat=True):
        if f"restore:{run_id}" not in live:
            outbox.enqueue("syncs.deployments.restore", str(run_id))
            counts["restores"] += 1
    return counts

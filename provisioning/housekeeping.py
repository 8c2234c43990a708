"""Ending what no worker will finish: lifecycle actions and provisioning steps whose task was lost.

A worker killed at its timeout, a task dropped by the broker or a scheduled run that never
fires leaves a server "rebooting" or "booting" for ever, and a set action flag refuses every
later action. Past a bound that no live task can exceed, this fails them with a reason, so
people see what happened and can Retry or try again.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from devpilot import locks
from devpilot.models import AuditEvent
from provisioning import lifecycle, steps
from provisioning.models import Server, ServerStatus, ServerStep, StepStatus

logger = logging.getLogger("devpilot.provisioning")

_Q = settings.Q_CLUSTER
# How long after it was queued a task can still be alive: django-q2 kills a run after `timeout` seconds
# and delivers an unacknowledged task again after `retry` seconds, at most `max_attempts` times (19 minutes
# with our settings). Failing sooner could fail an action or step that a redelivered task is still doing.
REDELIVERY_WINDOW = timedelta(seconds=_Q.get("retry", 300) * _Q.get("max_attempts", 3) + _Q.get("timeout", 240))
# A busy queue, the scheduler's tick and clocks that differ a little between machines.
MARGIN = timedelta(minutes=5)
# Waits a step may take on top of its own deadline: 5xx backoff (about 2.5 minutes over MAX_TRANSIENT_ATTEMPTS),
# 429 resets and the settle time before a second create.
TRANSIENT_WAITS = timedelta(minutes=5)

# An action is one task: past the redelivery window no worker is performing it.
ACTION_BOUND = REDELIVERY_WINDOW + MARGIN
_QUICK = TRANSIENT_WAITS + REDELIVERY_WINDOW + MARGIN
# A step is bounded by its own deadline (steps that wait on DigitalOcean or the agent) plus the above.
STEP_BOUNDS = {
    "ssh_key": _QUICK,
    "droplet": _QUICK,
    "boot": steps.BOOT_TIMEOUT + _QUICK,
    "firewall": _QUICK,
    "agent": steps.AGENT_TIMEOUT + _QUICK,
}
PROVISIONING = [ServerStatus.PENDING, ServerStatus.CREATING, ServerStatus.BOOTING, ServerStatus.CONFIGURING,
                ServerStatus.INSTALLING_AGENT]
# What a step that has not started yet counts from: the server was created, retried or moved on.
PROGRESS_EVENTS = ["server.created", "server.retried", "server.status_changed"]


def run() -> dict[str, int]:
    return {"actions": fail_lost_actions(), "steps": fail_stuck_steps()}


# --- Actions -------------------------------------------------------------------------------------


def fail_lost_actions(now: datetime | None = None) -> int:
    """End, as failed, every action past its deadline (or lost past the redelivery bound) that no worker holds."""
    now = now or timezone.now()
    failed = 0
    for server in Server.objects.exclude(action_in_progress="").select_related("workspace"):
        action = server.action_in_progress
        message = _why_ended(server, action, now)
        if message is None or locks.is_live(f"server-action:{server.pk}"):
            continue  # within its bounds the sweeper resumes a lost action; a live lease is a worker on it
        if lifecycle.finish(server, action, message, failed=True, only_if_flagged=True):
            logger.warning("Gave up action %s on server %s: %s", action, server.pk, message)
            failed += 1
    return failed


def _why_ended(server: Server, action: str, now: datetime) -> str | None:
    if server.action_deadline and now > server.action_deadline and action in lifecycle.DEADLINES:
        return lifecycle.past_deadline(action)
    # A flag without a deadline (set in the admin, or before deadlines existed), or a task lost: the redelivery
    # bound from the request, never shorter than the action's own deadline (a snapshot may wait most of an hour).
    bound = max(ACTION_BOUND, lifecycle.DEADLINES.get(action, ACTION_BOUND))
    if now - _action_requested_at(server, action) <= bound:
        return None
    minutes = int(bound.total_seconds() // 60)
    return (f"{lifecycle.label(action)} did not finish within {minutes} minutes (its background task was "
            "lost), so Devpilot stopped waiting. Refresh to see the Droplet's state, then try again.")


def _action_requested_at(server: Server, action: str) -> datetime:
    """lifecycle.request audits every action it starts; a flag set another way (the admin) counts from its save."""
    requested = AuditEvent.objects.filter(workspace_id=server.workspace_id, target_type="server",
                                          target_id=str(server.pk), action=f"server.{action}_requested")
    return requested.order_by("-created_at").values_list("created_at", flat=True).first() or server.updated_at


# --- Provisioning steps --------------------------------------------------------------------------


def fail_stuck_steps(now: datetime | None = None) -> int:
    now = now or timezone.now()
    failed = 0
    for server in Server.objects.filter(status__in=PROVISIONING).select_related("workspace"):
        step = server.steps.exclude(status=StepStatus.SUCCEEDED).first()
        if step is None or not _stuck(server, step, now):
            continue
        try:
            # The runner's own lease: held means a task is in the step right now; taken, no runner can start.
            with locks.held(f"server:{server.pk}", wait=0):
                failed += _fail_if_still_stuck(server.pk, now)
        except locks.LockBusy:
            continue
    return failed


def _stuck(server: Server, step: ServerStep, now: datetime) -> bool:
    unfinished = step.status in (StepStatus.PENDING, StepStatus.RUNNING)
    return unfinished and now - _since(server, step) > STEP_BOUNDS[step.key]


def _since(server: Server, step: ServerStep) -> datetime:
    """A running step counts from its start; one not started yet from the server's last move."""
    if step.status == StepStatus.RUNNING and step.started_at:
        return step.started_at
    moved = AuditEvent.objects.filter(workspace_id=server.workspace_id, target_type="server",
                                      target_id=str(server.pk), action__in=PROGRESS_EVENTS)
    return moved.order_by("-created_at").values_list("created_at", flat=True).first() or server.created_at


def _fail_if_still_stuck(server_id, now: datetime) -> int:
    """Look again under the lease: a runner may have moved the server on since the first look."""
    server = Server.objects.select_related("workspace").get(pk=server_id)
    step = server.steps.exclude(status=StepStatus.SUCCEEDED).first()
    if server.status not in PROVISIONING or step is None or not _stuck(server, step, now):
        return 0
    minutes = int(STEP_BOUNDS[step.key].total_seconds() // 60)
    steps.fail(server, step, f"Nothing moved this step on for {minutes} minutes (its background task was lost). "
                             "Retry resumes here.")
    logger.warning("Failed stuck step %s of server %s after %s", step.key, server.pk, STEP_BOUNDS[step.key])
    return 1

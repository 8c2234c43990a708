"""Power, resize, refresh and destroy: one action at a time per Droplet.

An action is a small state machine kept in `Server.action_state` and driven by short task
passes under the lease `server-action:<id>`: send a DigitalOcean action, look at it, and when
it is still running record when to look again (`action_due_at`) instead of sleeping in the task.
A worker that dies mid-action loses at most one pass: the sweeper resumes it from its state.

After a call whose outcome is unknown (5xx, timeout, dropped connection) the Droplet is read
back and what it really is decides the next move, so a lost answer never shows a size or power
state DigitalOcean does not hold. Every phase has a bounded number of tries.
"""

import logging
import time
from datetime import timedelta

from django.utils import timezone

from connections import digitalocean
from devpilot import audit, locks, outbox
from devpilot.errors import Conflict
from provisioning import steps
from provisioning.models import Server, ServerStatus

ACTIONS = ("power_on", "power_off", "reboot", "resize", "refresh", "destroy")
ACTION_TIMEOUT = 180  # seconds one DigitalOcean action (a clean shutdown included) may run before we read back
PENDING_LIMIT = 300  # seconds of "Droplet already has a pending event." before giving up
MAX_TRIES = 5  # unknown outcomes (or failed deletes) of one phase before the action ends failed
SHORT_WAIT = 10
TASK_BUDGET = 60
EARLY = timedelta(seconds=2)
# The DigitalOcean actions each of ours is made of; a clean shutdown becomes power_off only when it fails.
PLANS = {"power_on": ["power_on"], "reboot": ["reboot"], "power_off": ["shutdown"],
         "resize": ["shutdown", "resize", "power_on"]}

logger = logging.getLogger("devpilot.provisioning")


class ActionRefused(Conflict):
    pass


class Wait(Exception):
    def __init__(self, seconds, note=""):
        super().__init__(note)
        self.seconds, self.note = seconds, note


def request(server, action, *, size=None, user=None, request=None):
    """Check an action may start now and mark it running (the outbox row); a task then performs it."""
    if action not in ACTIONS:
        raise ActionRefused(f"Unknown action {action!r}.")
    if server.connection_id is None:
        raise ActionRefused("This server has no connection: connect its DigitalOcean account again first.")
    if not server.droplet_id:
        raise ActionRefused("This server has no Droplet yet.")
    if action == "resize" and not size:
        raise ActionRefused("Choose the new size.")
    taken = Server.objects.filter(pk=server.pk, action_in_progress="").update(
        action_in_progress=action, action_due_at=timezone.now(), action_state={"size": size} if size else {})
    if not taken:
        raise ActionRefused(f"Another action ({server.action_in_progress or 'one'}) is still running on this Droplet; "
                            "wait for it to finish.")
    server.action_in_progress = action
    audit.record(server.workspace, f"server.{action}_requested", request=request, actor=user, target=server, size=size)
    from provisioning import tasks

    tasks.enqueue_action(server, action, size)


def resume(server):
    """Retry: send the action in progress to a worker again; it goes on from its recorded state."""
    Server.objects.filter(pk=server.pk, action_in_progress=server.action_in_progress).update(
        action_due_at=timezone.now())
    from provisioning import tasks

    tasks.enqueue_action(server, server.action_in_progress, (server.action_state or {}).get("size"))


def run(server_id, action: str, size: str | None = None, sleep=time.sleep, *, queued: bool = False) -> str:
    """Drive the action until it ends (returns its message) or must wait longer than a short sleep ("waiting").

    `queued` (the task): only an action still flagged and due runs, so a duplicate delivery does nothing."""
    started = time.monotonic()
    if queued:
        flag, due = Server.objects.filter(pk=server_id).values_list("action_in_progress", "action_due_at").first() \
            or ("", None)
        if flag != action:
            return "This action has already ended."
        if due is not None and due > timezone.now() + EARLY:
            return "not due"
    state = None
    while True:
        try:
            with locks.held(f"server-action:{server_id}", wait=0):
                outcome, state = _pass(server_id, action, size, state)
        except locks.LockBusy:
            return "Another worker is performing this action."
        if isinstance(outcome, str):
            return outcome
        when = timezone.now() + timedelta(seconds=outcome)
        Server.objects.filter(pk=server_id).update(action_due_at=when)
        if outcome <= SHORT_WAIT and time.monotonic() - started + outcome < TASK_BUDGET:
            sleep(outcome)
            continue
        outbox.run_later(f"action {server_id}", "provisioning.tasks.run_action", (str(server_id), action, size), when)
        return "waiting"


def _pass(server_id, action, size, state):
    server = Server.objects.select_related("workspace", "connection").get(pk=server_id)
    state = dict(server.action_state or {}) if state is None else state
    size = size or state.get("size")
    try:
        message = _perform(server, action, size, state)
    except Wait as wait:
        Server.objects.filter(pk=server.pk).update(action_state=state, status_message=wait.note)
        return wait.seconds, state
    except digitalocean.DigitalOceanError as e:
        message = f"{label(action)} failed: {e.message}"
    except ActionRefused as e:
        message = str(e)
    except Exception as error:  # a bug or odd data: report it rather than leave the action running
        message = _failed_unexpectedly(server, action, error)
    finish(server, action, message)
    return message, state


def label(action: str) -> str:
    return action.replace("_", " ").capitalize()


def _perform(server: Server, action: str, size: str | None, state: dict) -> str:
    if server.connection is None:  # removed after the action was requested
        raise ActionRefused("This server has no connection: connect its DigitalOcean account again first.")
    client = server.connection.client()
    if action == "refresh":
        return refresh(server, client)
    if action == "destroy":
        return destroy(server, client, state)
    plan = PLANS[action]
    while state.get("i", 0) < len(plan):
        kind = state.get("kind") or plan[state.get("i", 0)]
        try:
            _phase(server, client, kind, size, state)
        except ActionRefused as e:
            if kind != "resize":
                raise
            state["failed"] = str(e)  # never leave the Droplet off because a resize failed: power it on
            _next(state)
    try:
        refresh(server, client)  # record what is true now; the action itself has ended either way
    except digitalocean.DigitalOceanError:
        pass
    return _closing(action, size, state)


def _closing(action, size, state):
    if action == "resize":
        if state.get("failed"):
            return f"Resize failed ({state['failed']}); the Droplet was powered back on at its old size."
        return f"Resized to {size}."
    if action == "power_off":
        return "The shutdown did not finish, so the power was cut." if state.get("forced") else "Shut down."
    return {"power_on": "Powered on.", "reboot": "Rebooted."}[action]


def _holds(kind, droplet, size) -> bool:
    """The Droplet already is what this DigitalOcean action would make it."""
    if kind in ("shutdown", "power_off"):
        return droplet.get("status") == "off"
    if kind == "power_on":
        return droplet.get("status") == "active"
    if kind == "resize":
        return ((droplet.get("size") or {}).get("slug") or droplet.get("size_slug")) == size
    return False


def _next(state):
    for key in ("kind", "sub", "id", "since", "tries", "pending_since"):
        state.pop(key, None)
    state["i"] = state.get("i", 0) + 1


def _tried(state, reason):
    state["tries"] = state.get("tries", 0) + 1
    if state["tries"] >= MAX_TRIES:
        raise ActionRefused(f"DigitalOcean did not confirm the {state.get('kind') or 'action'} after "
                            f"{state['tries']} tries ({reason}). Refresh to see the Droplet's state, then try again.")


def _do(client, server, kind, **params):
    """Send one DigitalOcean action; its id is what we follow."""
    return client.droplet_action(server.droplet_id, kind, **params)


def _phase(server, client, kind, size, state):
    """One DigitalOcean action: send it (unless the Droplet already is so), follow it, read back. Raises Wait."""
    state["kind"] = kind
    sub, now = state.get("sub", "send"), time.time()
    status = None
    if sub == "send":
        if kind != "reboot":
            droplet = client.get_droplet(server.droplet_id)
            if _holds(kind, droplet, size):
                return _settled(server, kind, size, state, droplet)
        try:
            action = _do(client, server, kind, **({"size": size} if kind == "resize" else {}))
        except digitalocean.Unavailable as e:
            _tried(state, e.message)
            state["sub"] = "verify"
            raise Wait(5, "DigitalOcean did not confirm the call; reading the Droplet back…") from None
        except digitalocean.Rejected as e:
            if "pending event" in e.message.lower():  # e.g. a clean shutdown still running: wait for it
                state.setdefault("pending_since", now)
                if now - state["pending_since"] > PENDING_LIMIT:
                    raise ActionRefused(f"The Droplet kept a pending event for {PENDING_LIMIT // 60} minutes; "
                                        "refresh, then try again.") from None
                raise Wait(10, "Waiting for the Droplet's pending event to finish…") from None
            if kind == "resize":
                state["failed"] = e.message
                return _next(state)
            raise
        state.update(sub="wait", id=action["id"], since=now)
        sub = "wait"
    if sub == "wait":
        status = client.get_action(state["id"]).get("status")
        if status == "in-progress" and now - state["since"] < ACTION_TIMEOUT:
            what = "the clean shutdown" if kind == "shutdown" else f"DigitalOcean's {kind.replace('_', ' ')}"
            raise Wait(3 if now - state["since"] < 15 else 10, f"Waiting for {what} to finish…")
        state["sub"] = "verify"
    droplet = client.get_droplet(server.droplet_id)
    if _holds(kind, droplet, size) or (kind == "reboot" and droplet.get("status") == "active"):
        return _settled(server, kind, size, state, droplet)
    if kind == "shutdown" and status != "in-progress":
        state.update(kind="power_off", sub="send", forced=True)  # the clean shutdown ended without turning it off
        state.pop("tries", None)
        return None
    if kind == "resize" and status in ("completed", "errored"):
        state["failed"] = f"DigitalOcean's resize {status} but the Droplet is still {_size(droplet)}"
        return _next(state)
    _tried(state, f"the Droplet is {droplet.get('status')}")
    state["sub"] = "send"
    raise Wait(5, "Sending the action again…")


def _size(droplet):
    return (droplet.get("size") or {}).get("slug") or droplet.get("size_slug") or "?"


def _settled(server, kind, size, state, droplet):
    if kind == "resize":
        Server.objects.filter(pk=server.pk).update(size=_size(droplet))
    _next(state)


def _failed_unexpectedly(server: Server, action: str, error: Exception) -> str:
    # Ids and the exception's type only in our words; the traceback is for the engineer reading the log.
    logger.exception("Action %s on server %s failed unexpectedly: %s", action, server.pk, type(error).__name__)
    return (f"{label(action)} failed unexpectedly: {type(error).__name__}. "
            "The error was logged; refresh, then try again.")


def finish(server: Server, action: str, message: str, *, only_if_flagged: bool = False) -> bool:
    """End the action: clear its flag, say how it went, audit it. Housekeeping ends a lost one with only_if_flagged."""
    # Only our own flag: if housekeeping gave this action up and another one started since, that one keeps its flag.
    flagged = Server.objects.filter(pk=server.pk, action_in_progress=action).update(
        action_in_progress="", status_message=message, action_due_at=None, action_state={})
    if not flagged:
        if only_if_flagged:
            return False  # it ended by itself in the meantime
        Server.objects.filter(pk=server.pk).update(status_message=message, action_state={})
    server.action_in_progress, server.status_message = "", message
    if server.status == ServerStatus.DESTROYING:  # a destroy that did not get to the end: nobody is destroying it now
        steps.set_status(server, ServerStatus.FAILED, message)
    audit.record(server.workspace, f"server.{action}", target=server, result=message)
    return True


def refresh(server, client):
    try:
        droplet = client.get_droplet(server.droplet_id)
    except digitalocean.NotFound:
        mark_deleted_outside(server)
        return "The Droplet was deleted outside Devpilot."
    apply_droplet(server, droplet)
    return "Refreshed."


def mark_deleted_outside(server):
    steps.set_status(server, ServerStatus.DELETED_OUTSIDE, "The Droplet no longer exists at DigitalOcean.")


def apply_droplet(server, droplet):
    steps.record_networks(server, droplet)
    fields = {"size": (droplet.get("size") or {}).get("slug") or droplet.get("size_slug") or server.size}
    Server.objects.filter(pk=server.pk).update(**fields)
    server.size = fields["size"]
    if droplet.get("status") == "off" and server.status == ServerStatus.READY:
        steps.set_status(server, ServerStatus.OFF)
    elif droplet.get("status") == "active" and server.status == ServerStatus.OFF:
        steps.set_status(server, ServerStatus.READY)


def _delete(state, key, call, lookup):
    """Delete one resource; an unknown outcome is read back. Past MAX_TRIES the reason is raised as ActionRefused."""
    if state.get(key):
        return
    try:
        call()
    except digitalocean.NotFound:
        pass
    except (digitalocean.Unavailable, digitalocean.RateLimited) as e:
        try:
            lookup()
        except digitalocean.NotFound:
            state[key] = True  # the call took effect; only its answer was lost
            return
        except digitalocean.DigitalOceanError:
            pass
        state["tries"] = state.get("tries", 0) + 1
        if state["tries"] >= MAX_TRIES:
            state["gave_up"] = e.message
            return
        raise Wait(10, f"{e.message} Trying again…") from None
    state[key] = True
    state.pop("tries", None)


def destroy(server, client, state):
    """Delete the Droplet, then its firewall. A failure is reported, the server keeps its true state,
    and Destroy again resumes (a Droplet already gone is skipped)."""
    if server.status != ServerStatus.DESTROYING:
        state.setdefault("was", server.status)
        steps.set_status(server, ServerStatus.DESTROYING)
    _delete(state, "droplet_gone", lambda: client.delete_droplet(server.droplet_id),
            lambda: client.get_droplet(server.droplet_id))
    if not state.get("droplet_gone"):
        reason = state.pop("gave_up", "")
        steps.set_status(server, state.get("was") or ServerStatus.READY,
                         f"Destroy failed: {reason} The Droplet was not deleted; try Destroy again.")
        raise ActionRefused(server.status_message)
    if server.firewall_id:
        _delete(state, "firewall_gone", lambda: client.delete_firewall(server.firewall_id),
                lambda: client.get_firewall(server.firewall_id))
        if not state.get("firewall_gone"):
            message = (f"Destroy failed: the Droplet was deleted, but deleting the firewall {server.firewall_name} "
                       f"failed ({state.pop('gave_up', '')}). Destroy again to finish.")
            steps.set_status(server, ServerStatus.FAILED, message)
            raise ActionRefused(message)
    steps.set_status(server, ServerStatus.DESTROYED, f"Destroyed at {timezone.now():%Y-%m-%d %H:%M} UTC.")
    return "The Droplet and its firewall were deleted at DigitalOcean."

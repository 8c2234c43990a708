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

from django.db import IntegrityError, transaction
from django.utils import timezone

from connections import digitalocean
from devpilot import audit, locks, outbox
from devpilot.errors import Conflict
from provisioning import steps
from provisioning.models import Server, ServerStatus, ServerStep, StepStatus

ACTIONS = ("power_on", "power_off", "reboot", "resize", "refresh", "destroy", "rename", "enable_backups",
           "disable_backups", "snapshot", "delete_snapshot", "firewall")
ACTION_TIMEOUT = 180  # seconds one DigitalOcean action (a clean shutdown included) may run before we read back
SNAPSHOT_TIMEOUT = 50 * 60  # a snapshot copies the whole disk: minutes, not seconds
PENDING_LIMIT = 300  # seconds of "Droplet already has a pending event." (inside our own plan) before giving up
MAX_TRIES = 5  # unknown outcomes (or failed deletes) of one phase before the action ends failed
SHORT_WAIT = 10
TASK_BUDGET = 60
EARLY = timedelta(seconds=2)
# The DigitalOcean actions each of ours is made of; a clean shutdown becomes power_off only when it fails.
PLANS = {"power_on": ["power_on"], "reboot": ["reboot"], "power_off": ["shutdown"],
         "resize": ["shutdown", "resize", "power_on"], "rename": ["rename"], "enable_backups": ["enable_backups"],
         "disable_backups": ["disable_backups"], "snapshot": ["snapshot"]}
# How long each action may take, from the click to its end. Past it a pass (or housekeeping, when no
# worker is on it) ends the action as failed with a reason: nothing stays "in progress".
DEADLINES = {
    "refresh": timedelta(minutes=5), "power_on": timedelta(minutes=15), "reboot": timedelta(minutes=15),
    "power_off": timedelta(minutes=15), "resize": timedelta(minutes=30), "destroy": timedelta(minutes=15),
    "rename": timedelta(minutes=10), "enable_backups": timedelta(minutes=10), "disable_backups": timedelta(minutes=10),
    "snapshot": timedelta(minutes=60), "delete_snapshot": timedelta(minutes=10), "firewall": timedelta(minutes=10),
}
# Actions DigitalOcean refuses while another runs on the Droplet; refresh and destroy are always allowed.
BLOCKED_BY_PENDING_EVENT = set(ACTIONS) - {"refresh", "destroy"}

logger = logging.getLogger("devpilot.provisioning")


class ActionRefused(Conflict):
    pass


class Wait(Exception):
    def __init__(self, seconds, note=""):
        super().__init__(note)
        self.seconds, self.note = seconds, note


def request(server, action, *, size=None, params=None, user=None, request=None):
    """Check an action may start now and mark it running (the outbox row); a task then performs it.

    `params` are the action's own input, already valid by provisioning.schemas (a new name, a snapshot
    name or id, firewall rules); they are kept in the action's state for every pass."""
    if action not in ACTIONS:
        raise ActionRefused(f"Unknown action {action!r}.")
    if server.is_archived:
        raise ActionRefused("This server was destroyed; it is kept in the archive for its history only.")
    if server.connection_id is None:
        raise ActionRefused("This server has no connection: connect its DigitalOcean account again first.")
    if not server.droplet_id:
        raise ActionRefused("This server has no Droplet yet.")
    if action == "resize" and not size:
        raise ActionRefused("Choose the new size.")
    if action == "firewall" and not server.firewall_id:
        raise ActionRefused("This server has no cloud firewall yet: wait for step 4 of its provisioning.")
    if server.pending_event and action in BLOCKED_BY_PENDING_EVENT:
        raise ActionRefused("DigitalOcean reports an action still running on this Droplet (a pending event), and "
                            "refuses others until it ends. Refresh in a minute, then try again.")
    now = timezone.now()
    state = {k: v for k, v in (("size", size), ("params", params)) if v}
    if action == "resize" and server.power_state == "off":
        # Decided at the click, from the state the person saw: a pass resumed after a crash finds the Droplet
        # off by our own shutdown and must still power it back on.
        state["was_off"] = True
    taken = Server.objects.filter(pk=server.pk, action_in_progress="").update(
        action_in_progress=action, action_due_at=now, action_state=state, action_deadline=now + DEADLINES[action],
        status_message="", status_message_is_error=False)
    if not taken:
        raise ActionRefused(f"Another action ({server.action_in_progress or 'one'}) is still running on this Droplet; "
                            "wait for it to finish.")
    server.action_in_progress, server.status_message, server.status_message_is_error = action, "", False
    audit.record(server.workspace, f"server.{action}_requested", request=request, actor=user, target=server,
                 **_audited(action, size, params))
    from provisioning import tasks

    tasks.enqueue_action(server, action, size)


def _audited(action, size, params) -> dict:
    """What the audit log says about the request: the size, the new name, the snapshot, the rules' ports."""
    params = params or {}
    if action == "resize":
        return {"size": size}
    if action == "firewall":
        return {"ports": ", ".join(f"{r['protocol']} {r['ports']}" for r in params.get("rules", []))}
    return {k: params[k] for k in ("name", "snapshot_name") if params.get(k)}


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
    failed = True
    try:
        if server.action_deadline and timezone.now() > server.action_deadline:
            raise ActionRefused(past_deadline(action))
        message = _perform(server, action, size, state)
        failed = bool(state.get("failed"))
    except Wait as wait:
        Server.objects.filter(pk=server.pk).update(action_state=state, status_message=wait.note)
        return wait.seconds, state
    except digitalocean.DigitalOceanError as e:
        message = f"{label(action)} failed: {e.message}"
    except ActionRefused as e:
        message = str(e)
    except Exception as error:  # a bug or odd data: report it rather than leave the action running
        message = _failed_unexpectedly(server, action, error)
    finish(server, action, message, failed=failed)
    return message, state


def past_deadline(action: str) -> str:
    minutes = int(DEADLINES[action].total_seconds() // 60)
    return (f"{label(action)} did not finish within {minutes} minutes, so Devpilot stopped waiting. "
            "Refresh to see the Droplet's state, then try again.")


LABELS = {"firewall": "Firewall update", "delete_snapshot": "Deleting the snapshot", "snapshot": "Snapshot",
          "enable_backups": "Enabling backups", "disable_backups": "Disabling backups"}


def label(action: str) -> str:
    return LABELS.get(action) or action.replace("_", " ").capitalize()


def _perform(server: Server, action: str, size: str | None, state: dict) -> str:
    if server.connection is None:  # removed after the action was requested
        raise ActionRefused("This server has no connection: connect its DigitalOcean account again first.")
    client = server.connection.client()
    if action == "refresh":
        return refresh(server, client, check_events=True)
    if action == "destroy":
        return destroy(server, client, state)
    if action == "firewall":
        return update_firewall(server, client, state)
    if action == "delete_snapshot":
        return delete_snapshot(server, client, state)
    plan = PLANS[action]
    params = state.get("params") or {}
    while state.get("i", 0) < len(plan):
        kind = state.get("kind") or plan[state.get("i", 0)]
        if kind == "power_on" and action == "resize" and state.get("was_off"):
            _next(state)  # it was off before the resize: it stays off
            continue
        try:
            _phase(server, client, kind, size, state, params)
        except ActionRefused as e:
            if kind != "resize":
                raise
            state["failed"] = str(e)  # never leave the Droplet off because a resize failed: power it on
            _next(state)
    last = getattr(server, "last_read_droplet", None)
    try:
        if last is not None and not server.pending_event:
            apply_droplet(server, last)  # the read that confirmed the last step is what is true now
        else:
            refresh(server, client)  # record what is true now; the action itself has ended either way
    except digitalocean.DigitalOceanError:
        pass
    return _closing(action, size, state, params)


def _closing(action, size, state, params):
    if action == "resize":
        if state.get("failed"):
            back = "left off as it was" if state.get("was_off") else "powered back on"
            return f"Resize failed ({state['failed']}); the Droplet was {back} at its old size."
        return f"Resized to {size}."
    if action == "power_off":
        return "The shutdown did not finish, so the power was cut." if state.get("forced") else "Shut down."
    if action == "rename":
        return f"Renamed to {params['name']}."
    if action == "snapshot":
        return f"Snapshot {params['name']} taken."
    return {"power_on": "Powered on.", "reboot": "Rebooted.", "enable_backups": "Weekly backups enabled.",
            "disable_backups": "Backups disabled."}[action]


def _holds(kind, droplet, size, params=None) -> bool:
    """The Droplet already is what this DigitalOcean action would make it."""
    if kind in ("shutdown", "power_off"):
        return droplet.get("status") == "off"
    if kind == "power_on":
        return droplet.get("status") == "active"
    if kind == "resize":
        return ((droplet.get("size") or {}).get("slug") or droplet.get("size_slug")) == size
    if kind == "rename":
        return droplet.get("name") == (params or {}).get("name")
    if kind in ("enable_backups", "disable_backups"):
        return ("backups" in (droplet.get("features") or [])) == (kind == "enable_backups")
    return False


def _next(state):
    for key in ("kind", "sub", "id", "since", "tries", "pending_since", "sent_once"):
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


def _snapshot_exists(server, client, name) -> bool:
    return any(s.get("name") == name for s in client.list_droplet_snapshots(server.droplet_id))


def _action_params(kind, size, params) -> dict:
    if kind == "resize":
        return {"size": size, "disk": True}  # the disk grows with the size: permanent, as the page says
    if kind in ("rename", "snapshot"):
        return {"name": params["name"]}
    return {}


def _phase(server, client, kind, size, state, params=None):
    """One DigitalOcean action: send it (unless the Droplet already is so), follow it, read back. Raises Wait."""
    state["kind"] = kind
    sub, now = state.get("sub", "send"), time.time()
    status = None
    if sub == "send":
        if kind == "snapshot":
            if state.get("sent_once") and _snapshot_exists(server, client, params["name"]):
                return _settled(server, kind, size, state, None, params)
        elif kind != "reboot":
            droplet = client.get_droplet(server.droplet_id)
            if _holds(kind, droplet, size, params):
                return _settled(server, kind, size, state, droplet, params)
        try:
            state["sent_once"] = True
            action = _do(client, server, kind, **_action_params(kind, size, params))
        except digitalocean.Unavailable as e:
            _tried(state, e.message)
            state["sub"] = "verify"
            raise Wait(5, "DigitalOcean did not confirm the call; reading the Droplet back…") from None
        except digitalocean.Rejected as e:
            if "pending event" in e.message.lower() and state.get("i", 0) == 0 and not state.get("forced"):
                # Refused at once: another action (from DigitalOcean's panel, an API client) runs on the Droplet.
                _mark_pending_event(server)
                raise ActionRefused(f"DigitalOcean refused it: {_reason(e)} Another action is still running on "
                                    "the Droplet; wait for it to end (Refresh shows when), then try again.") from None
            if "pending event" in e.message.lower():  # our own clean shutdown still running: wait for it
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
        timeout = SNAPSHOT_TIMEOUT if kind == "snapshot" else ACTION_TIMEOUT
        if status == "in-progress" and now - state["since"] < timeout:
            what = "the clean shutdown" if kind == "shutdown" else f"DigitalOcean's {kind.replace('_', ' ')}"
            raise Wait(3 if now - state["since"] < 15 else 10, f"Waiting for {what} to finish…")
        state["sub"] = "verify"
    if kind == "snapshot":
        if _snapshot_exists(server, client, params["name"]):
            return _settled(server, kind, size, state, None, params)
        if status == "errored":
            raise ActionRefused("DigitalOcean's snapshot action errored; no snapshot was made.")
        _tried(state, "no snapshot of that name exists yet")
        state["sub"] = "send"
        raise Wait(10, "Looking for the snapshot…")
    droplet = client.get_droplet(server.droplet_id)
    if _holds(kind, droplet, size, params) or (kind == "reboot" and droplet.get("status") == "active"):
        return _settled(server, kind, size, state, droplet, params)
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


def _settled(server, kind, size, state, droplet, params=None):
    server.last_read_droplet = droplet  # read after the step: the action's closing refresh need not read again
    if kind == "resize":
        Server.objects.filter(pk=server.pk).update(size=_size(droplet))
    if kind == "rename":
        _take_name(server, params["name"])
    _next(state)


def _take_name(server, name):
    """The Droplet has its new name: ours follows (unless another server took the name meanwhile)."""
    try:
        with transaction.atomic():
            Server.objects.filter(pk=server.pk).update(name=name)
    except IntegrityError:
        raise ActionRefused(f"The Droplet was renamed to {name} at DigitalOcean, but another server in this "
                            "workspace took that name meanwhile; Devpilot kept the old one.") from None
    server.name = name


def _reason(error) -> str:
    """DigitalOcean's own words, without our prefix."""
    return error.message.removeprefix("DigitalOcean refused the request: ")


def _mark_pending_event(server, pending=True):
    Server.objects.filter(pk=server.pk).update(pending_event=pending)
    server.pending_event = pending


def _failed_unexpectedly(server: Server, action: str, error: Exception) -> str:
    # Ids and the exception's type only in our words; the traceback is for the engineer reading the log.
    logger.exception("Action %s on server %s failed unexpectedly: %s", action, server.pk, type(error).__name__)
    return (f"{label(action)} failed unexpectedly: {type(error).__name__}. "
            "The error was logged; refresh, then try again.")


def finish(server: Server, action: str, message: str, *, failed: bool = False, only_if_flagged: bool = False) -> bool:
    """End the action: clear its flag, say how it went (a failure as an error), audit it.

    Housekeeping ends a lost one with only_if_flagged."""
    ended = {"status_message": message, "status_message_is_error": failed, "action_state": {}}
    # Only our own flag: if housekeeping gave this action up and another one started since, that one keeps its flag.
    flagged = Server.objects.filter(pk=server.pk, action_in_progress=action).update(
        action_in_progress="", action_due_at=None, action_deadline=None, **ended)
    if not flagged:
        if only_if_flagged:
            return False  # it ended by itself in the meantime
        Server.objects.filter(pk=server.pk).update(**ended)
    server.action_in_progress, server.status_message, server.status_message_is_error = "", message, failed
    if server.status == ServerStatus.DESTROYING:  # a destroy that did not get to the end: nobody is destroying it now
        steps.set_status(server, ServerStatus.FAILED, message, status_message_is_error=True)
    audit.record(server.workspace, f"server.{action}_failed" if failed else f"server.{action}", target=server,
                 result=message)
    return True


def refresh(server, client, *, check_events=False):
    """Read the Droplet back: power state, size, price, disk, backups, addresses; and, when asked or when one
    was seen, whether DigitalOcean still reports a pending event."""
    try:
        droplet = client.get_droplet(server.droplet_id)
    except digitalocean.NotFound:
        mark_deleted_outside(server)
        return "The Droplet was deleted outside Devpilot."
    apply_droplet(server, droplet)
    if check_events or server.pending_event:
        _mark_pending_event(server, bool(client.pending_droplet_actions(server.droplet_id)))
    if server.pending_event:
        return "Refreshed. DigitalOcean still reports an action running on the Droplet."
    return "Refreshed."


def mark_deleted_outside(server):
    _stop_steps(server, "The Droplet was deleted outside Devpilot.")
    steps.set_status(server, ServerStatus.DELETED_OUTSIDE, "The Droplet no longer exists at DigitalOcean.",
                     power_state="", pending_event=False, status_message_is_error=True)


def apply_droplet(server, droplet):
    """What DigitalOcean says the Droplet is; the provisioning progress is not touched."""
    steps.record_facts(server, droplet)


def _stop_steps(server, message):
    """Steps that had not ended will not: the Droplet is gone."""
    ServerStep.objects.filter(server=server, status__in=[StepStatus.PENDING, StepStatus.RUNNING]).update(
        status=StepStatus.STOPPED, finished_at=timezone.now(), message=message)


def archive(server, message):
    """Destroyed: out of the list and into the archive, with no stale agent, address or step."""
    _stop_steps(server, "Stopped: the server was destroyed.")
    steps.set_status(server, ServerStatus.DESTROYED, message, archived_at=timezone.now(), ipv4_public=None,
                     ipv4_private=None, ipv6_address=None, agent_credential_hash="", registration_token_hash="",
                     registration_token_ciphertext="", registration_expires_at=None, power_state="",
                     pending_event=False, next_run_at=None, status_message_is_error=False)


def update_firewall(server, client, state):
    """One PUT: the firewall as DigitalOcean has it, with only its address-sourced inbound rules replaced.

    Inbound rules whose sources name tags, Droplets, load balancers or Kubernetes clusters (added in
    DigitalOcean's panel) are beyond what the editor shows, so they are kept as they are."""
    rules = state["params"]["rules"]
    firewall = client.get_firewall(server.firewall_id)
    body = {k: firewall[k] for k in ("name", "outbound_rules", "droplet_ids", "tags") if firewall.get(k) is not None}
    body["inbound_rules"] = steps.inbound_rules(rules) + [
        rule for rule in firewall.get("inbound_rules") or [] if _has_other_than_addresses(rule.get("sources") or {})]
    client.update_firewall(server.firewall_id, body)
    Server.objects.filter(pk=server.pk).update(inbound_rules=rules)
    server.inbound_rules = rules
    return f"Firewall updated: inbound {steps.describe_rules(rules)}."


def _has_other_than_addresses(sources: dict) -> bool:
    return any(value for name, value in sources.items() if name != "addresses")


def delete_snapshot(server, client, state):
    snapshot_id = state["params"]["snapshot_id"]
    _delete(state, "snapshot_gone", lambda: client.delete_snapshot(snapshot_id),
            lambda: client.get_snapshot(snapshot_id))
    if not state.get("snapshot_gone"):
        raise ActionRefused(f"Deleting the snapshot failed: {state.pop('gave_up', '')} Try again.")
    return f"Snapshot {state['params'].get('snapshot_name') or snapshot_id} deleted."


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
    archive(server, f"Destroyed at {timezone.now():%Y-%m-%d %H:%M} UTC.")
    return "The Droplet and its firewall were deleted at DigitalOcean."


# --- What a page offers ---------------------------------------------------------------------------


def offered(server) -> dict:
    """Which actions a person may start now, from the Droplet's power state (not the provisioning step), and
    why the others wait: an action of ours, or one DigitalOcean reports (a pending event)."""
    usable = (not server.is_archived and server.status != ServerStatus.DESTROYING and bool(server.droplet_id)
              and server.connection_id is not None)
    power = server.power_state
    waiting = ""
    if server.action_in_progress:
        waiting = f"{label(server.action_in_progress)} is in progress; other actions wait for it."
    elif server.pending_event:
        waiting = ("DigitalOcean reports an action still running on this Droplet (a pending event); actions come "
                   "back when it ends. Refresh to look again.")
    in_progress = ""
    if server.action_in_progress:
        until = f", ended by {server.action_deadline:%H:%M} UTC at the latest" if server.action_deadline else ""
        in_progress = f"{label(server.action_in_progress)} in progress{until}."
    return {
        "usable": usable, "waiting": waiting, "enabled": usable and not waiting, "in_progress": in_progress,
        "refresh": usable and not server.action_in_progress,
        "power_on": usable and power == "off", "power_off": usable and power == "active",
        "reboot": usable and power == "active", "resize": usable and power in ("active", "off"),
        "firewall": usable and bool(server.firewall_id),
    }

"""Power, resize, refresh and destroy: one action at a time per Droplet."""

import time

from django.utils import timezone

from connections import digitalocean
from devpilot import audit
from provisioning import steps
from provisioning.models import Server, ServerStatus

ACTIONS = ("power_on", "power_off", "reboot", "resize", "refresh", "destroy")
SHUTDOWN_GRACE = 60  # seconds a clean shutdown gets before the power is cut
ACTION_TIMEOUT = 180


class ActionRefused(Exception):
    pass


def request(server, action, *, size=None, user=None, request=None):
    """Check an action may start now and mark it running; a task then performs it."""
    if action not in ACTIONS:
        raise ActionRefused(f"Unknown action {action!r}.")
    if server.connection_id is None:
        raise ActionRefused("This server has no connection: connect its DigitalOcean account again first.")
    if not server.droplet_id:
        raise ActionRefused("This server has no Droplet yet.")
    if action == "resize" and not size:
        raise ActionRefused("Choose the new size.")
    taken = Server.objects.filter(pk=server.pk, action_in_progress="").update(action_in_progress=action)
    if not taken:
        raise ActionRefused(f"Another action ({server.action_in_progress or 'one'}) is still running on this Droplet; "
                            "wait for it to finish.")
    server.action_in_progress = action
    audit.record(server.workspace, f"server.{action}_requested", request=request, actor=user, target=server, size=size)
    from provisioning import tasks

    tasks.enqueue_action(server, action, size)


def _wait_for(client, action, timeout=ACTION_TIMEOUT, sleep=time.sleep):
    deadline = time.monotonic() + timeout
    while action.get("status") == "in-progress":
        if time.monotonic() > deadline:
            return "timeout"
        sleep(3)
        action = client.get_action(action["id"])
    return action.get("status")


def run(server_id, action, size=None, sleep=time.sleep):
    server = Server.objects.select_related("workspace", "connection").get(pk=server_id)
    message = ""
    try:
        client = server.connection.client()
        if action == "refresh":
            message = refresh(server, client)
        elif action == "destroy":
            message = destroy(server, client)
        elif action == "power_on":
            _do(client, server, "power_on", sleep)
            message = "Powered on."
        elif action == "reboot":
            _do(client, server, "reboot", sleep)
            message = "Rebooted."
        elif action == "power_off":
            message = power_off(client, server, sleep)
        elif action == "resize":
            message = resize(client, server, size, sleep)
        if action not in ("destroy",):
            refresh(server, client)
    except digitalocean.DigitalOceanError as e:
        message = f"{action.replace('_', ' ').capitalize()} failed: {e.message}"
    except ActionRefused as e:
        message = str(e)
    Server.objects.filter(pk=server.pk).update(action_in_progress="", status_message=message)
    audit.record(server.workspace, f"server.{action}", target=server, result=message)
    return message


def _do(client, server, kind, sleep, **params):
    result = _wait_for(client, client.droplet_action(server.droplet_id, kind, **params), sleep=sleep)
    if result != "completed":
        raise ActionRefused(f"DigitalOcean's {kind.replace('_', ' ')} action {result}.")


def power_off(client, server, sleep):
    """A clean shutdown first; the power is cut only if it does not finish in time."""
    result = _wait_for(client, client.droplet_action(server.droplet_id, "shutdown"), timeout=SHUTDOWN_GRACE, sleep=sleep)
    if result == "completed":
        return "Shut down."
    _do(client, server, "power_off", sleep)
    return "The shutdown did not finish in time, so the power was cut."


def resize(client, server, size, sleep):
    power_off(client, server, sleep)
    try:
        _do(client, server, "resize", sleep, size=size)
    except (digitalocean.DigitalOceanError, ActionRefused) as e:
        _do(client, server, "power_on", sleep)  # never leave it off because a resize failed
        reason = e.message if isinstance(e, digitalocean.DigitalOceanError) else str(e)
        return f"Resize failed ({reason}); the Droplet was powered back on at its old size."
    Server.objects.filter(pk=server.pk).update(size=size)
    _do(client, server, "power_on", sleep)
    return f"Resized to {size}."


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
    if droplet.get("status") == "off" and server.status == ServerStatus.READY:
        steps.set_status(server, ServerStatus.OFF)
    elif droplet.get("status") == "active" and server.status == ServerStatus.OFF:
        steps.set_status(server, ServerStatus.READY)


def destroy(server, client):
    """Delete the Droplet and its firewall at DigitalOcean. A failure is reported, never hidden."""
    steps.set_status(server, ServerStatus.DESTROYING)
    try:
        client.delete_droplet(server.droplet_id)
    except digitalocean.NotFound:
        pass
    except digitalocean.DigitalOceanError as e:
        steps.set_status(server, ServerStatus.FAILED, f"Destroying the Droplet failed: {e.message}")
        raise
    if server.firewall_id:
        try:
            client.delete_firewall(server.firewall_id)
        except digitalocean.NotFound:
            pass
    steps.set_status(server, ServerStatus.DESTROYED, f"Destroyed at {timezone.now():%Y-%m-%d %H:%M} UTC.")
    return "The Droplet and its firewall were deleted at DigitalOcean."

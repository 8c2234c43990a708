"""Creating and removing servers: shared by the pages and the API."""

import ipaddress
from urllib.parse import urlsplit

from django.db import IntegrityError, transaction
from django.utils import timezone

from connections import digitalocean
from devpilot import audit
from devpilot.errors import NotFound
from provisioning import lifecycle, pricing, steps, tasks
from provisioning.models import Server
from provisioning.rules import ServerError, validate_name, validate_ports  # noqa: F401 (part of this module's API)
from provisioning.schemas import FirewallUpdate, ServerAction, ServerDetails


@transaction.atomic
def create(workspace, connection, details: ServerDetails, *, region: str, size: str, image: str,
           price_monthly=None, user=None, request=None) -> Server:
    """Save a server whose input passed ServerDetails and queue its provisioning."""
    server = Server(workspace=workspace, connection=connection, account_uuid=connection.account_uuid,
                    name=details.name, region=region, size=size, image=image, price_monthly=price_monthly,
                    inbound_rules=[rule.model_dump() for rule in details.inboundRules],
                    extra_public_keys=list(details.sshPublicKeys), monitoring=details.monitoring,
                    backups=details.backups, ipv6=details.ipv6, created_by=user)
    try:
        with transaction.atomic():
            server.save()
    except IntegrityError:
        raise ServerError.for_field("name", f"A server named {details.name} already exists in this workspace.") from None
    steps.create_steps(server)
    audit.record(workspace, "server.created", request=request, actor=user, target=server, region=region, size=size)
    tasks.enqueue_provision(server)
    return server


def retry(server, *, user=None, request=None):
    """Resume provisioning from its failed or current step, or an action from where it stands."""
    if steps.retry(server):
        audit.record(server.workspace, "server.retried", request=request, actor=user, target=server)
        tasks.enqueue_provision(server)
    elif server.action_in_progress:
        audit.record(server.workspace, "server.retried", request=request, actor=user, target=server,
                     action=server.action_in_progress)
        lifecycle.resume(server)
    else:
        raise ServerError("Nothing to retry: no step has failed.")


def remove_record(server, *, user=None, request=None):
    """Forget the server in Devpilot only; the Droplet stays at DigitalOcean."""
    audit.record(server.workspace, "server.removed_from_devpilot", request=request, actor=user, target=server,
                 droplet_id=server.droplet_id)
    server.delete()


# --- Day two: actions with their input, checked once for pages and API alike ------------------------


def act(server, action: ServerAction, *, user=None, request=None) -> None:
    """Start an action on a server (or retry its provisioning), after checking its input against DigitalOcean."""
    action = action.checked()
    if action.type == "retry":
        return retry(server, user=user, request=request)
    if action.type == "resize":
        size = resize_size(server, action.size)
        return lifecycle.request(server, "resize", size=size["slug"], user=user, request=request)
    if action.type == "rename":
        return rename(server, action.name, user=user, request=request)
    if action.type == "snapshot":
        return take_snapshot(server, action.name, user=user, request=request)
    return lifecycle.request(server, action.type, user=user, request=request)


def _client(server):
    if server.connection is None:
        raise ServerError("This server has no connection: connect its DigitalOcean account again first.")
    return server.connection.client()


def _do(call):
    """A DigitalOcean error while checking input, as the one error hierarchy says it."""
    try:
        return call()
    except digitalocean.DigitalOceanError as e:
        raise digitalocean.as_devpilot_error(e) from None


def resize_options(server) -> list[dict]:
    """Sizes the server can be resized to: sold in its region now, with a disk at least as big as its own
    (DigitalOcean never shrinks a disk), cheapest first; the current size is left out."""
    sizes = _do(lambda: _client(server).list_sizes())
    current = next((s for s in sizes if s["slug"] == server.size), None)
    disk = server.disk_gb or (current or {}).get("disk") or 0
    return sorted((s for s in sizes if s.get("available") and server.region in (s.get("regions") or [])
                   and s.get("disk", 0) >= disk and s["slug"] != server.size),
                  key=lambda s: (s.get("price_monthly", 0), s["slug"]))


def resize_size(server, slug: str) -> dict:
    size = next((s for s in resize_options(server) if s["slug"] == slug), None)
    if size is None:
        raise ServerError.for_field("size", f"{slug} is not a size {server.name} can be resized to: choose one sold in "
                                            f"{server.region} with a disk of at least {server.disk_gb or '?'} GB.")
    return size


def size_json(size: dict, backups: bool) -> dict:
    return {"slug": size["slug"], "description": size.get("description") or "", "vcpus": size.get("vcpus", 0),
            "memoryMb": size.get("memory", 0), "diskGb": size.get("disk", 0),
            "priceMonthly": float(size.get("price_monthly", 0)), "priceHourly": float(size.get("price_hourly", 0)),
            "monthlyCost": float(pricing.monthly_cost(size.get("price_monthly", 0), backups))}


def rename(server, name: str, *, user=None, request=None) -> None:
    if name == server.name:
        raise ServerError.for_field("name", f"The server is already named {name}.")
    if Server.objects.live().filter(workspace=server.workspace, name=name).exclude(pk=server.pk).exists():
        raise ServerError.for_field("name", f"A server named {name} already exists in this workspace.")
    lifecycle.request(server, "rename", params={"name": name}, user=user, request=request)


def take_snapshot(server, name: str | None, *, user=None, request=None) -> None:
    name = name or f"{server.name}-{timezone.now():%Y%m%d-%H%M}"
    lifecycle.request(server, "snapshot", params={"name": name}, user=user, request=request)


def snapshots(server) -> list[dict]:
    """The Droplet's snapshots, newest first (one paged call)."""
    if not server.droplet_id or server.is_archived:
        return []
    items = _do(lambda: _client(server).list_droplet_snapshots(server.droplet_id))
    return sorted(items, key=lambda s: s.get("created_at") or "", reverse=True)


def snapshot_json(snapshot: dict) -> dict:
    return {"id": str(snapshot["id"]), "name": snapshot.get("name") or "", "createdAt": snapshot.get("created_at"),
            "regions": list(snapshot.get("regions") or []), "minDiskSize": snapshot.get("min_disk_size"),
            "sizeGigabytes": snapshot.get("size_gigabytes")}


def delete_snapshot(server, snapshot_id: str, *, user=None, request=None) -> None:
    """Only a snapshot of this server's Droplet: an id from elsewhere is not found here."""
    snapshot = next((s for s in snapshots(server) if str(s["id"]) == str(snapshot_id)), None)
    if snapshot is None:
        raise NotFound(f"{server.name} has no snapshot {snapshot_id}.")
    lifecycle.request(server, "delete_snapshot", params={"snapshot_id": str(snapshot["id"]),
                                                         "snapshot_name": snapshot.get("name") or ""},
                      user=user, request=request)


def update_firewall(server, update: FirewallUpdate, *, user=None, request=None) -> None:
    rules = [rule.model_dump() for rule in update.inboundRules]
    if rules == server.inbound_rules:
        raise ServerError.for_field("inboundRules", "These are the firewall's rules already: nothing to change.")
    lifecycle.request(server, "firewall", params={"rules": rules}, user=user, request=request)


def firewall_preview(old: list[dict], new: list[dict]) -> dict[str, list[dict]]:
    """What applying `new` changes: rules added, removed and kept (a rule is its protocol, ports and sources)."""
    def key(rule):
        return rule["protocol"], rule["ports"], tuple(rule["sources"])

    old_keys, new_keys = {key(r) for r in old}, {key(r) for r in new}
    return {"added": [r for r in new if key(r) not in old_keys], "removed": [r for r in old if key(r) not in new_keys],
            "kept": [r for r in new if key(r) in old_keys]}


def backups_change(server) -> dict:
    """The monthly cost now and after toggling backups (20% of the Droplet's price)."""
    return {"now": server.monthly_cost, "after": pricing.monthly_cost(server.price_monthly, not server.backups),
            "backups_price": pricing.backups_price(server.price_monthly)}


# --- The New server wizard ----------------------------------------------------------------------------

PRIVATE_SUFFIXES = (".local", ".localhost", ".internal", ".lan", ".home.arpa")


def unreachable_public_url(url: str) -> str | None:
    """Why a Droplet could not reach Devpilot at `url` (a loopback, private or link-local host), or None."""
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if not host:
        return f"DEVPILOT_PUBLIC_URL ({url!r}) names no host."
    if host == "localhost" or host.endswith(PRIVATE_SUFFIXES):
        return f"{host} is a name only this machine or its local network resolves."
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None  # a public name: DNS decides, and Devpilot cannot tell from here
    if address.is_loopback:
        return f"{host} is a loopback address: on the Droplet it is the Droplet itself."
    if address.is_link_local:
        return f"{host} is a link-local address, reachable only on this machine's own network segment."
    if address.is_private or address.is_unspecified:
        return f"{host} is a private address: a Droplet reaches it only through a VPN or the same private network."
    return None


def snapshot_images(client, region: str, size_disk: int) -> list[dict]:
    """The account's Droplet snapshots a new server in `region` with a `size_disk` GB disk can start from."""
    return [{"id": str(s["id"]), "name": s.get("name") or str(s["id"]), "min_disk_size": s.get("min_disk_size") or 0,
             "created_at": s.get("created_at")}
            for s in client.list_snapshots()
            if region in (s.get("regions") or []) and (s.get("min_disk_size") or 0) <= size_disk]

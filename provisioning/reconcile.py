"""Bring server records in line with DigitalOcean: a few paged list calls per connection.

Power state, size, price, disk and backups follow what DigitalOcean lists, whatever the provisioning
step; a Droplet missing from the list is "deleted outside" only once provisioning has settled (right
after a create it may not be listed yet). A server that saw a pending event is looked at once more
(one call) until DigitalOcean reports none, so its actions come back.
"""

from connections import digitalocean
from provisioning import lifecycle, steps
from provisioning.models import Server, ServerStatus

SETTLED = [ServerStatus.READY, ServerStatus.OFF, ServerStatus.AGENT_MISSING, ServerStatus.FAILED]
WATCHED = [*SETTLED, ServerStatus.BOOTING, ServerStatus.CONFIGURING, ServerStatus.INSTALLING_AGENT]


def reconcile_connection(connection):
    """One paged listing of the Droplets tagged `devpilot`; then every server of the connection is updated."""
    servers = list(connection.servers.live().filter(status__in=WATCHED, droplet_id__isnull=False)
                   .select_related("workspace"))
    if not servers:
        return 0
    client = connection.client()
    try:
        droplets = {d["id"]: d for d in client.list_droplets(tag_name="devpilot")}
    except digitalocean.DigitalOceanError:
        return 0
    for server in servers:
        droplet = droplets.get(server.droplet_id)
        if droplet is None:
            if server.status in SETTLED:
                lifecycle.mark_deleted_outside(server)
            continue
        lifecycle.apply_droplet(server, droplet)
        if server.pending_event and not server.action_in_progress:
            _recheck_pending_event(server, client)
    return len(servers)


def _recheck_pending_event(server, client):
    try:
        pending = bool(client.pending_droplet_actions(server.droplet_id))
    except digitalocean.DigitalOceanError:
        return
    Server.objects.filter(pk=server.pk).update(pending_event=pending)
    server.pending_event = pending


def reconcile_all():
    from connections.models import Connection

    orphans = Server.objects.live().filter(connection__isnull=True).exclude(
        status__in=[ServerStatus.DESTROYED, ServerStatus.DELETED_OUTSIDE, ServerStatus.NO_CONNECTION]
    ).select_related("workspace")
    for server in orphans:  # one by one, so each transition is audited
        steps.set_status(server, ServerStatus.NO_CONNECTION, "The connection was removed.")
    return sum(reconcile_connection(c) for c in Connection.objects.filter(servers__isnull=False).distinct())

"""Bring server records in line with DigitalOcean: a few paged list calls per connection."""

from connections import digitalocean
from provisioning import lifecycle, steps
from provisioning.models import Server, ServerStatus

SETTLED = [ServerStatus.READY, ServerStatus.OFF, ServerStatus.AGENT_MISSING, ServerStatus.FAILED]


def reconcile_connection(connection):
    """One paged listing of the Droplets tagged `devpilot`; then every server of the connection is updated."""
    servers = list(connection.servers.filter(status__in=SETTLED, droplet_id__isnull=False).select_related("workspace"))
    if not servers:
        return 0
    try:
        droplets = {d["id"]: d for d in connection.client().list_droplets(tag_name="devpilot")}
    except digitalocean.DigitalOceanError:
        return 0
    for server in servers:
        droplet = droplets.get(server.droplet_id)
        if droplet is None:
            lifecycle.mark_deleted_outside(server)
        else:
            lifecycle.apply_droplet(server, droplet)
    return len(servers)


def reconcile_all():
    from connections.models import Connection

    orphans = Server.objects.filter(connection__isnull=True).exclude(
        status__in=[ServerStatus.DESTROYED, ServerStatus.DELETED_OUTSIDE, ServerStatus.NO_CONNECTION]
    ).select_related("workspace")
    for server in orphans:  # one by one, so each transition is audited
        steps.set_status(server, ServerStatus.NO_CONNECTION, "The connection was removed.")
    return sum(reconcile_connection(c) for c in Connection.objects.filter(servers__isnull=False).distinct())

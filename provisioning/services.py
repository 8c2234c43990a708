"""Creating and removing servers: shared by the pages and the API."""

import re

from django.db import IntegrityError, transaction

from devpilot import audit
from provisioning import steps, tasks
from provisioning.models import Server

# DigitalOcean's pattern (^[a-zA-Z0-9]?[a-z0-9A-Z.\-]*[a-z0-9A-Z]$), minus a leading dot or hyphen,
# which no hostname may have.
NAME_RE = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9.\-]*[a-zA-Z0-9])?$")
PORTS_RE = re.compile(r"^(\d{1,5})(-(\d{1,5}))?$")
DEFAULT_RULES = [{"protocol": "tcp", "ports": port, "sources": ["0.0.0.0/0", "::/0"]} for port in ("22", "80", "443")]


class ServerError(Exception):
    pass


def validate_name(name):
    if not name or len(name) > 63 or not NAME_RE.match(name):
        raise ServerError("Use letters, digits, dots and hyphens, starting and ending with a letter or digit "
                          "(DigitalOcean's hostname rule), at most 63 characters.")
    return name


def validate_ports(ports):
    match = PORTS_RE.match(ports.strip())
    if not match or not all(1 <= int(p) <= 65535 for p in (match.group(1), match.group(3)) if p):
        raise ServerError(f"{ports!r} is not a port (22) or a range (8000-9000).")
    if match.group(3) and int(match.group(3)) < int(match.group(1)):
        raise ServerError(f"{ports!r}: a range goes from low to high.")
    return ports.strip()


@transaction.atomic
def create(workspace, connection, *, name, region, size, image, price_monthly=None, inbound_rules=None,
           extra_public_keys=(), monitoring=True, backups=False, ipv6=False, user=None, request=None):
    server = Server(workspace=workspace, connection=connection, account_uuid=connection.account_uuid,
                    name=validate_name(name), region=region, size=size, image=image, price_monthly=price_monthly,
                    inbound_rules=inbound_rules if inbound_rules is not None else DEFAULT_RULES,
                    extra_public_keys=list(extra_public_keys), monitoring=monitoring, backups=backups, ipv6=ipv6,
                    created_by=user)
    try:
        with transaction.atomic():
            server.save()
    except IntegrityError:
        raise ServerError(f"A server named {name} already exists in this workspace.") from None
    steps.create_steps(server)
    audit.record(workspace, "server.created", request=request, actor=user, target=server, region=region, size=size)
    tasks.enqueue_provision(server)
    return server


def retry(server, *, user=None, request=None):
    if not steps.retry(server):
        raise ServerError("Nothing to retry: no step has failed.")
    audit.record(server.workspace, "server.retried", request=request, actor=user, target=server)
    tasks.enqueue_provision(server)


def remove_record(server, *, user=None, request=None):
    """Forget the server in Devpilot only; the Droplet stays at DigitalOcean."""
    audit.record(server.workspace, "server.removed_from_devpilot", request=request, actor=user, target=server,
                 droplet_id=server.droplet_id)
    server.delete()

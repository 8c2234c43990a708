"""Creating and removing servers: shared by the pages and the API."""

from django.db import IntegrityError, transaction

from devpilot import audit
from provisioning import lifecycle, steps, tasks
from provisioning.models import Server
from provisioning.rules import ServerError, validate_name, validate_ports  # noqa: F401 (part of this module's API)
from provisioning.schemas import ServerDetails


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

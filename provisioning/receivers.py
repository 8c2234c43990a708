from provisioning import steps
from provisioning.models import Server, ServerStatus


def connection_created(sender, connection, **kwargs):
    """Servers left without a connection come back when their DigitalOcean account is connected again."""
    if connection.account_uuid:
        Server.objects.filter(workspace=connection.workspace, connection__isnull=True,
                              account_uuid=connection.account_uuid).update(connection=connection)
        for server in Server.objects.filter(connection=connection, status=ServerStatus.NO_CONNECTION).select_related("workspace"):
            steps.set_status(server, ServerStatus.READY, "Back under management.")

"""Background work for connections (django-q2). Tasks take ids, never tokens."""

from django.utils import timezone

from connections import digitalocean
from connections.models import Connection, Status
from devpilot import outbox


def check(connection_id: str) -> str:
    """Whether a connection's token still works (GET /v2/account), recorded on the connection.

    A spent call budget (Devpilot's or DigitalOcean's) moves the check to its reset: nothing sleeps here."""
    connection = Connection.objects.filter(pk=connection_id).first()
    if connection is None:
        return "gone"
    try:
        connection.client().get_account()
    except digitalocean.RateLimited as e:
        outbox.run_later(f"check connection {connection_id}", "connections.tasks.check", (str(connection_id),),
                         e.reset_at)
        return "rate limited"
    except digitalocean.DigitalOceanError as e:
        refused = isinstance(e, (digitalocean.InvalidToken, digitalocean.MissingScope))
        return _record(connection_id, Status.INVALID if refused else Status.UNREACHABLE, e.message)
    return _record(connection_id, Status.OK, "")


def _record(connection_id: str, status: str, error: str) -> str:
    now = timezone.now()
    Connection.objects.filter(pk=connection_id).update(status=status, last_error=error, last_checked_at=now,
                                                       updated_at=now)
    return status

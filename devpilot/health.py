"""Is Devpilot healthy? The database answers and a worker ran its heartbeat recently."""

from datetime import timedelta

from django.db import connection
from django.utils import timezone

from devpilot.models import WorkerHeartbeat

HEARTBEAT = "devpilot.tasks.heartbeat"
STALE_AFTER = timedelta(minutes=3)


def check():
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        database = True
    except Exception:  # noqa: BLE001 - any failure means the database is not usable
        return {"ok": False, "database": False, "worker": {"alive": False, "lastSeenAt": None}}
    beat = WorkerHeartbeat.objects.filter(name=HEARTBEAT).first()
    alive = beat is not None and timezone.now() - beat.seen_at < STALE_AFTER
    return {
        "ok": database and alive,
        "database": database,
        "worker": {"alive": alive, "lastSeenAt": beat.seen_at.isoformat() if beat else None},
    }

from django.utils import timezone

from devpilot.health import HEARTBEAT
from devpilot.models import WorkerHeartbeat


def heartbeat():
    WorkerHeartbeat.objects.update_or_create(name=HEARTBEAT, defaults={"seen_at": timezone.now()})

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from django_q.models import Schedule

from devpilot import tasks
from devpilot.models import WorkerHeartbeat


def test_health_reports_a_missing_worker(client, db):
    response = client.get("/health/")
    assert response.status_code == 503
    assert response.json()["worker"]["alive"] is False


def test_health_is_ok_after_a_recent_heartbeat(client, db):
    tasks.heartbeat()
    response = client.get("/health/")
    assert response.status_code == 200
    assert response.json()["worker"]["alive"] is True
    call_command("worker_status", stdout=open("/dev/null", "w"))


def test_a_stale_heartbeat_means_no_worker(db):
    tasks.heartbeat()
    WorkerHeartbeat.objects.update(seen_at=timezone.now() - timedelta(minutes=10))
    with pytest.raises(CommandError, match="no recent worker heartbeat"):
        call_command("worker_status", stdout=open("/dev/null", "w"))


def test_setup_schedules_is_idempotent(db):
    call_command("setup_schedules", stdout=open("/dev/null", "w"))
    call_command("setup_schedules", stdout=open("/dev/null", "w"))
    assert Schedule.objects.filter(func="devpilot.tasks.heartbeat").count() == 1

"""Background work for servers (django-q2). Tasks take ids only."""

import time
from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import async_task

from provisioning import lifecycle, reconcile, steps

SHORT_WAIT = 10  # seconds a task sleeps itself rather than scheduling a later run
TASK_BUDGET = 150  # seconds one task spends before handing over (the cluster timeout is 240)


def enqueue_provision(server):
    transaction.on_commit(lambda: async_task("provisioning.tasks.provision", str(server.pk)))


def provision(server_id, sleep=time.sleep):
    started = time.monotonic()
    while True:
        wait = steps.advance(server_id)
        if wait is None:
            return "settled"
        if wait <= SHORT_WAIT and time.monotonic() - started + wait < TASK_BUDGET:
            sleep(wait)
            continue
        Schedule.objects.create(
            name=f"provision {server_id} {timezone.now():%H%M%S%f}", func="provisioning.tasks.provision",
            args=f"'{server_id}'", schedule_type=Schedule.ONCE, next_run=timezone.now() + timedelta(seconds=wait),
            repeats=1)
        return "waiting"


def enqueue_action(server, action, size=None):
    transaction.on_commit(lambda: async_task("provisioning.tasks.run_action", str(server.pk), action, size))


def run_action(server_id, action, size=None):
    return lifecycle.run(server_id, action, size)


def reconcile_all():
    return reconcile.reconcile_all()

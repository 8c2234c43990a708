"""Background work for servers (django-q2). Tasks take ids only.

Each task does a short piece of work under the server's lease and, when it must wait (a
Droplet booting, an action running at DigitalOcean, the agent calling in), records when to
look again (`next_run_at`, `action_due_at`) and schedules a one-off check instead of sleeping.
If a worker dies, the sweeper (devpilot/outbox.py) finds the due row without a live lease.
"""

import time
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from devpilot import locks, outbox
from provisioning import housekeeping as provisioning_housekeeping
from provisioning import lifecycle, reconcile, steps
from provisioning.models import Server, StepStatus

SHORT_WAIT = 10  # seconds a task sleeps itself rather than scheduling a later run
TASK_BUDGET = 60  # seconds one task spends before handing over (the cluster timeout is 240)
EARLY = timedelta(seconds=2)  # a check this close to its due time runs


def enqueue_provision(server):
    """Record that provisioning must run (in the caller's transaction), then queue it after the commit."""
    Server.objects.filter(pk=server.pk).update(next_run_at=timezone.now())
    transaction.on_commit(lambda: outbox.enqueue("provisioning.tasks.provision", str(server.pk)))


def provision(server_id, sleep=time.sleep):
    started = time.monotonic()
    due = Server.objects.filter(pk=server_id).values_list("next_run_at", flat=True).first()
    if due is not None and due > timezone.now() + EARLY:
        return "not due"  # a duplicate or superseded delivery: the run it stands for already happened
    if locks.is_live(f"server:{server_id}"):
        return "busy"  # another worker is on it; if it dies, the sweeper sends this again
    while True:
        wait = steps.advance(server_id)
        if wait is None:
            Server.objects.filter(pk=server_id).update(next_run_at=None)
            return "settled"
        when = timezone.now() + timedelta(seconds=wait)
        Server.objects.filter(pk=server_id).update(next_run_at=when)
        if wait <= SHORT_WAIT and time.monotonic() - started + wait < TASK_BUDGET:
            sleep(wait)
            continue
        outbox.run_later(f"provision {server_id}", "provisioning.tasks.provision", (str(server_id),), when)
        return "waiting"


def enqueue_action(server, action, size=None):
    transaction.on_commit(lambda: outbox.enqueue("provisioning.tasks.run_action", str(server.pk), action, size))


def run_action(server_id, action, size=None, sleep=time.sleep):
    return lifecycle.run(server_id, action, size, sleep=sleep, queued=True)


def sweep(cutoff) -> dict[str, int]:
    """Provisioning and actions that are due since before `cutoff` with nobody holding their lease."""
    live = locks.live_names("server")
    provisioning = Server.objects.filter(status__in=provisioning_housekeeping.PROVISIONING).filter(
        Q(next_run_at__lte=cutoff) | Q(next_run_at__isnull=True, updated_at__lte=cutoff)).exclude(
        steps__status=StepStatus.FAILED)
    resumed = actions = 0
    for pk in provisioning.values_list("pk", flat=True).distinct():
        if f"server:{pk}" not in live:
            Server.objects.filter(pk=pk).update(next_run_at=timezone.now())
            outbox.enqueue("provisioning.tasks.provision", str(pk))
            resumed += 1
    lost = Server.objects.exclude(action_in_progress="").filter(
        Q(action_due_at__lte=cutoff) | Q(action_due_at__isnull=True, updated_at__lte=cutoff))
    for pk, action, state in lost.values_list("pk", "action_in_progress", "action_state"):
        if f"server-action:{pk}" not in live:
            Server.objects.filter(pk=pk).update(action_due_at=timezone.now())
            outbox.enqueue("provisioning.tasks.run_action", str(pk), action, (state or {}).get("size"))
            actions += 1
    return {"provisioning": resumed, "actions": actions}


def reconcile_all():
    return reconcile.reconcile_all()


def housekeeping():
    """Fail actions and provisioning steps whose task was lost, so nothing stays running for ever."""
    return provisioning_housekeeping.run()  # the module; this name is the task django-q2 runs


"""Unfinished work lives in Devpilot's tables, not in the broker (a transactional outbox).

The row that says "this must run" (a server's `next_run_at` or `action_due_at`, a sync's
`queued_run`/`queued_remove` or `pending_run_at`) is written in the same transaction as the
change that makes the work; the enqueue follows from it after the commit. A worker doing the
work holds a lease (devpilot/locks.py) that it renews while it works.

The broker may lose a task (Redis hands it to a worker and forgets it; a web process can die
between the commit and the enqueue; a worker can be killed with kill -9). `sweep`, scheduled
every minute, re-enqueues work that is due, was not picked up within one lease length, and has
no live lease. Every task checks its row first, so a task delivered twice runs once.
"""

import logging
from datetime import timedelta

from django.utils import timezone

logger = logging.getLogger("devpilot.outbox")


def slack() -> timedelta:
    """How long due work may wait in the queue before the sweeper sends it again."""
    from devpilot.locks import default_lease

    return default_lease()


def enqueue(func: str, *args) -> None:
    from django_q.tasks import async_task

    async_task(func, *args)


def run_later(name: str, func: str, args: tuple, when) -> None:
    """A one-off check at `when` (one row per name: a later call moves it). Replaces a sleep inside a task."""
    from django_q.models import Schedule

    Schedule.objects.update_or_create(name=name[:100], defaults={
        "func": func, "args": ", ".join(repr(a) for a in args), "schedule_type": Schedule.ONCE,
        "next_run": when, "repeats": 1})


def sweep() -> dict[str, int]:
    """Re-enqueue due work whose holder is gone (scheduled every minute)."""
    from provisioning import tasks as provisioning_tasks
    from syncs import tasks as sync_tasks

    found = {**provisioning_tasks.sweep(timezone.now() - slack()), **sync_tasks.sweep(timezone.now() - slack())}
    if any(found.values()):
        logger.warning("Sweeper re-enqueued lost work: %s", found)
    return found

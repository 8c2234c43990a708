"""Recurring tasks. Each app lists its own here; `manage.py setup_schedules` installs them.

Kept as data, so installing is idempotent and a changed interval is applied on the next run.
"""

SCHEDULES = [
    # (task function path, minutes between runs)
    ("devpilot.tasks.heartbeat", 1),
    # Re-enqueues work whose worker died or whose task the broker lost (devpilot/outbox.py).
    ("devpilot.outbox.sweep", 1),
    ("syncs.tasks.housekeeping", 30),
    # Folder history retention (DEVPILOT_SNAPSHOT_RETENTION_DAYS; a no-op when it keeps everything).
    ("devpilot.snapshots.housekeeping", 60),
    ("provisioning.tasks.reconcile_all", 5),
    # Bounds are tens of minutes (provisioning/housekeeping.py); a few minutes late is fine, never is not.
    ("provisioning.tasks.housekeeping", 2),
    # The agent's channel: a command past its bound ends failed; metrics averaged and pruned; alerts judged.
    ("provisioning.commands.expire_overdue", 1),
    ("provisioning.metrics.compact", 5),
    ("provisioning.alerts.evaluate", 1),
]


def install():
    from django_q.models import Schedule

    for func, minutes in SCHEDULES:
        Schedule.objects.update_or_create(
            name=func,
            defaults={"func": func, "schedule_type": Schedule.MINUTES, "minutes": minutes, "repeats": -1},
        )
    return len(SCHEDULES)

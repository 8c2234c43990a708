"""django-q2's `qcluster`, with scheduled checks started within a second of their time.

django-q2's sentinel looks at the Schedule table every 30 seconds, so a one-off check
(`devpilot.outbox.run_later`: auto-sync debounce, retries, Droplet and deployment polls) could
start up to 30 s late. The cluster's main process otherwise only waits for its sentinel; here it
runs the same scheduler function every TICK seconds while it waits. That is safe beside the
sentinel's own call and other clusters': the scheduler takes due rows with SELECT ... FOR UPDATE
inside a transaction and moves each one on before it commits.

It overrides django-q2's command because devpilot comes before django_q in INSTALLED_APPS.
"""

import logging

from django.db import close_old_connections
from django_q.cluster import Cluster
from django_q.management.commands.qcluster import Command as DjangoQCommand
from django_q.scheduler import scheduler

TICK = 1.0  # seconds between looks at due schedules

logger = logging.getLogger("devpilot.worker")


def start_due_schedules() -> None:
    try:
        scheduler()
    except Exception:  # the database went away for a moment: the next tick tries again
        logger.exception("Looking for due schedules failed")
        close_old_connections()


class Command(DjangoQCommand):
    help = "Starts the Devpilot worker: a django-q2 cluster whose schedules start within a second."

    def handle(self, *args, **options):
        if options.get("run_once") or options.get("cluster_name"):
            return super().handle(*args, **options)
        cluster = Cluster()
        cluster.start()
        # SIGTERM/SIGINT reach the cluster's handler, which stops the sentinel; then this loop ends.
        while cluster.sentinel is not None and cluster.sentinel.is_alive():
            start_due_schedules()
            cluster.sentinel.join(TICK)

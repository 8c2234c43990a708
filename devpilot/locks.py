"""Named leases in the database: one holder at a time, across workers and machines.

A lease is taken with one conditional UPDATE, so no transaction stays open while the
holder talks to DigitalOcean (on SQLite an open write transaction would block every other
writer). A live holder renews its lease every third of its length from a small thread; a
holder that dies (kill -9, power loss) stops renewing, so its lease ends within one length
(DEVPILOT_LEASE_SECONDS) and the sweeper (devpilot/outbox.py) hands its work to another worker.
"""

import threading
import time
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connections
from django.utils import timezone

from devpilot.models import Lock

EXPIRED = datetime(2000, 1, 1, tzinfo=UTC)


class LockBusy(Exception):
    """Someone else held the lease for longer than we were willing to wait."""


def default_lease() -> timedelta:
    return timedelta(seconds=getattr(settings, "DEVPILOT_LEASE_SECONDS", 30))


def is_live(name: str) -> bool:
    """Someone holds this lease now (and, renewing it, is alive)."""
    return Lock.objects.filter(name=name, expires_at__gt=timezone.now()).exists()


def live_names(prefix: str) -> set[str]:
    return set(Lock.objects.filter(name__startswith=prefix, expires_at__gt=timezone.now()).values_list("name", flat=True))


class _Renewer(threading.Thread):
    """Extends the lease while its holder works; stops with the holder (or dies with its process)."""

    def __init__(self, name, holder, lease):
        super().__init__(daemon=True, name=f"lease {name}")
        self.lock_name, self.holder, self.lease = name, holder, lease
        self.stopped = threading.Event()

    def run(self):
        try:
            while not self.stopped.wait(self.lease.total_seconds() / 3):
                Lock.objects.filter(name=self.lock_name, holder=self.holder).update(
                    expires_at=timezone.now() + self.lease)
        finally:
            connections.close_all()  # this thread's own connection

    def stop(self):
        self.stopped.set()
        if self.is_alive():
            self.join(timeout=5)


@contextmanager
def held(name, *, lease=None, wait=120.0, poll=0.2, sleep=time.sleep, renew=True):
    lease = lease or default_lease()
    holder = uuid.uuid4().hex
    try:
        Lock.objects.get_or_create(name=name, defaults={"expires_at": EXPIRED})
    except IntegrityError:
        pass  # created at the same moment by another process
    deadline = time.monotonic() + wait
    while True:
        now = timezone.now()
        if Lock.objects.filter(name=name, expires_at__lte=now).update(holder=holder, expires_at=now + lease):
            break
        if time.monotonic() >= deadline:
            raise LockBusy(f"{name} is busy.")
        sleep(poll)
    renewer = _Renewer(name, holder, lease) if renew else None
    if renewer:
        renewer.start()
    try:
        yield
    finally:
        if renewer:
            renewer.stop()
        Lock.objects.filter(name=name, holder=holder).update(expires_at=EXPIRED)

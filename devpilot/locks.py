"""Named leases in the database: one holder at a time, across workers and machines.

A lease is taken with one conditional UPDATE, so no transaction stays open while the
holder talks to DigitalOcean (on SQLite an open write transaction would block every other
writer). A holder that dies frees the lease when it expires.
"""

import time
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from django.db import IntegrityError
from django.utils import timezone

from devpilot.models import Lock

EXPIRED = datetime(2000, 1, 1, tzinfo=UTC)


class LockBusy(Exception):
    """Someone else held the lease for longer than we were willing to wait."""


@contextmanager
def held(name, *, lease=timedelta(minutes=5), wait=120.0, poll=0.2, sleep=time.sleep):
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
    try:
        yield
    finally:
        Lock.objects.filter(name=name, holder=holder).update(expires_at=EXPIRED)

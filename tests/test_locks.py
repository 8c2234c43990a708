from datetime import timedelta

import pytest
from django.utils import timezone

from devpilot import locks
from devpilot.models import Lock


def test_a_lease_has_one_holder_at_a_time(db):
    with locks.held("app:1"):
        with pytest.raises(locks.LockBusy):
            with locks.held("app:1", wait=0):
                pass
        with locks.held("app:2", wait=0):  # other names are independent
            pass
    with locks.held("app:1", wait=0):  # released on exit
        pass


def test_a_lease_is_released_when_the_holder_fails(db):
    with pytest.raises(RuntimeError):
        with locks.held("app:1"):
            raise RuntimeError
    with locks.held("app:1", wait=0):
        pass


def test_a_dead_holders_lease_expires(db):
    with locks.held("app:1"):
        Lock.objects.filter(name="app:1").update(expires_at=timezone.now() - timedelta(seconds=1))
        with locks.held("app:1", wait=0):  # the first holder "died": its lease ran out
            pass


def test_waiting_for_a_lease(db):
    waits = []

    def sleep(seconds):
        waits.append(seconds)
        Lock.objects.filter(name="app:1").update(expires_at=timezone.now())  # the holder finishes

    with locks.held("app:1"):
        with locks.held("app:1", wait=5, sleep=sleep):
            pass
    assert len(waits) == 1

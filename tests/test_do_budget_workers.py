"""The call budget respected with several workers: two qcluster processes on PostgreSQL share one token.

Thirty connections holding one token are checked by two real clusters (two workers each) against the
fake DigitalOcean run as a local HTTP server, with the budget at 20 calls a minute through the
environment and the fake refusing (429) past 20 in any 60 s. Twenty checks go at once; the rest
find the budget spent, move themselves to its reset and finish a minute later. This process also
runs django-q2's scheduler every second, so a moved check starts on time whatever the clusters' pace.
"""

import time

import pytest
from django.conf import settings
from django.db import connection as db

from bench.recovery import Cluster, worker_env
from connections.models import Connection
from devpilot import outbox
from tests.conftest import GOOD_DO_TOKEN, worker_database_url

pytestmark = [pytest.mark.worker, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
LIMIT = 20
CHECKS = 30


def test_the_budget_holds_across_two_clusters(workspace, fake_do_server, broker, tmp_path):
    from django_q.brokers import get_broker
    from django_q.models import Task
    from django_q.scheduler import scheduler

    fake = fake_do_server
    fake.per_minute = LIMIT  # one call too many in any 60 s would be answered 429
    received = []
    answer = fake.handle

    def handle(method, url, headers, body):
        received.append(time.time())
        return answer(method, url, headers, body)

    fake.handle = handle
    ids = [str(Connection.objects.create(workspace=workspace, name=f"do-{i}", token=GOOD_DO_TOKEN,
                                         status="unreachable").pk) for i in range(CHECKS)]
    for connection_id in ids:
        outbox.enqueue("connections.tasks.check", connection_id)
    db.close()

    env = {**worker_env(worker_database_url(), settings.DIGITALOCEAN_API_URL, broker),
           "DEVPILOT_DO_CALLS_PER_MINUTE": str(LIMIT)}
    log = tmp_path / "clusters.log"
    clusters = [Cluster(env, log), Cluster(env, log)]

    def ok_results():  # a task's result is saved by its cluster just after the task has set its connection
        return [task.result for task in Task.objects.filter(func="connections.tasks.check")].count("ok")

    try:
        deadline = time.monotonic() + 120  # 65-75 s when all is well (the window frees 60-70 s after the first calls)
        while time.monotonic() < deadline:
            scheduler(broker=get_broker())
            # Both, before the clusters are killed: a kill between the two once lost 2 of the 30 results.
            if Connection.objects.filter(status="ok").count() == CHECKS and ok_results() == CHECKS:
                break
            db.close()
            time.sleep(1)
        assert Connection.objects.filter(status="ok").count() == CHECKS, list(
            Connection.objects.values_list("name", "status", "last_error"))
    except AssertionError:
        print(log.read_text(errors="replace")[-20000:])
        raise
    finally:
        for cluster in clusters:
            cluster.kill()  # a graceful stop is not what is tested here

    assert [status for _, _, status, _ in fake.answers if status != 200] == []  # no 429 reached DigitalOcean
    busiest = max(sum(1 for t in received if start <= t < start + 60) for start in received)
    assert busiest <= LIMIT
    assert len(received) == CHECKS  # no call was wasted on a refusal
    assert received[-1] - received[0] > 60  # the work was spread, not dropped
    results = [task.result for task in Task.objects.filter(func="connections.tasks.check")]
    assert results.count("ok") == CHECKS and results.count("rate limited") >= CHECKS - LIMIT

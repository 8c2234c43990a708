"""Each DigitalOcean token's call budget (connections/budget.py), shared through the database."""

import threading
import time
from datetime import UTC, datetime

import pytest
import responses
from django.db import connection as database
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from connections import budget, digitalocean, tasks
from connections.budget import CallBudget, rate_key_for
from connections.digitalocean import DigitalOceanClient, RateLimited
from connections.models import CallBucket, Connection, RateLimitState

API = "https://api.digitalocean.test"
TOKEN = "dop_v1_" + "a" * 64
OTHER_TOKEN = "dop_v1_" + "b" * 64


@pytest.fixture
def clock(monkeypatch):
    """The budget's clock, starting 1 s into the next slot (a few seconds ahead); sleeping moves it on."""
    now = [(int(time.time()) // budget.SLOT_SECONDS + 1) * budget.SLOT_SECONDS + 1.0]
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    monkeypatch.setattr(budget.time, "time", lambda: now[0])
    monkeypatch.setattr(digitalocean, "_sleep", sleep)

    class Clock:
        def advance(self, seconds):
            now[0] += seconds

        @property
        def now(self):
            return now[0]

        @property
        def slot(self):
            return int(now[0]) // budget.SLOT_SECONDS

    clock = Clock()
    clock.slept = slept
    return clock


@pytest.fixture
def account():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.get(f"{API}/v2/account", json={"account": {"uuid": "u1"}})
        yield rsps


@pytest.fixture
def limits(settings):
    def set_limits(minute=240, hour=4800):
        settings.DEVPILOT_DO_CALLS_PER_MINUTE = minute
        settings.DEVPILOT_DO_CALLS_PER_HOUR = hour

    return set_limits


def at(slot):
    return datetime.fromtimestamp(slot * budget.SLOT_SECONDS, tz=UTC)


def test_calls_are_counted_per_token(db, clock, account):
    for _ in range(3):
        DigitalOceanClient(TOKEN).get_account()
    DigitalOceanClient(OTHER_TOKEN).get_account()
    assert budget.usage(rate_key_for(TOKEN)).last_minute == 3
    assert budget.usage(rate_key_for(OTHER_TOKEN)).last_hour == 1


def test_connections_with_the_same_token_share_one_budget(workspace, clock, account, limits):
    limits(minute=3)
    first = Connection.objects.create(workspace=workspace, name="first", token=TOKEN)
    second = Connection.objects.create(workspace=workspace, name="second", token=TOKEN)
    first.client().get_account()
    first.client().get_account()
    second.client().get_account()
    with pytest.raises(RateLimited) as raised:
        second.client().get_account()
    assert len(account.calls) == 3
    assert "240" not in raised.value.message and "3 DigitalOcean calls a minute" in raised.value.message
    assert first.rate_key == second.rate_key == rate_key_for(TOKEN)


def test_past_the_minute_limit_a_call_waits_when_the_window_frees_soon(db, clock, account, limits):
    limits(minute=2)
    first_slot = clock.slot
    DigitalOceanClient(TOKEN).get_account()
    DigitalOceanClient(TOKEN).get_account()
    clock.advance(60 + 8 - 1)  # 2 s before the first slot leaves the 70-s window
    DigitalOceanClient(TOKEN).get_account()
    assert len(account.calls) == 3
    assert len(clock.slept) == 1 and 2.0 <= clock.slept[0] <= 2.25
    assert clock.now >= at(first_slot + budget.MINUTE_SLOTS).timestamp()


def test_past_the_minute_limit_a_call_further_from_the_reset_raises(db, clock, account, limits):
    limits(minute=2)
    first_slot = clock.slot
    DigitalOceanClient(TOKEN).get_account()
    clock.advance(20)
    DigitalOceanClient(TOKEN).get_account()
    with pytest.raises(RateLimited) as raised:
        DigitalOceanClient(TOKEN).get_account()
    assert raised.value.reset_at == at(first_slot + budget.MINUTE_SLOTS)  # then the first call leaves the window
    assert "2 DigitalOcean calls a minute" in raised.value.message
    assert len(account.calls) == 2 and clock.slept == []


def test_no_60_second_window_holds_more_than_the_limit(db, clock, limits):
    """Calls spread over the slots' edges: whatever 60 s one looks at, never more than the limit."""
    limits(minute=5)
    taken = []
    take = CallBudget("k")
    for _ in range(400):  # 200 s in steps of 0.5 s
        if take.take() is None:
            taken.append(clock.now)
        clock.advance(0.5)
    busiest = max(sum(1 for t in taken if start <= t < start + 60) for start in taken)
    assert busiest == 5
    assert len(taken) >= 15  # and the budget is used: one limit per 60-70 s


def test_the_hour_limit(db, clock, account, limits):
    limits(minute=240, hour=5)
    first_slot = clock.slot
    for _ in range(5):
        DigitalOceanClient(TOKEN).get_account()
    clock.advance(30 * 60)
    with pytest.raises(RateLimited) as raised:
        DigitalOceanClient(TOKEN).get_account()
    assert "5 DigitalOcean calls an hour" in raised.value.message
    assert raised.value.reset_at == at(first_slot + budget.HOUR_SLOTS)
    clock.advance(31 * 60)
    DigitalOceanClient(TOKEN).get_account()
    assert len(account.calls) == 6


def test_a_web_request_waits_only_within_its_time_budget(db, clock, account, limits):
    limits(minute=1)
    DigitalOceanClient(TOKEN).get_account()
    clock.advance(60 + 8 - 1 - 2)  # the window frees in 4 s
    with digitalocean.web_request_budget(4.0), pytest.raises(RateLimited):
        DigitalOceanClient(TOKEN).get_account()
    assert clock.slept == []
    with digitalocean.web_request_budget(8.0):
        DigitalOceanClient(TOKEN).get_account()
    assert len(clock.slept) == 1 and len(account.calls) == 2


@responses.activate
def test_a_429_from_digitalocean_holds_every_client_of_the_token_off(db, clock):
    responses.get(f"{API}/v2/account", status=429, json={"id": "too_many_requests", "message": "API Rate limit exceeded."},
                  headers={"retry-after": "120"})
    with pytest.raises(RateLimited) as raised:
        DigitalOceanClient(TOKEN).get_account()
    assert 110 < raised.value.retry_after <= 120
    with pytest.raises(RateLimited) as again:
        DigitalOceanClient(TOKEN).get_account()  # another worker: not sent at all
    assert len(responses.calls) == 1
    assert abs((again.value.reset_at - raised.value.reset_at).total_seconds()) < 1
    assert RateLimitState.objects.get(rate_key=rate_key_for(TOKEN)).remaining == 0


@responses.activate
def test_a_short_429_waits_then_sends_once_more(db, clock):
    responses.get(f"{API}/v2/account", status=429, json={"id": "too_many_requests", "message": "x"},
                  headers={"retry-after": "2"})
    responses.get(f"{API}/v2/account", json={"account": {"uuid": "u1"}})
    assert DigitalOceanClient(TOKEN).get_account() == {"uuid": "u1"}
    assert len(responses.calls) == 2 and len(clock.slept) == 1
    assert budget.usage(rate_key_for(TOKEN)).last_minute == 2  # a refused request counts too


@responses.activate
def test_digitalocean_saying_few_calls_are_left_spreads_them_and_a_plentiful_answer_lifts_it(db, clock):
    reset = int(clock.now) + 8
    responses.get(f"{API}/v2/account", json={"account": {}}, headers={"ratelimit-remaining": "3",
                                                                      "ratelimit-reset": str(reset)})
    DigitalOceanClient(TOKEN).get_account()
    assert clock.slept == []
    responses.replace(responses.GET, f"{API}/v2/account", json={"account": {}},
                      headers={"ratelimit-remaining": "4000", "ratelimit-reset": str(reset)})
    DigitalOceanClient(TOKEN).get_account()  # paced: a quarter of the 8 s left
    assert len(clock.slept) == 1 and 1.5 < clock.slept[0] <= 2.0
    DigitalOceanClient(TOKEN).get_account()
    assert len(clock.slept) == 1  # the answer said 4,000 are left: no more pacing


def test_a_normal_call_costs_one_query(db, clock):
    clock.advance(budget.SLOT_SECONDS * ((1 - clock.slot) % budget.PRUNE_EVERY))  # not a slot that prunes
    take = CallBudget(rate_key_for(TOKEN))
    with CaptureQueriesContext(database) as first:
        assert take.take() is None
    with CaptureQueriesContext(database) as next_:
        assert take.take() is None
    assert len(next_.captured_queries) == 1
    writes = [q["sql"] for q in first.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert len(writes) <= 4, writes  # the slot's first call opens it


def test_old_slots_are_pruned(db, clock):
    CallBucket.objects.create(rate_key="old", slot=clock.slot - 800, calls=9)
    CallBucket.objects.create(rate_key="recent", slot=clock.slot - 100, calls=9)
    clock.advance(budget.SLOT_SECONDS * (budget.PRUNE_EVERY - clock.slot % budget.PRUNE_EVERY))
    CallBudget("k").take()
    assert set(CallBucket.objects.values_list("rate_key", flat=True)) == {"recent", "k"}


def test_the_connection_page_shows_the_tokens_calls(workspace, owner, client_for, clock, account):
    connection = Connection.objects.create(workspace=workspace, name="do", token=TOKEN)
    twin = Connection.objects.create(workspace=workspace, name="same token", token=TOKEN)
    connection.client().get_account()
    twin.client().get_account()
    clock.advance(90)
    twin.client().get_account()
    page = client_for(owner).get(reverse("connection_detail", kwargs={"ws": workspace.slug, "connection_id": connection.pk}))
    assert "3 of 4,800 in the last hour (1 of 240 in the last minute)" in page.content.decode()


def test_the_token_never_appears_in_the_budget_tables(workspace, clock, account):
    connection = Connection.objects.create(workspace=workspace, name="do", token=TOKEN)
    connection.client().get_account()
    CallBudget(connection.rate_key).exhaust(datetime.now(UTC))
    with database.cursor() as cursor:
        for table in (CallBucket._meta.db_table, RateLimitState._meta.db_table):
            cursor.execute(f"SELECT * FROM {table}")  # noqa: S608 (a model's own table name)
            rows = cursor.fetchall()
            assert rows and TOKEN not in repr(rows) and "a" * 64 not in repr(rows)
    assert set(CallBucket.objects.values_list("rate_key", flat=True)) == {rate_key_for(TOKEN)}


def test_the_check_task_moves_itself_to_the_reset(workspace, clock, account, limits):
    from django_q.models import Schedule

    limits(minute=1)
    connection = Connection.objects.create(workspace=workspace, name="do", token=TOKEN, status="unreachable")
    assert tasks.check(str(connection.pk)) == "ok"
    assert tasks.check(str(connection.pk)) == "rate limited"
    schedule = Schedule.objects.get(func="connections.tasks.check")
    assert schedule.next_run == at(int(clock.now) // budget.SLOT_SECONDS + budget.MINUTE_SLOTS)
    connection.refresh_from_db()
    assert connection.status == "ok" and connection.last_checked_at


@pytest.mark.django_db(transaction=True)
def test_workers_racing_for_the_last_calls_take_exactly_the_limit(requires_postgres, limits):
    limits(minute=30)
    granted = []

    def worker():
        try:
            for _ in range(10):
                if CallBudget("race").take() is None:
                    granted.append(1)
        finally:
            database.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(granted) == 30


def test_testing_credentials_shows_the_figure_too(workspace, owner, client_for, fake_do):
    connection = Connection.objects.create(workspace=workspace, name="do", token="dop_v1_good")
    url = reverse("connection_test", kwargs={"ws": workspace.slug, "connection_id": connection.pk})
    page = client_for(owner).post(url, HTTP_HX_REQUEST="true")
    assert "The token works." in page.content.decode()
    assert "of 4,800 in the last hour" in page.content.decode()

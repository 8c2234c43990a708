import logging
import threading
import time
from datetime import timedelta

import pytest
import requests
import responses
from django.utils import timezone

from connections import digitalocean
from connections.digitalocean import (
    DigitalOceanClient, InvalidToken, MissingScope, NotFound, RateLimited, Rejected, Unavailable,
)
from connections.models import RateLimitState

API = "https://api.digitalocean.test"
TOKEN = "dop_v1_" + "f" * 64
APP_ID = "6d3c6a2e-5a7b-4a60-9d38-2f6b1f1d2c11"


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    slept = []
    monkeypatch.setattr(digitalocean, "_sleep", slept.append)
    return slept


@pytest.fixture
def client(db):
    return DigitalOceanClient(TOKEN, rate_key="conn-1")


def error(status, id_, message, request_id="req-123", headers=None):
    return {"status": status, "json": {"id": id_, "message": message, "request_id": request_id},
            "headers": headers or {}}


@responses.activate
def test_sends_the_token_timeouts_and_a_user_agent(client):
    responses.get(f"{API}/v2/account", json={"account": {"uuid": "u1", "email": "a@b.c"}})
    assert client.get_account()["uuid"] == "u1"
    sent = responses.calls[0].request
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"
    assert sent.headers["User-Agent"].startswith("Devpilot/")
    assert client.calls == [("GET", "/v2/account", 200)]


@responses.activate
def test_the_base_url_comes_from_settings_at_call_time(client, settings):
    settings.DIGITALOCEAN_API_URL = "http://127.0.0.1:8123"
    responses.get("http://127.0.0.1:8123/v2/account", json={"account": {"uuid": "local"}})
    assert client.get_account()["uuid"] == "local"


@pytest.mark.parametrize("status,body,cls,words", [
    (401, ("unauthorized", "Unable to authenticate you."), InvalidToken, "wrong, expired or revoked"),
    (403, ("forbidden", "You are not authorized to perform this operation."), MissingScope, "not allowed to update apps. It needs the app:update scope"),
    (404, ("not_found", "The resource you were accessing could not be found."), NotFound, "could not be found"),
    (422, ("unprocessable_entity", "Size is not available in this region."), Rejected, "Size is not available in this region."),
    (500, ("server_error", "Server Error"), Unavailable, "DigitalOcean had an error (500)"),
])
@responses.activate
def test_each_error_is_typed_with_a_message_for_people(client, status, body, cls, words):
    responses.put(f"{API}/v2/apps/{APP_ID}", **error(status, *body))
    with pytest.raises(cls) as raised:
        client.update_app(APP_ID, {"name": "x"})
    assert words in raised.value.message
    assert raised.value.request_id == "req-123"
    assert TOKEN not in str(raised.value) and TOKEN not in repr(raised.value.__dict__)


@responses.activate
def test_request_id_falls_back_to_the_header(client):
    responses.get(f"{API}/v2/apps/{APP_ID}", status=404, body="", headers={"x-request-id": "hdr-9"})
    with pytest.raises(NotFound) as raised:
        client.get_app(APP_ID)
    assert raised.value.request_id == "hdr-9"


@responses.activate
def test_reads_are_retried_on_5xx_then_succeed(client, no_sleep):
    responses.get(f"{API}/v2/regions", status=503, json={"id": "service_unavailable", "message": "x"})
    responses.get(f"{API}/v2/regions", json={"regions": [{"slug": "nyc3"}], "links": {}})
    assert client.list_regions() == [{"slug": "nyc3"}]
    assert len(responses.calls) == 2 and len(no_sleep) == 1


@responses.activate
def test_reads_give_up_after_a_few_attempts(client):
    responses.get(f"{API}/v2/account", body=requests.ConnectionError("refused"))
    with pytest.raises(Unavailable, match="could not be reached"):
        client.get_account()
    assert len(responses.calls) == digitalocean.MAX_ATTEMPTS


@pytest.mark.parametrize("failure", [
    {"status": 500, "json": {"id": "server_error", "message": "boom"}},
    {"body": requests.ReadTimeout("slow")},
])
@responses.activate
def test_a_post_is_never_repeated(client, failure):
    responses.post(f"{API}/v2/droplets", **failure)
    with pytest.raises(Unavailable) as raised:
        client.create_droplet(name="web-1", region="nyc3", size="s-1vcpu-1gb", image="ubuntu-24-04-x64")
    assert raised.value.request_sent is True
    assert len(responses.calls) == 1


@responses.activate
def test_a_short_429_waits_and_retries(client, no_sleep):
    responses.get(f"{API}/v2/account", **error(429, "too_many_requests", "API Rate limit exceeded.", headers={"retry-after": "2"}))
    responses.get(f"{API}/v2/account", json={"account": {"uuid": "u"}})
    assert client.get_account() == {"uuid": "u"}
    assert 2 <= no_sleep[0] <= 2.3


@responses.activate
def test_a_long_429_raises_with_the_reset_time(client):
    reset = int(time.time()) + 1800
    responses.get(f"{API}/v2/account", **error(429, "too_many_requests", "API Rate limit exceeded.",
                                               headers={"ratelimit-reset": str(reset), "ratelimit-remaining": "0"}))
    with pytest.raises(RateLimited) as raised:
        client.get_account()
    assert int(raised.value.reset_at.timestamp()) == reset
    assert 1700 < raised.value.retry_after <= 1800
    assert len(responses.calls) == 1


@responses.activate
def test_pagination_follows_next_links_on_our_origin_only(client, caplog):
    responses.get(f"{API}/v2/apps", match=[responses.matchers.query_param_matcher({"per_page": "200"})],
                  json={"apps": [{"id": "1"}], "links": {"pages": {"next": f"{API}/v2/apps?page=2&per_page=200"}}})
    responses.get(f"{API}/v2/apps", match=[responses.matchers.query_param_matcher({"page": "2", "per_page": "200"})],
                  json={"apps": [{"id": "2"}], "links": {"pages": {"next": "https://evil.example/v2/apps?page=3"}}})
    assert [a["id"] for a in client.list_apps()] == ["1", "2"]
    assert len(responses.calls) == 2
    assert "another origin" in caplog.text


@responses.activate
def test_pagination_stops_at_the_page_cap(client):
    responses.get(f"{API}/v2/droplets", json={"droplets": [{"id": 1}], "links": {"pages": {"next": f"{API}/v2/droplets?page=2"}}})
    with pytest.raises(Rejected, match="more than 3 pages"):
        client.paginate("/v2/droplets", "droplets", max_pages=3)
    assert len(responses.calls) == 3


@responses.activate
def test_logs_say_what_happened_but_never_the_token_or_bodies(client, caplog):
    caplog.set_level(logging.DEBUG)
    responses.put(f"{API}/v2/apps/{APP_ID}", json={"app": {"id": APP_ID}}, headers={"x-request-id": "r-1"})
    client.update_app(APP_ID, {"envs": [{"key": "K", "value": "plaintext-secret-value"}]})
    assert f"PUT /v2/apps/{APP_ID} 200" in caplog.text and "request_id=r-1" in caplog.text
    assert TOKEN not in caplog.text and "plaintext-secret-value" not in caplog.text


@responses.activate
def test_rate_limit_headers_are_shared_between_clients_of_one_connection(db, no_sleep):
    reset = int(time.time()) + 600
    responses.get(f"{API}/v2/account", json={"account": {}},
                  headers={"ratelimit-remaining": "0", "ratelimit-reset": str(reset), "ratelimit-limit": "5000"})
    DigitalOceanClient(TOKEN, rate_key="shared").get_account()
    assert RateLimitState.objects.get(rate_key="shared").remaining == 0
    other_worker = DigitalOceanClient(TOKEN, rate_key="shared")
    with pytest.raises(RateLimited):
        other_worker.get_account()
    assert len(responses.calls) == 1  # the second client never hit DigitalOcean
    unrelated = DigitalOceanClient(TOKEN, rate_key="another-connection")
    unrelated.get_account()
    assert len(responses.calls) == 2


@responses.activate
def test_a_nearly_spent_budget_spreads_requests_out(db, no_sleep):
    RateLimitState.objects.create(rate_key="k", remaining=3, reset_at=timezone.now() + timedelta(seconds=4))
    responses.get(f"{API}/v2/account", json={"account": {}})
    DigitalOceanClient(TOKEN, rate_key="k").get_account()
    assert 0.5 < no_sleep[0] <= 1.0  # about a quarter of the 4 seconds left


@pytest.mark.django_db(transaction=True)
def test_pacing_holds_across_threads_sharing_the_database(no_sleep):
    reset = int(time.time()) + 600
    outcomes = []
    with responses.RequestsMock() as rsps:
        rsps.get(f"{API}/v2/account", json={"account": {}},
                 headers={"ratelimit-remaining": "0", "ratelimit-reset": str(reset)})
        DigitalOceanClient(TOKEN, rate_key="threads").get_account()

        def worker():
            try:
                DigitalOceanClient(TOKEN, rate_key="threads").get_account()
                outcomes.append("sent")
            except RateLimited:
                outcomes.append("held back")
            finally:
                from django.db import connection
                connection.close()

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert outcomes == ["held back"] * 4
        assert len(rsps.calls) == 1


@responses.activate
def test_a_web_request_waits_for_digitalocean_only_within_its_budget(client, monkeypatch):
    """In a web request retries stop when the budget would be passed; a task keeps the full policy."""
    now = [1000.0]
    monkeypatch.setattr(digitalocean.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(digitalocean, "_sleep", lambda seconds: now.__setitem__(0, now[0] + seconds))
    monkeypatch.setattr(client, "_backoff", lambda attempt: 3.0)
    responses.get(f"{API}/v2/regions", status=503, json={"id": "service_unavailable", "message": "x"})
    with digitalocean.web_request_budget(5.0), pytest.raises(Unavailable):
        client.list_regions()
    assert len(responses.calls) == 2  # one retry fitted in 5 s, the next would not
    responses.calls.reset()
    with pytest.raises(Unavailable):
        client.list_regions()
    assert len(responses.calls) == digitalocean.MAX_ATTEMPTS


@responses.activate
def test_a_web_request_past_its_budget_sends_nothing_more(client, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(digitalocean.time, "monotonic", lambda: now[0])
    with digitalocean.web_request_budget(5.0):
        now[0] += 5.0
        with pytest.raises(Unavailable, match="did not answer within 5 seconds"):
            client.get_account()
    assert len(responses.calls) == 0


@responses.activate
def test_redirects_are_never_followed(client):
    responses.get(f"{API}/v2/account", status=302, headers={"Location": "https://elsewhere.example/steal"})
    with pytest.raises(Unavailable, match="redirect"):
        client.get_account()
    assert [call.request.url for call in responses.calls] == [f"{API}/v2/account"]


@responses.activate
@pytest.mark.parametrize("call", [
    lambda c: c.get_app("../account"), lambda c: c.update_app("../account", {}),
    lambda c: c.get_droplet("1?tag_name=devpilot"), lambda c: c.delete_droplet("../../account"),
    lambda c: c.droplet_action("1/../../account", "reboot"), lambda c: c.get_action("x"),
    lambda c: c.get_firewall("../droplets"), lambda c: c.delete_firewall("1"),
    lambda c: c.get_ssh_key("../../account"),
], ids=["get_app", "update_app", "get_droplet", "delete_droplet", "droplet_action", "get_action", "get_firewall",
        "delete_firewall", "get_ssh_key"])
def test_path_like_ids_never_reach_another_endpoint(client, call):
    with pytest.raises(digitalocean.Rejected, match="is not a DigitalOcean id"):
        call(client)
    assert len(responses.calls) == 0

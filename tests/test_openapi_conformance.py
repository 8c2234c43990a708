"""Devpilot's requests and the fake's answers follow DigitalOcean's published API description."""

import pytest

from connections import services as connections
from connections.digitalocean import DigitalOceanClient
from devpilot import secrets
from syncs import engine
from syncs.models import Sync
from tests.openapi import check_answer, check_request


@pytest.fixture
def traffic(workspace, fake_do, monkeypatch):
    """A realistic session: connect, list apps, sync (create, update, delete), fail a few ways."""
    from connections import digitalocean

    monkeypatch.setattr(digitalocean, "_sleep", lambda s: None)
    dev = workspace.environments.get(slug="dev")
    connection = connections.connect(workspace, "digital-ocean", "main", "dop_v1_good")
    for i in range(25):
        fake_do.add_app(f"app-{i}")
    app = fake_do.add_app("web", envs=[{"key": "OLD", "value": "x", "type": "GENERAL", "scope": "RUN_TIME"}],
                          services=[{"name": "api", "envs": []}], databases=[{"name": "db", "engine": "PG"}])
    client = DigitalOceanClient("dop_v1_good")
    client.list_apps()
    client.list_regions()
    client.list_sizes()
    client.list_images()
    secrets.create_secret(dev, "/", "TOKEN", "secret")
    sync = Sync.objects.create(workspace=workspace, name="s", connection=connection, environment=dev,
                               folder=dev.folders.get(path="/"), app_id=app["id"], auto_sync_enabled=False)
    engine.run(sync, "manual")
    secrets.update_secret(dev.secrets.get(key="TOKEN"), value="rotated")
    engine.run(sync, "manual")
    engine.run(sync, "manual")
    missing = Sync.objects.create(workspace=workspace, name="gone", connection=connection, environment=dev,
                                  folder=dev.folders.get(path="/"), app_id="00000000-0000-0000-0000-000000000000")
    engine.run(missing, "manual")
    fake_do.fail_next("GET", r"/v2/account", status=500, times=10)
    connections.test(connection)
    return fake_do


def test_every_request_devpilot_sends_is_valid(traffic):
    assert len(traffic.requests) > 10
    for method, path, body in traffic.requests:
        check_request(method, path, body)


def test_every_answer_of_the_fake_is_valid(traffic):
    statuses = {status for _, _, status, _ in traffic.answers}
    assert {200, 404, 500} <= statuses
    for method, path, status, body in traffic.answers:
        check_answer(method, path, status, body)


def test_the_checker_catches_a_private_dialect():
    with pytest.raises(AssertionError, match="required"):
        check_request("PUT", "/v2/apps/abc", {"spec": {"region": "nyc"}})
    with pytest.raises(AssertionError):
        check_answer("GET", "/v2/account", 200, {"account": {"droplet_limit": "many"}})
    with pytest.raises(AssertionError, match="matches no path"):
        check_request("GET", "/v2/made-up", None)

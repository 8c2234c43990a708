"""Devpilot's requests and the fake's answers follow DigitalOcean's published API description."""

import pytest

from connections import services as connections
from connections.digitalocean import DigitalOceanClient
from devpilot import secrets
from provisioning.schemas import ServerDetails
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
    # Provisioning: keys, droplets, actions, firewalls, and their ugly cases.
    from provisioning import lifecycle, reconcile, services as servers, steps, tasks

    monkeypatch.setattr(tasks, "enqueue_provision", lambda server: None)
    monkeypatch.setattr(tasks, "enqueue_action", lambda *args: None)
    fake_do.boot_after_gets = 1
    fake_do.fail_next("POST", r"^/v2/droplets$", status="timeout", after_applying=True)
    server = servers.create(workspace, connection, ServerDetails(name="web-1", ipv6=True), region="nyc3",
                            size="s-1vcpu-1gb", image="ubuntu-24-04-x64")
    for _ in range(10):
        if steps.advance(server.pk) is None:
            break
        server.__class__.objects.filter(pk=server.pk).update(create_attempted_at=None)
    server.__class__.objects.filter(pk=server.pk).update(status="ready")
    lifecycle.run(server.pk, "power_off", sleep=lambda s: None)
    lifecycle.run(server.pk, "resize", "s-2vcpu-2gb", sleep=lambda s: None)
    # Day two: every new call, with its params as the pages and the API pass them.
    rules = [{"protocol": "tcp", "ports": "22", "sources": ["203.0.113.0/24"]}]
    for action, params in (("refresh", None), ("rename", {"name": "web-one"}), ("enable_backups", None),
                           ("snapshot", {"name": "nightly"}), ("firewall", {"rules": rules})):
        lifecycle.request(server.__class__.objects.get(pk=server.pk), action, params=params)
        lifecycle.run(server.pk, action, sleep=lambda s: None)
    server.refresh_from_db()
    (snapshot,) = servers.snapshots(server)
    client.list_snapshots()
    lifecycle.request(server.__class__.objects.get(pk=server.pk), "delete_snapshot",
                      params={"snapshot_id": str(snapshot["id"])})
    lifecycle.run(server.pk, "delete_snapshot", sleep=lambda s: None)
    reconcile.reconcile_all()
    lifecycle.run(server.pk, "destroy", sleep=lambda s: None)
    fake_do.tokens["dop_v1_good"]["account"]["droplet_limit"] = 0
    limited = servers.create(workspace, connection, ServerDetails(name="web-2"), region="nyc3",
                             size="s-1vcpu-1gb", image="ubuntu-24-04-x64")
    steps.advance(limited.pk)
    fake_do.fail_next("GET", r"/v2/account", status=500, times=10)
    connections.test(connection)
    return fake_do


def test_every_request_devpilot_sends_is_valid(traffic):
    assert len(traffic.requests) > 10
    for method, path, body in traffic.requests:
        check_request(method, path, body)


def test_every_answer_of_the_fake_is_valid(traffic):
    statuses = {status for _, _, status, _ in traffic.answers}
    assert {200, 201, 202, 204, 404, 422, 500} <= statuses
    paths = {path.split("/")[2] for _, path, _, _ in traffic.answers}
    assert {"account", "apps", "droplets", "firewalls", "actions", "regions", "sizes", "images", "snapshots"} <= paths
    for method, path, status, body in traffic.answers:
        if status != "timeout":  # no answer was sent at all
            check_answer(method, path, status, body)


def test_the_checker_catches_a_private_dialect():
    with pytest.raises(AssertionError, match="required"):
        check_request("PUT", "/v2/apps/abc", {"spec": {"region": "nyc"}})
    with pytest.raises(AssertionError):
        check_answer("GET", "/v2/account", 200, {"account": {"droplet_limit": "many"}})
    with pytest.raises(AssertionError, match="matches no path"):
        check_request("GET", "/v2/made-up", None)

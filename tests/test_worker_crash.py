"""kill -9 of a worker at several points, with the Redis broker and with the ORM broker: nothing is lost or stuck.

Two real qcluster processes on PostgreSQL provision servers against the fake DigitalOcean (a local HTTP
server); one cluster is killed during create, boot polling, the firewall, the agent wait, a resize and a
sync holding its app's lease, and a fresh one started each time. Leases are 5 s here (20 s in production).
The sweeper is installed as in production (every minute; devpilot's qcluster starts due schedules within a
second); this test also runs it every 5 s from the web side, so it takes about a minute per broker, not five.
"""

import base64
import re
import time

import pytest
from django.conf import settings
from django.db import connection as db
from django.utils import timezone

from bench.recovery import Cluster, worker_env
from connections.models import Connection
from devpilot import locks, outbox, secrets
from devpilot.schedules import install
from devpilot.schemas import parse
from provisioning import agents, lifecycle, services
from provisioning.models import Server, ServerStatus
from provisioning.schemas import ServerDetails
from syncs import services as sync_services
from syncs.models import Sync

from tests.conftest import worker_database_url

pytestmark = [pytest.mark.worker, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
FINAL = {ServerStatus.READY, ServerStatus.FAILED, ServerStatus.AGENT_MISSING, ServerStatus.DESTROYED}
SERVERS = 4
SYNCS = 3


def registration_token(fake, server):
    (droplet,) = [d for d in fake.droplets.values() if server.tag in d["tags"]]
    encoded = re.search(r"registration-token\n.*\n.*\n    content: (\S+)", droplet["_user_data"]).group(1)
    return base64.b64decode(encoded).decode()


def test_kill_9_at_every_point_loses_nothing(workspace, fake_do_server, broker, settings, tmp_path):
    fake = fake_do_server
    fake.boot_after_gets = 3  # polls at 5, 5 and 15 s: long enough to be killed while booting
    fake.action_seconds = 1
    fake.latency += [("POST", r"^/v2/(droplets|firewalls)$", 1.0), ("PUT", r"^/v2/apps/", 3.0),
                     ("POST", r"^/v2/droplets/\d+/actions$", 2.0)]
    install()  # the sweeper, every minute
    settings.DEVPILOT_LEASE_SECONDS = 5
    env = worker_env(worker_database_url(), settings.DIGITALOCEAN_API_URL, broker, lease=5)
    log = tmp_path / "clusters.log"
    clusters = [Cluster(env, log), Cluster(env, log)]
    try:
        _scenario(workspace, fake, clusters, env, log)
    except AssertionError:
        print("".join(log.read_text(errors="replace").splitlines(keepends=True)[-300:]))  # shown with the failure
        raise
    finally:
        for cluster in clusters:
            cluster.stop()


def _scenario(workspace, fake, clusters, env, log):
    connection = Connection.objects.create(workspace=workspace, name="do", token="dop_v1_good", account_uuid="acct-1")
    ids = [services.create(workspace, connection, parse(ServerDetails, {"name": f"web-{i}"}), region="nyc3",
                           size="s-1vcpu-1gb", image="ubuntu-24-04-x64").pk for i in range(SERVERS)]
    dev = workspace.environments.get(slug="dev")
    app = fake.add_app("shared", envs=[{"key": "FOREIGN", "value": "keep me", "type": "GENERAL"}])
    for i in range(SYNCS):
        secrets.create_folder(dev, "/", f"team{i}")
        secrets.bulk_import(dev, f"/team{i}", {"TOKEN": f"t{i}"}, overwrite=True)
    db.close()

    kills = []

    def kill(point):
        clusters.pop(0).kill()  # the older cluster: it has been taking tasks
        clusters.append(Cluster(env, log))
        kills.append(point)

    points = {"creating": ServerStatus.CREATING, "booting": ServerStatus.BOOTING,
              "firewall": ServerStatus.CONFIGURING, "agent wait": ServerStatus.INSTALLING_AGENT}
    resized = synced = False
    # About a minute when all is well; the deadline only
    # bounds a run that is really stuck, so it leaves a slow machine room.
    deadline = time.monotonic() + 360
    swept = 0.0
    while time.monotonic() < deadline:
        if time.monotonic() - swept > 5:
            outbox.sweep()
            swept = time.monotonic()
        servers = list(Server.objects.filter(pk__in=ids))
        statuses = {s.status for s in servers}
        for point, status in list(points.items()):  # one kill per point, at the first server seen there
            if status in statuses:
                kill(point)
                del points[point]
                break
        for server in servers:  # the agent calls in once its Droplet runs
            if server.status == ServerStatus.INSTALLING_AGENT and fake.droplets:
                agents.register(registration_token(fake, server), {})
        ready = [s for s in servers if s.status == ServerStatus.READY]
        if ready and not resized:
            resized = True
            lifecycle.request(ready[0], "resize", size="s-2vcpu-2gb")
            kill_when(lambda: locks.is_live(f"server-action:{ready[0].pk}"), kill, "resize")
        if resized and not synced and "resize" in kills:
            synced = True
            for i in range(SYNCS):
                sync_services.create(Sync(workspace=workspace, name=f"team-{i}", connection=connection,
                                          environment=dev, folder=dev.folders.get(path=f"/team{i}"),
                                          app_id=app["id"], app_name="shared", key_schema=f"TEAM{i}_{{{{secretKey}}}}"))
            kill_when(lambda: locks.is_live(f"digitalocean-app:{app['id']}"), kill, "sync holding its app lease")
        done_servers = all(s.status in FINAL and not s.action_in_progress for s in servers)
        done_syncs = synced and all(s in ("succeeded", "failed") for s in Sync.objects.values_list("sync_status", flat=True))
        if done_servers and done_syncs:
            break
        db.close()
        time.sleep(0.3)

    servers = list(Server.objects.filter(pk__in=ids))
    assert set(kills) >= {"resize", "sync holding its app lease"}, kills
    assert [(s.name, s.status, s.action_in_progress) for s in servers] == [
        (s.name, ServerStatus.READY, "") for s in servers], _state(servers)
    for server in servers:
        assert len([d for d in fake.droplets.values() if server.tag in d["tags"]]) == 1
        assert len([f for f in fake.firewalls.values() if f["name"] == server.firewall_name]) == 1
    resized_server = next(s for s in servers if s.size == "s-2vcpu-2gb")
    assert fake.droplets[resized_server.droplet_id]["size_slug"] == "s-2vcpu-2gb"
    assert fake.droplets[resized_server.droplet_id]["status"] == "active"
    assert sorted(Sync.objects.values_list("sync_status", flat=True)) == ["succeeded"] * SYNCS, list(
        Sync.objects.values_list("name", "sync_status", "last_sync_message"))
    envs = fake.app_envs(app["id"])
    assert set(envs) == {"FOREIGN"} | {f"TEAM{i}_TOKEN" for i in range(SYNCS)}
    assert {fake.plaintext(envs[f"TEAM{i}_TOKEN"]["value"]) for i in range(SYNCS)} == {f"t{i}" for i in range(SYNCS)}
    assert envs["FOREIGN"]["value"] == "keep me"
    assert len(kills) >= 5, kills


def _state(servers):
    """What a stuck run leaves behind, for the failure message."""
    from django_q.models import Schedule

    from devpilot.models import Lock

    return {"now": timezone.now(), "servers": [
        (s.name, s.status, s.status_message, s.next_run_at, s.action_in_progress, s.action_due_at,
         list(s.steps.values_list("key", "status", "attempts", "message"))) for s in servers],
        "leases": list(Lock.objects.values_list("name", "expires_at")),
        "schedules": list(Schedule.objects.values_list("name", "next_run", "repeats"))}


def kill_when(condition, kill, point, within=20):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():
            kill(point)
            return
        time.sleep(0.1)

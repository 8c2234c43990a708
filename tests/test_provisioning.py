import base64
import re
import subprocess
import sys
from datetime import timedelta

import pytest
from django.utils import timezone

from provisioning import agents, lifecycle, reconcile, services, steps, tasks
from provisioning.cloudinit import AGENT_PATH
from provisioning.models import Server, ServerStatus
from provisioning.schemas import ServerDetails
from devpilot.errors import Invalid
from devpilot.schemas import parse


@pytest.fixture(autouse=True)
def manual_tasks(monkeypatch):
    """Tests drive the state machine themselves, step by step."""
    queued = []
    monkeypatch.setattr(tasks, "enqueue_provision", queued.append)
    monkeypatch.setattr(tasks, "enqueue_action", lambda server, action, size=None: queued.append((action, size)))
    from connections import digitalocean

    monkeypatch.setattr(digitalocean, "_sleep", lambda s: None)
    return queued


def new_server(workspace, connection, name="web-1", **details):
    """A server created as the API and the wizard create one: through the ServerDetails schema."""
    return services.create(workspace, connection, parse(ServerDetails, {"name": name, **details}), region="nyc3",
                           size="s-1vcpu-1gb", image="ubuntu-24-04-x64")


def settle(server, rounds=30, before_round=None):
    """Run the machine as a worker would, skipping the waits."""
    for _ in range(rounds):
        if before_round:
            before_round()
        if steps.advance(server.pk) is None:
            break
        Server.objects.filter(pk=server.pk).update(create_attempted_at=timezone.now() - timedelta(minutes=5))
    server.refresh_from_db()
    return server


def registration_token(fake):
    (droplet,) = fake.droplets.values()
    encoded = re.search(r"path: /etc/devpilot/registration-token\n.*\n.*\n    content: (\S+)", droplet["_user_data"]).group(1)
    return base64.b64decode(encoded).decode()


def test_a_server_is_provisioned_step_by_step(workspace, connection, fake_do):
    server = settle(new_server(workspace, connection, ipv6=True))
    assert server.status == ServerStatus.INSTALLING_AGENT
    (droplet,) = fake_do.droplets.values()
    assert droplet["tags"] == ["devpilot", "devpilot:workspace:acme", f"devpilot:server:{server.pk}"]
    assert server.droplet_id == droplet["id"] and server.ipv4_public.startswith("203.0.113.")
    assert server.ipv4_private.startswith("10.10.") and server.ipv6_address.startswith("2001:db8::")
    (firewall,) = fake_do.firewalls.values()
    assert firewall["droplet_ids"] == [droplet["id"]]
    assert [r["ports"] for r in firewall["inbound_rules"]] == ["22", "80", "443"]
    assert len(fake_do.ssh_keys) == 1 and server.ssh_key_ids == [next(iter(fake_do.ssh_keys))]
    assert [s.status for s in server.steps.all()] == ["succeeded"] * 4 + ["running"]
    assert "#cloud-config" in droplet["_user_data"] and len(droplet["_user_data"]) < 64 * 1024


def test_the_agent_registers_and_the_server_becomes_ready(workspace, connection, fake_do, live_server, settings, tmp_path):
    settings.DEVPILOT_PUBLIC_URL = live_server.url
    server = settle(new_server(workspace, connection))
    state = tmp_path / "agent.json"
    result = subprocess.run([sys.executable, str(AGENT_PATH), "--allow-http", "--server", live_server.url,
                             "--token", registration_token(fake_do), "--state", str(state), "--once"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    credential = __import__("json").loads(state.read_text())["credential"]
    assert credential not in result.stderr and "registered" in result.stderr
    server.refresh_from_db()
    assert server.status == ServerStatus.READY and server.agent_status == "online"
    assert server.agent_info["hostname"] and server.agent_info["agentVersion"] == "1.0.0"
    assert server.agent_credential_hash and credential not in repr(Server.objects.values().get())
    # The one-time token cannot be used again; the credential keeps working.
    again = subprocess.run([sys.executable, str(AGENT_PATH), "--allow-http", "--server", live_server.url, "--token", "dpr_x",
                            "--state", str(tmp_path / "other.json"), "--once", "--attempts", "1"],
                           capture_output=True, text=True, timeout=60)
    assert again.returncode != 0
    heartbeat = subprocess.run([sys.executable, str(AGENT_PATH), "--allow-http", "--server", live_server.url, "--state", str(state),
                                "--once"], capture_output=True, text=True, timeout=60)
    assert heartbeat.returncode == 0, heartbeat.stderr


def test_the_agent_retries_while_devpilot_is_unreachable(tmp_path):
    result = subprocess.run([sys.executable, str(AGENT_PATH), "--allow-http", "--server", "http://127.0.0.1:9", "--token", "t",
                             "--state", str(tmp_path / "a.json"), "--once", "--attempts", "2"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert result.stderr.count("), attempt") == 2 and "giving up" in result.stderr


def test_no_agent_within_the_timeout_means_agent_missing(workspace, connection, fake_do):
    server = settle(new_server(workspace, connection))
    server.steps.filter(key="agent").update(started_at=timezone.now() - steps.AGENT_TIMEOUT - timedelta(minutes=1))
    server = settle(server)
    assert server.status == ServerStatus.AGENT_MISSING
    assert "DEVPILOT_PUBLIC_URL" in server.status_message
    agents.register(registration_token(fake_do), {"hostname": "late"})
    server.refresh_from_db()
    assert server.status == ServerStatus.READY


def test_a_create_that_timed_out_after_being_applied_is_adopted_not_repeated(workspace, connection, fake_do):
    fake_do.fail_next("POST", r"^/v2/droplets$", status="timeout", after_applying=True)
    server = new_server(workspace, connection)
    assert steps.advance(server.pk) > 0  # waits, then looks the Droplet up by its tag
    server = settle(server)
    assert len(fake_do.droplets) == 1 and server.droplet_id in fake_do.droplets
    assert fake_do.count("POST", r"/v2/droplets") == 1


def test_a_5xx_on_create_leads_to_one_droplet(workspace, connection, fake_do):
    fake_do.fail_next("POST", r"^/v2/droplets$", status=500)
    server = settle(new_server(workspace, connection))
    assert len(fake_do.droplets) == 1 and server.status == ServerStatus.INSTALLING_AGENT


def test_a_droplet_created_by_a_killed_worker_is_adopted(workspace, connection, fake_do):
    server = new_server(workspace, connection)
    steps.ensure_ssh_keys(server, connection.client())
    connection.client().create_droplet(name="web-1", region="nyc3", size="s-1vcpu-1gb", image="ubuntu-24-04-x64",
                                       tags=["devpilot", server.tag])  # the create went through; the save did not
    server = settle(server)
    assert len(fake_do.droplets) == 1 and server.droplet_id == next(iter(fake_do.droplets))


def test_running_every_step_twice_changes_nothing(workspace, connection, fake_do):
    server = settle(new_server(workspace, connection))
    client = connection.client()
    for step in (steps.ensure_ssh_keys, steps.ensure_droplet, steps.ensure_firewall):
        Server.objects.filter(pk=server.pk).update(firewall_id="")
        step(Server.objects.select_related("workspace").get(pk=server.pk), client)
    assert (len(fake_do.droplets), len(fake_do.firewalls), len(fake_do.ssh_keys)) == (1, 1, 1)


def test_429_and_5xx_during_the_steps_are_waited_out(workspace, connection, fake_do):
    fake_do.fail_next("GET", r"/v2/firewalls", status=429)
    fake_do.fail_next("GET", r"/v2/droplets/\d+", status=503, times=3)
    server = settle(new_server(workspace, connection))
    assert server.status == ServerStatus.INSTALLING_AGENT
    assert (len(fake_do.droplets), len(fake_do.firewalls)) == (1, 1)


@pytest.mark.parametrize("setup,words", [
    (lambda fake: fake.tokens["dop_v1_good"]["account"].update(droplet_limit=0), "reached its Droplet limit"),
    (lambda fake: fake.regions[0]["sizes"].remove("s-1vcpu-1gb"), "not available in this region"),
    (lambda fake: fake.tokens["dop_v1_good"].update(scopes={"account:read", "ssh_key:read", "ssh_key:create", "droplet:read"}),
     "cannot create Droplets: it needs write scope"),
])
def test_provisioning_failures_say_what_to_do_and_retry_resumes(workspace, connection, fake_do, setup, words):
    setup(fake_do)
    server = settle(new_server(workspace, connection))
    assert server.status == ServerStatus.FAILED
    assert "Step 2 (Create the Droplet) failed" in server.status_message and words in server.status_message
    assert not fake_do.droplets
    fake_do.tokens["dop_v1_good"].update(scopes=None)
    fake_do.tokens["dop_v1_good"]["account"]["droplet_limit"] = 25
    fake_do.regions[0]["sizes"].append("s-1vcpu-1gb")
    services.retry(server)
    server = settle(server)
    assert server.status == ServerStatus.INSTALLING_AGENT and len(fake_do.droplets) == 1
    assert server.steps.get(key="ssh_key").attempts == 1  # resumed from the failed step


def test_lifecycle_actions(workspace, connection, fake_do):
    server = settle(new_server(workspace, connection))
    agents.register(registration_token(fake_do), {})
    server.refresh_from_db()
    lifecycle.request(server, "power_off")
    with pytest.raises(lifecycle.ActionRefused, match="still running"):
        lifecycle.request(server, "reboot")
    lifecycle.run(server.pk, "power_off", sleep=lambda s: None)
    server.refresh_from_db()
    # The power state is DigitalOcean's; the provisioning progress stays where it was.
    assert server.status == ServerStatus.READY and server.power_state == "off" and server.action_in_progress == ""
    assert fake_do.droplets[server.droplet_id]["status"] == "off"
    lifecycle.request(server, "resize", size="s-2vcpu-2gb")
    assert "Resized to s-2vcpu-2gb" in lifecycle.run(server.pk, "resize", "s-2vcpu-2gb", sleep=lambda s: None)
    server.refresh_from_db()
    # It was off before the resize, so it stays off; size, price and disk follow the Droplet.
    assert server.size == "s-2vcpu-2gb" and server.status == ServerStatus.READY and server.power_state == "off"
    assert server.price_monthly == 18 and server.disk_gb == 60
    lifecycle.run(server.pk, "power_on", sleep=lambda s: None)
    failed = lifecycle.run(server.pk, "resize", "s-nonexistent", sleep=lambda s: None)
    assert "powered back on" in failed and fake_do.droplets[server.droplet_id]["status"] == "active"
    lifecycle.run(server.pk, "destroy", sleep=lambda s: None)
    server.refresh_from_db()
    assert server.status == ServerStatus.DESTROYED and not fake_do.droplets and not fake_do.firewalls


def test_a_failed_destroy_is_reported(workspace, connection, fake_do):
    server = settle(new_server(workspace, connection))
    before = server.status
    fake_do.fail_next("DELETE", r"/v2/droplets/\d+", status=500, times=100)
    message = lifecycle.run(server.pk, "destroy", sleep=lambda s: None)
    server.refresh_from_db()
    # The Droplet is still there and running: the server is not "failed", it says what happened.
    assert "Destroy failed" in message and "not deleted" in message and server.status == before
    assert len(fake_do.droplets) == 1


def test_reconciliation_lists_droplets_once_and_marks_deleted_ones(workspace, connection, fake_do):
    servers = [settle(new_server(workspace, connection, name=f"web-{i}")) for i in range(3)]
    for server in servers:
        Server.objects.filter(pk=server.pk).update(status=ServerStatus.READY)
    del fake_do.droplets[servers[0].droplet_id]
    fake_do.droplets[servers[1].droplet_id]["status"] = "off"
    before = len(fake_do.requests)
    assert reconcile.reconcile_all() == 3
    assert len(fake_do.requests) - before == 1  # one paged list call, not one GET per server
    statuses = {s.name: s.status for s in Server.objects.all()}
    assert statuses == {"web-0": "deleted_outside", "web-1": "ready", "web-2": "ready"}
    assert Server.objects.get(name="web-1").power_state == "off"


def test_agents_go_offline_after_three_missed_heartbeats(workspace, connection, fake_do):
    server = settle(new_server(workspace, connection))
    _, credential = agents.register(registration_token(fake_do), {})
    assert agents.heartbeat(credential, {"hostname": "h"}) == 60
    Server.objects.filter(pk=server.pk).update(agent_last_seen_at=timezone.now() - timedelta(seconds=181))
    assert Server.objects.get(pk=server.pk).agent_status == "offline"
    with pytest.raises(agents.AgentError):
        agents.heartbeat("dpa_wrong", {})


def test_removing_the_connection_keeps_servers_and_reconnecting_brings_them_back(workspace, connection, fake_do):
    from connections import services as connections

    server = settle(new_server(workspace, connection))
    Server.objects.filter(pk=server.pk).update(status=ServerStatus.READY)
    connections.remove(connection)
    reconcile.reconcile_all()
    server.refresh_from_db()
    assert server.connection is None and server.status == ServerStatus.NO_CONNECTION
    assert len(fake_do.droplets) == 1
    again = connections.connect(workspace, "digital-ocean", "do-again", "dop_v1_good")
    server.refresh_from_db()
    assert server.connection == again and server.status == ServerStatus.READY


def test_server_names_follow_the_hostname_rule(workspace, connection):
    for bad in ("-web", "web_1", "web 1", "a" * 64):
        with pytest.raises(Invalid, match="hostname rule"):
            new_server(workspace, connection, name=bad)
    with pytest.raises(services.ServerError, match="already exists"):
        new_server(workspace, connection, name="web")
        new_server(workspace, connection, name="web")


def test_a_droplet_that_never_boots_fails_with_a_message(workspace, connection, fake_do):
    fake_do.boot_after_gets = 10_000
    server = new_server(workspace, connection)
    steps.advance(server.pk)
    Server.objects.filter(pk=server.pk).update(droplet_created_at=timezone.now() - steps.BOOT_TIMEOUT - timedelta(seconds=1))
    server = settle(server)
    assert server.status == ServerStatus.FAILED
    assert "did not become active within 10 minutes" in server.status_message
    assert "Retry" in server.status_message


def test_devpilot_serves_the_agent_it_embeds(client, db):
    response = client.get("/agent/devpilot-agent.py")
    assert response.status_code == 200 and response.content.decode() == AGENT_PATH.read_text()


def test_losing_and_regaining_the_connection_is_in_the_audit_log(workspace, connection, fake_do):
    from connections import services as connections
    from devpilot.models import AuditEvent

    server = settle(new_server(workspace, connection))
    Server.objects.filter(pk=server.pk).update(status=ServerStatus.READY)
    connections.remove(connection)
    reconcile.reconcile_all()
    connections.connect(workspace, "digital-ocean", "do-again", "dop_v1_good")
    changes = [e.data for e in AuditEvent.objects.filter(action="server.status_changed").order_by("created_at", "id")]
    assert changes[-2:] == [{"old": "ready", "new": "no_connection"}, {"old": "no_connection", "new": "ready"}]

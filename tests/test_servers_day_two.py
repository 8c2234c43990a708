"""Servers after day one, against the stateful fake DigitalOcean: a power state apart from the provisioning
progress, actions that end (refused, raising or past their deadline), the archive, resize, the firewall,
backups, snapshots, rename, and the New server Review's warning about an unreachable Devpilot."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from devpilot.errors import Invalid, NotFound, Unauthenticated
from devpilot.models import AuditEvent
from devpilot.schemas import parse
from provisioning import agents, housekeeping, lifecycle, reconcile, services, tasks
from provisioning.models import Server, ServerStatus, StepStatus
from provisioning.schemas import ServerAction
from tests import openapi
from tests.test_provisioning import new_server, registration_token, settle

NO_SLEEP = {"sleep": lambda s: None}


@pytest.fixture(autouse=True)
def manual_tasks(monkeypatch):
    """The tests run actions themselves, as a worker would."""
    queued = []
    monkeypatch.setattr(tasks, "enqueue_provision", queued.append)
    monkeypatch.setattr(tasks, "enqueue_action", lambda server, action, size=None: queued.append(action))
    from connections import digitalocean

    monkeypatch.setattr(digitalocean, "_sleep", lambda s: None)
    return queued


@pytest.fixture
def ready(workspace, connection, fake_do):
    """A provisioned server whose agent registered; returns (server, agent credential)."""
    server = settle(new_server(workspace, connection))
    _, credential = agents.register(registration_token(fake_do), {"hostname": "web-1"})
    server.refresh_from_db()
    assert server.status == ServerStatus.READY
    return server, credential


def queued(tasks_queued):
    """The actions queued (provisioning runs are queued as servers)."""
    return [item for item in tasks_queued if isinstance(item, str)]


def act(server, **fields):
    """Ask for an action as the page and the API do, then run it as the worker does; the server as it ends."""
    services.act(server, parse(ServerAction, fields))
    message = lifecycle.run(server.pk, fields["type"], **NO_SLEEP)
    server.refresh_from_db()
    return message


# --- Truthful state ----------------------------------------------------------------------------------

PROVISIONING_STATES = [ServerStatus.BOOTING, ServerStatus.CONFIGURING, ServerStatus.INSTALLING_AGENT,
                       ServerStatus.READY, ServerStatus.AGENT_MISSING, ServerStatus.FAILED]


@pytest.mark.parametrize("status", PROVISIONING_STATES)
def test_power_follows_digitalocean_in_every_provisioning_state(workspace, connection, fake_do, status, client_for,
                                                                owner):
    server = settle(new_server(workspace, connection))  # waiting for the agent, the Droplet on
    Server.objects.filter(pk=server.pk).update(status=status)
    server.refresh_from_db()
    assert server.power_state == "active"
    assert lifecycle.offered(server)["power_off"] and not lifecycle.offered(server)["power_on"]

    assert act(server, type="power_off") == "Shut down."
    assert fake_do.droplets[server.droplet_id]["status"] == "off"
    # Two fields: DigitalOcean's power state, and the provisioning progress left where it was.
    assert (server.power_state, server.status) == ("off", status)
    offered = lifecycle.offered(server)
    assert offered["power_on"] and offered["enabled"] and not offered["power_off"] and not offered["reboot"]
    page = client_for(owner).get(f"/w/{workspace.slug}/servers/{server.pk}/").content.decode()
    assert 'value="power_on"' in page and 'value="power_off"' not in page and 'id="power-state">Off<' in page

    assert act(server, type="power_on") == "Powered on."
    assert (server.power_state, server.status) == ("active", status)
    assert not server.status_message_is_error and server.action_in_progress == ""


def test_reconciliation_refreshes_the_power_state_while_the_agent_is_awaited(workspace, connection, fake_do):
    server = settle(new_server(workspace, connection))
    assert server.status == ServerStatus.INSTALLING_AGENT
    fake_do.droplets[server.droplet_id]["status"] = "off"  # powered off in DigitalOcean's panel
    reconcile.reconcile_all()
    server.refresh_from_db()
    assert (server.power_state, server.status) == ("off", ServerStatus.INSTALLING_AGENT)
    assert lifecycle.offered(server)["power_on"]


def test_a_pending_event_refusal_is_an_error_and_blocks_actions_until_it_ends(ready, fake_do, client_for, owner,
                                                                              workspace):
    server, _ = ready
    fake_do.action_seconds = 3600
    outside = fake_do._action(server.droplet_id, "snapshot", "in-progress")  # started in DigitalOcean's panel

    message = act(server, type="power_off")
    assert "Droplet already has a pending event." in message and "wait for it to end" in message
    assert server.status_message == message and server.status_message_is_error and server.pending_event
    assert server.action_in_progress == "" and fake_do.droplets[server.droplet_id]["status"] == "active"
    assert AuditEvent.objects.filter(action="server.power_off_failed").exists()
    page = client_for(owner).get(f"/w/{workspace.slug}/servers/{server.pk}/").content.decode()
    assert 'class="banner error" role="alert" id="server-message">' in page and "pending event" in page
    assert 'value="reboot" disabled' in page and 'id="pending-event"' in page
    with pytest.raises(lifecycle.ActionRefused, match="pending event"):
        services.act(server, parse(ServerAction, {"type": "reboot"}))

    reconcile.reconcile_all()  # still running at DigitalOcean: still blocked
    server.refresh_from_db()
    assert server.pending_event
    outside["status"] = "completed"
    reconcile.reconcile_all()
    server.refresh_from_db()
    assert not server.pending_event and lifecycle.offered(server)["enabled"]
    assert act(server, type="reboot") == "Rebooted."


def test_an_action_that_raises_ends_failed_with_its_reason(ready, monkeypatch):
    server, _ = ready
    services.act(server, parse(ServerAction, {"type": "enable_backups"}))

    def broken(*args, **kwargs):
        raise RuntimeError("odd answer")

    monkeypatch.setattr(lifecycle, "_do", broken)
    message = lifecycle.run(server.pk, "enable_backups", **NO_SLEEP)
    server.refresh_from_db()
    assert message.startswith("Enabling backups failed unexpectedly: RuntimeError.")
    assert server.action_in_progress == "" and server.action_deadline is None and server.status_message_is_error


def test_an_action_past_its_deadline_is_ended_by_its_next_pass(ready):
    server, _ = ready
    lifecycle.request(server, "reboot")
    Server.objects.filter(pk=server.pk).update(action_deadline=timezone.now() - timedelta(seconds=1))
    message = lifecycle.run(server.pk, "reboot", **NO_SLEEP)
    server.refresh_from_db()
    assert message.startswith("Reboot did not finish within 15 minutes") and server.status_message_is_error
    assert server.action_in_progress == ""


def test_an_action_past_its_deadline_with_no_worker_is_ended_by_housekeeping(ready):
    server, _ = ready
    lifecycle.request(server, "snapshot", params={"name": "nightly"})
    assert Server.objects.get(pk=server.pk).action_deadline > timezone.now() + timedelta(minutes=59)
    assert housekeeping.fail_lost_actions() == 0  # within its deadline: a worker may be on it
    AuditEvent.objects.filter(action="server.snapshot_requested").update(
        created_at=timezone.now() - housekeeping.ACTION_BOUND - timedelta(minutes=5))
    assert housekeeping.fail_lost_actions() == 0  # a snapshot may wait on DigitalOcean longer than other actions
    Server.objects.filter(pk=server.pk).update(action_deadline=timezone.now() - timedelta(seconds=1))
    assert housekeeping.fail_lost_actions() == 1
    server.refresh_from_db()
    assert server.action_in_progress == "" and server.status_message_is_error
    assert server.status_message.startswith("Snapshot did not finish within 60 minutes")
    lifecycle.request(server, "refresh")  # actions are accepted again


# --- Tidy lists --------------------------------------------------------------------------------------


def test_destroy_archives_frees_the_name_and_refuses_the_old_agent(ready, workspace, connection, fake_do, client_for,
                                                                   owner, api):
    server, credential = ready
    assert agents.heartbeat(credential, {}) == server.heartbeat_interval
    lifecycle.request(server, "destroy")
    lifecycle.run(server.pk, "destroy", **NO_SLEEP)
    server.refresh_from_db()
    assert server.status == ServerStatus.DESTROYED and server.is_archived
    assert (server.ipv4_public, server.ipv6_address, server.power_state, server.agent_credential_hash) == (None, None, "", "")
    assert not server.steps.filter(status__in=[StepStatus.RUNNING, StepStatus.PENDING]).exists()
    assert list(Server.objects.live()) == [] and list(Server.objects.archived()) == [server]

    web = client_for(owner)
    listing = web.get(f"/w/{workspace.slug}/servers/").content.decode()
    assert f"/servers/{server.pk}/" not in listing and "Archive: 1 destroyed server" in listing
    archive = web.get(f"/w/{workspace.slug}/servers/archive/").content.decode()
    assert f"/servers/{server.pk}/" in archive
    page = web.get(f"/w/{workspace.slug}/servers/{server.pk}/").content.decode()
    assert "203.0.113." not in page and "online" not in page and "Running" not in page
    assert [s["name"] for s in api.get("/api/v1/servers?archived=true").json()["servers"]] == ["web-1"]
    assert api.get("/api/v1/servers").json()["servers"] == []

    with pytest.raises(Unauthenticated):
        agents.heartbeat(credential, {})  # the destroyed server's agent is refused
    again = new_server(workspace, connection)  # the name is free
    assert again.name == "web-1" and Server.objects.live().get().pk == again.pk
    with pytest.raises(Invalid, match="already exists"):
        new_server(workspace, connection)
    with pytest.raises(lifecycle.ActionRefused, match="destroyed"):
        lifecycle.request(server, "reboot")


# --- Careful actions: resize ---------------------------------------------------------------------------


def test_resize_offers_the_regions_bigger_sizes_and_the_cost_follows(ready, fake_do, api):
    server, _ = ready
    assert (server.size, server.price_monthly, server.disk_gb) == ("s-1vcpu-1gb", Decimal("6.00"), 25)
    assert [s["slug"] for s in services.resize_options(server)] == ["s-2vcpu-2gb", "s-4vcpu-8gb"]
    sizes = api.get(f"/api/v1/servers/{server.pk}/sizes").json()["sizes"]
    assert [(s["slug"], s["monthlyCost"]) for s in sizes] == [("s-2vcpu-2gb", 18.0), ("s-4vcpu-8gb", 48.0)]
    refused = api.post(f"/api/v1/servers/{server.pk}/actions", {"type": "resize", "size": "s-8vcpu-99gb"})
    assert refused.status_code == 400 and refused.json()["details"][0]["field"] == "size"
    assert api.post(f"/api/v1/servers/{server.pk}/actions", {"type": "resize"}).status_code == 400

    assert act(server, type="resize", size="s-2vcpu-2gb") == "Resized to s-2vcpu-2gb."
    assert (server.size, server.price_monthly, server.disk_gb, server.memory_mb) == ("s-2vcpu-2gb", Decimal("18.00"), 60, 2048)
    assert server.power_state == "active" and server.monthly_cost == Decimal("18.00")
    resize = [b for m, p, b in fake_do.requests if m == "POST" and p.endswith("/actions") and b["type"] == "resize"]
    assert resize == [{"type": "resize", "size": "s-2vcpu-2gb", "disk": True}]
    # A disk never shrinks: the smaller size is no longer offered, nor accepted.
    assert [s["slug"] for s in services.resize_options(server)] == ["s-4vcpu-8gb"]
    with pytest.raises(Invalid):
        services.act(server, parse(ServerAction, {"type": "resize", "size": "s-1vcpu-1gb"}))


def test_a_resize_resumed_after_a_crash_still_powers_the_droplet_back_on(ready, fake_do):
    server, _ = ready
    services.act(server, parse(ServerAction, {"type": "resize", "size": "s-2vcpu-2gb"}))
    fake_do.droplets[server.droplet_id]["status"] = "off"  # our shutdown took effect; the worker died before saving
    assert lifecycle.run(server.pk, "resize", **NO_SLEEP) == "Resized to s-2vcpu-2gb."
    server.refresh_from_db()
    assert fake_do.droplets[server.droplet_id]["status"] == "active" and server.power_state == "active"


def test_a_failed_resize_is_an_error_and_the_droplet_is_powered_back_on(ready, fake_do):
    server, _ = ready
    services.act(server, parse(ServerAction, {"type": "resize", "size": "s-2vcpu-2gb"}))
    next(s for s in fake_do.sizes if s["slug"] == "s-2vcpu-2gb")["available"] = False  # sold out meanwhile
    message = lifecycle.run(server.pk, "resize", **NO_SLEEP)
    server.refresh_from_db()
    assert message.startswith("Resize failed (DigitalOcean refused the request: You specified an invalid size")
    assert "powered back on at its old size" in message and server.status_message_is_error
    assert (server.size, server.power_state, server.price_monthly) == ("s-1vcpu-1gb", "active", Decimal("6.00"))
    assert AuditEvent.objects.filter(action="server.resize_failed").exists()


# --- Day two -----------------------------------------------------------------------------------------


def test_the_api_takes_the_new_actions(ready, api, fake_do):
    server, _ = ready
    url = f"/api/v1/servers/{server.pk}"
    taken = api.post(url + "/snapshots", {"name": "nightly"})
    assert taken.status_code == 202 and taken.json()["server"]["actionInProgress"] == "snapshot"
    assert api.post(url + "/snapshots", {"name": "-bad"}).status_code == 400
    lifecycle.run(server.pk, "snapshot", **NO_SLEEP)
    assert api.post(url + "/actions", {"type": "enable_backups", "size": "s-2vcpu-2gb"}).status_code == 400
    assert api.post(url + "/actions", {"type": "rename"}).json()["details"][0]["field"] == "name"
    assert api.post(url + "/actions", {"type": "enable_backups"}).status_code == 202
    lifecycle.run(server.pk, "enable_backups", **NO_SLEEP)
    body = api.get(url).json()["server"]
    assert (body["backups"], body["monthlyCost"], body["powerState"], body["pendingEvent"]) == (True, 7.2, "active", False)
    assert (body["diskGb"], body["statusMessage"], body["statusMessageIsError"]) == (25, "Weekly backups enabled.", False)




def test_the_firewall_edit_replaces_inbound_rules_and_keeps_every_other_attribute(ready, fake_do, api):
    server, _ = ready
    (firewall,) = fake_do.firewalls.values()
    firewall["tags"] = ["keep-me"]  # set in DigitalOcean's panel: the PUT must send them back
    firewall["droplet_ids"].append(4242)
    from_balancer = {"protocol": "tcp", "ports": "8080", "sources": {"load_balancer_uids": ["lb-1"]}}
    firewall["inbound_rules"].append(from_balancer)  # beyond the editor: kept as it is
    outbound = list(firewall["outbound_rules"])
    rules = [{"protocol": "tcp", "ports": "22", "sources": ["203.0.113.0/24"]},
             {"protocol": "udp", "ports": "60000-61000", "sources": ["0.0.0.0/0", "::/0"]}]
    preview = services.firewall_preview(server.inbound_rules, rules)
    assert [r["ports"] for r in preview["added"]] == ["22", "60000-61000"]
    assert [r["ports"] for r in preview["removed"]] == ["22", "80", "443"]

    response = api._send("put", f"/api/v1/servers/{server.pk}/firewall", {"inboundRules": rules})
    assert response.status_code == 202, response.json()
    before = len(fake_do.requests)
    lifecycle.run(server.pk, "firewall", **NO_SLEEP)
    server.refresh_from_db()
    assert [(m, p.split("/")[2]) for m, p, _ in fake_do.requests[before:]] == [("GET", "firewalls"), ("PUT", "firewalls")]
    (put,) = [(p, b) for m, p, b in fake_do.requests if m == "PUT"]
    openapi.check_request("PUT", *put)  # DigitalOcean's published schema
    assert firewall["tags"] == ["keep-me"] and 4242 in firewall["droplet_ids"] and server.droplet_id in firewall["droplet_ids"]
    assert firewall["outbound_rules"] == outbound and firewall["name"] == server.firewall_name
    assert firewall["inbound_rules"] == [{"protocol": "tcp", "ports": "22", "sources": {"addresses": ["203.0.113.0/24"]}},
                                         {"protocol": "udp", "ports": "60000-61000",
                                          "sources": {"addresses": ["0.0.0.0/0", "::/0"]}},
                                         from_balancer]
    assert server.inbound_rules == rules and not server.status_message_is_error
    bad = api._send("put", f"/api/v1/servers/{server.pk}/firewall", {"inboundRules": [{"ports": "0-99999"}]})
    assert bad.status_code == 400 and "is not a port" in bad.json()["message"]


def test_the_fake_refuses_a_firewall_put_as_digitalocean_would(ready, fake_do, connection):
    server, _ = ready
    client = connection.client()
    from connections import digitalocean

    with pytest.raises(digitalocean.Rejected, match="name"):
        client.update_firewall(server.firewall_id, {"inbound_rules": []})  # name is required
    with pytest.raises(digitalocean.Rejected, match="read-only"):
        client.update_firewall(server.firewall_id, {**client.get_firewall(server.firewall_id)})


def test_backups_toggle_and_the_price_shown(ready, fake_do, client_for, owner, workspace):
    server, _ = ready
    change = services.backups_change(server)
    assert (change["now"], change["after"], change["backups_price"]) == (Decimal("6.00"), Decimal("7.20"), Decimal("1.20"))
    page = client_for(owner).get(f"/w/{workspace.slug}/servers/{server.pk}/").content.decode()
    assert "Weekly backups add $1.20/month (20% of the Droplet's price): $7.20/month in all." in page
    assert act(server, type="enable_backups") == "Weekly backups enabled."
    assert "backups" in fake_do.droplets[server.droplet_id]["features"]
    assert server.backups and server.monthly_cost == Decimal("7.20")
    assert act(server, type="disable_backups") == "Backups disabled."
    assert not server.backups and server.monthly_cost == Decimal("6.00")


def test_snapshots_are_taken_listed_deleted_and_start_new_servers(ready, workspace, connection, fake_do, api,
                                                                 client_for, owner, settings):
    server, _ = ready
    assert act(server, type="snapshot", name="before-upgrade") == "Snapshot before-upgrade taken."
    listed = api.get(f"/api/v1/servers/{server.pk}/snapshots").json()["snapshots"]
    assert [s["name"] for s in listed] == ["before-upgrade"]
    snapshot_id = listed[0]["id"]

    # The New server wizard, from the snapshot: its connection, region and image are chosen.
    settings.DEVPILOT_PUBLIC_URL = "https://devpilot.example.com"
    web = client_for(owner)
    start = web.get(f"/w/{workspace.slug}/servers/new/?server={server.pk}&snapshot={snapshot_id}&name=before-upgrade")
    assert start.url.endswith("/servers/new/size/")
    assert web.post(start.url, {"size": "s-1vcpu-1gb", "go": "next"}).status_code == 302
    image_page = web.get(f"/w/{workspace.slug}/servers/new/image/").content.decode()
    assert f'value="{snapshot_id}" checked' in image_page
    web.post(f"/w/{workspace.slug}/servers/new/image/", {"image": snapshot_id, "go": "next"})
    web.post(f"/w/{workspace.slug}/servers/new/details/", {"name": "web-2", "ports": "22", "sources": "0.0.0.0/0",
                                                           "go": "next"})
    review = web.get(f"/w/{workspace.slug}/servers/new/review/").content.decode()
    assert "snapshot before-upgrade" in review and "public-url-warning" not in review
    settings.DEVPILOT_PUBLIC_URL = "http://127.0.0.1:8000"
    review = web.get(f"/w/{workspace.slug}/servers/new/review/").content.decode()
    assert 'id="public-url-warning"' in review and "127.0.0.1 is a loopback address" in review
    web.post(f"/w/{workspace.slug}/servers/new/review/", {"go": "create"})
    copy = settle(Server.objects.get(name="web-2"))
    assert copy.image == snapshot_id
    assert fake_do.droplets[copy.droplet_id]["image"]["id"] == int(snapshot_id)

    assert api.delete(f"/api/v1/servers/{server.pk}/snapshots/999999").status_code == 404
    assert api.delete(f"/api/v1/servers/{server.pk}/snapshots/{snapshot_id}").status_code == 202
    assert lifecycle.run(server.pk, "delete_snapshot", **NO_SLEEP) == "Snapshot before-upgrade deleted."
    assert not fake_do.snapshots and services.snapshots(server) == []
    with pytest.raises(NotFound):
        services.delete_snapshot(server, snapshot_id)
    assert AuditEvent.objects.filter(action="server.snapshot_requested", data__name="before-upgrade").exists()


def test_rename_renames_the_droplet_and_the_server(ready, workspace, connection, fake_do):
    server, _ = ready
    other = new_server(workspace, connection, name="db-1")
    with pytest.raises(Invalid, match="already exists"):
        services.act(server, parse(ServerAction, {"type": "rename", "name": other.name}))
    with pytest.raises(Invalid, match="hostname rule"):
        services.act(server, parse(ServerAction, {"type": "rename", "name": "-bad"}))
    assert act(server, type="rename", name="web-one") == "Renamed to web-one."
    assert server.name == "web-one" and fake_do.droplets[server.droplet_id]["name"] == "web-one"


# --- Careful actions: the pages ask first -----------------------------------------------------------


def test_power_off_reboot_and_resize_ask_first(ready, workspace, client_for, owner, manual_tasks):
    server, _ = ready
    web = client_for(owner)
    base = f"/w/{workspace.slug}/servers/{server.pk}/"
    asked = web.post(base + "action/", {"action": "power_off"})
    assert asked.url == base + "confirm/power_off/" and queued(manual_tasks) == []
    assert "Everything running on it stops" in web.get(asked.url).content.decode()
    assert web.post(base + "action/", {"action": "reboot"}).url == base + "confirm/reboot/"
    assert web.post(base + "action/", {"action": "resize", "size": "s-2vcpu-2gb"}).url == base + "resize/"
    chosen = web.post(base + "resize/", {"size": "s-2vcpu-2gb"}).content.decode()
    assert "powers the server off for a few minutes; a disk resize cannot be undone" in chosen
    assert 'id="new-monthly-cost">$18.00<' in chosen and queued(manual_tasks) == []
    web.post(base + "resize/", {"size": "s-2vcpu-2gb", "confirmed": "yes"})
    assert queued(manual_tasks) == ["resize"]
    Server.objects.filter(pk=server.pk).update(action_in_progress="")
    web.post(base + "action/", {"action": "reboot", "confirmed": "yes"})
    assert queued(manual_tasks) == ["resize", "reboot"]


def test_the_firewall_page_previews_then_applies(ready, workspace, client_for, owner, manual_tasks):
    server, _ = ready
    web = client_for(owner)
    url = f"/w/{workspace.slug}/servers/{server.pk}/firewall/"
    form = {"go": "preview", "rows": "5", "protocol-0": "tcp", "ports-0": "22", "sources-0": "0.0.0.0/0, ::/0",
            "protocol-1": "tcp", "ports-1": "80", "sources-1": "0.0.0.0/0, ::/0", "remove-1": "on",
            "protocol-2": "tcp", "ports-2": "443", "sources-2": "0.0.0.0/0, ::/0",
            "protocol-3": "udp", "ports-3": "51820", "sources-3": "10.0.0.0/8", "protocol-4": "tcp", "ports-4": ""}
    preview = web.post(url, form).content.decode()
    assert "<strong>Add</strong> UDP 51820 from 10.0.0.0/8" in preview and "<strong>Remove</strong> TCP 80" in preview
    assert queued(manual_tasks) == []
    bad = web.post(url, {**form, "ports-3": "99999"}).content.decode()
    assert "Rule 3:" in bad and "is not a port" in bad
    import html
    import re

    rules = html.unescape(re.search(r'name="rules" value="([^"]+)"', preview).group(1))
    web.post(url, {"go": "apply", "rules": rules})
    assert queued(manual_tasks) == ["firewall"]
    assert [r["ports"] for r in Server.objects.get(pk=server.pk).action_state["params"]["rules"]] == ["22", "443", "51820"]


# --- The Review step's warning ------------------------------------------------------------------------


@pytest.mark.parametrize("url,unreachable", [
    ("http://127.0.0.1:8000", True), ("http://localhost:8000", True), ("http://[::1]:8000", True),
    ("http://10.1.2.3", True), ("http://172.16.0.9", True), ("http://192.168.1.20", True),
    ("http://169.254.1.1", True), ("http://devpilot.local", True), ("https://devpilot.example.com", False),
    ("https://45.55.10.20", False),
])
def test_the_review_warns_when_the_droplet_cannot_reach_devpilot(url, unreachable):
    assert bool(services.unreachable_public_url(url)) is unreachable


# --- The migration ----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_migration_archives_destroyed_servers_and_splits_off_the_power_state(workspace):
    from django.db import connection as db
    from django.db.migrations.executor import MigrationExecutor

    before = [("provisioning", "0002_outbox")]
    executor = MigrationExecutor(db)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    OldServer = old.get_model("provisioning", "Server")
    made = {name: OldServer.objects.create(workspace_id=workspace.pk, name=name, region="nyc3", size="s-1vcpu-1gb",
                                           image="ubuntu-24-04-x64", status=status, ipv4_public="203.0.113.5")
            for name, status in (("gone", "destroyed"), ("sleeping", "off"), ("up", "ready"))}
    old.get_model("provisioning", "ServerStep").objects.create(server=made["gone"], number=5, key="agent",
                                                               label="Install the Devpilot agent", status="running")
    executor = MigrationExecutor(db)
    executor.migrate(executor.loader.graph.leaf_nodes())

    gone, sleeping, up = (Server.objects.get(name=n) for n in ("gone", "sleeping", "up"))
    assert gone.is_archived and gone.ipv4_public is None and gone.steps.get().status == StepStatus.STOPPED
    assert (sleeping.status, sleeping.power_state, sleeping.is_archived) == ("ready", "off", False)
    assert (up.status, up.power_state) == ("ready", "")
    assert Server.objects.create(workspace=workspace, name="gone", region="nyc3", size="s-1vcpu-1gb",
                                 image="ubuntu-24-04-x64").name == "gone"  # the archived one freed the name

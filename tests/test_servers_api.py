import pytest

from tests.conftest import error_fields

from connections.models import Connection
from devpilot.models import AuditEvent, Role
from provisioning import tasks
from provisioning.models import Server


@pytest.fixture(autouse=True)
def no_background(monkeypatch):
    queued = []
    monkeypatch.setattr(tasks, "enqueue_provision", queued.append)
    monkeypatch.setattr(tasks, "enqueue_action", lambda server, action, size=None: queued.append(action))
    return queued


@pytest.fixture
def connection(workspace):
    return Connection.objects.create(workspace=workspace, name="do", token="dop_v1_good", account_uuid="acct-1")


def body(connection, **extra):
    return {"name": "web-1", "connectionId": str(connection.pk), "region": "nyc3", "size": "s-1vcpu-1gb",
            "image": "ubuntu-24-04-x64", **extra}


def test_create_and_read_a_server(api, connection, no_background):
    response = api.post("/api/v1/servers", body(connection, inboundRules=[{"protocol": "tcp", "ports": "8000-9000"}],
                                                ipv6=True, monitoring=False))
    assert response.status_code == 201, response.json()
    server = response.json()["server"]
    assert (server["status"], server["region"], server["dropletId"]) == ("pending", "nyc3", None)
    assert [s["name"] for s in server["steps"]] == ["Register the SSH key", "Create the Droplet", "Wait for the Droplet to boot",
                                                    "Configure the cloud firewall", "Install the Devpilot agent"]
    assert server["inboundRules"] == [{"protocol": "tcp", "ports": "8000-9000", "sources": ["0.0.0.0/0", "::/0"]}]
    assert server["agent"] == {"status": "not installed", "lastSeenAt": None, "info": {}}
    assert len(no_background) == 1
    listed = api.get("/api/v1/servers").json()["servers"]
    assert [s["id"] for s in listed] == [server["id"]]
    assert api.get(f"/api/v1/servers/{server['id']}").json()["server"]["name"] == "web-1"


def test_bad_bodies_are_explained(api, connection):
    assert error_fields(api.post("/api/v1/servers", {"name": "x"})) == {"connectionId", "region", "size", "image"}
    bad_name = api.post("/api/v1/servers", body(connection, name="web_1"))
    assert bad_name.status_code == 400 and "hostname rule" in bad_name.json()["message"]
    bad_port = api.post("/api/v1/servers", body(connection, inboundRules=[{"ports": "99999"}]))
    assert bad_port.status_code == 400 and "is not a port" in bad_port.json()["message"]
    api.post("/api/v1/servers", body(connection))
    assert "already exists" in api.post("/api/v1/servers", body(connection)).json()["message"]


def test_actions_and_refusals(api, connection, workspace, no_background):
    server = Server.objects.create(workspace=workspace, connection=connection, name="web", region="nyc3",
                                   size="s-1vcpu-1gb", image="ubuntu-24-04-x64", droplet_id=7, status="ready")
    url = f"/api/v1/servers/{server.pk}/actions"
    assert api.post(url, {"type": "reboot"}).status_code == 202
    busy = api.post(url, {"type": "power_off"})
    assert busy.status_code == 409 and "still running" in busy.json()["message"]
    assert api.post(url, {"type": "explode"}).status_code == 400
    Server.objects.filter(pk=server.pk).update(action_in_progress="")
    assert api.post(url, {"type": "resize"}).json()["message"] == "Choose the new size."
    assert no_background == ["reboot"]


def test_delete_destroys_or_only_forgets(api, connection, workspace, no_background):
    keep = Server.objects.create(workspace=workspace, connection=connection, name="keep", region="nyc3",
                                 size="s", image="i", droplet_id=1, status="ready")
    gone = Server.objects.create(workspace=workspace, connection=connection, name="gone", region="nyc3",
                                 size="s", image="i", droplet_id=2, status="ready")
    assert api.delete(f"/api/v1/servers/{keep.pk}?keepDroplet=true").status_code == 200
    assert not Server.objects.filter(pk=keep.pk).exists()
    assert AuditEvent.objects.filter(action="server.removed_from_devpilot").exists()
    assert api.delete(f"/api/v1/servers/{gone.pk}").status_code == 202
    assert no_background == ["destroy"]


def test_viewers_read_servers_but_cannot_change_them(api_client_for, workspace, connection):
    viewer = api_client_for(workspace, Role.VIEWER)
    assert viewer.get("/api/v1/servers").status_code == 200
    assert viewer.post("/api/v1/servers", body(connection)).status_code == 403


def test_agent_endpoints_refuse_workspace_tokens_and_garbage(api, client):
    assert api.post("/api/v1/agent/heartbeat", {}).status_code == 401
    assert client.post("/api/v1/agent/register", "not json", content_type="application/json").status_code == 401
    garbage = client.post("/api/v1/agent/register", "not json", content_type="application/json",
                          HTTP_AUTHORIZATION="Bearer x")
    assert garbage.status_code == 400
    assert client.get("/api/v1/agent/register").status_code == 405


def test_the_ssh_key_page_and_the_audited_private_key_download(client_for, owner, workspace, make_member):
    page = client_for(owner).get(f"/w/{workspace.slug}/settings/ssh-key/").content.decode()
    assert "ssh-ed25519 " in page and "PRIVATE KEY" not in page
    download = client_for(owner).get(f"/w/{workspace.slug}/settings/ssh-key/private/")
    assert b"BEGIN OPENSSH PRIVATE KEY" in download.content
    assert AuditEvent.objects.filter(action="ssh_key.downloaded").exists()
    viewer = make_member(workspace, Role.VIEWER)
    assert client_for(viewer).get(f"/w/{workspace.slug}/settings/ssh-key/private/").status_code == 403
    from django.db import connection as db

    with db.cursor() as cursor:
        cursor.execute("SELECT * FROM provisioning_sshkey")
        assert "PRIVATE KEY" not in repr(cursor.fetchall())

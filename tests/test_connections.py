import json

import pytest
import responses
from django.db import connection as db

from connections import services
from connections.models import Connection, Status
from connections.signals import connection_removed
from devpilot.models import AuditEvent, Role

API = "https://api.digitalocean.test"
GOOD = "dop_v1_" + "a" * 64
OTHER_ACCOUNT = "dop_v1_" + "b" * 64
REVOKED = "dop_v1_" + "c" * 64
NO_DROPLETS = "dop_v1_" + "d" * 64

ACCOUNTS = {
    GOOD: {"uuid": "acct-1", "email": "ops@acme.test", "droplet_limit": 25, "status": "active",
           "team": {"uuid": "team-1", "name": "Acme"}},
    NO_DROPLETS: {"uuid": "acct-1", "email": "ops@acme.test", "droplet_limit": 25, "status": "active",
                  "team": {"uuid": "team-1", "name": "Acme"}},
    OTHER_ACCOUNT: {"uuid": "acct-2", "email": "else@other.test", "droplet_limit": 10, "status": "active",
                    "team": {"uuid": "team-2", "name": "Other"}},
}


def digitalocean(rsps, *, failure=None):
    """A small DigitalOcean: tokens in ACCOUNTS work; NO_DROPLETS lacks droplet:read."""

    def handle(request):
        token = request.headers["Authorization"].removeprefix("Bearer ")
        if failure:
            return failure
        if token not in ACCOUNTS:
            return 401, {}, json.dumps({"id": "unauthorized", "message": "Unable to authenticate you."})
        path = request.path_url.split("?")[0]
        if path == "/v2/account":
            return 200, {}, json.dumps({"account": ACCOUNTS[token]})
        if path == "/v2/droplets" and token == NO_DROPLETS:
            return 403, {}, json.dumps({"id": "forbidden", "message": "You are not authorized to perform this operation."})
        key = path.rsplit("/", 1)[-1]
        return 200, {}, json.dumps({key: [], "links": {}, "meta": {"total": 0}})

    rsps.add_callback(responses.GET, __import__("re").compile(API + r"/v2/.*"), callback=handle)


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def test_connecting_validates_the_token_before_saving(workspace, owner, rsps):
    digitalocean(rsps)
    with pytest.raises(services.ConnectionError_, match="wrong, expired or revoked"):
        services.connect(workspace, "digital-ocean", "do-main", REVOKED)
    assert not Connection.objects.exists()
    conn = services.connect(workspace, "digital-ocean", "do-main", GOOD, "prod account", user=owner)
    assert (conn.account_email, conn.team_name, conn.droplet_limit, conn.status) == ("ops@acme.test", "Acme", 25, Status.OK)
    assert conn.capabilities == {"apps": True, "droplets": True, "regions": True, "sizes": True}
    assert Connection.objects.get().token == GOOD
    with db.cursor() as cursor:
        cursor.execute("SELECT * FROM connections_connection")
        assert GOOD not in repr(cursor.fetchall())
    assert AuditEvent.objects.filter(action="connection.created").exists()


def test_probes_show_which_read_scopes_work(workspace, rsps):
    digitalocean(rsps)
    conn = services.connect(workspace, "digital-ocean", "limited", NO_DROPLETS)
    assert conn.capabilities["droplets"] is False and conn.capabilities["apps"] is True


@pytest.mark.parametrize("failure,words", [
    ((429, {"retry-after": "30"}, json.dumps({"id": "too_many_requests", "message": "API Rate limit exceeded."})), "rate limiting"),
    ((503, {}, json.dumps({"id": "service_unavailable", "message": "down"})), "could not be reached"),
])
def test_a_provider_outage_is_explained_and_nothing_is_saved(workspace, rsps, failure, words, monkeypatch):
    from connections import digitalocean as client

    monkeypatch.setattr(client, "_sleep", lambda s: None)
    digitalocean(rsps, failure=failure)
    with pytest.raises(services.ConnectionError_, match=words):
        services.connect(workspace, "digital-ocean", "x", GOOD)
    assert not Connection.objects.exists()


def test_access_keys_are_unique_in_a_workspace(workspace, rsps):
    digitalocean(rsps)
    services.connect(workspace, "digital-ocean", "main", GOOD)
    with pytest.raises(services.ConnectionError_, match="already exists"):
        services.connect(workspace, "digital-ocean", "MAIN", GOOD)


def test_testing_credentials_records_a_revoked_token(workspace, rsps):
    digitalocean(rsps)
    conn = services.connect(workspace, "digital-ocean", "main", GOOD)
    Connection.objects.filter(pk=conn.pk).update(token_ciphertext=Connection(pk=conn.pk, token=REVOKED).token_ciphertext)
    conn = services.test(Connection.objects.get(pk=conn.pk))
    assert conn.status == Status.INVALID
    assert "revoked" in conn.last_error


def test_rotating_to_another_account_needs_confirmation(workspace, rsps):
    digitalocean(rsps)
    conn = services.connect(workspace, "digital-ocean", "main", GOOD)
    services.rotate(conn, NO_DROPLETS)  # same account: no question asked
    assert conn.version == 2
    with pytest.raises(services.AccountChanged, match="another DigitalOcean team"):
        services.rotate(conn, OTHER_ACCOUNT)
    assert Connection.objects.get(pk=conn.pk).token == NO_DROPLETS
    services.rotate(conn, OTHER_ACCOUNT, confirm_account_change=True)
    conn.refresh_from_db()
    assert (conn.version, conn.team_name, conn.token) == (3, "Other", OTHER_ACCOUNT)


def test_removing_deletes_the_credentials_and_tells_the_apps(workspace, rsps):
    digitalocean(rsps)
    conn = services.connect(workspace, "digital-ocean", "main", GOOD)
    conn_id = conn.pk
    heard = []
    connection_removed.connect(lambda sender, **kw: heard.append(kw["connection"].pk), weak=False, dispatch_uid="t")
    try:
        services.remove(conn)
    finally:
        connection_removed.disconnect(dispatch_uid="t")
    assert heard == [conn_id]
    assert not Connection.objects.exists()


# --- Pages -------------------------------------------------------------------------------


def test_the_connect_form_keeps_input_but_never_echoes_the_token(client_for, owner, workspace, rsps):
    digitalocean(rsps)
    response = client_for(owner).post(f"/w/{workspace.slug}/settings/integrations/digital-ocean/connect/",
                                      {"name": "main", "token": REVOKED, "description": "kept"})
    page = response.content.decode()
    assert "wrong, expired or revoked" in page
    assert 'value="main"' in page and "kept" in page
    assert REVOKED not in page


@pytest.mark.parametrize("role", [Role.MEMBER, Role.VIEWER])
def test_only_admins_manage_connections(client_for, workspace, make_member, role, rsps):
    user = make_member(workspace, role)
    client = client_for(user)
    page = client.get(f"/w/{workspace.slug}/settings/integrations/").content.decode()
    assert "DigitalOcean" in page and "Connect</a>" not in page
    assert client.get(f"/w/{workspace.slug}/settings/integrations/digital-ocean/connect/").status_code == 403


def test_test_credentials_updates_the_status_in_place(client_for, owner, workspace, rsps):
    digitalocean(rsps)
    conn = services.connect(workspace, "digital-ocean", "main", GOOD)
    response = client_for(owner).post(f"/w/{workspace.slug}/settings/integrations/connections/{conn.pk}/test/",
                                      HTTP_HX_REQUEST="true")
    assert 'id="connection-status"' in response.content.decode()
    assert "The token works." in response.content.decode()

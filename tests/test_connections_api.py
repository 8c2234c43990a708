import json
import re

import pytest

from tests.conftest import error_fields
import responses

from connections.models import Connection
from devpilot.models import Role
from tests.test_connections import API, GOOD, OTHER_ACCOUNT, REVOKED, digitalocean


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        digitalocean(mock)
        yield mock


def test_the_seed_sample_request_works_as_written(api, workspace, rsps):
    # From Infisical's "DigitalOcean Connection" page, with projectId naming our workspace.
    response = api.post("/api/v1/app-connections/digital-ocean", {
        "name": "my-digitalocean-connection",
        "method": "api-token",
        "projectId": str(workspace.pk),
        "credentials": {"apiToken": GOOD},
    })
    assert response.status_code == 200, response.json()
    body = response.json()["appConnection"]
    assert body["name"] == "my-digitalocean-connection"
    assert body["projectId"] == str(workspace.pk)
    assert (body["app"], body["method"], body["credentials"], body["version"]) == ("digital-ocean", "api-token", {}, 1)
    assert body["isPlatformManagedCredentials"] is False
    assert re.fullmatch(r"[0-9a-f]{64}", body["credentialsHash"])
    assert {"id", "description", "orgId", "createdAt", "updatedAt"} <= set(body)
    assert GOOD not in response.content.decode()


def test_list_get_patch_delete(api, workspace, rsps):
    created = api.post("/api/v1/app-connections/digital-ocean", {
        "name": "main", "method": "api-token", "projectId": str(workspace.pk), "credentials": {"apiToken": GOOD},
    }).json()["appConnection"]
    url = f"/api/v1/app-connections/digital-ocean/{created['id']}"
    assert [c["id"] for c in api.get("/api/v1/app-connections/digital-ocean").json()["appConnections"]] == [created["id"]]
    assert api.get(url).json()["appConnection"]["name"] == "main"
    renamed = api.patch(url, {"name": "renamed", "description": "prod"}).json()["appConnection"]
    assert (renamed["name"], renamed["description"]) == ("renamed", "prod")
    conflict = api.patch(url, {"credentials": {"apiToken": OTHER_ACCOUNT}})
    assert conflict.status_code == 409 and "confirmAccountChange" in conflict.json()["message"]
    rotated = api.patch(url, {"credentials": {"apiToken": OTHER_ACCOUNT}, "confirmAccountChange": True}).json()["appConnection"]
    assert rotated["version"] == 2 and rotated["credentialsHash"] != created["credentialsHash"]
    assert api.delete(url).status_code == 200
    assert api.get(url).status_code == 404


def test_bad_requests_are_explained(api, workspace, rsps):
    base = {"name": "x", "method": "api-token", "projectId": str(workspace.pk)}
    missing = api.post("/api/v1/app-connections/digital-ocean", base)
    assert missing.status_code == 400 and "credentials" in error_fields(missing)
    revoked = api.post("/api/v1/app-connections/digital-ocean", {**base, "credentials": {"apiToken": REVOKED}})
    assert revoked.status_code == 400 and "revoked" in revoked.json()["message"]
    foreign = api.post("/api/v1/app-connections/digital-ocean", {**base, "projectId": "3c90c3cc-0d44-4b50-8888-8dd25736052a", "credentials": {"apiToken": GOOD}})
    assert foreign.status_code == 404
    assert not Connection.objects.exists()


def test_viewers_read_but_do_not_create(api_client_for, workspace, rsps):
    viewer = api_client_for(workspace, Role.VIEWER)
    assert viewer.get("/api/v1/app-connections/digital-ocean").status_code == 200
    response = viewer.post("/api/v1/app-connections/digital-ocean", {
        "name": "x", "method": "api-token", "projectId": str(workspace.pk), "credentials": {"apiToken": GOOD}})
    assert response.status_code == 403


def test_apps_are_listed_across_every_page(api, workspace):
    conn = Connection.objects.create(workspace=workspace, name="main", token=GOOD)
    with responses.RequestsMock() as rsps:
        rsps.get(f"{API}/v2/apps", match=[responses.matchers.query_param_matcher({"per_page": "200"})], json={
            "apps": [{"id": f"app-{i}", "spec": {"name": f"app-{i}"}} for i in range(200)],
            "links": {"pages": {"next": f"{API}/v2/apps?page=2&per_page=200"}}})
        rsps.get(f"{API}/v2/apps", match=[responses.matchers.query_param_matcher({"page": "2", "per_page": "200"})],
                 json={"apps": [{"id": "app-200", "spec": {"name": "last"}}], "links": {}})
        apps = api.get(f"/api/v1/app-connections/digital-ocean/{conn.pk}/apps").json()["apps"]
    assert len(apps) == 201 and apps[-1] == {"id": "app-200", "name": "last"}


@pytest.mark.parametrize("status,body,expected", [
    (401, {"id": "unauthorized", "message": "Unable to authenticate you."}, 400),
    (403, {"id": "forbidden", "message": "You are not authorized to perform this operation."}, 403),
    (500, {"id": "server_error", "message": "x"}, 502),
])
def test_app_listing_failures_are_errors_never_an_empty_list(api, workspace, status, body, expected, monkeypatch):
    from connections import digitalocean as client

    monkeypatch.setattr(client, "_sleep", lambda s: None)
    conn = Connection.objects.create(workspace=workspace, name="main", token=GOOD)
    with responses.RequestsMock() as rsps:
        rsps.get(f"{API}/v2/apps", status=status, json=body)
        response = api.get(f"/api/v1/app-connections/digital-ocean/{conn.pk}/apps")
    assert response.status_code == expected
    assert "apps" not in response.json()

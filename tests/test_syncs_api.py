import pytest

from tests.conftest import error_fields

from connections.models import Connection
from devpilot import secrets
from devpilot.models import Role
from syncs.models import Sync


@pytest.fixture
def setup(workspace, fake_do):
    env = workspace.environments.get(slug="dev")
    secrets.create_folder(env, "/", "app-secrets")
    secrets.create_secret(env, "/app-secrets", "DATABASE_URL", "postgres://db")
    connection = Connection.objects.create(workspace=workspace, name="my-digitalocean-connection", token="dop_v1_good")
    app = fake_do.add_app("do-todo-app", envs=[])
    return connection, app


def seed_request(workspace, connection, app):
    """The seed's sample request, with its ids naming real objects."""
    return {
        "name": "my-digitalocean-sync",
        "projectId": str(workspace.pk),
        "description": "sync to do app",
        "connectionId": str(connection.pk),
        "environment": "dev",
        "secretPath": "/app-secrets",
        "isEnabled": True,
        "syncOptions": {"initialSyncBehavior": "overwrite-destination", "autoSyncEnabled": True,
                        "disableSecretDeletion": False},
        "destinationConfig": {"appId": app["id"], "appName": "do-todo-app"},
    }


def test_the_seed_sample_request_works_as_written(api, workspace, setup, fake_do, django_capture_on_commit_callbacks):
    connection, app = setup
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/secret-syncs/digital-ocean-app-platform", seed_request(workspace, connection, app))
    assert response.status_code == 200, response.json()
    body = response.json()["secretSync"]
    for field in ("id", "name", "description", "isEnabled", "version", "folderId", "connectionId", "createdAt",
                  "updatedAt", "syncStatus", "lastSyncJobId", "lastSyncMessage", "lastSyncedAt", "syncOptions",
                  "projectId", "connection", "environment", "folder", "destination", "destinationConfig"):
        assert field in body
    assert body["connection"] == {"app": "digital-ocean", "name": "my-digitalocean-connection", "id": str(connection.pk)}
    assert body["environment"]["slug"] == "dev" and body["folder"]["path"] == "/app-secrets"
    assert body["destinationConfig"]["appId"] == app["id"] and body["destination"] == "digital-ocean"
    # Auto-sync was on: it ran at once (tasks run inline in tests).
    sync = Sync.objects.get()
    assert sync.sync_status == "succeeded"
    assert set(fake_do.app_envs(app["id"])) == {"DATABASE_URL"}
    fetched = api.get(f"/api/v1/secret-syncs/digital-ocean-app-platform/{sync.pk}").json()["secretSync"]
    assert fetched["syncStatus"] == "succeeded" and fetched["lastSyncJobId"] and fetched["lastSyncedAt"]


def test_both_auto_sync_spellings_are_accepted(api, workspace, setup, fake_do):
    connection, app = setup
    body = seed_request(workspace, connection, app)
    del body["isEnabled"]
    body["syncOptions"]["autoSyncEnabled"] = False
    off = api.post("/api/v1/secret-syncs/digital-ocean-app-platform", body).json()["secretSync"]
    assert off["isAutoSyncEnabled"] is False and off["syncStatus"] is None
    other_app = fake_do.add_app("other-app", envs=[])  # one app's variables are managed by one sync
    body = {**seed_request(workspace, connection, other_app), "name": "second", "isAutoSyncEnabled": False}
    del body["isEnabled"]
    body["syncOptions"] = {"initialSyncBehavior": "overwrite-destination"}
    assert api.post("/api/v1/secret-syncs/digital-ocean-app-platform", body).json()["secretSync"]["isAutoSyncEnabled"] is False


def test_bad_requests_are_explained(api, workspace, setup):
    connection, app = setup
    url = "/api/v1/secret-syncs/digital-ocean-app-platform"
    duplicate = seed_request(workspace, connection, app)
    assert api.post(url, duplicate).status_code == 200
    again = api.post(url, duplicate)
    assert again.status_code == 400 and "already exists" in str(again.json()["details"])
    same_variables = {**duplicate, "name": "another-name"}
    shared = api.post(url, same_variables)
    assert shared.status_code == 400 and error_fields(shared) == {"syncOptions.keySchema"}, shared.json()
    assert "DATABASE_URL is already managed by sync my-digitalocean-sync" in shared.json()["message"]
    bad_schema = {**seed_request(workspace, connection, app), "name": "x2"}
    bad_schema["syncOptions"] = {"keySchema": "NO_PLACEHOLDER"}
    assert "syncOptions.keySchema" in error_fields(api.post(url, bad_schema))
    bad_path = {**seed_request(workspace, connection, app), "name": "x3", "secretPath": "/nope"}
    assert api.post(url, bad_path).status_code == 400
    other_connection = {**seed_request(workspace, connection, app), "name": "x4", "connectionId": "3c90c3cc-0d44-4b50-8888-8dd25736052a"}
    assert "connectionId" in error_fields(api.post(url, other_connection))


def test_patch_sync_now_remove_and_delete(api, workspace, setup, fake_do, django_capture_on_commit_callbacks):
    connection, app = setup
    with django_capture_on_commit_callbacks(execute=True):
        created = api.post("/api/v1/secret-syncs/digital-ocean-app-platform", seed_request(workspace, connection, app)).json()["secretSync"]
    url = f"/api/v1/secret-syncs/digital-ocean-app-platform/{created['id']}"
    with django_capture_on_commit_callbacks(execute=True):
        patched = api.patch(url, {"syncOptions": {"keySchema": "TODO_{{secretKey}}"}}).json()["secretSync"]
    assert patched["syncOptions"]["keySchema"] == "TODO_{{secretKey}}" and patched["version"] == 2
    assert set(fake_do.app_envs(app["id"])) == {"TODO_DATABASE_URL"}  # the key it wrote under the old schema is cleaned up
    with django_capture_on_commit_callbacks(execute=True):
        assert api.post(url + "/sync-secrets").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        removed = api.post(url + "/remove-secrets").json()["secretSync"]
    assert fake_do.app_envs(app["id"]) == {}
    assert api.get(url).json()["secretSync"]["removeStatus"] == "succeeded" and removed["id"] == created["id"]
    # Removal talks to DigitalOcean, so it is queued: the answer comes at once, the worker deletes the sync.
    calls_before = len(fake_do.requests)
    with django_capture_on_commit_callbacks() as queued:
        deleting = api.delete(url + "?removeSecrets=true")
    assert deleting.status_code == 200 and deleting.json()["secretSync"]["deleteAfterRemoval"] is True
    assert Sync.objects.exists() and len(fake_do.requests) == calls_before  # nothing sent inside the request
    for callback in queued:
        callback()
    assert not Sync.objects.exists()


def test_viewers_read_but_cannot_change_syncs(api_client_for, workspace, setup):
    connection, app = setup
    viewer = api_client_for(workspace, Role.VIEWER)
    assert viewer.get("/api/v1/secret-syncs/digital-ocean-app-platform").status_code == 200
    assert viewer.post("/api/v1/secret-syncs/digital-ocean-app-platform", seed_request(workspace, connection, app)).status_code == 403

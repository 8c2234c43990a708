import pytest
from django.db import connection, reset_queries
from django.test.utils import CaptureQueriesContext

from devpilot import identities, secrets
from devpilot.models import Role
from devpilot.tokens import create_api_token
from tests.conftest import ApiClient


@pytest.fixture
def dev(workspace):
    env = workspace.environments.get(slug="dev")
    secrets.create_folder(env, "/", "app-secrets")
    return env


def params(workspace, path="/app-secrets"):
    return {"workspaceId": str(workspace.pk), "environment": "dev", "secretPath": path}


def test_create_read_update_delete_like_infisical(api, workspace, dev):
    body = {**params(workspace), "secretValue": "s3cr3t", "secretComment": "db"}
    created = api.post("/api/v3/secrets/raw/DB_PASSWORD", body)
    assert created.status_code == 200, created.json()
    assert created.json()["secret"]["secretKey"] == "DB_PASSWORD"
    assert created.json()["secret"]["secretPath"] == "/app-secrets"
    read = api.get("/api/v3/secrets/raw/DB_PASSWORD", params(workspace))
    assert read.json()["secret"]["secretValue"] == "s3cr3t"
    updated = api.patch("/api/v3/secrets/raw/DB_PASSWORD", {**params(workspace), "secretValue": "new"})
    assert updated.json()["secret"]["version"] == 2
    listed = api.get("/api/v3/secrets/raw", params(workspace))
    assert [(s["secretKey"], s["secretValue"]) for s in listed.json()["secrets"]] == [("DB_PASSWORD", "new")]
    deleted = api.delete("/api/v3/secrets/raw/DB_PASSWORD")
    assert deleted.status_code == 400, deleted.json()
    assert deleted.json()["details"] == [{"field": "body", "message": "This field is required."}], deleted.json()
    deleted = api.client.delete("/api/v3/secrets/raw/DB_PASSWORD", params(workspace), content_type="application/json")
    assert deleted.status_code == 200
    assert secrets.read_folder(dev, "/app-secrets") == {}


def test_viewer_tokens_list_keys_but_never_values(api_client_for, workspace, dev):
    secrets.create_secret(dev, "/app-secrets", "K", "hidden-value")
    viewer = api_client_for(workspace, Role.VIEWER)
    listed = viewer.get("/api/v3/secrets/raw", params(workspace))
    assert listed.json()["secrets"][0]["secretKey"] == "K"
    assert "hidden-value" not in listed.content.decode()
    assert viewer.get("/api/v3/secrets/raw/K", params(workspace)).status_code == 403
    assert viewer.post("/api/v3/secrets/raw/NEW", {**params(workspace), "secretValue": "x"}).status_code == 403


def test_bad_input_is_a_400_with_a_reason(api, workspace, dev):
    bad_key = api.post("/api/v3/secrets/raw/1BAD", {**params(workspace), "secretValue": "x"})
    assert bad_key.status_code == 400 and "not a valid key" in bad_key.json()["message"]
    no_env = api.get("/api/v3/secrets/raw", {"workspaceId": str(workspace.pk)})
    assert no_env.status_code == 400 and no_env.json()["details"] == [{"field": "environment", "message": "This field is required."}]
    unknown_path = api.get("/api/v3/secrets/raw", params(workspace, "/nope"))
    assert unknown_path.status_code == 404
    stale = api.post("/api/v3/secrets/raw/A", {**params(workspace), "secretValue": "1"})
    api.patch("/api/v3/secrets/raw/A", {**params(workspace), "secretValue": "2"})
    conflict = api.patch("/api/v3/secrets/raw/A", {**params(workspace), "secretValue": "3", "version": 1})
    assert stale.status_code == 200 and conflict.status_code == 409


def test_batch_writes_are_all_or_nothing(api, workspace, dev):
    items = [{"secretKey": f"K{i}", "secretValue": str(i)} for i in range(3)]
    assert api.post("/api/v3/secrets/batch/raw", {**params(workspace), "secrets": items}).status_code == 200
    again = api.post("/api/v3/secrets/batch/raw", {**params(workspace), "secrets": items[:1] + [{"secretKey": "NEW", "secretValue": "x"}]})
    assert again.status_code == 400
    assert "NEW" not in secrets.read_folder(dev, "/app-secrets")
    bad = api.patch("/api/v3/secrets/batch/raw", {**params(workspace), "secrets": [{"secretKey": "K0", "secretValue": "a"}, {"secretKey": "K1-", "secretValue": "b"}]})
    assert bad.status_code == 400 and "K1-" in bad.json()["message"]
    patched = api.patch("/api/v3/secrets/batch/raw", {**params(workspace), "secrets": [{"secretKey": "K0", "secretValue": "zero"}]})
    assert patched.json()["secrets"][0]["secretValue"] == "zero"
    removed = api.client.delete("/api/v3/secrets/batch/raw", {**params(workspace), "secrets": [{"secretKey": "K1"}, {"secretKey": "K2"}]}, content_type="application/json")
    assert removed.status_code == 200
    assert secrets.read_folder(dev, "/app-secrets") == {"K0": "zero"}


def test_api_answers_are_never_cached(api, workspace, dev):
    secrets.create_secret(dev, "/app-secrets", "K", "v")
    assert "no-store" in api.get("/api/v3/secrets/raw", params(workspace))["Cache-Control"]
    assert "no-store" in api.get("/api/v3/secrets/raw/NOPE", params(workspace))["Cache-Control"]


def test_every_value_read_through_the_api_is_audited(api, api_client_for, workspace, dev):
    from devpilot.models import AuditEvent

    secrets.create_secret(dev, "/app-secrets", "K", "v")
    api.get("/api/v3/secrets/raw", params(workspace))
    api.get("/api/v3/secrets/raw/K", params(workspace))
    api.get("/api/v3/secrets/raw", {**params(workspace), "viewSecretValue": "false"})  # keys only: not a read
    api_client_for(workspace, Role.VIEWER).get("/api/v3/secrets/raw", params(workspace))  # no values for viewers
    reads = AuditEvent.objects.filter(action=secrets.VALUES_READ).order_by("created_at")
    assert [(e.actor_label.startswith("API token"), e.data["how"], e.data["keys"]) for e in reads] == [
        (True, "api", ["K"]), (True, "api", ["K"])]


@pytest.mark.parametrize("credential", ["API token", "access token"])
def test_listing_a_folder_costs_three_queries_with_either_credential(workspace, owner, dev, credential):
    """The token (with its creator's current role), the folder's rows, the audit of the read: however many
    secrets, and whichever credential Infisical's clients hold."""
    for i in range(30):
        secrets.create_secret(dev, "/app-secrets", f"KEY_{i:02d}", f"value-{i}")
    if credential == "API token":
        client = ApiClient(create_api_token(workspace, "ci", role=Role.MEMBER, created_by=owner)[1])
    else:
        identity = identities.create_identity(workspace, "ci", Role.MEMBER, created_by=owner)
        client = ApiClient(identities.login(identity.client_id, identities.add_client_secret(identity)[1])[1])
    assert client.get("/api/v3/secrets/raw", params(workspace)).status_code == 200  # marks the token used
    reset_queries()
    with CaptureQueriesContext(connection) as queries:
        listed = client.get("/api/v3/secrets/raw", params(workspace))
    assert len(listed.json()["secrets"]) == 30 and listed.json()["secrets"][0]["secretValue"] == "value-0"
    assert len(queries) == 3, [q["sql"][:120] for q in queries]

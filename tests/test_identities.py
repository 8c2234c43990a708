"""Machine identities: universal auth login / renew / revoke, TTLs, client secrets, trusted IPs, roles, audit,
the management API and pages; and every API token or identity acting with at most its creator's current role."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from devpilot import identities, secrets
from devpilot.models import AuditEvent, IdentityAccessToken, IdentityClientSecret, Membership, Role
from devpilot.tokens import create_api_token
from tests.conftest import ApiClient

LOGIN = "/api/v1/auth/universal-auth/login"
RENEW = "/api/v1/auth/token/renew"
REVOKE = "/api/v1/auth/token/revoke"
SECRETS = "/api/v3/secrets/raw"


@pytest.fixture
def dev(workspace):
    env = workspace.environments.get(slug="dev")
    secrets.create_secret(env, "/", "DB_PASSWORD", "s3cr3t")
    return env


def make_identity(workspace, creator, role=Role.MEMBER, **options):
    identity = identities.create_identity(workspace, f"{role}-bot", role, created_by=creator, **options)
    _, client_secret = identities.add_client_secret(identity)
    return identity, client_secret


def login(identity, client_secret, **extra):
    return Client().post(LOGIN, {"clientId": str(identity.client_id), "clientSecret": client_secret},
                         content_type="application/json", **extra)


def logged_in(identity, client_secret):
    response = login(identity, client_secret)
    assert response.status_code == 200, response.content
    return ApiClient(response.json()["accessToken"])


def scope(workspace):
    return {"workspaceId": str(workspace.pk), "environment": "dev", "secretPath": "/"}


# --- Universal auth ---------------------------------------------------------------------------


def test_login_answers_as_infisical_and_the_token_works(workspace, owner, dev):
    identity, client_secret = make_identity(workspace, owner, ttl=600, max_ttl=3600)
    response = login(identity, client_secret)
    assert response.status_code == 200
    body = response.json()
    assert body["tokenType"] == "Bearer" and body["accessToken"].startswith("dvpat_")
    assert 590 <= body["expiresIn"] <= 600 and body["accessTokenMaxTTL"] == 3600
    listed = ApiClient(body["accessToken"]).get(SECRETS, scope(workspace))
    assert [s["secretValue"] for s in listed.json()["secrets"]] == ["s3cr3t"]
    # Neither the secret nor the token is stored in plaintext.
    assert not IdentityClientSecret.objects.filter(secret_hash=client_secret).exists()
    assert not IdentityAccessToken.objects.filter(token_hash=body["accessToken"]).exists()


@pytest.mark.parametrize("body", [{}, {"clientId": "x"}, {"clientId": "00000000-0000-0000-0000-000000000000",
                                                          "clientSecret": "dvpcs_wrong"}])
def test_missing_or_wrong_credentials_are_401(workspace, owner, body):
    make_identity(workspace, owner)
    response = Client().post(LOGIN, body, content_type="application/json")
    assert response.status_code == 401 and response.json()["statusCode"] == 401


def test_a_client_secret_of_another_identity_does_not_log_in(workspace, owner):
    one, _ = make_identity(workspace, owner, Role.VIEWER)
    _, other_secret = make_identity(workspace, owner, Role.ADMIN)
    assert login(one, other_secret).status_code == 401


def test_an_expired_access_token_is_401(workspace, owner, dev):
    identity, client_secret = make_identity(workspace, owner, ttl=60)
    api = logged_in(identity, client_secret)
    assert api.get(SECRETS, scope(workspace)).status_code == 200
    IdentityAccessToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = api.get(SECRETS, scope(workspace))
    assert response.status_code == 401 and "expired" in response.json()["message"]


def test_renew_extends_the_token_but_never_past_its_max_ttl(workspace, owner):
    identity, client_secret = make_identity(workspace, owner, ttl=100, max_ttl=150)
    token = login(identity, client_secret).json()["accessToken"]
    access = IdentityAccessToken.objects.get()
    # 40 seconds later: renewing gives the full TTL again (now + 100 < login + 150).
    IdentityAccessToken.objects.update(created_at=F_ago(40), expires_at=F_ago(40) + timedelta(seconds=100))
    renewed = Client().post(RENEW, {"accessToken": token}, content_type="application/json")
    assert renewed.status_code == 200, renewed.content
    assert renewed.json()["accessToken"] == token and 95 <= renewed.json()["expiresIn"] <= 100
    # 120 seconds after login: renewal stops at the max TTL (30 s left), and then cannot go further.
    IdentityAccessToken.objects.update(created_at=F_ago(120), expires_at=F_ago(-20))
    capped = Client().post(RENEW, {"accessToken": token}, content_type="application/json")
    assert capped.status_code == 200 and capped.json()["expiresIn"] <= 30
    refused = Client().post(RENEW, {"accessToken": token}, content_type="application/json")
    assert refused.status_code == 401 and "max TTL" in refused.json()["message"]
    access.refresh_from_db()
    assert access.expires_at <= access.created_at + timedelta(seconds=150)


def F_ago(seconds):
    return timezone.now() - timedelta(seconds=seconds)


def test_revoked_access_tokens_are_401(workspace, owner, dev):
    identity, client_secret = make_identity(workspace, owner)
    api = logged_in(identity, client_secret)
    token = api.token
    assert Client().post(REVOKE, {"accessToken": token}, content_type="application/json").json() == {
        "message": "Successfully revoked access token"}
    assert api.get(SECRETS, scope(workspace)).status_code == 401
    assert Client().post(RENEW, {"accessToken": token}, content_type="application/json").status_code == 401


def test_a_revoked_client_secret_no_longer_logs_in_and_its_tokens_end(workspace, owner, dev):
    identity, client_secret = make_identity(workspace, owner)
    api = logged_in(identity, client_secret)
    identities.revoke_client_secret(identity.client_secrets.get())
    assert login(identity, client_secret).status_code == 401
    assert api.get(SECRETS, scope(workspace)).status_code == 401
    # Another secret of the same identity still works: several secrets per identity.
    _, second = identities.add_client_secret(identity, description="second")
    assert login(identity, second).status_code == 200


def test_an_expired_client_secret_is_refused(workspace, owner):
    identity = identities.create_identity(workspace, "bot", Role.VIEWER, created_by=owner)
    _, client_secret = identities.add_client_secret(identity, ttl=60)
    assert login(identity, client_secret).status_code == 200
    IdentityClientSecret.objects.update(expires_at=F_ago(1))
    response = login(identity, client_secret)
    assert response.status_code == 401 and "expired" in response.json()["message"]


def test_the_use_limit_of_a_client_secret(workspace, owner):
    identity = identities.create_identity(workspace, "bot", Role.VIEWER, created_by=owner)
    _, client_secret = identities.add_client_secret(identity, uses_limit=2)
    assert [login(identity, client_secret).status_code for _ in range(3)] == [200, 200, 401]
    assert identity.client_secrets.get().uses == 2


def test_trusted_ips_apply_to_login_and_to_every_use_of_a_token(workspace, owner, dev):
    identity, client_secret = make_identity(workspace, owner, trusted_ips=["10.0.0.0/8"])
    assert login(identity, client_secret).status_code == 403  # the test client is 127.0.0.1
    inside = login(identity, client_secret, REMOTE_ADDR="10.1.2.3")
    assert inside.status_code == 200
    api = ApiClient(inside.json()["accessToken"])
    assert api.get(SECRETS, scope(workspace), REMOTE_ADDR="10.9.9.9").status_code == 200
    assert api.get(SECRETS, scope(workspace)).status_code == 403


# --- Roles --------------------------------------------------------------------------------------


def test_a_viewer_identity_reads_keys_but_no_values(workspace, owner, dev):
    identity, client_secret = make_identity(workspace, owner, Role.VIEWER)
    api = logged_in(identity, client_secret)
    listed = api.get(SECRETS, scope(workspace)).json()["secrets"]
    assert [(s["secretKey"], s["secretValue"], s["secretValueHidden"]) for s in listed] == [
        ("DB_PASSWORD", None, True)]
    assert "s3cr3t" not in api.get(SECRETS, scope(workspace)).content.decode()
    assert api.get(f"{SECRETS}/DB_PASSWORD", scope(workspace)).status_code == 403
    assert api.post(f"{SECRETS}/NEW", {**scope(workspace), "secretValue": "x"}).status_code == 403


def test_an_identity_is_never_owner_nor_above_its_creator(workspace, owner, make_member):
    with pytest.raises(identities.IdentityError):
        identities.create_identity(workspace, "boss", Role.OWNER, created_by=owner)
    api = ApiClient(create_api_token(workspace, "admin", role=Role.ADMIN)[1])
    assert api.post("/api/v1/identities", {"name": "boss", "role": "owner"}).status_code == 400
    member_token = ApiClient(create_api_token(workspace, "member", role=Role.MEMBER)[1])
    assert member_token.post("/api/v1/identities", {"name": "x", "role": "viewer"}).status_code == 403


def test_an_admin_identity_whose_creator_is_demoted_acts_as_viewer(workspace, owner, make_member, dev):
    admin = make_member(workspace, Role.ADMIN)
    identity, client_secret = make_identity(workspace, admin, Role.ADMIN)
    api = logged_in(identity, client_secret)
    assert api.get(f"{SECRETS}/DB_PASSWORD", scope(workspace)).status_code == 200
    Membership.objects.filter(user=admin).update(role=Role.VIEWER)
    assert api.get(f"{SECRETS}/DB_PASSWORD", scope(workspace)).status_code == 403
    assert [s["secretValue"] for s in api.get(SECRETS, scope(workspace)).json()["secrets"]] == [None]
    Membership.objects.filter(user=admin).delete()
    response = api.get(SECRETS, scope(workspace))
    assert response.status_code == 401 and "no longer a member" in response.json()["message"]


def test_an_admin_api_token_whose_creator_is_demoted_can_no_longer_read_values(workspace, owner, make_member,
                                                                                 client_for, dev):
    admin = make_member(workspace, Role.ADMIN)
    _, plaintext = create_api_token(workspace, "deploy", role=Role.ADMIN, created_by=admin)
    api = ApiClient(plaintext)
    assert api.get(f"{SECRETS}/DB_PASSWORD", scope(workspace)).json()["secret"]["secretValue"] == "s3cr3t"
    Membership.objects.filter(user=admin).update(role=Role.VIEWER)
    assert api.get(f"{SECRETS}/DB_PASSWORD", scope(workspace)).status_code == 403
    assert [s["secretValue"] for s in api.get(SECRETS, scope(workspace)).json()["secrets"]] == [None]
    page = client_for(owner).get(f"/w/{workspace.slug}/settings/api-tokens/").content.decode()
    assert "acts as viewer" in page
    Membership.objects.filter(user=admin).delete()
    response = api.get(SECRETS, scope(workspace))
    assert response.status_code == 401 and "no longer a member" in response.json()["message"]


# --- Audit --------------------------------------------------------------------------------------


def test_every_action_of_an_identity_is_audited_under_its_name(workspace, owner, dev):
    identity, client_secret = make_identity(workspace, owner, Role.MEMBER)
    api = logged_in(identity, client_secret)
    assert api.post(f"{SECRETS}/NEW_KEY", {**scope(workspace), "secretValue": "v"}).status_code == 200
    assert api.post("/api/v1/folders", {"workspaceId": str(workspace.pk), "environment": "dev",
                                        "name": "app"}).status_code == 200
    events = AuditEvent.objects.filter(actor_identity=identity).order_by("created_at", "id")
    assert [e.action for e in events] == ["identity.login", "secret.created", "folder.created"]
    assert {e.actor_label for e in events} == {"Machine identity member-bot"}


# --- The management API -------------------------------------------------------------------------


def test_the_management_api_creates_an_identity_and_client_secrets(workspace, owner, make_member):
    admin = make_member(workspace, Role.ADMIN)
    api = ApiClient(create_api_token(workspace, "admin", role=Role.ADMIN, created_by=admin)[1])
    created = api.post("/api/v1/identities", {"name": "ci", "role": "member", "accessTokenTTL": 300,
                                              "accessTokenMaxTTL": 900, "trustedIps": ["127.0.0.1"]})
    assert created.status_code == 200, created.content
    identity = created.json()["identity"]
    assert (identity["role"], identity["accessTokenTTL"], identity["trustedIps"]) == ("member", 300, ["127.0.0.1/32"])
    base = f"/api/v1/auth/universal-auth/identities/{identity['id']}"
    secret = api.post(f"{base}/client-secrets", {"description": "deploys", "numUsesLimit": 5, "ttl": 3600}).json()
    assert secret["clientSecret"].startswith("dvpcs_") and secret["clientSecretData"]["clientSecretNumUsesLimit"] == 5
    listed = api.get(f"{base}/client-secrets")
    assert secret["clientSecret"] not in listed.content.decode()
    token = Client().post(LOGIN, {"clientId": identity["clientId"], "clientSecret": secret["clientSecret"]},
                          content_type="application/json")
    assert token.json()["expiresIn"] <= 300
    settings = api.patch(base, {"accessTokenTTL": 60, "trustedIps": []}).json()["identityUniversalAuth"]
    assert settings["accessTokenTTL"] == 60 and settings["clientSecretTrustedIps"][0]["ipAddress"] == "0.0.0.0"
    revoked = api.post(f"{base}/client-secrets/{secret['clientSecretData']['id']}/revoke")
    assert revoked.json()["clientSecretData"]["isClientSecretRevoked"] is True
    assert api.patch(f"/api/v1/identities/{identity['id']}", {"accessTokenTTL": 1000}).status_code == 400  # > max
    assert api.delete(f"/api/v1/identities/{identity['id']}").status_code == 200
    assert api.get(f"/api/v1/identities/{identity['id']}").status_code == 404


# --- Pages --------------------------------------------------------------------------------------


def test_the_machine_identities_pages(workspace, owner, client_for, make_member):
    client = client_for(owner)
    base = f"/w/{workspace.slug}/settings/machine-identities/"
    assert "Machine identities" in client.get(f"/w/{workspace.slug}/settings/api-tokens/").content.decode()
    created = client.post(base, {"name": "deployer", "role": "member", "access_token_ttl": 600,
                                 "access_token_max_ttl": 3600, "trusted_ips": "10.0.0.0/8\n192.0.2.1"})
    assert created.status_code == 302
    identity = workspace.machine_identities.get()
    assert identity.trusted_ips == ["10.0.0.0/8", "192.0.2.1/32"] and identity.created_by == owner
    detail = f"{base}{identity.pk}/"
    page = client.post(detail, {"action": "add_secret", "description": "ci", "ttl": "0", "uses_limit": "0"})
    new_secret = page.context["new_secret"]
    assert new_secret.startswith("dvpcs_") and new_secret in page.content.decode()
    assert new_secret not in client.get(detail).content.decode()  # shown once
    assert str(identity.client_id) in client.get(detail).content.decode()
    owner_role = client.post(base, {"name": "x", "role": "owner", "access_token_ttl": 60, "access_token_max_ttl": 60})
    assert owner_role.status_code == 200 and not workspace.machine_identities.filter(name="x").exists()
    secret = identity.client_secrets.get()
    assert client.post(f"{detail}client-secrets/{secret.pk}/revoke/").status_code == 302
    secret.refresh_from_db()
    assert secret.revoked_at is not None
    member = make_member(workspace, Role.MEMBER)
    assert client_for(member).get(base).status_code == 403
    assert client.post(f"{detail}delete/").status_code == 302
    assert not workspace.machine_identities.exists()


# --- Folders, environments, names and slugs (the routes Infisical's clients call) ----------------


def test_folders_api_v1_and_v2(workspace, api, dev):
    ws = str(workspace.pk)
    made = api.post("/api/v2/folders", {"projectId": ws, "environment": "dev", "name": "app", "path": "/",
                                        "description": "the app"})
    assert made.status_code == 200 and made.json()["folder"]["path"] == "/app"
    api.post("/api/v1/folders", {"workspaceId": ws, "environment": "dev", "name": "api", "directory": "/app"})
    top = api.get("/api/v1/folders", {"workspaceId": ws, "environment": "dev", "path": "/"}).json()["folders"]
    assert [f["name"] for f in top] == ["app"]
    deep = api.get("/api/v2/folders", {"projectId": ws, "environment": "dev", "path": "/", "recursive": "true"})
    assert [f["path"] for f in deep.json()["folders"]] == ["/app", "/app/api"]
    folder_id = made.json()["folder"]["id"]
    renamed = api.patch(f"/api/v2/folders/{folder_id}", {"projectId": ws, "environment": "dev", "name": "web"})
    assert renamed.json()["folder"]["path"] == "/web"
    assert api.get(f"/api/v2/folders/{folder_id}").json()["folder"]["description"] == "the app"
    gone = api.delete("/api/v1/folders/web", data='{"workspaceId": "%s", "environment": "dev", "path": "/"}' % ws,
                      content_type="application/json")
    assert gone.status_code == 200 and not dev.folders.exclude(path="/").exists()
    unknown = api.get("/api/v1/folders", {"workspaceId": ws, "environment": "dev", "banana": "1"})
    assert unknown.status_code == 400 and "banana" in unknown.json()["message"]


def test_environments_list_and_create(workspace, api, api_client_for):
    url = f"/api/v1/workspace/{workspace.pk}/environments"
    assert [e["slug"] for e in api.get(url).json()["environments"]] == ["dev", "staging", "prod"]
    created = api.post(url, {"name": "QA", "slug": "qa", "projectId": str(workspace.pk)})
    assert created.status_code == 200 and created.json()["environment"]["slug"] == "qa"
    assert api_client_for(workspace, Role.MEMBER).post(url, {"name": "X", "slug": "x"}).status_code == 403


def test_workspace_slug_instead_of_id(workspace, api, dev, make_user):
    listed = api.get(SECRETS, {"workspaceSlug": workspace.slug, "environment": "dev"})
    assert [s["secretKey"] for s in listed.json()["secrets"]] == ["DB_PASSWORD"]
    created = api.post(f"{SECRETS}/BY_SLUG", {"projectSlug": workspace.slug, "environment": "dev",
                                               "secretValue": "v"})
    assert created.status_code == 200
    assert api.get(SECRETS, {"workspaceSlug": "someone-else", "environment": "dev"}).status_code == 404


def test_every_secret_carries_the_fields_both_sdks_parse(workspace, api, dev):
    secret = api.get(f"{SECRETS}/DB_PASSWORD", scope(workspace)).json()["secret"]
    python_sdk = {"id", "_id", "workspace", "environment", "version", "type", "secretKey", "secretValue",
                  "secretComment", "createdAt", "updatedAt", "secretValueHidden", "skipMultilineEncoding",
                  "secretPath", "tags", "secretMetadata", "secretReminderNote", "secretReminderRepeatDays"}
    node_sdk = {"id", "workspaceId", "environment", "secretKey", "secretValue", "secretComment", "secretPath",
                "secretValueHidden", "skipMultilineEncoding", "folderId", "isRotatedSecret", "secretMetadata",
                "type", "createdAt", "updatedAt", "version", "tags"}
    assert python_sdk | node_sdk <= set(secret)


def test_connection_and_sync_by_name_and_create_without_project_id(workspace, api, fake_do, dev):
    from tests.conftest import GOOD_DO_TOKEN

    created = api.post("/api/v1/app-connections/digital-ocean",
                       {"name": "main", "method": "api-token", "credentials": {"apiToken": GOOD_DO_TOKEN}})
    assert created.status_code == 200, created.content
    by_name = api.get("/api/v1/app-connections/digital-ocean/connection-name/main")
    assert by_name.json()["appConnection"]["id"] == created.json()["appConnection"]["id"]
    assert api.get("/api/v1/app-connections/digital-ocean/connection-name/nope").status_code == 404
    app = fake_do.add_app("web-app", envs=[])
    sync = api.post("/api/v1/secret-syncs/digital-ocean-app-platform", {
        "name": "to-web", "connectionId": created.json()["appConnection"]["id"], "environment": "dev",
        "secretPath": "/", "isAutoSyncEnabled": False,
        "destinationConfig": {"appId": app["id"], "appName": "web-app"}})
    assert sync.status_code == 200, sync.content
    found = api.get("/api/v1/secret-syncs/digital-ocean-app-platform/sync-name/to-web",
                    {"projectId": str(workspace.pk)})
    assert found.json()["secretSync"]["id"] == sync.json()["secretSync"]["id"]
    null_project = api.post("/api/v1/app-connections/digital-ocean", {
        "name": "x", "projectId": None, "method": "api-token", "credentials": {"apiToken": GOOD_DO_TOKEN}})
    assert null_project.status_code == 400

import re
from datetime import timedelta

from django.db import connection
from django.utils import timezone

from devpilot.models import ApiToken, Role
from devpilot.tokens import create_api_token
from tests.conftest import ApiClient


def test_a_token_is_shown_once_and_stored_as_a_hash(client_for, owner, workspace):
    page = client_for(owner).post(f"/w/{workspace.slug}/settings/api-tokens/", {"name": "CI", "role": "admin"}).content.decode()
    plaintext = re.search(r'value="(dvp_[^"]+)"', page).group(1)
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM devpilot_apitoken")
        assert plaintext not in repr(cursor.fetchall())
    assert plaintext not in client_for(owner).get(f"/w/{workspace.slug}/settings/api-tokens/").content.decode()
    response = ApiClient(plaintext).get("/api/v1/workspaces")
    assert response.json() == {"workspaces": [{"id": str(workspace.pk), "slug": "acme", "name": "Acme",
                                               "createdAt": response.json()["workspaces"][0]["createdAt"]}]}
    assert ApiToken.objects.get().last_used_at is not None


def test_revoked_and_expired_tokens_are_refused(client_for, owner, workspace):
    token, plaintext = create_api_token(workspace, "old")
    client_for(owner).post(f"/w/{workspace.slug}/settings/api-tokens/{token.pk}/revoke/")
    response = ApiClient(plaintext).get("/api/v1/workspaces")
    assert response.status_code == 401
    assert response.json()["message"] == "This API token is invalid or has been revoked."
    _, expired = create_api_token(workspace, "expired", expires_at=timezone.now() - timedelta(seconds=1))
    assert ApiClient(expired).get("/api/v1/workspaces").json() == {
        "statusCode": 401, "message": "This API token has expired.", "error": "Unauthorized"}


def test_missing_or_malformed_authorization(client, db):
    assert client.get("/api/v1/workspaces").status_code == 401
    assert client.get("/api/v1/workspaces", HTTP_AUTHORIZATION="Bearer nope").status_code == 401
    assert client.get("/api/v1/workspaces", HTTP_AUTHORIZATION="Basic abc").status_code == 401


def test_api_errors_are_json_never_html(client, api):
    response = api.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response.json() == {"statusCode": 404, "message": "Not found.", "error": "Not Found"}
    response = api.post("/api/v1/workspaces")
    assert response.status_code == 405
    assert response["Content-Type"] == "application/json"


def test_only_admins_create_tokens_and_owner_tokens_need_an_owner(client_for, workspace, make_member):
    member = make_member(workspace, Role.MEMBER)
    assert client_for(member).get(f"/w/{workspace.slug}/settings/api-tokens/").status_code == 403
    admin = make_member(workspace, Role.ADMIN)
    page = client_for(admin).post(f"/w/{workspace.slug}/settings/api-tokens/", {"name": "x", "role": "owner"})
    assert "Only owners" in page.content.decode()
    assert not ApiToken.objects.exists()


def test_a_token_past_its_rate_limit_gets_429(api, settings):
    settings.DEVPILOT_API_RATE_LIMIT = 2
    from django.core.cache import cache

    cache.clear()
    assert [api.get("/api/v1/workspaces").status_code for _ in range(3)] == [200, 200, 429]
    assert "Rate limit" in api.get("/api/v1/workspaces").json()["message"]

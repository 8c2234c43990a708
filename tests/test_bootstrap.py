import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from devpilot.models import ApiToken, Membership, Role
from tests.conftest import ApiClient


def bootstrap(**options):
    out = StringIO()
    call_command("bootstrap", stdout=out, **options)
    return json.loads(out.getvalue())


def test_bootstrap_creates_user_workspace_and_admin_token(db):
    result = bootstrap(email="Ops@Example.com", password="a-long-passphrase-1", workspace="Production")
    assert set(result) == {"user", "workspace", "token"}
    assert result["user"]["email"] == "ops@example.com"
    assert result["workspace"]["name"] == "Production" and result["workspace"]["slug"] == "production"
    assert Membership.objects.get().role == Role.OWNER
    assert ApiToken.objects.get().role == Role.ADMIN
    assert ApiClient(result["token"]).get("/api/v1/workspaces").json()["workspaces"][0]["id"] == result["workspace"]["id"]


def test_bootstrap_refuses_an_existing_user(owner):
    with pytest.raises(CommandError, match="already exists"):
        bootstrap(email=owner.email, password="a-long-passphrase-1", workspace="Other")


def test_bootstrap_refuses_a_weak_password(db):
    with pytest.raises(CommandError, match="Password rejected"):
        bootstrap(email="a@example.com", password="123", workspace="W")

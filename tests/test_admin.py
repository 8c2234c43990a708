"""Staff manage every model in the admin, and no secret shows there."""

import pytest
from django.apps import apps
from django.contrib import admin

from connections.models import Connection
from devpilot import secrets
from provisioning import sshkeys


def test_every_model_of_ours_is_in_the_admin():
    ours = [m for m in apps.get_models() if m._meta.app_label in ("devpilot", "connections", "syncs", "provisioning")]
    assert [m.__name__ for m in ours if m not in admin.site._registry] == []


@pytest.mark.parametrize("app", ["devpilot", "connections", "syncs", "provisioning"])
def test_admin_pages_show_no_secret(client_for, owner, workspace, app):
    owner.is_staff = owner.is_superuser = True
    owner.save()
    dev = workspace.environments.get(slug="dev")
    secrets.create_secret(dev, "/", "TOKEN", "plaintext-secret-value")
    Connection.objects.create(workspace=workspace, name="do", token="dop_v1_admin_token")
    key = sshkeys.workspace_key(workspace)
    client = client_for(owner)
    for model in [m for m in apps.get_app_config(app).get_models()]:
        base = f"/admin/{app}/{model._meta.model_name}/"
        pages = [client.get(base)]
        first = model._default_manager.first()
        if first is not None:
            pages.append(client.get(f"{base}{first.pk}/change/"))
        for page in pages:
            assert page.status_code == 200, base
            body = page.content.decode()
            assert "plaintext-secret-value" not in body and "dop_v1_admin_token" not in body
            assert "PRIVATE KEY" not in body and key.private_key_ciphertext not in body

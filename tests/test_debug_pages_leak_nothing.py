"""Even Django's technical 500 page (DEBUG on) shows no credential, token or secret value."""

import pytest
from django.test import Client

import requests
from provisioning import agents

pytestmark = pytest.mark.django_db

CREDENTIAL = "dpa_" + "the-agent-credential-xyz"
DO_TOKEN = "dop_v1_" + "a" * 64
VALUE = "the-secret-" + "value"  # built, so the page's source excerpts never hold it literally


def crash(*args, **kwargs):
    raise RuntimeError("boom")


@pytest.fixture
def debug(settings):
    settings.DEBUG = True
    return Client(raise_request_exception=False)


def test_a_crash_in_the_agent_heartbeat_shows_no_credential(debug, monkeypatch):
    monkeypatch.setattr(agents, "heartbeat", crash)
    response = debug.post("/api/v1/agent/heartbeat", {}, content_type="application/json",
                          HTTP_AUTHORIZATION=f"Bearer {CREDENTIAL}")
    assert response.status_code == 500
    assert CREDENTIAL not in response.content.decode()


def test_a_crash_while_connecting_shows_no_token(debug, owner, workspace, monkeypatch):
    monkeypatch.setattr(requests.Session, "request", crash)  # DigitalOcean "fails" deep inside the call
    debug.force_login(owner)
    response = debug.post(f"/w/{workspace.slug}/settings/integrations/digital-ocean/connect/",
                          {"name": "main", "token": DO_TOKEN})
    assert response.status_code == 500 and "boom" in response.content.decode()  # the technical page
    assert DO_TOKEN not in response.content.decode()


def test_a_crash_while_saving_a_secret_shows_no_value(debug, owner, workspace, monkeypatch):
    from devpilot import secrets

    monkeypatch.setattr(secrets.audit, "record", crash)  # fails after the value was encrypted and saved
    debug.force_login(owner)
    response = debug.post(f"/w/{workspace.slug}/secrets/dev/add/", {"key": "K", "value": VALUE,
                                                                      "path": "/"})
    assert response.status_code == 500
    assert VALUE not in response.content.decode()

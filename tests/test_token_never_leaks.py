"""A DigitalOcean token, once saved, appears in no response, log line or database column."""

import logging

import pytest
import responses
from django.apps import apps
from django.db import connection as db

from connections.models import Connection
from tests.test_connections import GOOD, NO_DROPLETS, digitalocean


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        digitalocean(mock)
        yield mock


def dump_database():
    rows = []
    with db.cursor() as cursor:
        for model in apps.get_models():
            cursor.execute(f'SELECT * FROM "{model._meta.db_table}"')
            rows.append(repr(cursor.fetchall()))
    return "\n".join(rows)


def test_the_token_never_leaks(client_for, owner, workspace, api, rsps, caplog):
    caplog.set_level(logging.DEBUG)
    owner.is_staff = owner.is_superuser = True
    owner.save()
    browser = client_for(owner)
    bodies = []

    def keep(response):
        bodies.append(response.content.decode(errors="replace"))
        return response

    base = f"/w/{workspace.slug}/settings/integrations/"
    keep(browser.post(base + "digital-ocean/connect/", {"name": "main", "token": GOOD}, follow=True))
    conn = Connection.objects.get()
    keep(browser.get(base))
    keep(browser.get(f"{base}connections/{conn.pk}/"))
    keep(browser.post(f"{base}connections/{conn.pk}/test/", HTTP_HX_REQUEST="true"))
    keep(browser.post(f"{base}connections/{conn.pk}/rotate/", {"token": NO_DROPLETS}, follow=True))
    keep(browser.get(f"/admin/connections/connection/{conn.pk}/change/"))
    keep(browser.get("/admin/connections/connection/"))
    keep(browser.get(f"/w/{workspace.slug}/settings/audit-log/"))
    url = f"/api/v1/app-connections/digital-ocean/{conn.pk}"
    keep(api.get(url))
    keep(api.get("/api/v1/app-connections/digital-ocean"))
    keep(api.patch(url, {"credentials": {"apiToken": GOOD}}))
    keep(api.get(url + "/apps"))
    database = dump_database()
    keep(browser.post(f"{base}connections/{conn.pk}/remove/", follow=True))

    assert len(bodies) == 13 and all(bodies)
    # The token was really used (so the checks below are looking at a live flow).
    assert any(c.request.headers["Authorization"] == f"Bearer {GOOD}" for c in rsps.calls)
    for token in (GOOD, NO_DROPLETS):
        assert not [b for b in bodies if token in b]
        assert token not in caplog.text
        assert token not in database
        assert token not in dump_database()

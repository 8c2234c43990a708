"""After Create Sync, the page follows a real worker's progress live, without reloading."""

import pytest

from connections.models import Connection
from devpilot import secrets
from tests.conftest import log_in
from tests.test_syncs_workers import workers  # noqa: F401 - fixture

pytestmark = [pytest.mark.browser, pytest.mark.worker]


def test_the_status_goes_live_from_pending_to_succeeded(page, owner, workspace, fake_do_server, workers, monkeypatch):  # noqa: F811
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", False)  # hand the run to the worker processes
    dev = workspace.environments.get(slug="dev")
    secrets.create_secret(dev, "/", "API_KEY", "k")
    Connection.objects.create(workspace=workspace, name="do", token="dop_v1_good")
    app = fake_do_server.add_app("live-app", envs=[])

    log_in(page, owner.email)
    page.wait_for_url(f"**/w/{workspace.slug}/")
    page.goto(f"/w/{workspace.slug}/syncs/new/")
    page.click("button:has-text('Next')")
    page.check(f"input[name=app_id][value='{app['id']}']")
    page.click("button:has-text('Next')")
    page.click("button:has-text('Next')")
    page.click("button:has-text('Next')")
    page.click("button:has-text('Create Sync')")
    page.wait_for_selector("#sync-status-badge")
    page.evaluate("window.stillTheSamePage = true")
    page.wait_for_selector("#sync-status-badge >> text=Succeeded", timeout=60_000)
    assert page.evaluate("window.stillTheSamePage") is True  # updated in place by polling
    assert "1 created" in page.locator("#sync-status").inner_text()
    assert set(fake_do_server.app_envs(app["id"])) == {"API_KEY"}

import pytest
import responses

from connections.models import Connection
from provisioning.models import Server
from syncs.models import Sync
from tests.conftest import log_in
from tests.test_connections import GOOD, OTHER_ACCOUNT, REVOKED, digitalocean

pytestmark = pytest.mark.browser


@pytest.fixture
def rsps():
    # responses also answers the live server thread's calls to DigitalOcean.
    with responses.RequestsMock(assert_all_requests_are_fired=False, passthru_prefixes=("http://localhost", "http://127.0.0.1")) as mock:
        digitalocean(mock)
        yield mock


def test_connect_test_rotate_and_remove(page, owner, workspace, rsps):
    log_in(page, owner.email)
    page.wait_for_url(f"**/w/{workspace.slug}/")
    page.goto(f"/w/{workspace.slug}/settings/")
    page.click("nav.tabs >> text=Integrations")
    page.click(".provider-card >> text=Connect")

    page.fill("input[name=name]", "devpilot-integration")
    page.fill("input[name=token]", REVOKED)
    page.click("text=Validate and save")
    page.wait_for_selector("text=wrong, expired or revoked")
    assert page.input_value("input[name=name]") == "devpilot-integration"
    assert page.input_value("input[name=token]") == ""
    page.fill("input[name=token]", GOOD)
    page.click("text=Validate and save")
    page.wait_for_selector("text=Connected to DigitalOcean as ops@acme.test")
    assert "Acme" in page.locator("#connection-status").inner_text()

    page.click("text=Test Credentials")
    page.wait_for_selector("text=The token works.")

    page.click("text=Rotate token")
    page.fill("input[name=token]", OTHER_ACCOUNT)
    page.click("text=Validate and rotate")
    page.wait_for_selector("text=belongs to another DigitalOcean team")
    assert Connection.objects.get().token == GOOD
    page.fill("input[name=token]", OTHER_ACCOUNT)
    page.click("text=Switch account and rotate")
    page.wait_for_selector("text=Token rotated (version 2)")
    assert Connection.objects.get().team_name == "Other"

    # A sync uses the connection: the confirmation names it, and the sync stops with a clear status.
    conn = Connection.objects.get()
    dev = workspace.environments.get(slug="dev")
    sync = Sync.objects.create(workspace=workspace, name="web-prod", connection=conn, environment=dev,
                               folder=dev.folders.get(path="/"), app_id="app-1", app_name="web")
    server = Server.objects.create(workspace=workspace, connection=conn, account_uuid=conn.account_uuid, name="db-1",
                                   region="nyc3", size="s-1vcpu-1gb", image="ubuntu-24-04-x64", droplet_id=99,
                                   status="ready")
    page.reload()
    used_by = page.locator("text=Used by").locator("..").inner_text()
    assert "web-prod" in used_by and "db-1" in used_by
    page.click("a.button.danger >> text=Remove")
    page.wait_for_selector("text=are not destroyed")
    assert "web-prod" in page.locator(".card").inner_text() and "db-1" in page.locator(".card").inner_text()
    page.click("text=Remove connection")
    page.wait_for_selector("text=No Droplets were destroyed")
    assert not Connection.objects.exists()
    page.goto(f"/w/{workspace.slug}/syncs/{sync.pk}/")
    page.wait_for_selector("text=The connection was removed")
    page.goto(f"/w/{workspace.slug}/servers/{server.pk}/")
    page.wait_for_selector("text=connect its DigitalOcean account again")
    assert Server.objects.get().droplet_id == 99

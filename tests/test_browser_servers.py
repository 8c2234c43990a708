import subprocess
import sys

import pytest

from connections.models import Connection
from provisioning.cloudinit import AGENT_PATH
from provisioning.models import Server
from tests.conftest import log_in
from tests.test_provisioning import registration_token

pytestmark = pytest.mark.browser


@pytest.fixture
def do_account(workspace, fake_do, settings, live_server):
    settings.DEVPILOT_PUBLIC_URL = live_server.url
    fake_do.boot_after_gets = 0
    Connection.objects.create(workspace=workspace, name="devpilot-integration", token="dop_v1_good",
                              account_uuid="acct-1")
    return fake_do


def walk_wizard(page, name):
    page.click("nav.mainnav >> text=Servers")
    page.click("text=New server")
    page.click("button:has-text('Next')")  # the only connection is preselected
    assert page.locator("input[value=sfo1]").count() == 0  # sold-out regions are not offered
    page.check("input[name=region][value=fra1]")
    page.click("button:has-text('Next')")
    assert page.locator("input[value='s-4vcpu-8gb']").count() == 0  # not available in fra1
    assert "$18.00" in page.locator("tr", has_text="s-2vcpu-2gb").inner_text()
    page.check("input[name=size][value='s-2vcpu-2gb']")
    page.click("button:has-text('Next')")
    assert page.locator("input[name=image][value='ubuntu-24-04-x64']").is_checked()  # Ubuntu LTS preselected
    page.click("button:has-text('Next')")
    page.fill("#id_name", "-bad-")
    page.click("button:has-text('Next')")  # the browser checks the hostname rule as typed
    assert page.evaluate("document.querySelector('#id_name').validity.patternMismatch") is True
    page.fill("#id_name", name)
    page.fill("#id_ports", "22, 80, 443, 8000-9000, 70000")
    page.click("button:has-text('Next')")
    page.wait_for_selector("text=is not a port")
    page.fill("#id_ports", "22, 80, 443, 8000-9000")
    page.check("input[name=backups]")
    page.click("button:has-text('Next')")


def test_provision_watch_it_become_ready_and_destroy_it(page, owner, workspace, do_account, live_server, tmp_path):
    log_in(page, owner.email)
    page.wait_for_url(f"**/w/{workspace.slug}/")
    walk_wizard(page, "web-1")
    assert page.locator("#monthly-cost").inner_text() == "$21.60"  # $18 + 20% backups
    assert "0 of 25 allowed" in page.locator("#droplet-limit").inner_text()
    page.click("button:has-text('Create server')")
    page.wait_for_selector("#step-firewall >> text=Done")
    assert "Installing agent" in page.locator("#server-status").inner_text()
    page.evaluate("window.stillTheSamePage = true")

    # The Droplet boots and its agent calls home (here: the agent script, run locally).
    subprocess.run([sys.executable, str(AGENT_PATH), "--allow-http", "--server", live_server.url, "--token", registration_token(do_account),
                    "--state", str(tmp_path / "agent.json"), "--once"], check=True, capture_output=True, timeout=60)
    page.wait_for_selector("#server-status >> text=Ready")
    assert page.evaluate("window.stillTheSamePage") is True
    (firewall,) = do_account.firewalls.values()
    assert [r["ports"] for r in firewall["inbound_rules"]] == ["22", "80", "443", "8000-9000"]

    page.click("a.button.danger >> text=Destroy")
    page.fill("#id_confirm", "web-2")
    page.click("button:has-text('Destroy')")
    page.wait_for_selector("text=Type web-1 to confirm")
    assert len(do_account.droplets) == 1
    page.fill("#id_confirm", "web-1")
    page.click("button:has-text('Destroy')")
    page.wait_for_selector("#server-status >> text=Destroyed")
    assert not do_account.droplets and not do_account.firewalls
    assert Server.objects.get().status == "destroyed"


def test_the_droplet_limit_is_checked_before_anything_is_created(page, owner, workspace, do_account):
    do_account.tokens["dop_v1_good"]["account"]["droplet_limit"] = 0
    log_in(page, owner.email)
    page.wait_for_url(f"**/w/{workspace.slug}/")
    walk_wizard(page, "web-2")
    page.wait_for_selector("text=reached its Droplet limit (0)")
    assert page.locator("button:has-text('Create server')").is_disabled()
    assert not Server.objects.exists()

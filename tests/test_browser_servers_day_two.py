"""Day two in a browser, against the fake DigitalOcean: careful actions ask first (keyboard reachable), the
resize picker shows the region's bigger sizes with their cost, and the firewall editor previews then applies."""

import pytest

from connections.models import Connection
from provisioning import agents
from tests.conftest import axe_violations, describe_violations, log_in
from tests.test_provisioning import new_server, registration_token, settle

pytestmark = pytest.mark.browser


@pytest.fixture
def server(workspace, fake_do, settings, live_server):
    settings.DEVPILOT_PUBLIC_URL = live_server.url
    fake_do.boot_after_gets = 0
    connection = Connection.objects.create(workspace=workspace, name="do", token="dop_v1_good", account_uuid="acct-1")
    server = settle(new_server(workspace, connection))
    agents.register(registration_token(fake_do), {"hostname": "web-1"})
    server.refresh_from_db()
    return server


def accessible(page):
    assert describe_violations(page.url, axe_violations(page)) == []


def open_server(page, owner, workspace, server):
    log_in(page, owner.email)
    page.wait_for_url(f"**/w/{workspace.slug}/")
    page.goto(f"/w/{workspace.slug}/servers/")
    page.click(f"text={server.name}")
    page.wait_for_selector("#power-state >> text=On")


def test_power_off_and_resize_ask_first_and_the_cost_follows(page, owner, workspace, server, fake_do):
    open_server(page, owner, workspace, server)
    accessible(page)
    page.click("button:has-text('Power off…')")
    page.wait_for_selector("h1 >> text=Power off web-1?")
    assert "Everything running on it stops" in page.inner_text("#consequence")
    assert fake_do.droplets[server.droplet_id]["status"] == "active"  # nothing happened yet
    accessible(page)
    page.keyboard.press("Enter")  # the Confirm button has the focus
    page.wait_for_selector("#power-state >> text=Off")
    assert "Installing" not in page.inner_text("#server-status")
    assert page.locator("button[value=power_on]").count() == 1 and page.locator("button[value=power_off]").count() == 0

    page.click("button:has-text('Resize…')")
    page.wait_for_selector("h1 >> text=Resize web-1")
    rows = page.locator("tbody tr")
    assert [rows.nth(i).locator("label").inner_text() for i in range(rows.count())] == ["s-2vcpu-2gb", "s-4vcpu-8gb"]
    assert "$18.00" in page.locator("tr", has_text="s-2vcpu-2gb").inner_text()
    assert page.locator("input[type=text][name=size]").count() == 0  # no free-text size anywhere
    accessible(page)
    page.check("input[name=size][value='s-2vcpu-2gb']")
    page.click("button:has-text('Next')")
    page.wait_for_selector("#resize-confirm")
    assert "powers the server off for a few minutes; a disk resize cannot be undone" in page.inner_text("#resize-confirm")
    assert page.inner_text("#new-monthly-cost") == "$18.00"
    accessible(page)
    page.click("button:has-text('Resize to s-2vcpu-2gb')")
    page.wait_for_selector("#server-size >> text=s-2vcpu-2gb")
    assert page.inner_text("#monthly-cost") == "$18.00" and "60 GB disk" in page.inner_text("#server-size")
    assert fake_do.droplets[server.droplet_id]["size_slug"] == "s-2vcpu-2gb"


def test_the_firewall_editor_previews_then_applies_one_put(page, owner, workspace, server, fake_do):
    open_server(page, owner, workspace, server)
    page.click("text=Edit rules")
    page.wait_for_selector("#firewall-form")
    accessible(page)
    page.locator("tr", has=page.locator("input[value='80']")).locator("input[type=checkbox]").check()
    page.fill("#ports-3", "8000-8100")
    page.fill("#sources-3", "10.0.0.0/8")
    page.click("button:has-text('Preview changes')")
    page.wait_for_selector("#firewall-preview")
    preview = page.inner_text("#firewall-preview")
    assert "Add TCP 8000-8100 from 10.0.0.0/8" in preview and "Remove TCP 80 from" in preview
    assert fake_do.count("PUT", r"/v2/firewalls/.*") == 0
    accessible(page)
    page.click("button:has-text('Apply to the firewall')")
    page.wait_for_selector("#server-message >> text=Firewall updated")
    (firewall,) = fake_do.firewalls.values()
    assert [r["ports"] for r in firewall["inbound_rules"]] == ["22", "443", "8000-8100"]
    assert fake_do.count("PUT", r"/v2/firewalls/.*") == 1 and firewall["droplet_ids"] == [server.droplet_id]

    page.click("text=Edit rules")
    page.fill("#ports-0", "70000")
    page.click("button:has-text('Preview changes')")
    page.wait_for_selector("#firewall-error >> text=is not a port")
    assert page.input_value("#ports-0") == "70000"  # what was typed is kept


def test_snapshots_page_and_the_archive(page, owner, workspace, server, fake_do):
    open_server(page, owner, workspace, server)
    page.click("a.button:has-text('Snapshots')")
    page.fill("#id_snapshot_name", "before-upgrade")
    page.click("button:has-text('Take a snapshot')")
    page.wait_for_selector("td >> text=before-upgrade")
    accessible(page)
    assert page.locator("a:has-text('Create server from this snapshot')").count() == 1

    page.goto(f"/w/{workspace.slug}/servers/{server.pk}/destroy/")
    page.fill("#id_confirm", "web-1")
    page.click("button:has-text('Destroy')")
    page.wait_for_selector("#server-status >> text=Destroyed")
    assert "203.0.113." not in page.content()
    page.goto(f"/w/{workspace.slug}/servers/")
    assert page.locator("td a", has_text="web-1").count() == 0
    page.click("#archive-link")
    page.wait_for_selector("h1 >> text=Archived servers")
    assert page.locator("td a", has_text="web-1").count() == 1
    accessible(page)

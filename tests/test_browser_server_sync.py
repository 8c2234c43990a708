"""The Add Sync wizard with Devpilot servers as the destination, and the sync page's per-server status,
walked in Chromium: no console error, no axe violation, the real agent writing the file."""

import pytest

from devpilot import secrets
from provisioning.models import Server
from syncs.models import Sync
from tests.conftest import axe_violations, describe_violations, log_in
from tests.test_agent_channel import agent  # noqa: F401 - the fixture
from tests.test_server_sync import parse_env

pytestmark = pytest.mark.browser


def test_the_wizard_with_a_server_destination_and_the_status_per_server(page, owner, workspace, agent, tmp_path):  # noqa: F811
    server, running = agent
    Server.objects.filter(pk=server.pk).update(devpilot_tags=["web"], reload_commands=["true"])
    dev = workspace.environments.get(slug="dev")
    secrets.create_folder(dev, "/", "app")
    secrets.create_secret(dev, "/app", "DATABASE_URL", "postgres://db")
    seen = []
    page.on("console", lambda msg: msg.type == "error" and seen.append((page.url, msg.text)))
    violations = []
    log_in(page, owner.email)
    page.wait_for_url(f"**/w/{workspace.slug}/")
    page.click("nav.mainnav >> text=Secret Syncs")
    page.click("text=Add Sync")
    page.select_option("select[name=environment]", "dev")
    page.select_option("select[name=secret_path]", "/app")
    page.click("button:has-text('Next')")

    # Destination: Devpilot servers, every server tagged web, a file in the temporary directory.
    page.click("text=Devpilot servers")
    page.wait_for_selector("#id_target")
    violations += describe_violations(page.url, axe_violations(page))
    page.select_option("#id_target", "tag:web")
    target = tmp_path / "etc" / "browser.env"
    page.fill("#id_file_path", "relative/path.env")
    page.click("button:has-text('Next')")
    page.wait_for_selector(".errorlist >> text=must be absolute")
    page.fill("#id_file_path", str(target))
    page.fill("#id_file_mode", "0640")
    page.select_option("#id_reload_command", "true")
    page.click("button:has-text('Next')")
    page.wait_for_url("**/options/")
    page.click("button:has-text('Next')")
    page.fill("input[name=name]", "browser-env")
    page.click("button:has-text('Next')")

    # Review: a dry run per server, keys only.
    page.wait_for_url("**/review/")
    assert "Dry run on each server" in page.content()
    assert "DATABASE_URL" in page.locator(".plan-create").inner_text()
    assert "postgres://db" not in page.content()
    violations += describe_violations(page.url, axe_violations(page))
    page.click("button:has-text('Create Sync')")
    page.wait_for_selector("#sync-servers")
    sync = Sync.objects.get(name="browser-env")
    row = page.locator(f"#server-{server.pk}")
    assert "Pending" in row.inner_text() and "none yet" in row.inner_text()
    violations += describe_violations(page.url, axe_violations(page))

    # The agent fetches the command: the page (polling while the online server's delivery is pending) shows it.
    running.run()
    assert parse_env(target) == {"DATABASE_URL": "postgres://db"}
    page.wait_for_selector(f"#server-{server.pk} >> text=Applied")
    assert "Succeeded" in row.locator("td[data-label=Reload]").inner_text()
    assert sync.deliveries.get().applied_sha256[:12] in row.inner_text()
    violations += describe_violations(page.url, axe_violations(page))

    # Edit moves the file: the next run takes the sync's key out of the old one and writes the new one.
    page.click("a:has-text('Edit')")
    page.wait_for_selector("#id_destination-file_path")
    violations += describe_violations(page.url, axe_violations(page))
    moved = tmp_path / "srv" / "browser.env"
    page.fill("#id_destination-file_path", str(moved))
    page.click("button:has-text('Save')")
    page.wait_for_selector("#sync-servers")
    running.run()
    assert parse_env(moved) == {"DATABASE_URL": "postgres://db"} and parse_env(target) == {}
    page.wait_for_selector(f"#server-{server.pk} >> text=Applied")

    # The server page lists the file and lets an admin edit tags and reload commands.
    page.goto(f"/w/{workspace.slug}/servers/{server.pk}/")
    page.wait_for_selector("#server-files >> text=browser-env")
    violations += describe_violations(page.url, axe_violations(page))
    assert not seen, seen
    assert not violations, "\n".join(violations)

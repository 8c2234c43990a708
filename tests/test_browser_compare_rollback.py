"""In the browser: compare environments, select keys and promote them with a preview; then roll a folder
back to recover a deleted secret. Every page passes axe-core and logs no console error."""

import pytest

from devpilot import secrets
from devpilot.models import Secret
from tests.conftest import axe_violations, describe_violations, log_in

pytestmark = pytest.mark.browser


def no_violations(page):
    assert describe_violations(page.url, axe_violations(page)) == []


def test_compare_then_promote_selected_keys(page, owner, workspace):
    envs = {e.slug: e for e in workspace.environments.all()}
    for slug in ("dev", "staging", "prod"):
        secrets.create_folder(envs[slug], "/", "app")
    secrets.create_secret(envs["prod"], "/app", "SAME", "1")
    secrets.bulk_import(envs["dev"], "/app", {"API_URL": "https://dev.example", "NEW_FLAG": "on", "SAME": "1",
                                              "DEV_ONLY": "x"}, overwrite=False)
    secrets.bulk_import(envs["staging"], "/app", {"API_URL": "https://staging.example", "SAME": "1"}, overwrite=False)

    log_in(page, owner.email)
    page.wait_for_url(f"**/w/{workspace.slug}/")
    page.click("nav.mainnav >> text=Compare")
    page.select_option("select[name=path]", "/app")
    page.click("button:has-text('Compare')")
    page.wait_for_selector("#compare-API_URL")
    assert "https://dev.example" not in page.content()
    no_violations(page)

    page.click("text=Differences only")
    page.wait_for_selector("#compare-NEW_FLAG")
    assert page.locator("#compare-SAME").count() == 0
    no_violations(page)

    page.check("input[aria-label='Select API_URL']")
    page.check("input[aria-label='Select NEW_FLAG']")
    page.select_option("select[name=source]", "dev")
    page.select_option("select[name=target]", "staging")
    page.click("text=Preview promotion")
    preview = page.locator("#promote-preview")
    preview.wait_for()
    assert "NEW_FLAG" in preview.locator("dt:has-text('Created') + dd").inner_text()
    assert "API_URL" in preview.locator("dt:has-text('Overwritten') + dd").inner_text()
    assert "DEV_ONLY" not in preview.inner_text() and "https://dev.example" not in page.content()
    no_violations(page)

    page.click("text=Promote 2 secrets")
    page.wait_for_selector("text=Promoted 2 keys from Development to Staging")
    assert page.locator("tr", has_text="NEW_FLAG").count() == 1  # shown in the target folder
    assert secrets.read_folder(envs["staging"], "/app") == {
        "API_URL": "https://dev.example", "NEW_FLAG": "on", "SAME": "1"}


def test_roll_a_folder_back_to_recover_a_deleted_secret(page, owner, workspace):
    page.on("dialog", lambda dialog: dialog.accept())
    dev = workspace.environments.get(slug="dev")
    secrets.create_secret(dev, "/", "DATABASE_URL", "postgres://precious", user=owner)
    secrets.create_secret(dev, "/", "LOG_LEVEL", "info", user=owner)

    log_in(page, owner.email)
    page.wait_for_url(f"**/w/{workspace.slug}/")
    page.goto(f"/w/{workspace.slug}/secrets/dev/")
    page.locator("tr", has_text="DATABASE_URL").get_by_role("button", name="Delete").click()
    page.wait_for_selector("tr:has-text('DATABASE_URL')", state="detached")

    page.click("text=History of /")
    page.wait_for_selector("#snapshot-3")
    no_violations(page)
    page.click("#snapshot-2 >> text=#2")
    page.wait_for_selector("#entry-DATABASE_URL")
    no_violations(page)
    page.locator("#entry-DATABASE_URL").get_by_role("button", name="Reveal").click()
    page.wait_for_selector("#entry-DATABASE_URL pre >> text=postgres://precious")

    page.click("text=Roll back to this snapshot")
    preview = page.locator("#rollback-preview")
    preview.wait_for()
    assert "DATABASE_URL" in preview.locator("dt:has-text('Recreated') + dd").inner_text()
    no_violations(page)
    page.click("text=Roll back 1 secret")
    page.wait_for_selector("text=rolled back to snapshot #2")
    assert secrets.read_folder(dev, "/") == {"DATABASE_URL": "postgres://precious", "LOG_LEVEL": "info"}
    assert Secret.objects.get(key="DATABASE_URL").comment == ""
    assert page.locator("#snapshot-4", has_text="Rollback").count() == 1

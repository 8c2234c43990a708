import pytest

from devpilot import secrets
from tests.conftest import log_in

pytestmark = pytest.mark.browser


def test_working_with_secrets_in_the_browser(page, owner, workspace):
    page.on("dialog", lambda dialog: dialog.accept())
    log_in(page, owner.email)
    page.wait_for_url(f"**/w/{workspace.slug}/")
    page.click("nav.mainnav >> text=Secrets")
    page.wait_for_url("**/secrets/dev/")

    # Add: an invalid key is refused inline, then a valid one appears without a reload.
    page.fill("form.add-secret input[name=key]", "1BAD")
    page.fill("form.add-secret textarea[name=value]", "first value")
    page.click("text=Add secret")
    page.wait_for_selector("text=is not a valid key")
    assert page.input_value("form.add-secret textarea[name=value]") == "first value"
    page.fill("form.add-secret input[name=key]", "API_KEY")
    page.click("text=Add secret")
    row = page.locator("tr", has_text="API_KEY")
    row.wait_for()
    assert "first value" not in row.inner_text()

    # Reveal, then edit.
    row.get_by_role("button", name="Reveal").click()
    page.wait_for_selector("pre.secret-value >> text=first value")
    row.get_by_role("button", name="Edit").click()
    page.check("tr.editing input[name=change_value]")
    page.fill("tr.editing textarea[name=value]", "second value")
    page.click("tr.editing >> text=Save")
    page.wait_for_selector("tr.editing", state="detached")
    dev = workspace.environments.get(slug="dev")
    assert secrets.read_folder(dev, "/") == {"API_KEY": "second value"}

    # History: restore the first version.
    page.locator("tr", has_text="API_KEY").get_by_role("link", name="History").click()
    page.locator("#version-1").get_by_role("button", name="View").click()
    page.wait_for_selector("#version-1 >> text=first value")
    page.click("text=Restore v1")
    page.wait_for_selector("text=restored to version 1")
    assert secrets.read_folder(dev, "/") == {"API_KEY": "first value"}

    # Bulk paste with an invalid line: nothing is written until it is fixed.
    page.goto(f"/w/{workspace.slug}/secrets/dev/import/?path=/")
    page.fill("textarea[name=text]", "GOOD=1\n2BAD=x\n")
    page.click("text=Check")
    page.wait_for_selector("text=Line 2")
    assert page.locator("text=Nothing was imported").count() == 1
    page.fill("textarea[name=text]", "GOOD=1\nMULTI=\"a\nb\"\n")
    page.click("text=Check")
    page.click("text=Import 2 secrets")
    page.wait_for_selector("text=2 created")
    assert secrets.read_folder(dev, "/") == {"API_KEY": "first value", "GOOD": "1", "MULTI": "a\nb"}

    # Delete.
    page.locator("tr", has_text="GOOD").get_by_role("button", name="Delete").click()
    page.wait_for_selector("tr:has-text('GOOD')", state="detached")
    assert set(secrets.read_folder(dev, "/")) == {"API_KEY", "MULTI"}

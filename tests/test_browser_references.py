"""A person adds an import and a secret referring to another folder, and sees the links and the imported
section, on a desktop and a 390-px phone, with axe-core finding nothing."""

import pytest

from devpilot import references, secrets
from tests.conftest import axe_violations, describe_violations, log_in

pytestmark = pytest.mark.browser


def test_imports_and_references_in_the_browser(page, owner, workspace):
    dev = workspace.environments.get(slug="dev")
    for name, values in (("shared", {"SHARED_TOKEN": "shared-token-value"}), ("db", {"PASSWORD": "db-password"}),
                         ("app", {"PLAIN": "x"})):
        secrets.create_folder(dev, "/", name)
        secrets.bulk_import(dev, f"/{name}", values, overwrite=True)
    page.on("dialog", lambda dialog: dialog.accept())
    log_in(page, owner.email)
    page.wait_for_url(f"**/w/{workspace.slug}/")
    page.goto(f"/w/{workspace.slug}/secrets/dev/?path=/app")

    # Import dev:/shared: its keys appear in their own section, with where they come from.
    section = page.locator("#imports-section")
    section.get_by_label("Environment").select_option("dev")
    section.get_by_label("Folder path").fill("/shared")
    section.get_by_role("button", name="Add import").click()
    page.locator("#imports-section h3", has_text="dev:/shared").wait_for()
    assert "SHARED_TOKEN" in page.locator("#imports-section").inner_text()
    assert "shared-token-value" not in page.content()

    # A reference to another folder is refused when its target is missing, then accepted and linked.
    page.fill("form.add-secret input[name=key]", "DATABASE_URL")
    page.fill("form.add-secret textarea[name=value]", "postgres://app:${dev.db.NOPE}@db/app")
    page.click("text=Add secret")
    page.wait_for_selector("text=there is no secret NOPE in dev:/db")
    page.fill("form.add-secret textarea[name=value]", "postgres://app:${dev.db.PASSWORD}@${db.HOSTNAME}/app")
    page.click("text=Add secret")
    row = page.locator("tr", has_text="DATABASE_URL")
    row.get_by_role("link", name="dev:/db:PASSWORD").wait_for()
    assert "db-password" not in page.content()

    # Reveal resolved: the value as syncs push it; the App Platform variable stays as written.
    row.get_by_role("button", name="Reveal resolved").click()
    page.wait_for_selector("pre.secret-value >> text=postgres://app:db-password@${db.HOSTNAME}/app")
    assert references.resolve_folder(dev, "/app").values == {
        "DATABASE_URL": "postgres://app:db-password@${db.HOSTNAME}/app", "PLAIN": "x",
        "SHARED_TOKEN": "shared-token-value"}

    violations = axe_violations(page)
    assert not violations, describe_violations(page.url, violations)

    # On a phone the page is usable too, and the link leads to the referenced folder.
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    violations = axe_violations(page)
    assert not violations, describe_violations(page.url, violations)
    page.locator("tr", has_text="DATABASE_URL").get_by_role("link", name="dev:/db:PASSWORD").click()
    page.wait_for_url("**/secrets/dev/?path=/db")
    page.locator("tr", has_text="PASSWORD").wait_for()

    # Remove the import: the section says the folder imports nothing.
    page.goto(f"/w/{workspace.slug}/secrets/dev/?path=/app")
    page.get_by_role("button", name="Remove the import of dev:/shared").click()
    page.wait_for_selector("text=This folder imports no other folder.")

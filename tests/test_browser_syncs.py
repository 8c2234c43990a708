import pytest

from connections.models import Connection
from devpilot import secrets
from syncs.models import Sync
from tests.conftest import axe_violations, describe_violations, log_in

pytestmark = pytest.mark.browser


@pytest.fixture
def world(workspace, fake_do):
    dev = workspace.environments.get(slug="dev")
    secrets.create_folder(dev, "/", "app-secrets")
    secrets.create_secret(dev, "/app-secrets", "DATABASE_URL", "postgres://db")
    Connection.objects.create(workspace=workspace, name="devpilot-integration", token="dop_v1_good")
    for i in range(30):
        fake_do.add_app(f"other-app-{i:02d}")
    app = fake_do.add_app("do-todo-app", envs=[{"key": "LEGACY", "value": "old", "type": "GENERAL", "scope": "RUN_TIME"}],
                          services=[{"name": "web"}])
    return app


def test_the_whole_wizard(page, owner, workspace, world, fake_do):
    log_in(page, owner.email)
    page.wait_for_url(f"**/w/{workspace.slug}/")
    page.click("nav.mainnav >> text=Secret Syncs")
    page.click("text=Add Sync")

    # Source
    page.select_option("select[name=environment]", "dev")
    page.select_option("select[name=secret_path]", "/app-secrets")
    page.click("button:has-text('Next')")

    # Destination: all 31 apps are there (more than one page at DigitalOcean), search narrows them live.
    page.wait_for_selector("text=31 apps.")
    page.fill("#app-search", "todo")
    page.wait_for_selector("text=1 app.")
    page.check(f"input[name=app_id][value='{world['id']}']")
    page.wait_for_selector("#id_component >> option:has-text('Component web (services)')", state="attached")
    assert page.input_value("#id_component") == ""  # app-level variables by default
    page.click("button:has-text('Next')")

    # Options: the app already holds LEGACY, which the source lacks: a key schema that spares it is suggested.
    suggestion = page.locator("#key-schema-suggestion")
    assert "LEGACY" in suggestion.inner_text() and "DEVPILOT_{{secretKey}}" in suggestion.inner_text()
    assert "DEVPILOT_DATABASE_URL" in suggestion.inner_text()
    assert not describe_violations(page.url, axe_violations(page))

    # An invalid key schema is refused inline, with a live preview.
    page.fill("#id_key_schema", "APP_")
    page.wait_for_selector("#key-preview >> text=must contain {{secretKey}}")
    page.click("button:has-text('Next')")
    page.wait_for_selector(".errorlist >> text=must contain {{secretKey}} exactly once")
    page.fill("#id_key_schema", "")
    page.wait_for_selector("#key-preview >> text=DATABASE_URL")
    page.click("button:has-text('Next')")

    # Details: the name is suggested from the app; Back keeps what was chosen.
    assert page.input_value("input[name=name]") == "do-todo-app-dev"
    page.click("button:has-text('Back')")
    assert page.locator("#id_auto_sync_enabled").is_checked()
    page.click("button:has-text('Next')")
    page.fill("textarea[name=description]", "sync to do app")
    page.click("button:has-text('Next')")

    # Review: the dry run shows what will happen, deletion included, before anything is written.
    dry_run = page.locator("#dry-run")
    assert "CREATE" in dry_run.locator(".plan-create").inner_text()
    assert "LEGACY" in dry_run.locator(".plan-delete").inner_text()
    assert fake_do.deployments(world["id"]) == 0
    page.reload()  # a refresh loses nothing

    # Deleting needs an explicit confirmation naming how many variables go.
    confirm = page.locator("#confirm-deletions")
    assert "Delete 1 variable from do-todo-app" in confirm.inner_text()
    assert not describe_violations(page.url, axe_violations(page))
    page.click("button:has-text('Create Sync')")  # not ticked: the browser refuses to submit
    assert page.url.endswith("/syncs/new/review/") and not Sync.objects.exists()
    confirm.get_by_label("Delete 1 variable from do-todo-app").check()
    page.click("button:has-text('Create Sync')")

    page.wait_for_selector("#sync-status-badge >> text=Succeeded")
    assert "1 created" in page.locator("#sync-status").inner_text()
    assert "1 deleted" in page.locator("#sync-status").inner_text()
    assert set(fake_do.app_envs(world["id"])) == {"DATABASE_URL"}
    assert Sync.objects.get().description == "sync to do app"


def test_a_failing_token_is_an_error_not_an_empty_list(page, owner, workspace, world, fake_do):
    fake_do.revoke_token("dop_v1_good")
    log_in(page, owner.email)
    page.wait_for_url(f"**/w/{workspace.slug}/")
    page.goto(f"/w/{workspace.slug}/syncs/new/")
    page.click("button:has-text('Next')")
    page.wait_for_selector("#app-picker >> text=Could not list the apps of devpilot-integration")
    assert "wrong, expired or revoked" in page.locator("#app-picker").inner_text()

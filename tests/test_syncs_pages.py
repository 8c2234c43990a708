import pytest

from connections.models import Connection
from devpilot import secrets
from devpilot.models import Role
from syncs.models import Sync


@pytest.fixture
def world(workspace, fake_do):
    dev = workspace.environments.get(slug="dev")
    secrets.create_folder(dev, "/", "app-secrets")
    secrets.create_secret(dev, "/app-secrets", "TOKEN", "t")
    connection = Connection.objects.create(workspace=workspace, name="do", token="dop_v1_good")
    app = fake_do.add_app("todo", envs=[], services=[{"name": "web"}])
    return dev, connection, app


def wizard_url(workspace, step):
    return f"/w/{workspace.slug}/syncs/new/{step}/"


def test_the_wizard_works_without_javascript(client_for, owner, workspace, world, fake_do, django_capture_on_commit_callbacks):
    dev, connection, app = world
    client = client_for(owner)
    client.get(f"/w/{workspace.slug}/syncs/new/")
    assert client.post(wizard_url(workspace, "source"), {"environment": "dev", "secret_path": "/app-secrets"}).url.endswith("/destination/")
    page = client.get(wizard_url(workspace, "destination")).content.decode()
    assert app["id"] in page  # the apps are listed server-side
    wrong = client.post(wizard_url(workspace, "destination"), {
        "connection": connection.pk, "app_id": app["id"], "component": "worker", "env_type": "SECRET",
        "env_scope": "RUN_TIME"})
    assert "no component named &#x27;worker&#x27; (its components: web)" in wrong.content.decode()
    client.post(wizard_url(workspace, "destination"), {
        "connection": connection.pk, "app_id": app["id"], "component": "web", "env_type": "SECRET", "env_scope": "RUN_TIME"})
    client.post(wizard_url(workspace, "options"), {"initial_sync_behavior": "overwrite-destination",
                                                     "key_schema": "", "auto_sync_enabled": "on"})
    details = client.get(wizard_url(workspace, "details")).content.decode()
    assert 'value="todo-dev"' in details
    client.post(wizard_url(workspace, "details"), {"name": "todo-dev", "description": ""})
    review = client.get(wizard_url(workspace, "review")).content.decode()
    assert "CREATE" in review and "TOKEN" in review
    with django_capture_on_commit_callbacks(execute=True):
        created = client.post(wizard_url(workspace, "review"), {"go": "create"})
    sync = Sync.objects.get()
    assert created.url == f"/w/{workspace.slug}/syncs/{sync.pk}/"
    assert (sync.component, sync.env_scope, sync.sync_status) == ("web", "RUN_TIME", "succeeded")
    assert set(fake_do.app_envs(app["id"], "web")) == {"TOKEN"}


def test_skipping_ahead_goes_back_to_the_first_missing_step(client_for, owner, workspace, world):
    client = client_for(owner)
    client.get(f"/w/{workspace.slug}/syncs/new/")
    assert client.get(wizard_url(workspace, "review")).url.endswith("/source/")


def test_a_taken_name_is_refused_on_the_details_step(client_for, owner, workspace, world):
    dev, connection, app = world
    Sync.objects.create(workspace=workspace, name="taken", connection=connection, environment=dev,
                        folder=dev.folders.get(path="/"), app_id=app["id"], component="web")
    client = client_for(owner)
    client.post(wizard_url(workspace, "source"), {"environment": "dev", "secret_path": "/app-secrets"})
    client.post(wizard_url(workspace, "destination"), {"connection": connection.pk, "app_id": app["id"],
                                                         "env_type": "SECRET", "env_scope": "RUN_TIME"})
    client.post(wizard_url(workspace, "options"), {"initial_sync_behavior": "overwrite-destination"})
    response = client.post(wizard_url(workspace, "details"), {"name": "taken"})
    assert "already exists" in response.content.decode()


def test_the_options_step_names_the_sync_that_already_manages_the_variables(client_for, owner, workspace, world):
    dev, connection, app = world
    Sync.objects.create(workspace=workspace, name="first", connection=connection, environment=dev,
                        folder=dev.folders.get(path="/app-secrets"), app_id=app["id"], app_name="todo",
                        key_schema="APP_{{secretKey}}")
    client = client_for(owner)
    client.post(wizard_url(workspace, "source"), {"environment": "dev", "secret_path": "/app-secrets"})
    client.post(wizard_url(workspace, "destination"), {"connection": connection.pk, "app_id": app["id"],
                                                         "env_type": "SECRET", "env_scope": "RUN_TIME"})
    refused = client.post(wizard_url(workspace, "options"), {"initial_sync_behavior": "overwrite-destination",
                                                              "key_schema": "APP_{{secretKey}}"})
    assert refused.status_code == 200
    assert "APP_TOKEN is already managed by sync first (app-level variables of todo)" in refused.content.decode()
    apart = client.post(wizard_url(workspace, "options"), {"initial_sync_behavior": "overwrite-destination",
                                                            "key_schema": "WEB_{{secretKey}}"})
    assert apart.url.endswith("/details/")


@pytest.mark.parametrize("role", [Role.MEMBER, Role.VIEWER])
def test_only_admins_create_or_run_syncs(client_for, workspace, make_member, role, world):
    dev, connection, app = world
    sync = Sync.objects.create(workspace=workspace, name="s", connection=connection, environment=dev,
                               folder=dev.folders.get(path="/"), app_id=app["id"])
    client = client_for(make_member(workspace, role))
    assert client.get(f"/w/{workspace.slug}/syncs/").status_code == 200
    assert client.get(f"/w/{workspace.slug}/syncs/{sync.pk}/").status_code == 200
    assert client.get(wizard_url(workspace, "source")).status_code == 403
    assert client.post(f"/w/{workspace.slug}/syncs/{sync.pk}/run/").status_code == 403


def test_deleting_a_folder_or_environment_a_sync_uses_is_refused(workspace, world):
    dev, connection, app = world
    Sync.objects.create(workspace=workspace, name="uses-it", connection=connection, environment=dev,
                        folder=dev.folders.get(path="/app-secrets"), app_id=app["id"])
    with pytest.raises(secrets.SecretsError, match="used by the secret sync uses-it"):
        secrets.delete_folder(dev.folders.get(path="/app-secrets"), confirmed=True)
    with pytest.raises(secrets.SecretsError, match="used by the secret sync uses-it"):
        secrets.delete_environment(dev)
    assert secrets.read_folder(dev, "/app-secrets") == {"TOKEN": "t"}


def test_the_sync_page_polls_only_while_busy(client_for, owner, workspace, world):
    dev, connection, app = world
    sync = Sync.objects.create(workspace=workspace, name="s", connection=connection, environment=dev,
                               folder=dev.folders.get(path="/"), app_id=app["id"], sync_status="running")
    client = client_for(owner)
    assert 'hx-trigger="every 2s"' in client.get(f"/w/{workspace.slug}/syncs/{sync.pk}/").content.decode()
    Sync.objects.filter(pk=sync.pk).update(sync_status="succeeded")
    assert 'hx-trigger="every 2s"' not in client.get(f"/w/{workspace.slug}/syncs/{sync.pk}/status/").content.decode()


def test_a_removed_connection_shows_on_the_sync_page(client_for, owner, workspace, world):
    from connections import services

    dev, connection, app = world
    sync = Sync.objects.create(workspace=workspace, name="s", connection=connection, environment=dev,
                               folder=dev.folders.get(path="/"), app_id=app["id"])
    services.remove(connection)
    page = client_for(owner).get(f"/w/{workspace.slug}/syncs/{sync.pk}/").content.decode()
    assert "The connection was removed" in page


def test_deleting_with_removal_is_queued_and_the_page_follows_it(client_for, owner, workspace, world, fake_do,
                                                                 django_capture_on_commit_callbacks):
    dev, connection, app = world
    sync = Sync.objects.create(workspace=workspace, name="todo-dev", connection=connection, environment=dev,
                               folder=dev.folders.get(path="/app-secrets"), app_id=app["id"], app_name="todo")
    client = client_for(owner)
    calls = len(fake_do.requests)
    with django_capture_on_commit_callbacks() as queued:
        answer = client.post(f"/w/{workspace.slug}/syncs/{sync.pk}/delete/", {"remove_secrets": "yes"}, follow=True)
    assert len(fake_do.requests) == calls  # nothing sent to DigitalOcean inside the request
    assert "the sync is deleted once they are removed" in answer.content.decode()
    assert 'hx-trigger="every 2s"' in answer.content.decode()  # the page follows the queued removal
    for callback in queued:
        callback()
    assert not Sync.objects.filter(pk=sync.pk).exists()
    poll = client.get(f"/w/{workspace.slug}/syncs/{sync.pk}/status/", HTTP_HX_REQUEST="true")
    assert poll["HX-Redirect"] == f"/w/{workspace.slug}/syncs/"


def _through_details(client, workspace, connection, app, key_schema=""):
    client.get(f"/w/{workspace.slug}/syncs/new/")
    client.post(wizard_url(workspace, "source"), {"environment": "dev", "secret_path": "/app-secrets"})
    client.post(wizard_url(workspace, "destination"), {"connection": connection.pk, "app_id": app["id"],
                                                         "env_type": "SECRET", "env_scope": "RUN_TIME"})
    client.post(wizard_url(workspace, "options"), {"initial_sync_behavior": "overwrite-destination",
                                                     "key_schema": key_schema, "auto_sync_enabled": "on"})
    client.post(wizard_url(workspace, "details"), {"name": "todo-dev", "description": ""})


def test_a_sync_that_deletes_variables_needs_a_confirmation_naming_how_many(
        client_for, owner, workspace, world, fake_do, django_capture_on_commit_callbacks):
    dev, connection, _ = world
    app = fake_do.add_app("crm", envs=[{"key": k, "value": "x", "type": "GENERAL", "scope": "RUN_TIME"}
                                       for k in ("LEGACY", "OLD_KEY")])
    client = client_for(owner)
    _through_details(client, workspace, connection, app)
    review = client.get(wizard_url(workspace, "review")).content.decode()
    assert "This sync deletes 2 variables from crm" in review
    assert 'name="confirm_deletions" value="2" required' in review

    refused = client.post(wizard_url(workspace, "review"), {"go": "create"})
    assert refused.status_code == 200 and "tick the confirmation" in refused.content.decode()
    wrong_count = client.post(wizard_url(workspace, "review"), {"go": "create", "confirm_deletions": "1"})
    assert wrong_count.status_code == 200 and not Sync.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        created = client.post(wizard_url(workspace, "review"), {"go": "create", "confirm_deletions": "2"})
    assert created.status_code == 302 and Sync.objects.get().name == "todo-dev"
    assert set(fake_do.app_envs(app["id"])) == {"TOKEN"}


def test_a_sync_that_deletes_nothing_needs_no_confirmation(client_for, owner, workspace, world, fake_do):
    dev, connection, _ = world
    app = fake_do.add_app("crm", envs=[{"key": "LEGACY", "value": "x", "type": "GENERAL", "scope": "RUN_TIME"}])
    client = client_for(owner)
    _through_details(client, workspace, connection, app, key_schema="DEVPILOT_{{secretKey}}")
    assert "confirm_deletions" not in client.get(wizard_url(workspace, "review")).content.decode()
    assert client.post(wizard_url(workspace, "review"), {"go": "create"}).status_code == 302


def test_options_suggest_a_key_schema_when_the_app_holds_other_variables(client_for, owner, workspace, world, fake_do):
    dev, connection, _ = world
    app = fake_do.add_app("crm", envs=[{"key": "LEGACY", "value": "x", "type": "GENERAL", "scope": "RUN_TIME"}])
    client = client_for(owner)
    client.post(wizard_url(workspace, "source"), {"environment": "dev", "secret_path": "/app-secrets"})
    client.post(wizard_url(workspace, "destination"), {"connection": connection.pk, "app_id": app["id"],
                                                         "env_type": "SECRET", "env_scope": "RUN_TIME"})
    options = client.get(wizard_url(workspace, "options")).content.decode()
    assert "crm already holds 1 variable that the source does not" in options and "<code>LEGACY</code>" in options
    assert "Suggested key schema: <code>DEVPILOT_{{secretKey}}</code>" in options
    assert "<code>DEVPILOT_TOKEN</code>" in options
    # "Use this key schema" fills it in; with it, nothing is left to warn about.
    used = client.get(wizard_url(workspace, "options") + "?key_schema=DEVPILOT_%7B%7BsecretKey%7D%7D").content.decode()
    assert 'value="DEVPILOT_{{secretKey}}"' in used and "key-schema-suggestion" not in used
    # An app holding only what the source has gets no suggestion.
    clean = fake_do.add_app("clean", envs=[{"key": "TOKEN", "value": "x", "type": "GENERAL", "scope": "RUN_TIME"}])
    client.post(wizard_url(workspace, "destination"), {"connection": connection.pk, "app_id": clean["id"],
                                                         "env_type": "SECRET", "env_scope": "RUN_TIME"})
    assert "key-schema-suggestion" not in client.get(wizard_url(workspace, "options")).content.decode()

"""Secret imports: precedence, cycles, syncs pushing imported secrets, auto-sync fan-out (through imports and
references), the Infisical API and the secrets page."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from connections.models import Connection
from devpilot import imports, references, secrets
from devpilot.models import AuditEvent, Role, SecretImport
from devpilot.templatetags.devpilot import audit_sentence_text
from syncs import engine, tasks
from syncs.models import Sync


def folder(environment, path):
    if path != "/" and not environment.folders.filter(path=path).exists():
        parent, name = secrets.parent_path(path), path.rsplit("/", 1)[1]
        secrets.create_folder(environment, parent, name)
    return environment.folders.select_related("environment").get(path=path)


@pytest.fixture
def shared(dev):
    """dev:/shared (A=shared, B=shared) and dev:/common (B=common, C=common), both imported by dev:/app in that
    order; dev:/app has its own C."""
    for path, values in (("/shared", {"A": "shared", "B": "shared"}), ("/common", {"B": "common", "C": "common"}),
                         ("/app", {"C": "own"})):
        folder(dev, path)
        secrets.bulk_import(dev, path, values, overwrite=True)
    app = folder(dev, "/app")
    imports.add_import(app, folder(dev, "/shared"))
    imports.add_import(app, folder(dev, "/common"))
    return app


# --- Precedence --------------------------------------------------------------------------------


def test_own_secrets_win_and_later_imports_override_earlier(dev, shared):
    result = references.resolve_folder(dev, "/app")
    assert result.values == {"A": "shared", "B": "common", "C": "own"}
    assert {k: (e.source, e.own) for k, e in result.entries.items()} == {
        "A": (("dev", "/shared"), False), "B": (("dev", "/common"), False), "C": (("dev", "/app"), True)}


def test_reordering_changes_which_import_wins(dev, shared):
    common = shared.imports.get(source_folder__path="/common")
    imports.move_import(common, 1)
    assert list(shared.imports.values_list("source_folder__path", "position")) == [("/common", 1), ("/shared", 2)]
    assert references.resolve_folder(dev, "/app").values["B"] == "shared"


def test_without_imports_only_own(dev, shared):
    assert references.resolve_folder(dev, "/app", include_imports=False).values == {"C": "own"}


def test_imported_values_resolve_their_references_in_their_own_folder(dev, shared):
    secrets.create_secret(dev, "/shared", "URL", "a=${A}")  # ${A} is dev:/shared's A
    secrets.create_secret(dev, "/app", "A", "app's own A")
    assert references.resolve_folder(dev, "/app").values["URL"] == "a=shared"


def test_a_reference_reads_the_target_folder_with_its_imports(dev, shared):
    secrets.create_secret(dev, "/", "FROM_APP", "${dev.app.A}")  # A comes to /app by import
    assert references.resolve_folder(dev, "/").values["FROM_APP"] == "shared"


def test_imports_chain(dev, shared):
    base = folder(dev, "/base")
    secrets.create_secret(dev, "/base", "DEEP", "from base")
    imports.add_import(folder(dev, "/shared"), base)
    assert references.resolve_folder(dev, "/app").values["DEEP"] == "from base"


def test_across_environments(dev, prod, shared):
    secrets.create_secret(prod, "/", "P", "prod root")
    imports.add_import(shared, folder(prod, "/"))
    assert references.resolve_folder(dev, "/app").values["P"] == "prod root"


# --- Refusals ---------------------------------------------------------------------------------


def test_cycles_are_refused_naming_the_chain(dev, shared):
    with pytest.raises(Exception, match="dev:/shared imports dev:/app imports dev:/shared: that is a cycle"):
        imports.add_import(folder(dev, "/shared"), shared)
    with pytest.raises(Exception, match="cannot import itself"):
        imports.add_import(shared, shared)
    assert SecretImport.objects.count() == 2


def test_deleting_an_imported_folder_is_refused(dev, shared):
    with pytest.raises(secrets.SecretsError, match=r"Cannot delete dev:/shared: dev:/app \(imports dev:/shared\)"):
        secrets.delete_folder(folder(dev, "/shared"), confirmed=True)
    secrets.rename_folder(folder(dev, "/shared"), "common-base")  # an import follows a rename
    assert references.resolve_folder(dev, "/app").values["A"] == "shared"


def test_a_duplicate_import_is_refused(dev, shared):
    with pytest.raises(Exception, match="already imports dev:/shared"):
        imports.add_import(shared, folder(dev, "/shared"))


def test_another_workspaces_folder_cannot_be_imported(owner, dev, shared):
    from devpilot.workspaces import create_workspace

    other = create_workspace(owner, "Other")
    secrets.create_environment(other, "Theirs", "theirs")
    with pytest.raises(Exception, match="There is no environment theirs in this workspace"):
        imports.source_folder(shared, "theirs", "/")
    with pytest.raises(Exception, match="no such folder"):
        imports.add_import(shared, other.environments.get(slug="theirs").folders.get(path="/"))


def test_audit_sentences(dev, shared):
    event = AuditEvent.objects.filter(action="secret_import.created").first()
    assert audit_sentence_text(event) == "Devpilot made the folder dev:/app import the secrets of dev:/common"
    imports.remove_import(shared.imports.get(source_folder__path="/shared"))
    event = AuditEvent.objects.get(action="secret_import.deleted")
    assert audit_sentence_text(event) == "Devpilot stopped the folder dev:/app importing the secrets of dev:/shared"


# --- Syncs -----------------------------------------------------------------------------------


@pytest.fixture
def dispatches(monkeypatch):
    queued = []
    monkeypatch.setattr(tasks, "_check_folder_at",
                        lambda environment_id, path, when: queued.append((environment_id, path)))
    return queued


@pytest.fixture
def app_sync(workspace, dev, shared, fake_do):
    connection = Connection.objects.create(workspace=workspace, name="do", token="dop_v1_good")
    app = fake_do.add_app("web", envs=[])
    return Sync.objects.create(workspace=workspace, name="web", connection=connection, environment=dev,
                               folder=shared, app_id=app["id"], app_name="web")


def test_a_sync_pushes_imported_secrets_and_resolved_references(dev, app_sync, fake_do):
    secrets.create_secret(dev, "/app", "URL", "${A}-${dev.common.C}@${APP_URL}")
    run = engine.run(app_sync, "manual")
    assert run.status == "succeeded", run.message
    envs = fake_do.app_envs(app_sync.app_id)
    plain = {key: fake_do.plaintext(e["value"]) for key, e in envs.items()}
    assert plain == {"A": "shared", "B": "common", "C": "own", "URL": "shared-common@${APP_URL}"}


def test_a_sync_never_pushes_an_unresolved_reference(dev, app_sync, fake_do):
    secrets.create_secret(dev, "/app", "URL", "${dev.common.C}")
    dev.secrets.filter(folder__path="/common", key="C").delete()  # behind the service's back (it refuses this)
    run = engine.run(app_sync, "manual")
    assert run.status == "failed"
    assert "URL" in run.message and "dev:/common:C" in run.message
    assert fake_do.app_envs(app_sync.app_id) == {}
    with pytest.raises(engine.SyncFailed, match="Unresolved references"):
        engine.dry_run(app_sync)


def test_a_change_in_an_imported_folder_auto_syncs_the_importers(dev, app_sync, dispatches,
                                                                 django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        secrets.create_secret(dev, "/shared", "NEW", "1")
    app_sync.refresh_from_db()
    assert app_sync.pending_run_at is not None
    assert dispatches == [(dev.pk, "/app")]


def test_auto_sync_fans_out_through_references_and_chains(workspace, dev, prod, app_sync, dispatches,
                                                         django_capture_on_commit_callbacks):
    folder(prod, "/db")
    secrets.create_secret(prod, "/db", "PASSWORD", "p")
    secrets.create_secret(dev, "/shared", "DB", "${prod.db.PASSWORD}")  # /app imports /shared, which refers to prod
    Sync.objects.filter(pk=app_sync.pk).update(pending_run_at=None)
    with django_capture_on_commit_callbacks(execute=True):
        secrets.update_secret(prod.secrets.get(key="PASSWORD"), value="new")
    app_sync.refresh_from_db()
    assert app_sync.pending_run_at is not None
    assert dispatches == [(dev.pk, "/app")]
    assert references.dependent_folders(workspace.pk, prod.pk, "/db") == {
        (prod.pk, "/db"), (dev.pk, "/shared"), (dev.pk, "/app")}


def test_an_unrelated_change_does_not_auto_sync(dev, app_sync, dispatches, django_capture_on_commit_callbacks):
    folder(dev, "/elsewhere")
    with django_capture_on_commit_callbacks(execute=True):
        secrets.create_secret(dev, "/elsewhere", "X", "1")
    app_sync.refresh_from_db()
    assert app_sync.pending_run_at is None and dispatches == []


def test_adding_an_import_auto_syncs(dev, app_sync, dispatches, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        imports.add_import(app_sync.folder, folder(dev, "/"))
    assert dispatches == [(dev.pk, "/app")]


# --- API -------------------------------------------------------------------------------------


def scope(workspace, **extra):
    return {"workspaceId": str(workspace.pk), "environment": "dev", **extra}


def test_api_create_list_update_delete(api, workspace, dev, prod):
    folder(dev, "/app")
    folder(prod, "/base")
    created = api.post("/api/v1/secret-imports", {**scope(workspace, path="/app"),
                                                  "import": {"environment": "prod", "path": "/base"}})
    assert created.status_code == 200, created.content
    item = created.json()["secretImport"]
    assert item["importPath"] == "/base" and item["importEnv"]["slug"] == "prod" and item["position"] == 1
    second = api.post("/api/v1/secret-imports", {**scope(workspace, path="/app"),
                                                 "import": {"environment": "dev", "path": "/"}}).json()["secretImport"]
    assert second["position"] == 2
    listed = api.get("/api/v1/secret-imports", scope(workspace, path="/app")).json()
    assert [i["importPath"] for i in listed["secretImports"]] == ["/base", "/"]
    moved = api.patch(f"/api/v1/secret-imports/{second['id']}", {**scope(workspace, path="/app"),
                                                                  "import": {"position": 1}})
    assert moved.status_code == 200, moved.content
    assert moved.json()["secretImport"]["position"] == 1
    listed = api.get("/api/v1/secret-imports", scope(workspace, path="/app")).json()
    assert [i["importPath"] for i in listed["secretImports"]] == ["/", "/base"]
    deleted = api.client.delete(f"/api/v1/secret-imports/{item['id']}", scope(workspace, path="/app"),
                                content_type="application/json")
    assert deleted.status_code == 200, deleted.content
    assert SecretImport.objects.count() == 1


def test_api_refuses_cycles_and_missing_folders(api, workspace, dev):
    folder(dev, "/a")
    folder(dev, "/b")
    assert api.post("/api/v1/secret-imports", {**scope(workspace, path="/a"),
                                               "import": {"environment": "dev", "path": "/b"}}).status_code == 200
    cycle = api.post("/api/v1/secret-imports", {**scope(workspace, path="/b"),
                                                "import": {"environment": "dev", "path": "/a"}})
    assert cycle.status_code == 400 and "cycle" in cycle.json()["message"]
    missing = api.post("/api/v1/secret-imports", {**scope(workspace, path="/a"),
                                                  "import": {"environment": "dev", "path": "/nope"}})
    assert missing.status_code == 404


def test_api_viewer_lists_but_cannot_change(api_client_for, workspace, dev, shared):
    viewer = api_client_for(workspace, Role.VIEWER)
    assert viewer.get("/api/v1/secret-imports", scope(workspace, path="/app")).status_code == 200
    refused = viewer.post("/api/v1/secret-imports", {**scope(workspace, path="/app"),
                                                     "import": {"environment": "dev", "path": "/"}})
    assert refused.status_code == 403


def test_raw_list_include_imports(api, workspace, dev, shared):
    body = api.get("/api/v3/secrets/raw", scope(workspace, secretPath="/app", include_imports="true")).json()
    assert [s["secretKey"] for s in body["secrets"]] == ["C"]
    assert [(i["secretPath"], [(s["secretKey"], s["secretValue"]) for s in i["secrets"]]) for i in body["imports"]] == [
        ("/shared", [("A", "shared"), ("B", "shared")]), ("/common", [("B", "common"), ("C", "common")])]
    assert "imports" not in api.get("/api/v3/secrets/raw", scope(workspace, secretPath="/app")).json()


@pytest.mark.django_db(transaction=True)
def test_python_sdk_gets_imports_and_expanded_references(live_server, workspace, owner):
    """Infisical's Python SDK asks for expanded references and imports by default and parses both."""
    from devpilot import identities
    from infisical_sdk import InfisicalSDKClient

    dev = workspace.environments.get(slug="dev")
    for path, values in (("/shared", {"A": "shared"}), ("/app", {"URL": "a=${dev.shared.A}"})):
        folder(dev, path)
        secrets.bulk_import(dev, path, values, overwrite=True)
    imports.add_import(folder(dev, "/app"), folder(dev, "/shared"))
    identity = identities.create_identity(workspace, "sdk", Role.MEMBER, created_by=owner, ttl=3600, max_ttl=3600)
    _, client_secret = identities.add_client_secret(identity, description="sdk")
    client = InfisicalSDKClient(host=live_server.url, cache_ttl=None)
    client.auth.universal_auth.login(str(identity.client_id), client_secret)
    result = client.secrets.list_secrets(environment_slug="dev", secret_path="/app", project_id=str(workspace.pk))
    assert [(s.secretKey, s.secretValue) for s in result.secrets] == [("URL", "a=shared")]
    assert [(i.secretPath, [s["secretKey"] for s in i.secrets]) for i in result.imports] == [("/shared", ["A"])]


# --- Page ------------------------------------------------------------------------------------


def page_url(workspace, path="/app"):
    return reverse("secrets", kwargs={"ws": workspace.slug, "env": "dev"}) + f"?path={path}"


def test_page_shows_imported_secrets_apart_with_source_and_winner(client_for, owner, workspace, dev, shared):
    html = client_for(owner).get(page_url(workspace)).content.decode()
    assert "Imported secrets" in html
    assert "later imports override earlier ones" in html.lower()
    assert "dev:/shared" in html and "dev:/common" in html
    assert "overridden" in html.lower()
    assert "shared" not in html.split("Imported secrets", 1)[1].split("</section>", 1)[0].replace(
        "dev:/shared", "").replace("/shared", "")  # no value is shown


def test_page_add_move_remove_imports(client_for, owner, workspace, dev, shared):
    client = client_for(owner)
    base = folder(dev, "/base")
    url = reverse("secret_import_add", kwargs={"ws": workspace.slug, "env": "dev"})
    response = client.post(url, {"path": "/app", "source_environment": "dev", "source_path": base.path}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "dev:/base" in response.content.decode()
    added = shared.imports.get(source_folder=base)
    assert added.position == 3
    move = reverse("secret_import_move", kwargs={"ws": workspace.slug, "import_id": added.pk})
    client.post(move, {"direction": "up"}, HTTP_HX_REQUEST="true")
    assert list(shared.imports.values_list("source_folder__path", flat=True)) == ["/shared", "/base", "/common"]
    cycle = client.post(url, {"path": "/base", "source_environment": "dev", "source_path": "/app"}, HTTP_HX_REQUEST="true")
    assert "cycle" in cycle.content.decode()
    remove = reverse("secret_import_remove", kwargs={"ws": workspace.slug, "import_id": added.pk})
    client.post(remove, HTTP_HX_REQUEST="true")
    assert not shared.imports.filter(source_folder=base).exists()


def test_viewer_cannot_change_imports(client_for, make_member, workspace, dev, shared):
    viewer = client_for(make_member(workspace, Role.VIEWER))
    url = reverse("secret_import_add", kwargs={"ws": workspace.slug, "env": "dev"})
    assert viewer.post(url, {"path": "/app", "source_environment": "dev", "source_path": "/"}).status_code == 403
    html = viewer.get(page_url(workspace)).content.decode()
    assert "Imported secrets" in html and "Add import" not in html


# --- The sync wizard's review (dry run) --------------------------------------------------------


def _review(client, workspace, connection, app_id):
    wizard = f"/w/{workspace.slug}/syncs/new/"
    client.get(wizard)
    client.post(wizard + "source/", {"environment": "dev", "secret_path": "/app"})
    client.post(wizard + "destination/", {"connection": connection.pk, "app_id": app_id, "env_type": "SECRET",
                                          "env_scope": "RUN_TIME"})
    client.post(wizard + "options/", {"initial_sync_behavior": "overwrite-destination", "key_schema": "",
                                      "auto_sync_enabled": "on"})
    client.post(wizard + "details/", {"name": "web-dev", "description": ""})
    return client.get(wizard + "review/").content.decode()


def test_review_shows_resolved_keys_never_values(client_for, owner, workspace, dev, shared, fake_do):
    connection = Connection.objects.create(workspace=workspace, name="do", token="dop_v1_good")
    app = fake_do.add_app("web", envs=[])
    folder(dev, "/db")
    secrets.create_secret(dev, "/db", "PASSWORD", "pw-value-never-shown")
    secrets.create_secret(dev, "/app", "URL", "postgres://${dev.db.PASSWORD}@h")
    html = _review(client_for(owner), workspace, connection, app["id"])
    assert "Resolved from imports and references" in html
    assert "imported from dev:/shared" in html and "refers to dev:/db:PASSWORD" in html
    for key in ("A", "B", "C", "URL"):
        assert f"<code>{key}</code>" in html
    assert "pw-value-never-shown" not in html and "postgres://" not in html


def test_review_names_unresolved_references_and_refuses_create(client_for, owner, workspace, dev, shared, fake_do):
    connection = Connection.objects.create(workspace=workspace, name="do", token="dop_v1_good")
    app = fake_do.add_app("web", envs=[])
    secrets.create_secret(dev, "/app", "URL", "${dev.common.C}")
    dev.secrets.filter(folder__path="/common", key="C").delete()  # behind the service's back (it refuses this)
    html = _review(client_for(owner), workspace, connection, app["id"])
    assert "Unresolved references in dev:/app" in html and "dev:/common:C" in html
    assert 'value="create" disabled' in html


def test_api_get_one_secret_from_imports(api, workspace, dev, shared):
    query = scope(workspace, secretPath="/app")
    assert api.get("/api/v3/secrets/raw/A", query).status_code == 404
    found = api.get("/api/v3/secrets/raw/A", {**query, "include_imports": "true"}).json()["secret"]
    assert (found["secretValue"], found["secretPath"]) == ("shared", "/shared")
    own = api.get("/api/v3/secrets/raw/C", {**query, "include_imports": "true"}).json()["secret"]
    assert own["secretValue"] == "own"
    missing = api.get("/api/v3/secrets/raw/NOPE", {**query, "include_imports": "true"})
    assert missing.status_code == 404 and "or its imports" in missing.json()["message"]


def test_removing_an_import_a_reference_needs_is_refused(dev, shared):
    secrets.create_secret(dev, "/", "FROM_APP", "${dev.app.A}")  # A reaches dev:/app only through dev:/shared
    with pytest.raises(Exception, match=r"dev:/:FROM_APP \(refers to dev:/app:A\) would no longer resolve"):
        imports.remove_import(shared.imports.get(source_folder__path="/shared"))
    assert shared.imports.filter(source_folder__path="/shared").exists()
    imports.remove_import(shared.imports.get(source_folder__path="/common"))  # B still comes from /shared
    assert references.resolve_folder(dev, "/").values["FROM_APP"] == "shared"


def test_api_patch_repoints_an_import_keeping_its_id_and_place(api, workspace, dev, shared):
    folder(dev, "/other")
    secrets.create_secret(dev, "/other", "A", "other")
    item = shared.imports.get(source_folder__path="/shared")
    answer = api.patch(f"/api/v1/secret-imports/{item.pk}", {**scope(workspace, path="/app"),
                                                              "import": {"path": "/other"}})
    assert answer.status_code == 200, answer.content
    assert (answer.json()["secretImport"]["id"], answer.json()["secretImport"]["importPath"]) == (str(item.pk), "/other")
    assert answer.json()["secretImport"]["position"] == 1
    assert references.resolve_folder(dev, "/app").values["A"] == "other"
    event = AuditEvent.objects.get(action="secret_import.changed")
    assert audit_sentence_text(event) == (
        "API token admin token made the folder dev:/app import dev:/other instead of dev:/shared")


def test_the_sync_page_dry_run_shows_keys_and_unresolved_references(client_for, owner, make_member, workspace, dev,
                                                                     app_sync, fake_do):
    secrets.create_secret(dev, "/app", "URL", "${dev.common.C}-value-never-shown")
    url = reverse("sync_dry_run", kwargs={"ws": workspace.slug, "sync_id": app_sync.pk})
    client = client_for(owner)
    html = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "CREATE" in html and "<code>URL</code>" in html and "imported from dev:/shared" in html
    assert "refers to dev:/common:C" in html and "value-never-shown" not in html and "common-" not in html
    assert fake_do.app_envs(app_sync.app_id) == {}  # nothing written
    page = client.get(url).content.decode()  # without JavaScript: the sync's page with the dry run in it
    assert "<h1>web</h1>" in page and "Dry run against the live app" in page
    dev.secrets.filter(folder__path="/common", key="C").delete()  # behind the service's back (it refuses this)
    html = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "Unresolved references in dev:/app" in html and "dev:/common:C" in html
    viewer = client_for(make_member(workspace, Role.VIEWER))
    assert viewer.get(url).status_code == 403


def test_a_burst_of_edits_to_a_referenced_secret_gives_one_deployment_of_the_resolved_value(
        dev, prod, app_sync, fake_do, dispatches, django_capture_on_commit_callbacks, settings):
    settings.DEVPILOT_AUTOSYNC_DEBOUNCE = 5
    folder(prod, "/db")
    secrets.create_secret(prod, "/db", "PASSWORD", "p0")
    secrets.create_secret(dev, "/app", "URL", "postgres://app:${prod.db.PASSWORD}@db")
    password = prod.secrets.get(key="PASSWORD")
    dispatches.clear()
    for i in range(1, 21):
        with django_capture_on_commit_callbacks(execute=True):
            password = secrets.update_secret(password, value=f"p{i}")
    assert set(dispatches) == {(dev.pk, "/app")}  # the importer's check, moved later by each edit
    Sync.objects.filter(pk=app_sync.pk).update(pending_run_at=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        tasks.dispatch_folder(dev.pk, "/app")
    assert fake_do.deployments(app_sync.app_id) == 1
    assert fake_do.plaintext(fake_do.app_envs(app_sync.app_id)["URL"]["value"]) == "postgres://app:p20@db"

"""Secret references: syntax, cross-environment, recursion, cycles, missing targets, permissions, App Platform
bindable variables passed through, through the service layer, the API, the .env download and the pages."""

import pytest
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from devpilot import references, secrets
from devpilot.models import AuditEvent, Role, SecretReference
from devpilot.workspaces import create_workspace


@pytest.fixture
def db_folder(dev):
    secrets.create_folder(dev, "/", "db")
    secrets.create_secret(dev, "/db", "PASSWORD", "s3cret")
    secrets.create_secret(dev, "/db", "HOST", "db.internal")
    return "/db"


def resolved(environment, path="/"):
    return references.resolve_folder(environment, path).values


# --- Syntax ------------------------------------------------------------------------------------


def test_same_folder_reference_is_expanded(dev):
    secrets.create_secret(dev, "/", "USER", "app")
    secrets.create_secret(dev, "/", "GREETING", "hello ${USER}!")
    assert resolved(dev) == {"USER": "app", "GREETING": "hello app!"}


def test_other_environment_and_folder_references(dev, prod, db_folder):
    secrets.create_secret(prod, "/", "ROOT_KEY", "at-prod-root")
    secrets.create_secret(dev, "/", "URL", "postgres://app:${dev.db.PASSWORD}@${dev.db.HOST}/app?x=${prod.ROOT_KEY}")
    assert resolved(dev)["URL"] == "postgres://app:s3cret@db.internal/app?x=at-prod-root"


def test_deeper_folder_paths(dev):
    secrets.create_folder(dev, "/", "a")
    secrets.create_folder(dev, "/a", "b")
    secrets.create_secret(dev, "/a/b", "DEEP", "down here")
    secrets.create_secret(dev, "/", "UP", "${dev.a.b.DEEP}")
    assert resolved(dev)["UP"] == "down here"


def test_references_resolve_recursively(dev, db_folder):
    secrets.create_secret(dev, "/db", "URL", "postgres://${PASSWORD}@${HOST}")  # same folder: /db
    secrets.create_secret(dev, "/", "DATABASE_URL", "${dev.db.URL}?sslmode=require")
    assert resolved(dev)["DATABASE_URL"] == "postgres://s3cret@db.internal?sslmode=require"


def test_the_stored_value_keeps_the_reference(dev, db_folder):
    secret = secrets.create_secret(dev, "/", "P", "${dev.db.PASSWORD}")
    assert secret.value == "${dev.db.PASSWORD}"
    assert secrets.read_folder(dev, "/") == {"P": "${dev.db.PASSWORD}"}
    assert references.resolve_folder(dev, "/", expand=False).values == {"P": "${dev.db.PASSWORD}"}


# --- App Platform bindable variables -----------------------------------------------------------


@pytest.mark.parametrize("value", [
    "${APP_URL}", "${APP_DOMAIN}", "${APP_ID}", "${_self.PRIVATE_URL}", "${_self.URL}", "${_self.COMMIT_HASH}",
    "${api.PRIVATE_DOMAIN}", "${web.PUBLIC_ROUTE_PATH}", "${db.DATABASE_URL}", "${db.HOSTNAME}", "${db.PORT}",
    "${db.USERNAME}", "${db.PASSWORD}", "${db.DATABASE}", "${db.CA_CERT}", "${db.JDBC_DATABASE_URL}",
    "${cache.REDIS_URL}", "https://${APP_DOMAIN}/callback?db=${db.HOSTNAME}",
])
def test_app_platform_bindable_variables_pass_through(dev, value):
    secrets.create_secret(dev, "/", "BOUND", value)
    assert resolved(dev)["BOUND"] == value
    assert not SecretReference.objects.exists()


def test_devpilot_and_app_platform_mix_in_one_value(dev, db_folder):
    secrets.create_secret(dev, "/", "MIXED", "${APP_URL}/?p=${dev.db.PASSWORD}&h=${db.HOSTNAME}")
    assert resolved(dev)["MIXED"] == "${APP_URL}/?p=s3cret&h=${db.HOSTNAME}"


def test_an_environment_slug_wins_over_a_bindable_name(workspace, dev):
    """`${x.NAME}` is Devpilot's when x is an environment of the workspace, even if NAME is a bindable name."""
    secrets.create_environment(workspace, "Database", "db")
    db_env = workspace.environments.get(slug="db")
    secrets.create_secret(db_env, "/", "DATABASE_URL", "postgres://from-devpilot")
    secrets.create_secret(dev, "/", "URL", "${db.DATABASE_URL}")
    assert resolved(dev)["URL"] == "postgres://from-devpilot"


def test_classify_rule():
    slugs = {"dev", "prod"}
    here = ("dev", "/")
    assert references.classify("APP_URL", here, slugs) is None
    assert references.classify("_self.ANYTHING", here, slugs) is None
    assert references.classify("db.DATABASE_URL", here, slugs) is None
    assert references.classify("dev.DATABASE_URL", here, slugs).label == "dev:/:DATABASE_URL"
    assert references.classify("KEY", here, slugs).label == "dev:/:KEY"
    assert references.classify("prod.a.b.KEY", here, slugs).label == "prod:/a/b:KEY"
    assert references.classify("nope.MY_KEY", here, slugs).label == "nope:/:MY_KEY"  # a missing environment
    assert references.classify("not a key", here, slugs) is None


# --- Refused at save time ---------------------------------------------------------------------


def test_a_missing_key_is_refused_naming_the_chain(dev, db_folder):
    with pytest.raises(secrets.SecretsError, match=r"URL → dev:/db:NOPE: there is no secret NOPE in dev:/db"):
        secrets.create_secret(dev, "/", "URL", "${dev.db.NOPE}")
    assert not dev.secrets.filter(key="URL").exists()


def test_missing_environment_and_folder_are_refused(dev):
    with pytest.raises(secrets.SecretsError, match="there is no environment qa in this workspace"):
        secrets.create_secret(dev, "/", "A", "${qa.KEY}")
    with pytest.raises(secrets.SecretsError, match="there is no folder /nowhere in dev"):
        secrets.create_secret(dev, "/", "A", "${dev.nowhere.KEY}")
    with pytest.raises(secrets.SecretsError, match="there is no secret B in dev:/"):
        secrets.create_secret(dev, "/", "A", "${B}")


def test_a_cycle_is_refused_naming_the_chain(dev, db_folder):
    secrets.create_secret(dev, "/", "DATABASE_URL", "${dev.db.PASSWORD}")
    password = dev.secrets.get(key="PASSWORD")
    with pytest.raises(secrets.SecretsError,
                       match="PASSWORD → dev:/:DATABASE_URL → PASSWORD is a cycle"):
        secrets.update_secret(password, value="x${dev.DATABASE_URL}")
    password.refresh_from_db()
    assert password.value == "s3cret"


def test_a_self_reference_is_a_cycle(dev):
    with pytest.raises(secrets.SecretsError, match="A → A is a cycle"):
        secrets.create_secret(dev, "/", "A", "${A}")


def test_bulk_import_checks_references_and_sees_its_own_entries(dev):
    result = secrets.bulk_import(dev, "/", {"USER": "app", "URL": "u=${USER}"}, overwrite=True)
    assert sorted(result.created) == ["URL", "USER"]
    assert resolved(dev)["URL"] == "u=app"
    with pytest.raises(secrets.SecretsError, match="there is no secret MISSING"):
        secrets.bulk_import(dev, "/", {"OK": "1", "BAD": "${MISSING}"}, overwrite=True)
    assert not dev.secrets.filter(key__in=["OK", "BAD"]).exists()


def test_deleting_a_referenced_secret_is_refused_naming_who_uses_it(dev, db_folder):
    secrets.create_secret(dev, "/", "URL", "${dev.db.PASSWORD}")
    password = dev.secrets.get(key="PASSWORD")
    with pytest.raises(secrets.SecretsError, match="PASSWORD is used by dev:/:URL"):
        secrets.delete_secret(password)
    with pytest.raises(secrets.SecretsError, match="PASSWORD is used by dev:/:URL"):
        secrets.delete_secrets(dev, "/db", ["PASSWORD"])
    with pytest.raises(secrets.SecretsError, match="Cannot rename PASSWORD"):
        secrets.update_secret(password, key="PASS")
    # Once nothing refers to it, it goes.
    secrets.update_secret(dev.secrets.get(key="URL"), value="plain")
    secrets.delete_secret(password)
    assert not dev.secrets.filter(key="PASSWORD").exists()


def test_renaming_or_deleting_what_others_refer_to_is_refused(workspace, dev, prod, db_folder):
    secrets.create_secret(prod, "/", "URL", "${dev.db.PASSWORD}")
    secrets.create_secret(dev, "/db", "LOCAL", "${HOST}")  # a same-folder reference survives a rename
    db = dev.folders.get(path="/db")
    with pytest.raises(secrets.SecretsError, match=r"Cannot delete dev:/db: prod:/:URL \(refers to dev:/db:PASSWORD\)"):
        secrets.delete_folder(db, confirmed=True)
    with pytest.raises(secrets.SecretsError, match="Cannot rename dev:/db: prod:/:URL"):
        secrets.rename_folder(db, "database")
    with pytest.raises(secrets.SecretsError, match="Cannot change the slug of Development: prod:/:URL"):
        secrets.rename_environment(dev, dev.name, "development")
    with pytest.raises(secrets.SecretsError, match="Cannot delete the environment Development: prod:/:URL"):
        secrets.delete_environment(dev)
    secrets.rename_environment(dev, "Dev renamed", "dev")  # the name alone changes nothing a reference reads
    secrets.update_secret(prod.secrets.get(key="URL"), value="plain")
    secrets.rename_folder(db, "database")
    assert references.resolve_folder(dev, "/database").values["LOCAL"] == "db.internal"


def test_deleting_a_secret_with_its_referrer_together_is_allowed(dev):
    secrets.bulk_import(dev, "/", {"A": "1", "B": "${A}"}, overwrite=True)
    secrets.delete_secrets(dev, "/", ["A", "B"])
    assert not dev.secrets.exists()


def test_the_index_holds_targets_never_values(dev, db_folder):
    secret = secrets.create_secret(dev, "/", "URL", "x:${dev.db.PASSWORD}:${APP_URL}")
    rows = list(SecretReference.objects.values_list("secret_id", "environment_slug", "path", "key"))
    assert rows == [(secret.pk, "dev", "/db", "PASSWORD")]
    secrets.update_secret(secret, value="no references")
    assert not SecretReference.objects.exists()


# --- Workspaces and permissions ----------------------------------------------------------------


def test_a_reference_never_crosses_workspaces(owner, dev):
    other = create_workspace(owner, "Other")
    other_env = other.environments.get(slug="dev")
    secrets.create_environment(other, "Elsewhere", "elsewhere")
    secrets.create_secret(other.environments.get(slug="elsewhere"), "/", "TOKEN", "other-workspace-value")
    with pytest.raises(secrets.SecretsError, match="there is no environment elsewhere in this workspace"):
        secrets.create_secret(dev, "/", "STEAL", "${elsewhere.TOKEN}")
    assert other_env.workspace_id != dev.workspace_id


def test_an_unresolved_reference_is_left_as_written_and_reported(dev, db_folder):
    secrets.create_secret(dev, "/", "URL", "${dev.db.PASSWORD}")
    # The target goes away behind the service's back (a row deleted in the database, or saved before the index).
    dev.secrets.filter(key="PASSWORD").delete()
    result = references.resolve_folder(dev, "/")
    assert result.values["URL"] == "${dev.db.PASSWORD}"
    assert result.unresolved == {"URL": ["URL → dev:/db:PASSWORD: there is no secret PASSWORD in dev:/db."]}


def test_resolution_queries_do_not_grow_with_references(dev):
    for name in ("a", "b", "c"):
        secrets.create_folder(dev, "/", name)
        secrets.bulk_import(dev, f"/{name}", {f"K{i}": f"{name}{i}" for i in range(20)}, overwrite=True)

    def count(n):
        secrets.bulk_import(dev, "/", {f"R{i}": "${dev.%s.K%d}" % ("abc"[i % 3], i % 20) for i in range(n)},
                            overwrite=True)
        with CaptureQueriesContext(db_connection) as queries:
            values = resolved(dev)
        assert values["R1"] == "b1"
        return len(queries)

    assert count(3) == count(60)


# --- API, download and pages -------------------------------------------------------------------


def list_raw(api, workspace, **params):
    return api.get("/api/v3/secrets/raw", {"workspaceId": str(workspace.pk), "environment": "dev", **params})


def test_api_expands_references_when_asked(api, workspace, dev, db_folder):
    secrets.create_secret(dev, "/", "URL", "p=${dev.db.PASSWORD}&a=${APP_URL}")
    expanded = list_raw(api, workspace, expandSecretReferences="true").json()["secrets"]
    assert [(s["secretKey"], s["secretValue"]) for s in expanded] == [("URL", "p=s3cret&a=${APP_URL}")]
    raw = list_raw(api, workspace, expandSecretReferences="false").json()["secrets"]
    assert raw[0]["secretValue"] == "p=${dev.db.PASSWORD}&a=${APP_URL}"
    one = api.get("/api/v3/secrets/raw/URL", {"workspaceId": str(workspace.pk), "environment": "dev",
                                               "expandSecretReferences": "true"}).json()["secret"]
    assert one["secretValue"] == "p=s3cret&a=${APP_URL}"


def test_api_default_follows_infisical(api, workspace, dev, db_folder):
    """Infisical's server expands only when asked (its SDKs ask by default)."""
    secrets.create_secret(dev, "/", "URL", "${dev.db.PASSWORD}")
    assert list_raw(api, workspace).json()["secrets"][0]["secretValue"] == "${dev.db.PASSWORD}"


def test_a_viewer_gets_no_values_through_references(api_client_for, workspace, dev, db_folder):
    secrets.create_secret(dev, "/", "URL", "${dev.db.PASSWORD}")
    viewer = api_client_for(workspace, Role.VIEWER)
    body = list_raw(viewer, workspace, expandSecretReferences="true", include_imports="true").json()
    assert [s["secretValue"] for s in body["secrets"]] == [None]
    assert "s3cret" not in str(body)


def test_download_resolves_and_audits(client_for, owner, workspace, dev, db_folder):
    secrets.create_secret(dev, "/", "URL", "p=${dev.db.PASSWORD}")
    response = client_for(owner).get(reverse("secrets_download", kwargs={"ws": workspace.slug, "env": "dev"}))
    assert b'URL="p=s3cret"' in response.content or b"URL=p=s3cret" in response.content
    assert AuditEvent.objects.filter(action="secrets.values_read", data__how="download").exists()


def test_page_links_references_without_values(client_for, owner, workspace, dev, db_folder):
    secrets.create_secret(dev, "/", "URL", "p=${dev.db.PASSWORD}&h=${db.HOSTNAME}")
    html = client_for(owner).get(reverse("secrets", kwargs={"ws": workspace.slug, "env": "dev"})).content.decode()
    assert "s3cret" not in html
    assert f'href="/w/{workspace.slug}/secrets/dev/?path=/db"' in html
    assert "dev:/db:PASSWORD" in html
    assert "App Platform" in html  # the precedence rule is written on the page


def test_page_marks_unresolved_references(client_for, owner, workspace, dev, db_folder):
    secrets.create_secret(dev, "/", "URL", "${dev.db.PASSWORD}")
    dev.secrets.filter(key="PASSWORD").delete()  # behind the service's back (it refuses this)
    html = client_for(owner).get(reverse("secrets", kwargs={"ws": workspace.slug, "env": "dev"})).content.decode()
    assert "unresolved" in html.lower()


def test_reveal_resolved_value_is_audited(client_for, owner, workspace, dev, db_folder):
    secret = secrets.create_secret(dev, "/", "URL", "p=${dev.db.PASSWORD}")
    client = client_for(owner)
    raw = client.post(reverse("secret_reveal", kwargs={"ws": workspace.slug, "secret_id": secret.pk}))
    assert "p=${dev.db.PASSWORD}" in raw.content.decode()
    expanded = client.post(reverse("secret_reveal", kwargs={"ws": workspace.slug, "secret_id": secret.pk}),
                           {"resolved": "1"})
    assert "p=s3cret" in expanded.content.decode()
    assert AuditEvent.objects.filter(action="secrets.values_read", data__how="reveal (resolved)").exists()


def test_viewer_cannot_reveal_resolved(client_for, make_member, workspace, dev, db_folder):
    secret = secrets.create_secret(dev, "/", "URL", "p=${dev.db.PASSWORD}")
    viewer = make_member(workspace, Role.VIEWER)
    response = client_for(viewer).post(reverse("secret_reveal", kwargs={"ws": workspace.slug, "secret_id": secret.pk}),
                                       {"resolved": "1"})
    assert response.status_code == 403
    assert b"s3cret" not in response.content


def test_form_shows_the_reference_error(client_for, owner, workspace, dev):
    response = client_for(owner).post(reverse("secret_create", kwargs={"ws": workspace.slug, "env": "dev"}),
                                      {"key": "A", "value": "${dev.nope.X}", "comment": ""}, HTTP_HX_REQUEST="true")
    assert "there is no folder /nope in dev" in response.content.decode()


def test_deleting_a_referenced_secret_on_the_page_keeps_the_row_and_says_why(client_for, owner, workspace, dev,
                                                                              db_folder):
    secrets.create_secret(dev, "/", "URL", "${dev.db.PASSWORD}")
    password = dev.secrets.get(key="PASSWORD")
    response = client_for(owner).post(reverse("secret_delete", kwargs={"ws": workspace.slug, "secret_id": password.pk}),
                                      HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert f'id="secret-{password.pk}"' in html and "PASSWORD is used by dev:/:URL" in html
    assert dev.secrets.filter(key="PASSWORD").exists()


def test_the_env_paste_preview_names_reference_problems_before_writing(client_for, owner, workspace, dev):
    url = reverse("secrets_import", kwargs={"ws": workspace.slug, "env": "dev"})
    client = client_for(owner)
    checked = client.post(url, {"path": "/", "text": "A=1\nB=${A}-${dev.nope.C}\n", "overwrite": "skip"})
    html = checked.content.decode()
    assert "there is no folder /nope in dev" in html and "Import 2 secrets" not in html
    forced = client.post(url, {"path": "/", "text": "A=1\nB=${A}-${dev.nope.C}\n", "overwrite": "skip",
                               "confirm": "yes", "checked_mode": "skip"})
    assert forced.status_code == 200 and not dev.secrets.exists()
    fine = client.post(url, {"path": "/", "text": "A=1\nB=${A}-x\n", "overwrite": "skip", "confirm": "yes",
                             "checked_mode": "skip"})
    assert fine.status_code == 302
    assert references.resolve_folder(dev, "/").values == {"A": "1", "B": "1-x"}


def test_an_edit_with_a_bad_reference_is_said_beside_the_value(client_for, owner, workspace, dev):
    secret = secrets.create_secret(dev, "/", "A", "1")
    response = client_for(owner).post(reverse("secret_edit", kwargs={"ws": workspace.slug, "secret_id": secret.pk}),
                                      {"key": "A", "value": "${A}", "change_value": "on", "comment": "",
                                       "version": "1"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert "A → A is a cycle" in html
    assert html.index("A → A is a cycle") > html.index('name="key"')  # under the value, not the key
    secret.refresh_from_db()
    assert secret.value == "1"


def test_the_page_with_references_and_imports_makes_a_constant_number_of_queries(client_for, owner, workspace, dev,
                                                                                  db_folder):
    from devpilot import imports

    secrets.create_folder(dev, "/", "app")
    app = dev.folders.get(path="/app")
    imports.add_import(app, dev.folders.get(path="/db"))
    client = client_for(owner)
    url = reverse("secrets", kwargs={"ws": workspace.slug, "env": "dev"}) + "?path=/app"

    def queries_with(n):
        secrets.bulk_import(dev, "/app", {f"K{i:03d}": "${dev.db.PASSWORD}-${HOST}" for i in range(n)}, overwrite=True)
        client.get(url)
        with CaptureQueriesContext(db_connection) as queries:
            html = client.get(url).content.decode()
        assert html.count(">dev:/db:PASSWORD</a>") == min(n, 50)
        return len(queries)

    assert queries_with(3) == queries_with(80)

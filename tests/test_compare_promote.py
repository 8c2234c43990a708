"""Compare a folder across environments (presence and equality, compared on the server, never a value or
a hash sent out) and promote keys from one environment to another as one change."""

import hashlib

import pytest
from django.urls import reverse

from devpilot import compare, secrets
from devpilot.errors import Conflict, Invalid, NotFound
from devpilot.models import AuditEvent, FolderSnapshot, Role, Secret, SecretVersion
from devpilot.signals import secrets_changed

VALUES = {"dev": {"SAME": "same-value-1", "DIFFERENT": "dev-only-value", "ONLY_DEV": "lonely-value"},
          "staging": {"SAME": "same-value-1", "DIFFERENT": "staging-value"},
          "prod": {"SAME": "same-value-1", "DIFFERENT": "dev-only-value", "ONLY_PROD": "prod-value"}}


@pytest.fixture
def envs(workspace):
    return {e.slug: e for e in workspace.environments.all()}


@pytest.fixture
def filled(workspace, envs):
    for slug, values in VALUES.items():
        secrets.create_folder(envs[slug], "/", "app")
        secrets.bulk_import(envs[slug], "/app", values, overwrite=False)
    return workspace


@pytest.fixture
def events(db):
    received = []

    def receiver(sender, **kwargs):
        received.append((kwargs["environment_id"], kwargs["path"]))

    secrets_changed.connect(receiver)
    yield received
    secrets_changed.disconnect(receiver)


def cells(comparison):
    return {row.key: [(c.present, c.group) for c in row.cells] for row in comparison.rows}


# --- Compare -------------------------------------------------------------------------------------


def test_compare_shows_presence_and_equal_values_in_environment_order(filled, envs):
    comparison = compare.compare(filled, "/app", with_values=True)
    assert [e.slug for e in comparison.environments] == ["dev", "staging", "prod"]
    assert cells(comparison) == {
        "DIFFERENT": [(True, 1), (True, 2), (True, 1)],
        "ONLY_DEV": [(True, 1), (False, None), (False, None)],
        "ONLY_PROD": [(False, None), (False, None), (True, 1)],
        "SAME": [(True, 1), (True, 1), (True, 1)],
    }
    assert [row.key for row in comparison.differences] == ["DIFFERENT", "ONLY_DEV", "ONLY_PROD"]


def test_without_values_compare_shows_presence_only(filled):
    comparison = compare.compare(filled, "/app", with_values=False)
    assert cells(comparison)["DIFFERENT"] == [(True, None)] * 3
    assert [row.key for row in comparison.differences] == ["ONLY_DEV", "ONLY_PROD"]


def test_compare_costs_the_same_queries_however_many_keys(filled, envs, django_assert_max_num_queries):
    secrets.bulk_import(envs["dev"], "/app", {f"K{i}": str(i) for i in range(300)}, overwrite=False)
    with django_assert_max_num_queries(3):
        compare.compare(filled, "/app", with_values=True)


def page_of(client, workspace, **params):
    return client.get(reverse("compare", kwargs={"ws": workspace.slug}), params)


def test_the_compare_page_never_sends_a_value_or_a_hash(filled, client_for, owner):
    html = page_of(client_for(owner), filled, path="/app").content.decode()
    assert 'id="compare-DIFFERENT"' in html and "value 2" in html
    for values in VALUES.values():
        for value in values.values():
            assert value not in html
            assert hashlib.sha256(value.encode()).hexdigest() not in html
            assert hashlib.sha256(value.encode()).hexdigest()[:12] not in html


def test_differences_only_hides_equal_rows(filled, client_for, owner):
    html = page_of(client_for(owner), filled, path="/app", diff="1").content.decode()
    assert 'id="compare-DIFFERENT"' in html and 'id="compare-SAME"' not in html


def test_viewers_see_presence_but_not_equality_nor_promotion(filled, client_for, make_member):
    viewer = client_for(make_member(filled, Role.VIEWER))
    html = page_of(viewer, filled, path="/app").content.decode()
    assert 'id="compare-ONLY_DEV"' in html and "value 1" not in html and 'name="keys"' not in html
    # Equal keys everywhere is not a difference for them: they cannot see values differ.
    assert 'id="compare-DIFFERENT"' not in page_of(viewer, filled, path="/app", diff="1").content.decode()
    assert viewer.post(reverse("promote", kwargs={"ws": filled.slug}), {"path": "/app"}).status_code == 403


def test_the_compare_page_is_in_the_nav_and_the_secrets_header(filled, client_for, owner):
    html = client_for(owner).get(reverse("secrets", kwargs={"ws": filled.slug, "env": "dev"}),
                                 {"path": "/app"}).content.decode()
    assert f'{reverse("compare", kwargs={"ws": filled.slug})}?path=/app' in html.replace("%2F", "/")
    assert html.count(reverse("compare", kwargs={"ws": filled.slug})) == 2


def test_a_bad_path_on_the_compare_page_says_so(filled, client_for, owner):
    response = page_of(client_for(owner), filled, path="/no such").content
    assert response == b""  # a redirect
    followed = client_for(owner).get(reverse("compare", kwargs={"ws": filled.slug}), {"path": "/no such"}, follow=True)
    assert "is not a valid path" in followed.content.decode()


# --- Promote -------------------------------------------------------------------------------------


def test_promotion_previews_created_and_overwritten_keys(filled):
    plan = compare.preview(filled, "/app", "dev", "staging", ["SAME", "DIFFERENT", "ONLY_DEV"])
    assert (plan.create, plan.overwrite, plan.unchanged) == (["ONLY_DEV"], ["DIFFERENT"], ["SAME"])


def test_promotion_is_one_change(filled, envs, owner, events, django_capture_on_commit_callbacks):
    staging_app = envs["staging"].folders.get(path="/app")
    before = FolderSnapshot.objects.filter(folder=staging_app).count()
    versions = SecretVersion.objects.count()
    with django_capture_on_commit_callbacks(execute=True):
        compare.promote(filled, "/app", "dev", "staging", ["SAME", "DIFFERENT", "ONLY_DEV"], user=owner)
    assert secrets.read_folder(envs["staging"], "/app") == {
        "SAME": "same-value-1", "DIFFERENT": "dev-only-value", "ONLY_DEV": "lonely-value"}
    assert SecretVersion.objects.count() == versions + 2  # one history entry per secret written
    assert Secret.objects.get(environment=envs["staging"], key="DIFFERENT").version == 2
    assert FolderSnapshot.objects.filter(folder=staging_app).count() == before + 1
    snapshot = FolderSnapshot.objects.filter(folder=staging_app).order_by("-number").first()
    assert (snapshot.kind, sorted(e.key for e in snapshot.entries.all())) == ("promotion", ["DIFFERENT", "ONLY_DEV"])
    assert events == [(envs["staging"].pk, "/app")]  # one change event: each auto-sync runs once
    event = AuditEvent.objects.get(action="secrets.promoted")
    assert (event.target_label, event.data["keys"], event.data["source"]) == (
        "staging:/app", ["DIFFERENT", "ONLY_DEV"], "dev:/app")
    assert "dev-only-value" not in str(event.data)


def test_promotion_creates_the_target_folder_and_its_parents(workspace, envs, owner):
    secrets.create_folder(envs["dev"], "/", "svc")
    secrets.create_folder(envs["dev"], "/svc", "api")
    secrets.create_secret(envs["dev"], "/svc/api", "TOKEN", "t", "the api token")
    plan = compare.promote(workspace, "/svc/api", "dev", "prod", ["TOKEN"], user=owner)
    assert plan.folder_missing
    assert secrets.read_folder(envs["prod"], "/svc/api") == {"TOKEN": "t"}
    assert Secret.objects.get(environment=envs["prod"]).comment == "the api token"


def test_promotion_copies_references_as_written(filled, envs):
    secrets.create_secret(envs["dev"], "/app", "URL", "postgres://${SAME}@db")
    secrets.create_secret(envs["staging"], "/app", "ONLY_DEV", "x")  # so ${ONLY_DEV}-style targets exist there too
    compare.promote(filled, "/app", "dev", "staging", ["URL"])
    assert secrets.read_folder(envs["staging"], "/app")["URL"] == "postgres://${SAME}@db"


@pytest.mark.parametrize("source,target,keys,error,field", [
    ("dev", "dev", ["SAME"], Invalid, "targetEnvironment"),
    ("nope", "staging", ["SAME"], NotFound, "sourceEnvironment"),
    ("dev", "nope", ["SAME"], NotFound, "targetEnvironment"),
    ("dev", "staging", [], Invalid, "keys"),
    ("dev", "staging", ["ONLY_PROD"], Invalid, "keys"),
])
def test_bad_promotions_are_refused_naming_the_field_and_change_nothing(filled, source, target, keys, error, field):
    rows = SecretVersion.objects.count()
    with pytest.raises(error) as refused:
        compare.promote(filled, "/app", source, target, keys)
    assert refused.value.details[0]["field"] == field
    assert SecretVersion.objects.count() == rows


def test_a_promotion_after_the_target_changed_since_the_preview_is_refused(filled, envs):
    plan = compare.preview(filled, "/app", "dev", "staging", ["DIFFERENT"])
    secrets.update_secret(Secret.objects.get(environment=envs["staging"], key="DIFFERENT"), value="meanwhile")
    with pytest.raises(Conflict):
        compare.promote(filled, "/app", "dev", "staging", ["DIFFERENT"], expected_latest=plan.latest)
    assert secrets.read_folder(envs["staging"], "/app")["DIFFERENT"] == "meanwhile"


def test_the_promote_pages_preview_then_apply(filled, envs, client_for, owner):
    client = client_for(owner)
    url = reverse("promote", kwargs={"ws": filled.slug})
    preview = client.post(url, {"path": "/app", "source": "dev", "target": "staging",
                                "keys": ["DIFFERENT", "ONLY_DEV"]})
    html = preview.content.decode()
    assert "Created</dt><dd><code>ONLY_DEV</code>" in html and "Overwritten</dt><dd><code>DIFFERENT</code>" in html
    assert "dev-only-value" not in html and "lonely-value" not in html
    done = client.post(url, {"path": "/app", "source": "dev", "target": "staging", "keys": ["DIFFERENT", "ONLY_DEV"],
                             "confirm": "yes", "expected_latest": "1"}, follow=True)
    assert "Promoted 2 keys from Development to Staging" in done.content.decode()
    assert secrets.read_folder(envs["staging"], "/app")["ONLY_DEV"] == "lonely-value"
    refused = client.post(url, {"path": "/app", "source": "dev", "target": "dev", "keys": ["SAME"]}, follow=True)
    assert "Choose a target environment other than the source" in refused.content.decode()


# --- API -----------------------------------------------------------------------------------------

COMPARE = "/api/v1/devpilot/secrets/compare"
PROMOTE = "/api/v1/devpilot/secrets/promote"


def test_the_compare_api_answers_presence_and_value_groups_never_values(filled, api, api_client_for):
    body = api.get(COMPARE, {"workspaceId": str(filled.pk), "path": "/app", "differencesOnly": "true"}).json()
    assert body["valuesCompared"] is True and [e["slug"] for e in body["environments"]] == ["dev", "staging", "prod"]
    assert [row["key"] for row in body["keys"]] == ["DIFFERENT", "ONLY_DEV", "ONLY_PROD"]
    assert body["keys"][0]["environments"][1] == {"environment": "staging", "present": True, "valueGroup": 2}
    text = str(body)
    assert not any(value in text for values in VALUES.values() for value in values.values())
    viewer = api_client_for(filled, Role.VIEWER).get(COMPARE, {"workspaceId": str(filled.pk), "path": "/app"}).json()
    assert viewer["valuesCompared"] is False
    assert {c["valueGroup"] for row in viewer["keys"] for c in row["environments"]} == {None}


def test_the_promote_api_dry_runs_then_promotes(filled, envs, api, api_client_for):
    body = {"workspaceId": str(filled.pk), "path": "/app", "sourceEnvironment": "dev",
            "targetEnvironment": "prod", "keys": ["ONLY_DEV", "SAME"], "dryRun": True}
    dry = api.post(PROMOTE, body)
    assert dry.json() == {"path": "/app", "sourceEnvironment": "dev", "targetEnvironment": "prod",
                          "created": ["ONLY_DEV"], "overwritten": [], "unchanged": ["SAME"], "folderCreated": False,
                          "dryRun": True}
    assert "ONLY_DEV" not in secrets.read_folder(envs["prod"], "/app")
    done = api.post(PROMOTE, {**body, "dryRun": False})
    assert done.status_code == 200 and done.json()["created"] == ["ONLY_DEV"]
    assert secrets.read_folder(envs["prod"], "/app")["ONLY_DEV"] == "lonely-value"
    assert api_client_for(filled, Role.VIEWER).post(PROMOTE, body).status_code == 403
    bad = api.post(PROMOTE, {**body, "keys": ["not a key"]})
    assert bad.status_code == 400 and bad.json()["details"][0]["field"] == "keys[0]"
    assert api.post(PROMOTE, {**body, "targetEnvironment": "dev"}).status_code == 400


def test_promotions_and_rollbacks_read_as_sentences():
    from devpilot.models import AuditEvent as Event
    from devpilot.templatetags.devpilot import audit_sentence_text

    promoted = Event(action="secrets.promoted", actor_label="alice@example.com", target_label="prod:/app",
                     data={"keys": ["A", "B"], "source": "dev:/app"})
    assert audit_sentence_text(promoted) == "alice@example.com promoted 2 secrets from dev:/app to prod:/app"
    rolled = Event(action="folder.rolled_back", actor_label="alice@example.com", target_label="dev:/",
                   data={"snapshot": 3})
    assert audit_sentence_text(rolled) == "alice@example.com rolled dev:/ back to snapshot #3"


def test_a_promoted_reference_must_resolve_in_the_target(filled, envs):
    from devpilot.references import ReferenceRefused, referrers

    secrets.create_secret(envs["dev"], "/app", "DB_HOST", "db.internal")
    secrets.create_secret(envs["dev"], "/app", "DB_URL", "postgres://${DB_HOST}/app")
    with pytest.raises(ReferenceRefused, match="DB_HOST"):
        compare.promote(filled, "/app", "dev", "staging", ["DB_URL"])
    assert "DB_URL" not in secrets.read_folder(envs["staging"], "/app")
    compare.promote(filled, "/app", "dev", "staging", ["DB_URL", "DB_HOST"])
    assert secrets.read_folder(envs["staging"], "/app")["DB_URL"] == "postgres://${DB_HOST}/app"
    assert referrers(envs["staging"], "/app", ["DB_HOST"]) == {"DB_HOST": ["staging:/app:DB_URL"]}

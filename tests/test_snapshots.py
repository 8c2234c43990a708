"""Point-in-time recovery: every change to a folder is a numbered snapshot of references to versions; the
folder is viewed as it was at any snapshot or time and rolled back, deleted secrets included, as one new
change that is itself undoable. Through the service, the pages and Infisical's snapshot API."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from devpilot import secrets, snapshots
from devpilot.errors import Conflict, NotFound
from devpilot.models import AuditEvent, FolderSnapshot, Role, Secret, SecretVersion, SnapshotEntry, SnapshotKind
from devpilot.signals import secrets_changed


@pytest.fixture
def root(dev):
    return dev.folders.get(path="/")


@pytest.fixture
def events(db):
    received = []

    def receiver(sender, **kwargs):
        received.append(kwargs["path"])

    secrets_changed.connect(receiver)
    yield received
    secrets_changed.disconnect(receiver)


def state(folder, number):
    return {key: entry.version.value for key, entry in snapshots.state_at(folder, number).items()}


def live(folder):
    return {s.key: s.value for s in folder.secrets.all()}


# --- Recording ---------------------------------------------------------------------------------


def test_every_change_is_a_numbered_snapshot_with_who_and_what(dev, root, owner):
    secrets.create_secret(dev, "/", "A", "a1", user=owner)
    b = secrets.create_secret(dev, "/", "B", "b1", user=owner)
    secrets.update_secret(b, value="b2", user=owner)
    secrets.bulk_import(dev, "/", {"C": "c1", "A": "a2"}, overwrite=True, user=owner)
    secrets.delete_secret(Secret.objects.get(key="B"), user=owner)
    a = Secret.objects.get(key="A")
    secrets.restore_version(a, a.versions.get(version=1), user=owner)
    secrets.delete_secrets(dev, "/", ["A", "C", "MISSING"], user=owner)

    history = list(root.snapshots.order_by("number"))
    assert [s.number for s in history] == [1, 2, 3, 4, 5, 6, 7]
    assert [s.kind for s in history] == ["create", "create", "edit", "import", "delete", "restore", "delete"]
    assert {s.actor_label for s in history} == {owner.email}
    assert [sorted(e.key for e in s.entries.all()) for s in history] == [
        ["A"], ["B"], ["B"], ["A", "C"], ["B"], ["A"], ["A", "C"]]
    assert state(root, 3) == {"A": "a1", "B": "b2"}
    assert state(root, 4) == {"A": "a2", "B": "b2", "C": "c1"}
    assert state(root, 6) == {"A": "a1", "C": "c1"}
    assert state(root, 7) == {}


def test_a_rename_deletes_the_old_key_and_sets_the_new_one(dev, root):
    secret = secrets.create_secret(dev, "/", "OLD", "v")
    secrets.update_secret(secret, key="NEW")
    assert state(root, 1) == {"OLD": "v"}
    assert state(root, 2) == {"NEW": "v"}


def test_a_change_that_fails_leaves_no_snapshot(dev, root):
    secrets.create_secret(dev, "/", "A", "a")
    with pytest.raises(secrets.SecretsError):
        secrets.create_secret(dev, "/", "A", "again")
    with pytest.raises(secrets.SecretsError):
        secrets.bulk_import(dev, "/", {"B": "b", "bad key": "x"}, overwrite=True)
    assert root.snapshots.count() == 1


def test_folders_number_their_snapshots_separately(dev, root):
    secrets.create_folder(dev, "/", "app")
    secrets.create_secret(dev, "/", "A", "a")
    secrets.create_secret(dev, "/app", "A", "a")
    assert [s.number for s in FolderSnapshot.objects.order_by("folder__path")] == [1, 1]


def test_versions_outlive_their_secret_and_know_where_they_were(dev):
    secret = secrets.create_secret(dev, "/", "GONE", "kept")
    secrets.delete_secret(secret)
    version = SecretVersion.objects.get()
    assert (version.secret_id, version.key, version.folder.path, version.value) == (None, "GONE", "/", "kept")


def test_a_one_secret_edit_in_a_1000_secret_folder_adds_two_rows(dev, root):
    secrets.bulk_import(dev, "/", {f"KEY_{i:04}": f"value-{i}" for i in range(1000)}, overwrite=False)
    assert SnapshotEntry.objects.count() == 1000
    before = (FolderSnapshot.objects.count(), SnapshotEntry.objects.count(), SecretVersion.objects.count())
    secrets.update_secret(Secret.objects.get(key="KEY_0500"), value="changed")
    after = (FolderSnapshot.objects.count(), SnapshotEntry.objects.count(), SecretVersion.objects.count())
    # One snapshot and one entry (plus the secret's own new history entry, as before snapshots).
    assert [a - b for a, b in zip(after, before)] == [1, 1, 1]


def test_the_state_of_a_1000_secret_folder_is_read_in_one_query(dev, root):
    secrets.bulk_import(dev, "/", {f"KEY_{i:04}": f"value-{i}" for i in range(1000)}, overwrite=False)
    for i in range(5):
        secrets.update_secret(Secret.objects.get(key=f"KEY_{i:04}"), value=f"changed-{i}")
    with CaptureQueriesContext(connection) as queries:
        at = snapshots.state_at(root, 6)
        versions = [entry.version.version for entry in at.values()]
    assert len(at) == 1000 and versions.count(2) == 5
    assert len(queries) == 1


# --- Point in time -------------------------------------------------------------------------------


def test_the_folder_at_a_time_is_the_last_snapshot_before_it(dev, root):
    secrets.create_secret(dev, "/", "A", "a")
    first = root.snapshots.get()
    FolderSnapshot.objects.filter(pk=first.pk).update(created_at=timezone.now() - timedelta(hours=2))
    secrets.create_secret(dev, "/", "B", "b")
    assert snapshots.snapshot_at_time(root, timezone.now() - timedelta(hours=1)).number == 1
    assert snapshots.snapshot_at_time(root, timezone.now()).number == 2
    with pytest.raises(NotFound, match="no recorded history"):
        snapshots.snapshot_at_time(root, timezone.now() - timedelta(days=1))


# --- Rolling back --------------------------------------------------------------------------------


def test_rollback_recreates_deleted_secrets_reverts_changes_and_deletes_additions(dev, root, owner, events,
                                                                                django_capture_on_commit_callbacks):
    secrets.create_secret(dev, "/", "KEEP", "same")
    changed = secrets.create_secret(dev, "/", "CHANGED", "old", "old comment")
    gone = secrets.create_secret(dev, "/", "GONE", "recover me", "a note")
    target = root.snapshots.order_by("-number").first()
    secrets.update_secret(changed, value="new", comment="new comment")
    secrets.delete_secret(gone)
    secrets.create_secret(dev, "/", "ADDED", "later")
    events.clear()

    plan = snapshots.plan_rollback(target)
    assert (plan.create, plan.change, plan.delete) == (["GONE"], ["CHANGED"], ["ADDED"])
    with django_capture_on_commit_callbacks(execute=True):
        made = snapshots.rollback(target, expected_latest=plan.latest, user=owner)

    assert live(root) == {"KEEP": "same", "CHANGED": "old", "GONE": "recover me"}
    assert Secret.objects.get(key="GONE").comment == "a note"
    assert Secret.objects.get(key="CHANGED").version == 3
    assert (made.number, made.kind, made.actor) == (7, SnapshotKind.ROLLBACK, owner)
    assert sorted(e.key for e in made.entries.all()) == ["ADDED", "CHANGED", "GONE"]
    assert events == ["/"]  # one change event: each auto-sync runs once
    event = AuditEvent.objects.get(action="folder.rolled_back")
    assert (event.data["snapshot"], event.data["deleted"]) == (3, ["ADDED"])
    assert "recover me" not in str(event.data)


def test_a_rollback_is_undone_by_rolling_back_to_the_snapshot_before_it(dev, root):
    secrets.create_secret(dev, "/", "A", "one")
    secrets.update_secret(Secret.objects.get(key="A"), value="two")
    secrets.create_secret(dev, "/", "B", "b")
    before_rollback = root.snapshots.order_by("-number").first()
    snapshots.rollback(root.snapshots.get(number=1))
    assert live(root) == {"A": "one"}
    snapshots.rollback(before_rollback)
    assert live(root) == {"A": "two", "B": "b"}
    assert root.snapshots.count() == 5


def test_a_rollback_after_a_newer_change_than_the_preview_is_refused(dev, root):
    secrets.create_secret(dev, "/", "A", "one")
    plan = snapshots.plan_rollback(root.snapshots.get(number=1))
    secrets.create_secret(dev, "/", "B", "b")
    with pytest.raises(Conflict, match="changed since"):
        snapshots.rollback(plan.snapshot, expected_latest=plan.latest)
    assert live(root) == {"A": "one", "B": "b"}


def test_rolling_back_to_the_current_state_changes_nothing(dev, root):
    secrets.create_secret(dev, "/", "A", "one")
    assert snapshots.rollback(root.snapshots.get()) is None
    assert root.snapshots.count() == 1


# --- Retention -----------------------------------------------------------------------------------


def test_retention_compacts_old_snapshots_into_a_base_and_keeps_the_state(dev, root, settings):
    secrets.create_secret(dev, "/", "A", "a1")
    secrets.update_secret(Secret.objects.get(key="A"), value="a2")
    secrets.create_secret(dev, "/", "B", "b")
    secrets.delete_secret(Secret.objects.get(key="B"))
    secrets.update_secret(Secret.objects.get(key="A"), value="a3")
    old = timezone.now() - timedelta(days=40)
    FolderSnapshot.objects.filter(number__lte=4).update(created_at=old)
    SecretVersion.objects.update(created_at=old)
    state_at_cutoff = state(root, 4)

    settings.DEVPILOT_SNAPSHOT_RETENTION_DAYS = 0
    assert snapshots.housekeeping() == {"compacted": 0, "pruned": 0}
    settings.DEVPILOT_SNAPSHOT_RETENTION_DAYS = 30
    assert snapshots.housekeeping() == {"compacted": 3, "pruned": 2}  # snapshots 1-3; versions a1 and b

    assert [(s.number, s.kind) for s in root.snapshots.order_by("number")] == [(4, "base"), (5, "edit")]
    assert state(root, 4) == state_at_cutoff == {"A": "a2"}
    assert state(root, 5) == {"A": "a3"}
    assert sorted(v.value for v in SecretVersion.objects.all()) == ["a2", "a3"]
    snapshots.rollback(root.snapshots.get(number=4))
    assert live(root) == {"A": "a2"}


def test_the_retention_task_is_scheduled():
    from devpilot.schedules import SCHEDULES

    assert ("devpilot.snapshots.housekeeping", 60) in SCHEDULES


# --- Pages ---------------------------------------------------------------------------------------


@pytest.fixture
def history(dev, root, owner):
    secrets.create_secret(dev, "/", "DB_PASSWORD", "hunter2-original", user=owner)
    secrets.create_secret(dev, "/", "API_KEY", "key-one", user=owner)
    secrets.delete_secret(Secret.objects.get(key="DB_PASSWORD"), user=owner)
    return root


def test_the_history_page_lists_snapshots_with_who_what_and_keys(history, client_for, owner, workspace):
    response = client_for(owner).get(reverse("folder_history", kwargs={"ws": workspace.slug, "env": "dev"}))
    html = response.content.decode()
    assert response.status_code == 200
    assert html.count('<tr id="snapshot-') == 3
    assert "Secrets deleted" in html and "<code>DB_PASSWORD</code>" in html and owner.email in html
    assert "hunter2-original" not in html


def test_the_history_page_is_paginated_by_number(dev, root, client_for, owner, workspace):
    secrets.bulk_import(dev, "/", {"A": "0"}, overwrite=True)
    for i in range(1, 30):
        secrets.bulk_import(dev, "/", {"A": str(i)}, overwrite=True)
    url = reverse("folder_history", kwargs={"ws": workspace.slug, "env": "dev"})
    first = client_for(owner).get(url).content.decode()
    assert 'id="snapshot-30"' in first and 'id="snapshot-6"' in first and 'id="snapshot-5"' not in first
    second = client_for(owner).get(url, {"before": 6}).content.decode()
    assert 'id="snapshot-5"' in second and 'id="snapshot-1"' in second and 'id="snapshot-6"' not in second


def test_a_snapshot_page_shows_the_folder_then_without_values(history, client_for, owner, workspace):
    first = history.snapshots.get(number=2)
    response = client_for(owner).get(reverse("snapshot", kwargs={"ws": workspace.slug, "secret_snapshot_id": first.pk}))
    html = response.content.decode()
    assert 'id="entry-DB_PASSWORD"' in html and 'id="entry-API_KEY"' in html
    assert "hunter2-original" not in html and "Roll back to this snapshot" in html


def test_the_folder_at_a_time_opens_the_snapshot_then(history, client_for, owner, workspace):
    FolderSnapshot.objects.filter(number=1).update(created_at=timezone.now() - timedelta(days=2))
    FolderSnapshot.objects.exclude(number=1).update(created_at=timezone.now() - timedelta(hours=1))
    at = timezone.localtime(timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    response = client_for(owner).get(reverse("folder_history", kwargs={"ws": workspace.slug, "env": "dev"}),
                                     {"at": at}, follow=True)
    html = response.content.decode()
    assert "at snapshot #1" in html and 'id="entry-DB_PASSWORD"' in html and 'id="entry-API_KEY"' not in html
    bad = client_for(owner).get(reverse("folder_history", kwargs={"ws": workspace.slug, "env": "dev"}),
                                {"at": "yesterday"}, follow=True)
    assert "Give a date and time" in bad.content.decode()


def test_revealing_a_value_in_a_snapshot_is_audited_and_viewers_cannot(history, client_for, owner, workspace,
                                                                        make_member):
    snapshot = history.snapshots.get(number=2)
    url = reverse("snapshot_reveal", kwargs={"ws": workspace.slug, "secret_snapshot_id": snapshot.pk})
    response = client_for(owner).post(url, {"key": "DB_PASSWORD"})
    assert "hunter2-original" in response.content.decode()
    event = AuditEvent.objects.get(action="secrets.values_read")
    assert event.data["keys"] == ["DB_PASSWORD"] and "snapshot #2" in event.data["how"]
    viewer = client_for(make_member(workspace, Role.VIEWER))
    assert viewer.post(url, {"key": "DB_PASSWORD"}).status_code == 403
    page = viewer.get(reverse("snapshot", kwargs={"ws": workspace.slug, "secret_snapshot_id": snapshot.pk}))
    assert page.status_code == 200 and "Reveal" not in page.content.decode()
    assert "Roll back" not in page.content.decode()
    assert client_for(owner).post(url, {"key": "NOT_THERE"}).status_code == 404


def test_rollback_page_previews_then_applies_and_viewers_cannot(history, client_for, owner, workspace, make_member):
    snapshot = history.snapshots.get(number=2)
    url = reverse("snapshot_rollback", kwargs={"ws": workspace.slug, "secret_snapshot_id": snapshot.pk})
    viewer = client_for(make_member(workspace, Role.VIEWER))
    assert viewer.get(url).status_code == 403 and viewer.post(url).status_code == 403
    preview = client_for(owner).get(url).content.decode()
    assert "Recreated</dt><dd><code>DB_PASSWORD</code>" in preview and 'name="expected_latest" value="3"' in preview
    assert "hunter2-original" not in preview
    response = client_for(owner).post(url, {"expected_latest": "3"}, follow=True)
    assert "rolled back to snapshot #2" in response.content.decode()
    assert live(history) == {"DB_PASSWORD": "hunter2-original", "API_KEY": "key-one"}


def test_a_stale_rollback_preview_is_refused_with_a_message(history, client_for, owner, workspace):
    snapshot = history.snapshots.get(number=2)
    url = reverse("snapshot_rollback", kwargs={"ws": workspace.slug, "secret_snapshot_id": snapshot.pk})
    response = client_for(owner).post(url, {"expected_latest": "2"}, follow=True)
    assert "changed since you opened this preview" in response.content.decode()
    assert live(history) == {"API_KEY": "key-one"}


def test_the_secrets_page_links_to_the_folder_history(history, client_for, owner, workspace):
    html = client_for(owner).get(reverse("secrets", kwargs={"ws": workspace.slug, "env": "dev"})).content.decode()
    assert reverse("folder_history", kwargs={"ws": workspace.slug, "env": "dev"}) in html


# --- API (Infisical's secret snapshots) -------------------------------------------------------------


def snapshots_url(workspace, suffix=""):
    return f"/api/v1/workspace/{workspace.pk}/secret-snapshots{suffix}"


def test_the_api_lists_and_counts_a_folders_snapshots_like_infisical(history, workspace, api):
    listed = api.get(snapshots_url(workspace), {"environment": "dev", "path": "/", "offset": "1", "limit": "1"})
    assert listed.status_code == 200
    [one] = listed.json()["secretSnapshots"]
    second = history.snapshots.get(number=2)
    assert one == {"id": str(second.pk), "envId": str(history.environment_id), "folderId": str(history.pk),
                   "parentFolderId": None, "createdAt": one["createdAt"], "updatedAt": one["createdAt"],
                   "number": 2, "kind": "create", "actor": "owner@example.com", "summary": "Secret created: API_KEY"}
    count = api.get(snapshots_url(workspace, "/count"), {"environment": "dev"})
    assert count.json() == {"count": 3}
    assert api.get(snapshots_url(workspace), {"environment": "nope"}).status_code == 404
    assert api.get(snapshots_url(workspace), {"environment": "dev", "path": "/missing"}).status_code == 404
    assert api.get(snapshots_url(workspace), {"environment": "dev", "limit": "1000"}).status_code == 400


def test_the_api_reads_a_snapshot_with_values_for_members_only_audited(history, workspace, api, api_client_for):
    snapshot = history.snapshots.get(number=2)
    body = api.get(f"/api/v1/secret-snapshot/{snapshot.pk}").json()["secretSnapshot"]
    assert body["environment"]["slug"] == "dev" and body["number"] == 2
    values = {v["secretKey"]: (v["secretValue"], v["secretId"]) for v in body["secretVersions"]}
    assert values == {"API_KEY": ("key-one", str(Secret.objects.get(key="API_KEY").pk)),
                      "DB_PASSWORD": ("hunter2-original", None)}  # the deleted secret's version is kept
    assert AuditEvent.objects.filter(action="secrets.values_read", data__how="api (snapshot #2)").count() == 1
    viewer = api_client_for(workspace, Role.VIEWER).get(f"/api/v1/secret-snapshot/{snapshot.pk}")
    assert viewer.status_code == 200 and "hunter2-original" not in viewer.content.decode()
    assert all(v["secretValueHidden"] for v in viewer.json()["secretSnapshot"]["secretVersions"])


def test_the_api_rolls_back_and_viewers_cannot(history, workspace, api, api_client_for,
                                                django_capture_on_commit_callbacks):
    snapshot = history.snapshots.get(number=2)
    url = f"/api/v1/secret-snapshot/{snapshot.pk}/rollback"
    assert api_client_for(workspace, Role.VIEWER).post(url).status_code == 403
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(url)
    assert response.status_code == 200 and response.json()["secretSnapshot"]["id"] == str(snapshot.pk)
    assert live(history) == {"DB_PASSWORD": "hunter2-original", "API_KEY": "key-one"}
    made = history.snapshots.get(number=4)
    assert (made.kind, made.actor_label) == ("rollback", "API token admin token")
    before = history.snapshots.get(number=3)
    assert api.post(f"/api/v1/secret-snapshot/{before.pk}/rollback").status_code == 200  # the undo
    assert live(history) == {"API_KEY": "key-one"}


# --- The migration -------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_migration_gives_every_folder_with_secrets_a_first_snapshot(workspace):
    import uuid

    from django.db.migrations.executor import MigrationExecutor

    from devpilot import crypto

    before = [("devpilot", "0006_secret_imports")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    folder = old.get_model("devpilot", "Folder").objects.get(environment__slug="dev", path="/")
    secret_pk, version_pk = uuid.uuid4(), uuid.uuid4()
    old.get_model("devpilot", "Secret").objects.create(
        pk=secret_pk, workspace_id=workspace.pk, environment_id=folder.environment_id, folder=folder, key="OLD",
        value_ciphertext=crypto.encrypt("v2", f"devpilot.secret:{secret_pk}:value"), version=2)
    SecretVersionThen = old.get_model("devpilot", "SecretVersion")
    for pk, n, value in ((uuid.uuid4(), 1, "v1"), (version_pk, 2, "v2")):
        SecretVersionThen.objects.create(pk=pk, secret_id=secret_pk, version=n,
                                         value_ciphertext=crypto.encrypt(value, f"devpilot.secretversion:{pk}:value"))

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    root = workspace.environments.get(slug="dev").folders.get(path="/")
    [first] = root.snapshots.all()
    assert (first.number, first.kind) == (1, "base")
    assert {k: (e.version.pk, e.version.value) for k, e in snapshots.state_at(root, 1).items()} == {
        "OLD": (version_pk, "v2")}
    assert set(SecretVersion.objects.values_list("key", "folder_id")) == {("OLD", root.pk)}
    secrets.delete_secret(Secret.objects.get(key="OLD"))
    snapshots.rollback(first)
    assert live(root) == {"OLD": "v2"}


def test_a_rollback_keeps_the_reference_index_and_the_reference_rules(dev, root):
    from devpilot.references import ReferenceRefused, referrers

    secrets.create_secret(dev, "/", "DB_HOST", "db")
    secrets.create_secret(dev, "/", "DB_URL", "postgres://${DB_HOST}")
    with_both = root.snapshots.order_by("-number").first()
    secrets.delete_secret(Secret.objects.get(key="DB_URL"))
    assert referrers(dev, "/", ["DB_HOST"]) == {}
    snapshots.rollback(with_both)
    assert referrers(dev, "/", ["DB_HOST"]) == {"DB_HOST": ["dev:/:DB_URL"]}
    # Rolling back past the creation of a secret another folder refers to would break that folder: refused.
    secrets.create_secret(dev, "/", "SHARED", "x")
    secrets.create_folder(dev, "/", "app")
    secrets.create_secret(dev, "/app", "USES_SHARED", "${dev.SHARED}")
    with pytest.raises(ReferenceRefused, match="SHARED is used by dev:/app:USES_SHARED"):
        snapshots.rollback(with_both)
    assert "SHARED" in live(root)


def test_the_history_page_names_a_few_keys_of_a_big_change_in_constant_queries(dev, root, client_for, owner,
                                                                                workspace):
    secrets.bulk_import(dev, "/", {f"KEY_{i:04}": "v" for i in range(500)}, overwrite=False)
    html = client_for(owner).get(reverse("folder_history", kwargs={"ws": workspace.slug, "env": "dev"})).content
    assert b"<code>KEY_0007</code>" in html and b"<code>KEY_0008</code>" not in html and b"and 492 more" in html


def test_viewing_a_snapshot_of_a_1000_secret_folder_costs_a_fixed_number_of_queries(dev, root, client_for, owner,
                                                                                    workspace, api):
    secrets.bulk_import(dev, "/", {f"KEY_{i:04}": f"value-{i}" for i in range(1000)}, overwrite=False)
    secrets.update_secret(Secret.objects.get(key="KEY_0500"), value="changed")
    snapshot = root.snapshots.get(number=2)
    client = client_for(owner)
    with CaptureQueriesContext(connection) as page_queries:
        html = client.get(reverse("snapshot", kwargs={"ws": workspace.slug, "secret_snapshot_id": snapshot.pk})).content
    assert html.count(b'<tr id="entry-') == 1000
    with CaptureQueriesContext(connection) as api_queries:
        body = api.get(f"/api/v1/secret-snapshot/{snapshot.pk}").json()
    assert len(body["secretSnapshot"]["secretVersions"]) == 1000
    print(f"\nsnapshot of 1,000 secrets: page {len(page_queries)} queries, API {len(api_queries)} queries")
    assert len(page_queries) <= 12 and len(api_queries) <= 12


@pytest.mark.django_db(transaction=True)
def test_concurrent_changes_to_one_folder_get_distinct_numbers(requires_postgres, workspace):
    import threading

    dev = workspace.environments.get(slug="dev")
    for i in range(6):
        secrets.create_secret(dev, "/", f"KEY_{i}", "0")
    failures = []

    def edit(i):
        try:
            for n in range(1, 6):
                secrets.update_secret(Secret.objects.get(key=f"KEY_{i}"), value=str(n))
        except Exception as e:  # noqa: BLE001 (the test reports any failure)
            failures.append(repr(e))
        finally:
            connection.close()

    threads = [threading.Thread(target=edit, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    root = dev.folders.get(path="/")
    assert sorted(root.snapshots.values_list("number", flat=True)) == list(range(1, 37))
    assert {k: e.version.value for k, e in snapshots.state_at(root, 36).items()} == {f"KEY_{i}": "5" for i in range(6)}

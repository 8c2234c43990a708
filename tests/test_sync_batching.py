"""Syncs into one app run as one batch: one read, at most one write and one deployment per app.

Against the fake DigitalOcean (in-process); each sync keeps its own run, counts and status.
"""

import pytest
from django.db import connection as db
from django.test.utils import CaptureQueriesContext

from devpilot import secrets
from syncs import engine, services, tasks
from syncs.models import Sync, SyncRun, SyncStatus

PUT_APP = r"/v2/apps/[^/]+"


@pytest.fixture
def folder(dev):
    def make(path, **values):
        parent, _, name = path.rpartition("/")
        secrets.create_folder(dev, parent or "/", name)
        for key, value in values.items():
            secrets.create_secret(dev, path, key, value)
        return dev.folders.get(path=path)

    return make


@pytest.fixture
def make_sync(workspace, dev, connection):
    def make(name, folder, app, **options):
        return Sync.objects.create(workspace=workspace, name=name, connection=connection, environment=dev,
                                   folder=folder, app_id=app["id"], app_name=app["spec"]["name"], **options)

    return make


def owe_and_run(syncs):
    tasks.owe(syncs, "manual")
    return tasks.run_app(str(syncs[0].connection_id), syncs[0].app_id)


def calls(fake, method):
    return fake.count(method, r"/v2/apps/[^/]+")


def test_mixed_schemas_and_components_are_one_read_and_one_write_and_a_bad_member_fails_alone(
        fake_do, folder, make_sync):
    app = fake_do.add_app("shop", envs=[{"key": "FOREIGN", "value": "keep", "type": "GENERAL"}],
                          services=[{"name": "api", "envs": [{"key": "PORT", "value": "x", "type": "GENERAL"}]},
                                    {"name": "web"}])
    billing = make_sync("billing", folder("/billing", TOKEN="b1", URL="b2"), app, key_schema="BILLING_{{secretKey}}")
    api = make_sync("api", folder("/api", DSN="a1"), app, component="api", key_schema="API_{{secretKey}}",
                    env_type="GENERAL", env_scope="RUN_TIME")
    bad = make_sync("bad-keys", folder("/bad", KEY="1"), app, key_schema="BAD-{{secretKey}}")
    lost = make_sync("lost", folder("/lost", X="1"), app, component="gone")

    results = owe_and_run([billing, api, bad, lost])

    assert (calls(fake_do, "GET"), calls(fake_do, "PUT"), fake_do.deployments(app["id"])) == (1, 1, 1)
    assert results == {str(billing.pk): "succeeded", str(api.pk): "succeeded", str(bad.pk): "failed",
                       str(lost.pk): "failed"}
    envs = fake_do.app_envs(app["id"])
    assert set(envs) == {"FOREIGN", "BILLING_TOKEN", "BILLING_URL"} and envs["FOREIGN"]["value"] == "keep"
    assert fake_do.plaintext(envs["BILLING_TOKEN"]["value"]) == "b1"
    api_envs = fake_do.app_envs(app["id"], "api")
    assert set(api_envs) == {"PORT", "API_DSN"} and api_envs["API_DSN"]["scope"] == "RUN_TIME"
    runs = {run.sync.name: run for run in SyncRun.objects.select_related("sync")}
    assert (runs["billing"].created, runs["api"].created) == (2, 1)
    assert runs["billing"].deployment_started and runs["api"].deployment_started
    assert runs["billing"].deployment_id and runs["billing"].deployment_id == runs["api"].deployment_id
    assert "BAD-KEY" in runs["bad-keys"].message and "nothing was written" in runs["bad-keys"].message
    assert "no component named 'gone'" in runs["lost"].message
    bad.refresh_from_db()
    assert bad.sync_status == SyncStatus.FAILED and bad.queued_run is None


def test_nothing_changed_is_one_read_and_no_write(fake_do, folder, make_sync):
    app = fake_do.add_app("shop", envs=[])
    syncs = [make_sync(f"team-{i}", folder(f"/team{i}", TOKEN=f"t{i}"), app, key_schema=f"T{i}_{{{{secretKey}}}}")
             for i in range(5)]
    owe_and_run(syncs)
    before = len(fake_do.requests)
    assert set(owe_and_run(syncs).values()) == {"succeeded"}
    assert [m for m, _, _ in fake_do.requests[before:]] == ["GET"]
    assert fake_do.deployments(app["id"]) == 1
    assert SyncRun.objects.filter(deployment_started=False).count() == 5


def test_one_edit_read_by_ten_syncs_of_one_app_is_two_calls_and_one_deployment(
        fake_do, folder, make_sync, dev, django_capture_on_commit_callbacks, settings, monkeypatch):
    """Ten syncs read one folder, each under its own key schema, into one app."""
    app = fake_do.add_app("shop", envs=[])
    shared = folder("/shared", TOKEN="one")
    syncs = [make_sync(f"team-{i}", shared, app, key_schema=f"T{i}_{{{{secretKey}}}}") for i in range(10)]
    owe_and_run(syncs)
    checks = []
    monkeypatch.setattr(tasks, "_check_folder_at", lambda environment_id, path, when: checks.append(path))
    before = len(fake_do.requests)
    with django_capture_on_commit_callbacks(execute=True):
        secrets.update_secret(dev.secrets.get(key="TOKEN"), value="two")
    assert checks == ["/shared"] and len(fake_do.requests) == before  # the edit only records the change
    Sync.objects.update(pending_run_at=engine.timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.dispatch_folder(dev.pk, "/shared") == 10
    assert [m for m, _, _ in fake_do.requests[before:]] == ["GET", "PUT"]
    assert fake_do.deployments(app["id"]) == 2  # the first sync's, and this edit's
    envs = fake_do.app_envs(app["id"])
    assert {fake_do.plaintext(envs[f"T{i}_TOKEN"]["value"]) for i in range(10)} == {"two"}


def test_a_put_refused_fails_the_writers_and_the_others_succeed(fake_do, folder, make_sync):
    app = fake_do.add_app("shop", envs=[])
    quiet = make_sync("quiet", folder("/quiet", A="1"), app, key_schema="Q_{{secretKey}}")
    owe_and_run([quiet])
    loud = make_sync("loud", folder("/loud", B="1"), app, key_schema="L_{{secretKey}}")
    fake_do.fail_next("PUT", PUT_APP, status=500, times=10)
    results = owe_and_run([quiet, loud])
    assert results[str(quiet.pk)] == "succeeded"  # it held what it wanted already
    assert results[str(loud.pk)] == "retry"
    loud.refresh_from_db()
    assert loud.sync_status == SyncStatus.PENDING and loud.queued_run is not None  # owed again, at the retry time


def test_a_key_added_later_that_two_syncs_would_write_fails_the_later_sync(fake_do, folder, make_sync, dev):
    app = fake_do.add_app("shop", envs=[])
    first = make_sync("first", folder("/first", A="1"), app, key_schema="X_{{secretKey}}",
                      disable_secret_deletion=True)
    second = make_sync("second", folder("/second", B="1"), app, key_schema="X_{{secretKey}}",
                       disable_secret_deletion=True)
    secrets.create_secret(dev, "/second", "A", "2")  # now both would write X_A
    results = owe_and_run([second, first])
    assert results == {str(first.pk): "succeeded", str(second.pk): "failed"}
    assert "X_A is managed by sync first too" in SyncRun.objects.get(sync=second).message
    assert fake_do.plaintext(fake_do.app_envs(app["id"])["X_A"]["value"]) == "1"
    assert "X_B" not in fake_do.app_envs(app["id"])  # nothing of the refused sync was written


def test_restore_information_is_kept_per_run(fake_do, folder, make_sync, dev):
    import json

    app = fake_do.add_app("shop", envs=[{"key": "S_OLD", "value": "old", "type": "GENERAL"}])
    sync = make_sync("s", folder("/s", NEW="1"), app, key_schema="S_{{secretKey}}", env_type="GENERAL")
    owe_and_run([sync])
    run = SyncRun.objects.get(sync=sync)
    previous = json.loads(run.previous)
    assert previous == {"app_id": app["id"], "component": "", "variables": {"S_NEW": None, "S_OLD": {"key": "S_OLD", "value": "old",
                                                                                "type": "GENERAL"}}}
    assert "old" not in run.previous_ciphertext  # encrypted at rest


# --- Who owns a variable ----------------------------------------------------------------------------


def test_a_second_sync_that_would_manage_the_same_variables_is_refused(fake_do, folder, make_sync, workspace,
                                                                         dev, connection):
    app = fake_do.add_app("shop", envs=[], services=[{"name": "api"}])
    make_sync("first", folder("/first", TOKEN="1"), app, key_schema="FIRST_{{secretKey}}")
    source = folder("/second", TOKEN="2")

    def create(**options):
        sync = Sync(workspace=workspace, name=options.pop("name", "second"), connection=connection, environment=dev,
                    folder=source, app_id=app["id"], app_name="shop", **options)
        return services.create(sync)

    with pytest.raises(services.SyncError, match="FIRST_TOKEN is already managed by sync first"):
        create(key_schema="FIRST_{{secretKey}}")
    with pytest.raises(services.SyncError, match="already managed by sync first"):
        create()  # no key schema and secret deletion on: it would delete FIRST_TOKEN
    assert not Sync.objects.filter(name="second").exists()
    assert create(key_schema="SECOND_{{secretKey}}").pk  # variables apart
    assert create(name="third", component="api").pk  # another target in the app
    assert create(name="fourth", component="", key_schema="FOURTH_{{secretKey}}", disable_secret_deletion=True).pk


def test_changing_a_sync_onto_another_syncs_variables_is_refused(fake_do, folder, make_sync):
    app = fake_do.add_app("shop", envs=[])
    make_sync("first", folder("/first", TOKEN="1"), app, key_schema="FIRST_{{secretKey}}")
    second = make_sync("second", folder("/second", TOKEN="2"), app, key_schema="SECOND_{{secretKey}}")
    with pytest.raises(services.SyncError, match="FIRST_TOKEN is already managed by sync first"):
        services.update(second, {"key_schema": "FIRST_{{secretKey}}"})
    second.refresh_from_db()
    assert second.key_schema == "SECOND_{{secretKey}}"


# --- Costs that must not grow with the number of syncs ------------------------------------------------


def test_an_edit_read_by_200_syncs_costs_a_constant_number_of_queries(fake_do, workspace, dev, connection,
                                                                      django_capture_on_commit_callbacks, monkeypatch):
    shared = secrets.create_folder(dev, "/", "shared") or dev.folders.get(path="/shared")
    secrets.create_secret(dev, "/shared", "TOKEN", "one")
    Sync.objects.bulk_create([
        Sync(workspace=workspace, name=f"s-{i}", connection=connection, environment=dev, folder=shared,
             app_id=f"00000000-0000-4000-8000-{i % 20:012d}", key_schema=f"S{i}_{{{{secretKey}}}}")
        for i in range(200)])
    monkeypatch.setattr(tasks, "_check_folder_at", lambda *args: None)
    with CaptureQueriesContext(db) as queries, django_capture_on_commit_callbacks(execute=True):
        tasks.source_changed(workspace.pk, dev.pk, "/shared")
    assert len(queries) <= 2, [q["sql"] for q in queries]
    assert Sync.objects.filter(pending_run_at__isnull=False).count() == 200


def test_housekeeping_reads_each_app_once(fake_do, folder, make_sync):
    apps = [fake_do.add_app(f"app-{n}", envs=[]) for n in range(2)]
    source = folder("/shared", TOKEN="1")
    syncs = [make_sync(f"s-{n}-{i}", source, apps[n], key_schema=f"S{i}_{{{{secretKey}}}}")
             for n in range(2) for i in range(5)]
    for n in range(2):
        owe_and_run(syncs[n * 5:(n + 1) * 5])
    before = len(fake_do.requests)
    assert tasks.housekeeping() == {"retried": 0, "checked": 10}
    assert [m for m, _, _ in fake_do.requests[before:]] == ["GET", "GET"]


def test_a_removal_never_waits_for_a_busy_app_and_its_deployment_is_followed(
        fake_do, folder, make_sync, monkeypatch, django_capture_on_commit_callbacks):
    from devpilot import locks, outbox
    from syncs import deployments

    app = fake_do.add_app("shop", envs=[])
    sync = make_sync("s", folder("/s", A="1"), app, key_schema="S_{{secretKey}}")
    owe_and_run([sync])
    scheduled, followed = [], []
    monkeypatch.setattr(outbox, "run_later", lambda name, func, args, when: scheduled.append(func))
    monkeypatch.setattr(deployments, "start_following", lambda connection_id, app_id, deployment: followed.append(
        deployment))
    with locks.held(engine.app_lease(app["id"]), renew=False):  # a batch is writing the app
        assert tasks.remove_sync_secrets(str(sync.pk)) == "busy"
    assert scheduled == ["syncs.tasks.remove_sync_secrets"] and not SyncRun.objects.filter(kind="remove").exists()
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.remove_sync_secrets(str(sync.pk)) == "succeeded"
    removal = SyncRun.objects.get(kind="remove")
    assert removal.deleted == 1 and removal.deployment_id and followed == [removal.deployment_id]
    assert "S_A" not in fake_do.app_envs(app["id"])

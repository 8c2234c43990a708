import pytest

from devpilot import secrets
from syncs import engine
from syncs.models import Sync, SyncedKey, SyncStatus

GENERAL = {"type": "GENERAL", "scope": "RUN_AND_BUILD_TIME"}


@pytest.fixture
def dev(workspace):
    env = workspace.environments.get(slug="dev")
    secrets.create_folder(env, "/", "app-secrets")
    return env


@pytest.fixture
def make_sync(workspace, dev, connection):
    def make(app, **options):
        return Sync.objects.create(
            workspace=workspace, name=options.pop("name", "web-sync"), connection=connection, environment=dev,
            folder=dev.folders.get(path="/app-secrets"), app_id=app["id"], app_name=app["spec"]["name"], **options)

    return make


def put_secrets(dev, **values):
    for key, value in values.items():
        existing = dev.secrets.filter(key=key, folder__path="/app-secrets").first()
        if existing:
            secrets.update_secret(existing, value=value)
        else:
            secrets.create_secret(dev, "/app-secrets", key, value)


def test_first_sync_creates_secrets_as_encrypted_variables(fake_do, make_sync, dev):
    app = fake_do.add_app("web", envs=[])
    put_secrets(dev, DATABASE_URL="postgres://x", API_KEY="k1")
    run = engine.run(make_sync(app), "manual")
    assert (run.status, run.created, run.deployment_started) == (SyncStatus.SUCCEEDED, 2, True)
    envs = fake_do.app_envs(app["id"])
    assert envs["API_KEY"]["value"].startswith("EV[") and fake_do.plaintext(envs["API_KEY"]["value"]) == "k1"
    assert envs["API_KEY"]["type"] == "SECRET" and envs["API_KEY"]["scope"] == "RUN_AND_BUILD_TIME"
    assert fake_do.deployments(app["id"]) == 1


def test_an_unchanged_sync_makes_no_put_and_no_deployment(fake_do, make_sync, dev):
    app = fake_do.add_app("web", envs=[])
    put_secrets(dev, A="1", B="2")
    sync = make_sync(app)
    engine.run(sync, "manual")
    puts_before = fake_do.count("PUT", r"/v2/apps/.*")
    run = engine.run(sync, "manual")
    assert (run.unchanged, run.deployment_started) == (2, False)
    assert fake_do.count("PUT", r"/v2/apps/.*") == puts_before
    assert fake_do.deployments(app["id"]) == 1
    assert "no deployment" in run.message


def test_update_create_and_delete_in_one_put(fake_do, make_sync, dev):
    app = fake_do.add_app("web", envs=[])
    put_secrets(dev, KEEP="same", CHANGE="old", DROP="gone")
    sync = make_sync(app)
    engine.run(sync, "manual")
    secrets.delete_secret(dev.secrets.get(key="DROP"))
    put_secrets(dev, CHANGE="new", ADD="added")
    run = engine.run(sync, "manual")
    assert (run.created, run.updated, run.deleted, run.unchanged) == (1, 1, 1, 1)
    envs = fake_do.app_envs(app["id"])
    assert {k: fake_do.plaintext(v["value"]) for k, v in envs.items()} == {"KEEP": "same", "CHANGE": "new", "ADD": "added"}
    assert fake_do.deployments(app["id"]) == 2


def test_the_spec_round_trips_untouched_apart_from_managed_variables(fake_do, make_sync, dev):
    app = fake_do.add_app(
        "web", envs=[{"key": "THEIRS", "value": "EV[1:their:secret]", "type": "SECRET", "scope": "RUN_TIME"}],
        services=[{"name": "api", "envs": [{"key": "COMPONENT_VAR", "value": "c", **GENERAL}], "instance_count": 2}],
        alerts=[{"rule": "DEPLOYMENT_FAILED"}], ingress={"rules": [{"match": {"path": {"prefix": "/"}}}]},
        databases=[{"name": "db", "engine": "PG"}], some_future_field={"x": [1, 2]},
    )
    put_secrets(dev, MINE="1")
    run = engine.run(make_sync(app, key_schema="APP_{{secretKey}}"), "manual")
    assert run.status == SyncStatus.SUCCEEDED, run.message
    spec = fake_do.apps[app["id"]]["spec"]
    assert spec["some_future_field"] == {"x": [1, 2]} and spec["alerts"] == [{"rule": "DEPLOYMENT_FAILED"}]
    assert spec["databases"] == [{"name": "db", "engine": "PG"}] and spec["services"][0]["instance_count"] == 2
    assert spec["services"][0]["envs"] == [{"key": "COMPONENT_VAR", "value": "c", **GENERAL}]
    envs = {e["key"]: e for e in spec["envs"]}
    assert envs["THEIRS"]["value"] == "EV[1:their:secret]"
    assert set(envs) == {"THEIRS", "APP_MINE"}


def test_component_level_variables(fake_do, make_sync, dev):
    app = fake_do.add_app("web", envs=[{"key": "APP_LEVEL", "value": "stay", **GENERAL}],
                          services=[{"name": "api", "envs": [{"key": "OLD", "value": "x", **GENERAL}]}])
    put_secrets(dev, TOKEN="t")
    run = engine.run(make_sync(app, component="api", env_type="GENERAL", env_scope="RUN_TIME"), "manual")
    assert (run.created, run.deleted) == (1, 1)
    assert fake_do.app_envs(app["id"], "api") == {"TOKEN": {"key": "TOKEN", "value": "t", "type": "GENERAL", "scope": "RUN_TIME"}}
    assert set(fake_do.app_envs(app["id"])) == {"APP_LEVEL"}


def test_a_missing_component_is_a_clear_failure(fake_do, make_sync, dev):
    app = fake_do.add_app("web", services=[{"name": "api"}], workers=[{"name": "queue"}])
    run = engine.run(make_sync(app, component="worker"), "manual")
    assert run.status == SyncStatus.FAILED
    assert "no component named 'worker' (its components: api, queue)" in run.message


def test_a_key_schema_manages_only_matching_keys(fake_do, make_sync, dev):
    app = fake_do.add_app("web", envs=[
        {"key": "DEV_APP_STALE", "value": "x", **GENERAL},
        {"key": "PROD_APP_OTHER", "value": "y", **GENERAL},
        {"key": "UNRELATED", "value": "z", **GENERAL},
    ])
    put_secrets(dev, TOKEN="t")
    run = engine.run(make_sync(app, key_schema="DEV_APP_{{secretKey}}"), "manual")
    assert (run.created, run.deleted) == (1, 1)
    assert set(fake_do.app_envs(app["id"])) == {"DEV_APP_TOKEN", "PROD_APP_OTHER", "UNRELATED"}


def test_the_environment_placeholder_renders_the_slug(fake_do, make_sync, dev):
    app = fake_do.add_app("web", envs=[])
    put_secrets(dev, TOKEN="t")
    engine.run(make_sync(app, key_schema="{{environment}}_{{secretKey}}"), "manual")
    assert set(fake_do.app_envs(app["id"])) == {"dev_TOKEN"}


def test_without_a_schema_every_variable_at_the_target_is_managed(fake_do, make_sync, dev):
    app = fake_do.add_app("web", envs=[{"key": "MANUAL", "value": "x", **GENERAL}])
    put_secrets(dev, TOKEN="t")
    run = engine.run(make_sync(app), "manual")
    assert run.deleted == 1 and set(fake_do.app_envs(app["id"])) == {"TOKEN"}


def test_disable_secret_deletion_keeps_foreign_variables(fake_do, make_sync, dev):
    app = fake_do.add_app("web", envs=[{"key": "MANUAL", "value": "x", **GENERAL}])
    put_secrets(dev, TOKEN="t")
    sync = make_sync(app, disable_secret_deletion=True)
    run = engine.run(sync, "manual")
    assert run.deleted == 0 and set(fake_do.app_envs(app["id"])) == {"MANUAL", "TOKEN"}
    secrets.delete_secret(dev.secrets.get(key="TOKEN"))
    engine.run(sync, "manual")
    assert set(fake_do.app_envs(app["id"])) == {"MANUAL", "TOKEN"}


def test_invalid_keys_are_refused_before_any_write(fake_do, make_sync, dev):
    app = fake_do.add_app("web", envs=[])
    put_secrets(dev, TOKEN="t")
    run = engine.run(make_sync(app, key_schema="my-app/{{secretKey}}"), "manual")
    assert run.status == SyncStatus.FAILED
    assert "DigitalOcean would reject these keys" in run.message and "my-app/TOKEN" in run.message
    assert fake_do.count("PUT", r"/v2/apps/.*") == 0


def test_a_value_changed_outside_devpilot_is_overwritten_and_reported(fake_do, make_sync, dev):
    app = fake_do.add_app("web", envs=[])
    put_secrets(dev, TOKEN="t")
    sync = make_sync(app)
    engine.run(sync, "manual")
    fake_do.apps[app["id"]]["spec"]["envs"][0]["value"] = "EV[1:changed:elsewhere]"
    assert engine.check_drift(sync) == ["TOKEN"]
    run = engine.run(sync, "manual")
    assert run.updated == 1 and run.drift_keys == ["TOKEN"]
    assert "changed outside Devpilot: TOKEN" in run.message
    assert fake_do.plaintext(fake_do.app_envs(app["id"])["TOKEN"]["value"]) == "t"


def test_remove_secrets_removes_only_what_this_sync_wrote(fake_do, make_sync, dev):
    app = fake_do.add_app("web", envs=[{"key": "MANUAL", "value": "x", **GENERAL}])
    put_secrets(dev, TOKEN="t")
    sync = make_sync(app, disable_secret_deletion=True)
    engine.run(sync, "manual")
    run = engine.remove_secrets(sync, "manual")
    assert run.deleted == 1 and set(fake_do.app_envs(app["id"])) == {"MANUAL"}
    assert not SyncedKey.objects.filter(sync=sync).exists()


def test_no_plaintext_is_kept_for_general_variables(fake_do, make_sync, dev):
    app = fake_do.add_app("web", envs=[])
    put_secrets(dev, TOKEN="plain-general-value")
    engine.run(make_sync(app, env_type="GENERAL"), "manual")
    assert "plain-general-value" not in repr(list(SyncedKey.objects.values()))


@pytest.mark.parametrize("setup,words", [
    (lambda fake, app: fake.revoke_token("dop_v1_good"), "rejected the token of connection do"),
    (lambda fake, app: fake.tokens["dop_v1_good"].update(scopes={"app:read"}), "not allowed to update apps. It needs the app:update scope"),
    (lambda fake, app: fake.apps.pop(app["id"]), "no longer exists at DigitalOcean"),
])
def test_permanent_failures_fail_at_once_with_the_reason(fake_do, make_sync, dev, setup, words):
    app = fake_do.add_app("web", envs=[])
    put_secrets(dev, TOKEN="t")
    setup(fake_do, app)
    run = engine.run(make_sync(app), "manual")
    assert run.status == SyncStatus.FAILED and words in run.message


def test_a_rejected_update_says_what_digitalocean_said(fake_do, make_sync, dev):
    app = fake_do.add_app("web", envs=[], databases=[{"name": "db"}])
    put_secrets(dev, TOKEN="t")
    fake_do.apps[app["id"]]["spec"]["databases"] = [{"name": "db", "password": "hidden"}]  # what GET does not return
    original = fake_do.apps[app["id"]]["spec"]

    def without_password(fake, app_id, **_):
        spec = {**original, "databases": [{"name": "db"}]}
        return 200, {"app": {**fake.apps[app_id], "spec": spec}}

    fake_do.routes.insert(0, type(fake_do.routes[0])("GET", __import__("re").compile(r"^/v2/apps/(?P<app_id>[^/]+)$"), without_password, "app:read"))
    run = engine.run(make_sync(app), "manual")
    assert run.status == SyncStatus.FAILED and "database user password is not accessible" in run.message


def test_transient_failures_ask_for_a_retry(fake_do, make_sync, dev, monkeypatch):
    from connections import digitalocean

    monkeypatch.setattr(digitalocean, "_sleep", lambda s: None)
    app = fake_do.add_app("web", envs=[])
    put_secrets(dev, TOKEN="t")
    sync = make_sync(app)
    fake_do.fail_next("GET", r"/v2/apps/", status=503, times=10)
    with pytest.raises(engine.Retry):
        engine.run(sync, "manual")
    sync.refresh_from_db()
    assert sync.sync_status == SyncStatus.PENDING and sync.failing_since is not None
    fake_do.deploying.add(app["id"])
    fake_do.faults.clear()
    with pytest.raises(engine.Retry, match="in progress"):
        engine.run(sync, "manual")
    fake_do.deploying.clear()
    assert engine.run(sync, "manual").status == SyncStatus.SUCCEEDED


def test_rate_limits_reschedule_at_the_reset(fake_do, make_sync, dev):
    app = fake_do.add_app("web", envs=[])
    sync = make_sync(app)
    fake_do.per_minute = 0
    with pytest.raises(engine.Retry) as retry:
        engine.run(sync, "manual")
    assert retry.value.when is not None and "rate limit" in str(retry.value)


def test_a_removed_connection_fails_clearly(fake_do, make_sync, dev, connection):
    app = fake_do.add_app("web", envs=[])
    sync = make_sync(app)
    from connections import services

    services.remove(connection)
    sync.refresh_from_db()
    assert sync.sync_status == SyncStatus.FAILED and "connection was removed" in sync.last_sync_message
    assert engine.run(sync, "manual").message.startswith("The connection was removed")


def test_a_failed_removal_says_nothing_was_removed(fake_do, make_sync, dev, monkeypatch):
    from connections import digitalocean

    monkeypatch.setattr(digitalocean, "_sleep", lambda s: None)
    app = fake_do.add_app("web", envs=[])
    put_secrets(dev, TOKEN="t")
    sync = make_sync(app)
    engine.run(sync, "manual")
    fake_do.fail_next("GET", r"/v2/apps/", status=503, times=10)
    run = engine.remove_secrets(sync, "manual")
    assert run.status == SyncStatus.FAILED and "Nothing was removed; try again." in run.message
    assert set(fake_do.app_envs(app["id"])) == {"TOKEN"}

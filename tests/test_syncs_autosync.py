import pytest
from django.utils import timezone

from connections.models import Connection
from devpilot import secrets
from syncs import engine, tasks
from syncs.models import Sync


@pytest.fixture
def dev(workspace):
    env = workspace.environments.get(slug="dev")
    secrets.create_folder(env, "/", "app")
    return env


@pytest.fixture
def dispatches(monkeypatch):
    """The folder checks scheduled (environment, path), in place of django-q2's scheduler."""
    queued = []
    monkeypatch.setattr(tasks, "_check_folder_at", lambda environment_id, path, when: queued.append((environment_id, path)))
    return queued


@pytest.fixture
def sync(workspace, dev, fake_do):
    connection = Connection.objects.create(workspace=workspace, name="do", token="dop_v1_good")
    app = fake_do.add_app("web", envs=[])
    return Sync.objects.create(workspace=workspace, name="web", connection=connection, environment=dev,
                               folder=dev.folders.get(path="/app"), app_id=app["id"], app_name="web")


def check_after_debounce(sync, capture):
    """The scheduled check of the sync's folder comes once the debounce window has passed."""
    Sync.objects.filter(pk=sync.pk, pending_run_at__isnull=False).update(
        pending_run_at=timezone.now() - timezone.timedelta(seconds=1))
    with capture(execute=True):
        return tasks.dispatch_folder(sync.environment_id, sync.folder.path)


def test_a_burst_of_100_edits_gives_one_deployment(sync, dev, fake_do, dispatches, django_capture_on_commit_callbacks, settings):
    settings.DEVPILOT_AUTOSYNC_DEBOUNCE = 5
    secrets.create_secret(dev, "/app", "COUNTER", "0")
    counter = dev.secrets.get(key="COUNTER")
    for i in range(1, 101):
        with django_capture_on_commit_callbacks(execute=True):
            counter = secrets.update_secret(counter, value=str(i))
    assert set(dispatches) == {(dev.pk, "/app")}  # one scheduled check, moved later by each edit
    sync.refresh_from_db()
    assert sync.pending_run_at > timezone.now() and sync.sync_status == "pending"
    check_after_debounce(sync, django_capture_on_commit_callbacks)
    assert fake_do.deployments(sync.app_id) == 1
    assert fake_do.plaintext(fake_do.app_envs(sync.app_id)["COUNTER"]["value"]) == "100"


def test_an_edit_during_a_run_schedules_exactly_one_more_run(sync, dev, fake_do, dispatches, django_capture_on_commit_callbacks, monkeypatch):
    secrets.create_secret(dev, "/app", "A", "1")
    real_desired = engine.desired_variables
    edits = []

    def desired_then_edit(s):
        values = real_desired(s)
        if not edits:  # someone saves while the first run is under way
            edits.append(1)
            with django_capture_on_commit_callbacks(execute=True):
                secrets.update_secret(dev.secrets.get(key="A"), value="2")
        return values

    monkeypatch.setattr(engine, "desired_variables", desired_then_edit)
    with django_capture_on_commit_callbacks(execute=True):
        secrets.create_secret(dev, "/app", "B", "x")
    assert len(dispatches) == 1
    check_after_debounce(sync, django_capture_on_commit_callbacks)
    sync.refresh_from_db()
    assert sync.pending_run_at is not None  # the edit during the run owes one more, after its own debounce
    assert check_after_debounce(sync, django_capture_on_commit_callbacks) == 1
    assert check_after_debounce(sync, django_capture_on_commit_callbacks) is None  # nothing left pending
    assert fake_do.deployments(sync.app_id) == 2
    assert fake_do.plaintext(fake_do.app_envs(sync.app_id)["A"]["value"]) == "2"


def test_only_auto_syncs_of_the_changed_folder_are_triggered(sync, dev, workspace, dispatches, django_capture_on_commit_callbacks):
    Sync.objects.filter(pk=sync.pk).update(auto_sync_enabled=False)
    with django_capture_on_commit_callbacks(execute=True):
        secrets.create_secret(dev, "/app", "A", "1")
    with django_capture_on_commit_callbacks(execute=True):
        secrets.create_secret(dev, "/", "ROOT", "1")
    assert dispatches == []


def test_housekeeping_retries_failed_auto_syncs_and_reports_drift(sync, dev, fake_do, django_capture_on_commit_callbacks):
    secrets.create_secret(dev, "/app", "A", "1")
    engine.run(sync, "manual")
    fake_do.apps[sync.app_id]["spec"]["envs"][0]["value"] = "EV[1:edited:elsewhere]"
    failed = Sync.objects.create(workspace=sync.workspace, name="broken", connection=sync.connection,
                                 environment=dev, folder=sync.folder, app_id="gone", sync_status="failed",
                                 key_schema="B_{{secretKey}}")
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.housekeeping() == {"retried": 1, "checked": 1}
    sync.refresh_from_db()
    assert sync.drift_keys == ["A"]
    assert failed.runs.count() == 1


def test_a_failed_sync_emails_the_admins_once(sync, dev, fake_do, mailoutbox, make_member, workspace):
    from devpilot.models import Role

    make_member(workspace, Role.ADMIN, email="admin@example.com")
    make_member(workspace, Role.MEMBER, email="member@example.com")
    fake_do.revoke_token("dop_v1_good")
    tasks.run_sync(sync.pk)
    tasks.run_sync(sync.pk)
    assert len(mailoutbox) == 1
    assert sorted(mailoutbox[0].to) == ["admin@example.com", "owner@example.com"]
    assert "revoked" in mailoutbox[0].body

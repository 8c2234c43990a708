"""Following the deployment each write starts, to its end, and "Restore previous values".

Runs are set up as the engine leaves them (one PUT through the fake, then the run's deployment id and
`previous`), so these tests do not depend on how the engine batches its writes.
"""

import copy
import json
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from django_q.models import Schedule

from connections import digitalocean
from devpilot import locks
from devpilot.errors import Conflict, Invalid
from devpilot.models import AuditEvent, Role
from syncs import deployments
from syncs.destinations.digitalocean_app_platform import fingerprint, target_envs
from syncs.models import RunKind, Sync, SyncedKey, SyncRun, SyncStatus, Trigger
from tests.openapi import check_answer

GENERAL = {"type": "GENERAL", "scope": "RUN_AND_BUILD_TIME"}
SECRET = {"type": "SECRET", "scope": "RUN_AND_BUILD_TIME"}


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch):
    monkeypatch.setattr(digitalocean, "_sleep", lambda seconds: None)


@pytest.fixture
def app(fake_do):
    return fake_do.add_app(
        "web", envs=[{"key": "FOREIGN", "value": "not ours", **GENERAL},
                     {"key": "API_KEY", "value": "old-key", **SECRET},
                     {"key": "MODE", "value": "classic", **GENERAL}],
        services=[{"name": "api", "envs": [{"key": "API_KEY", "value": "component-key", **SECRET}]}],
        alerts=[{"rule": "DEPLOYMENT_FAILED"}])


@pytest.fixture
def make_sync(workspace, dev, connection):
    def make(app, **options):
        return Sync.objects.create(workspace=workspace, name=options.pop("name", "web-sync"), connection=connection,
                                   environment=dev, folder=dev.folders.get(path="/"), app_id=app["id"],
                                   app_name=app["spec"]["name"], auto_sync_enabled=False, **options)

    return make


def write(sync, changes, *, kind=RunKind.SYNC):
    """What the engine does for one run: one GET, one PUT changing `changes` ({key: value, or None to delete}),
    then the run recorded with its deployment and the variables as they were before it."""
    client = sync.connection.client()
    spec = copy.deepcopy(client.get_app(sync.app_id)["spec"])
    envs = target_envs(spec, sync.component)
    before = {e["key"]: e for e in envs}
    envs[:] = [e for e in envs if e["key"] not in changes] + [
        {"key": key, "value": value, **SECRET} for key, value in changes.items() if value is not None]
    written = client.update_app(sync.app_id, spec)
    stored = {e["key"]: e for e in target_envs(copy.deepcopy(written["spec"]), sync.component)}
    run = SyncRun(sync=sync, kind=kind, trigger=Trigger.MANUAL, status=SyncStatus.SUCCEEDED, deployment_started=True,
                  created=sum(1 for k, v in changes.items() if v is not None and k not in before),
                  updated=sum(1 for k, v in changes.items() if v is not None and k in before),
                  deleted=sum(1 for v in changes.values() if v is None),
                  deployment_id=written["pending_deployment"]["id"], deployment_phase="PENDING_BUILD")
    run.previous = json.dumps({"component": sync.component, "variables": {k: before.get(k) for k in changes}})
    run.save()
    for key, value in changes.items():
        SyncedKey.objects.filter(sync=sync, key=key).delete()
        if value is not None:
            SyncedKey.objects.create(sync=sync, key=key, value_hash="h", remote_value=fingerprint(stored[key]["value"]))
    job = {"last_sync_job_id": run.pk, "sync_status": SyncStatus.SUCCEEDED} if kind == RunKind.SYNC else \
        {"last_remove_job_id": run.pk, "remove_status": SyncStatus.SUCCEEDED}
    Sync.objects.filter(pk=sync.pk).update(**job)
    return run


def follow(run):
    run.refresh_from_db()
    return deployments.follow(str(run.sync.connection_id), run.sync.app_id, run.deployment_id)


def follow_to_end(run, limit=10):
    phases = []
    for _ in range(limit):
        phases.append(follow(run))
        run.refresh_from_db()
        if run.deployment_ended_at:
            return phases
    raise AssertionError(f"no end after {limit} looks: {phases}")


def scheduled(deployment_id):
    return Schedule.objects.filter(name=f"deployment {deployment_id}", func="syncs.deployments.follow").first()


# --- Following ---------------------------------------------------------------------------------


def test_start_following_schedules_a_look_soon_and_follow_records_each_phase_to_active(fake_do, app, make_sync):
    sync = make_sync(app)
    run = write(sync, {"NEW_KEY": "v"})
    deployments.start_following(sync.connection_id, app["id"], run.deployment_id)
    check = scheduled(run.deployment_id)
    assert check.args == repr((str(sync.connection_id), app["id"], run.deployment_id))[1:-1]
    assert timezone.now() < check.next_run <= timezone.now() + timedelta(seconds=10)

    seen = []
    for _ in range(5):
        seen.append(follow(run))
        run.refresh_from_db()
        assert run.deployment_phase == seen[-1] and run.deployment_checked_at is not None
    assert seen == ["PENDING_BUILD", "BUILDING", "PENDING_DEPLOY", "DEPLOYING", "ACTIVE"]
    assert run.deployment_ended_at is not None and run.status == SyncStatus.SUCCEEDED
    assert run.deployment_message == "The app runs with these values"
    assert Sync.objects.get(pk=sync.pk).sync_status == SyncStatus.SUCCEEDED and mail.outbox == []
    # The app's own fields agree: the deployment now serves it, nothing is pending.
    served = fake_do.apps[app["id"]]
    assert served["active_deployment"]["id"] == run.deployment_id
    assert "pending_deployment" not in served and "in_progress_deployment" not in served
    gets = fake_do.count("GET", r"/v2/apps/.*/deployments/.*")
    assert follow(run) == "not followed" and fake_do.count("GET", r"/v2/apps/.*/deployments/.*") == gets


def test_while_building_the_next_look_is_scheduled_and_backs_off(fake_do, app, make_sync):
    sync = make_sync(app)
    run = write(sync, {"NEW_KEY": "v"})
    follow(run)
    soon = scheduled(run.deployment_id).next_run - timezone.now()
    assert timedelta(seconds=8) < soon <= timedelta(seconds=11)
    SyncRun.objects.filter(pk=run.pk).update(started_at=timezone.now() - timedelta(minutes=40))
    follow(run)
    assert scheduled(run.deployment_id).next_run - timezone.now() > timedelta(seconds=50)
    assert deployments.interval(timedelta(seconds=10)) == timedelta(seconds=10)


@pytest.mark.parametrize("outcome", ["ERROR", "CANCELED"])
def test_a_failed_deployment_marks_the_sync_deployed_with_errors_and_emails_admins_once(
        fake_do, app, make_sync, workspace, make_member, outcome):
    admin = make_member(workspace, Role.ADMIN)
    make_member(workspace, Role.VIEWER)
    fake_do.deployment_outcome[app["id"]] = outcome
    fake_do.deployment_reason[app["id"]] = {"code": "BuildJobExitNonZero", "message": "npm ERR! missing script: build"}
    sync = make_sync(app)
    run = write(sync, {"NEW_KEY": "v"})
    assert follow_to_end(run) == ["PENDING_BUILD", "BUILDING", outcome]

    run.refresh_from_db()
    sync.refresh_from_db()
    assert (run.status, sync.sync_status) == (SyncStatus.DEPLOY_FAILED, SyncStatus.DEPLOY_FAILED)
    assert sync.get_sync_status_display() == "Deployed with errors"
    if outcome == "ERROR":
        assert run.deployment_message == "Building service api: npm ERR! missing script: build"
        assert sync.last_sync_message == (
            "The variables were written, but DigitalOcean's deployment failed: Building service api: npm ERR! "
            "missing script: build. Restore previous values, or fix the secrets and sync again.")
    else:
        assert "deployment was canceled" in sync.last_sync_message
    assert len(mail.outbox) == 1
    assert sorted(mail.outbox[0].to) == sorted(["owner@example.com", admin.email])
    assert f"/syncs/{sync.pk}/" in mail.outbox[0].body and "Restore previous values" in mail.outbox[0].body
    # Told once: a duplicate look (or a second worker's) finds the deployment ended.
    assert follow(run) == "not followed"
    deployments._end([run], "ERROR", "again")
    assert len(mail.outbox) == 1


def test_a_failure_of_an_older_run_leaves_a_newer_run_s_status_alone(fake_do, app, make_sync):
    fake_do.deployment_outcome[app["id"]] = "ERROR"
    sync = make_sync(app)
    run = write(sync, {"NEW_KEY": "v"})
    Sync.objects.filter(pk=sync.pk).update(last_sync_job_id=None, sync_status=SyncStatus.PENDING)
    follow_to_end(run)
    sync.refresh_from_db()
    assert sync.sync_status == SyncStatus.PENDING and mail.outbox == []


def test_a_newer_write_supersedes_an_unfinished_deployment(fake_do, app, make_sync):
    sync = make_sync(app)
    first = write(sync, {"NEW_KEY": "v1"})
    assert follow(first) == "PENDING_BUILD"
    second = write(sync, {"NEW_KEY": "v2"})
    assert fake_do.apps[app["id"]]["pending_deployment"]["id"] == second.deployment_id
    assert follow(first) == "SUPERSEDED"
    first.refresh_from_db()
    assert first.deployment_ended_at and first.status == SyncStatus.SUCCEEDED
    assert first.deployment_message == "A newer deployment replaced it before it finished"
    assert follow_to_end(second)[-1] == "ACTIVE"
    assert Sync.objects.get(pk=sync.pk).sync_status == SyncStatus.SUCCEEDED and mail.outbox == []


def test_every_run_of_a_batched_write_is_followed_by_one_look(fake_do, app, make_sync):
    one, other = make_sync(app, name="one"), make_sync(app, name="two")
    run = write(one, {"ONE": "1"})
    twin = SyncRun.objects.create(sync=other, kind=RunKind.SYNC, trigger=Trigger.MANUAL, status=SyncStatus.SUCCEEDED,
                                  deployment_id=run.deployment_id, deployment_phase="PENDING_BUILD")
    follow(run)
    follow(run)
    twin.refresh_from_db()
    assert twin.deployment_phase == "BUILDING" and fake_do.count("GET", r"/v2/apps/.*/deployments/.*") == 2


def test_digitalocean_trouble_while_following(fake_do, app, make_sync):
    sync = make_sync(app)
    run = write(sync, {"NEW_KEY": "v"})
    fake_do.fail_next("GET", r"/deployments/", status=503, times=4)
    assert follow(run) == "later"
    run.refresh_from_db()
    assert run.deployment_ended_at is None and run.deployment_phase == "PENDING_BUILD"
    assert scheduled(run.deployment_id).next_run > timezone.now() + timedelta(seconds=20)

    fake_do.revoke_token("dop_v1_good")
    assert follow(run) == "stopped"
    run.refresh_from_db()
    assert run.deployment_ended_at and "rejected the connection's token" in run.deployment_message
    assert run.status == SyncStatus.SUCCEEDED and mail.outbox == []


def test_a_deleted_app_or_deployment_ends_the_following(fake_do, app, make_sync):
    sync = make_sync(app)
    run = write(sync, {"NEW_KEY": "v"})
    del fake_do.apps[app["id"]]
    assert follow(run) == "gone"
    run.refresh_from_db()
    assert run.deployment_ended_at and "no longer has this deployment" in run.deployment_message


def test_following_stops_after_two_hours(fake_do, app, make_sync):
    sync = make_sync(app)
    run = write(sync, {"NEW_KEY": "v"})
    SyncRun.objects.filter(pk=run.pk).update(started_at=timezone.now() - timedelta(hours=2, minutes=1))
    assert follow(run) == "stopped"
    run.refresh_from_db()
    assert run.deployment_message == "Stopped following: no end after 2 hours."
    assert run.deployment_ended_at and fake_do.count("GET", r"/v2/apps/.*/deployments/.*") == 0


def test_the_fake_answers_deployments_as_the_published_api(fake_do, app, make_sync):
    sync = make_sync(app)
    fake_do.deployment_outcome[app["id"]] = "ERROR"
    run = write(sync, {"NEW_KEY": "v"})
    follow_to_end(run)
    other = fake_do.add_app("other")
    client = sync.connection.client()
    with pytest.raises(digitalocean.NotFound):
        client.get_deployment(other["id"], run.deployment_id)  # another app's deployment
    with pytest.raises(digitalocean.NotFound):
        client.get_deployment(app["id"], "00000000-0000-0000-0000-000000000000")
    for method, path, status, body in fake_do.answers:
        check_answer(method, path, status, body)
    assert any("/deployments/" in path and status == 404 for _, path, status, _ in fake_do.answers)


# --- Restore previous values ---------------------------------------------------------------------


@pytest.fixture
def failed_run(fake_do, app, make_sync):
    """A run that updated API_KEY, deleted MODE and created NEW_KEY; its deployment failed."""
    def make(component=""):
        fake_do.deployment_outcome[app["id"]] = "ERROR"
        sync = make_sync(app, component=component)
        SyncedKey.objects.create(sync=sync, key="UNTOUCHED_RECORD", value_hash="h", remote_value="x")
        run = write(sync, {"API_KEY": "bad-key-value", "MODE": None, "NEW_KEY": "new-key-value"})
        follow_to_end(run)
        del fake_do.deployment_outcome[app["id"]]
        run.refresh_from_db()
        return run

    return make


def envs_of(fake_do, app, component):
    return fake_do.app_envs(app["id"], component or None)


@pytest.mark.parametrize("component", ["", "api"])
def test_restore_previous_values_dry_run_then_one_put(fake_do, app, failed_run, owner, component,
                                                      django_capture_on_commit_callbacks):
    before = envs_of(fake_do, app, component)
    run = failed_run(component)
    spec_before = copy.deepcopy(fake_do.apps[app["id"]]["spec"])
    requests_before = len(fake_do.requests)

    plan = deployments.restore_plan(run)
    assert [(s.key, s.action) for s in plan] == [("API_KEY", "restore"), ("MODE", "recreate") if not component
                                                 else ("MODE", "unchanged"), ("NEW_KEY", "delete")]
    assert [m for m, _, _ in fake_do.requests[requests_before:]] == ["GET"]  # a dry run writes nothing

    with django_capture_on_commit_callbacks(execute=True):
        restore_run = deployments.request_restore(run, owner)
    restore_run.refresh_from_db()
    assert [m for m, path, _ in fake_do.requests[requests_before + 1:]] == ["GET", "PUT"]
    assert restore_run.kind == RunKind.RESTORE and restore_run.restores_id == run.pk
    assert restore_run.status == SyncStatus.SUCCEEDED, restore_run.message

    after = envs_of(fake_do, app, component)
    assert after == before  # updated and deleted keys put back, the created one gone, the others untouched
    spec = fake_do.apps[app["id"]]["spec"]
    assert {k: v for k, v in spec.items() if k not in ("envs", "services")} == \
        {k: v for k, v in spec_before.items() if k not in ("envs", "services")}
    other = "services" if not component else "envs"
    assert spec[other] == spec_before[other]  # the other variable list (app-level or component) is as it was
    expected = (1, 1, 1, 0) if not component else (0, 1, 1, 1)
    assert (restore_run.created, restore_run.updated, restore_run.deleted, restore_run.unchanged) == expected
    assert restore_run.deployment_started and restore_run.deployment_phase == "PENDING_BUILD"
    assert "Restored the values from before" in restore_run.message

    # The restore can itself be undone: it kept what it replaced.
    mine = json.loads(restore_run.previous)
    assert mine["app_id"] == app["id"] and mine["component"] == component
    assert mine["variables"]["NEW_KEY"]["key"] == "NEW_KEY" and mine["variables"]["API_KEY"]["value"].startswith("EV[")
    # The sync forgets what it sent for the restored keys; the next sync writes them as a first sync.
    assert set(SyncedKey.objects.filter(sync=run.sync).values_list("key", flat=True)) == {"UNTOUCHED_RECORD"}
    # Its deployment is followed too.
    assert scheduled(restore_run.deployment_id) is not None
    assert follow_to_end(restore_run)[-1] == "ACTIVE"
    sync = Sync.objects.get(pk=run.sync_id)
    assert sync.sync_status == SyncStatus.DEPLOY_FAILED and "previous values were restored" in sync.last_sync_message
    event = AuditEvent.objects.get(action="sync.restore_requested")
    assert event.target_id == str(sync.pk) and event.actor == owner


def test_a_restore_task_delivered_twice_runs_once(fake_do, app, failed_run, owner, django_capture_on_commit_callbacks):
    run = failed_run()
    with django_capture_on_commit_callbacks(execute=False) as queued:
        restore_run = deployments.request_restore(run, owner)
    assert len(queued) == 1 and restore_run.status == SyncStatus.PENDING
    puts = fake_do.count("PUT", r"/v2/apps/[^/]+")
    with locks.held(f"restore:{restore_run.pk}", wait=0, renew=False):
        assert deployments.restore(str(restore_run.pk)) == "busy"
    assert deployments.restore(str(restore_run.pk)) == SyncStatus.SUCCEEDED
    assert deployments.restore(str(restore_run.pk)) == "already done"
    assert fake_do.count("PUT", r"/v2/apps/[^/]+") == puts + 1
    with pytest.raises(Invalid, match="Nothing to restore"):
        deployments.request_restore(SyncRun.objects.create(sync=run.sync, trigger=Trigger.MANUAL,
                                                           status=SyncStatus.SUCCEEDED), owner)


def test_a_second_restore_waits_for_the_first(fake_do, app, failed_run, owner, django_capture_on_commit_callbacks):
    run = failed_run()
    with django_capture_on_commit_callbacks(execute=False):
        deployments.request_restore(run, owner)
        with pytest.raises(Conflict):
            deployments.request_restore(run, owner)


def test_a_restore_whose_worker_died_after_its_put_is_not_sent_again(fake_do, app, failed_run, owner,
                                                                     django_capture_on_commit_callbacks, monkeypatch):
    run = failed_run()
    with django_capture_on_commit_callbacks(execute=False):
        restore_run = deployments.request_restore(run, owner)
    # The first worker: it PUT the restored spec, then died before recording anything but "running".
    monkeypatch.setattr(deployments, "_succeed", lambda *args: (_ for _ in ()).throw(SystemExit("killed")))
    with pytest.raises(SystemExit):
        deployments.restore(str(restore_run.pk))
    monkeypatch.undo()
    monkeypatch.setattr(digitalocean, "_sleep", lambda seconds: None)
    restore_run.refresh_from_db()
    assert restore_run.status == SyncStatus.RUNNING
    puts = fake_do.count("PUT", r"/v2/apps/[^/]+")

    # The sweeper finds it owed and nobody holding it, and sends it again.
    sent = []
    monkeypatch.setattr(deployments.outbox, "enqueue", lambda func, *args: sent.append((func, args)))
    SyncRun.objects.filter(pk=restore_run.pk).update(started_at=timezone.now() - timedelta(minutes=5))
    assert deployments.sweep(timezone.now() - timedelta(seconds=30))["restores"] == 1
    assert sent == [("syncs.deployments.restore", (str(restore_run.pk),))]
    assert deployments.restore(str(restore_run.pk)) == SyncStatus.SUCCEEDED
    restore_run.refresh_from_db()
    assert fake_do.count("PUT", r"/v2/apps/[^/]+") == puts  # it took effect already: not sent twice
    assert (restore_run.created, restore_run.updated, restore_run.deleted) == (1, 1, 1)
    assert restore_run.deployment_id  # the deployment that PUT started


def test_a_restore_with_nothing_to_change_writes_nothing(fake_do, app, failed_run, owner,
                                                         django_capture_on_commit_callbacks):
    run = failed_run()
    with django_capture_on_commit_callbacks(execute=True):
        deployments.request_restore(run, owner)
    puts = fake_do.count("PUT", r"/v2/apps/[^/]+")
    assert {s.action for s in deployments.restore_plan(run)} == {"unchanged"}
    with django_capture_on_commit_callbacks(execute=True):
        again = deployments.request_restore(run, owner)
    again.refresh_from_db()
    assert again.status == SyncStatus.SUCCEEDED and again.message.startswith("Nothing to restore")
    assert fake_do.count("PUT", r"/v2/apps/[^/]+") == puts and not again.deployment_id


def test_a_restore_that_keeps_failing_ends_with_the_reason(fake_do, app, failed_run, owner,
                                                           django_capture_on_commit_callbacks):
    run = failed_run()
    with django_capture_on_commit_callbacks(execute=False):
        restore_run = deployments.request_restore(run, owner)
    fake_do.fail_next("GET", r"^/v2/apps/[^/]+$", status=503, times=4)
    assert deployments.restore(str(restore_run.pk)) == "retry"
    restore_run.refresh_from_db()
    assert restore_run.status == SyncStatus.PENDING and "Retrying shortly" in restore_run.message
    assert Schedule.objects.filter(name=f"restore {restore_run.pk}").exists()
    SyncRun.objects.filter(pk=restore_run.pk).update(started_at=timezone.now() - timedelta(minutes=31))
    fake_do.fail_next("GET", r"^/v2/apps/[^/]+$", status=503, times=4)
    assert deployments.restore(str(restore_run.pk)) == SyncStatus.FAILED
    restore_run.refresh_from_db()
    assert "Still failing after 30 minutes" in restore_run.message

    del fake_do.apps[app["id"]]
    with django_capture_on_commit_callbacks(execute=True):
        gone = deployments.request_restore(run, owner)
    gone.refresh_from_db()
    assert gone.status == SyncStatus.FAILED and "no longer exists" in gone.message


def test_a_restore_is_refused_when_the_sync_now_writes_elsewhere(fake_do, app, failed_run, owner):
    run = failed_run()
    Sync.objects.filter(pk=run.sync_id).update(component="api")
    run.refresh_from_db()
    with pytest.raises(Invalid, match="writes elsewhere"):
        deployments.restore_plan(run)


def test_sweep_reschedules_overdue_looks_only(fake_do, app, make_sync):
    sync = make_sync(app)
    fresh, stale = write(sync, {"A": "1"}), write(sync, {"B": "2"})
    SyncRun.objects.filter(pk=stale.pk).update(deployment_checked_at=timezone.now() - timedelta(minutes=5))
    SyncRun.objects.filter(pk=fresh.pk).update(deployment_checked_at=timezone.now())
    Schedule.objects.all().delete()
    assert deployments.sweep(timezone.now() - timedelta(seconds=30)) == {"deployments": 1, "restores": 0}
    assert scheduled(stale.deployment_id) and not scheduled(fresh.deployment_id)


# --- Pages ---------------------------------------------------------------------------------------


def restore_url(run):
    return f"/w/{run.sync.workspace.slug}/syncs/{run.sync_id}/restore/?run={run.pk}"


@pytest.mark.parametrize("role", [Role.VIEWER, Role.MEMBER])
def test_a_restore_is_refused_to_a_viewer_or_member(fake_do, app, failed_run, workspace, make_member, client_for, role):
    run = failed_run()
    client = client_for(make_member(workspace, role))
    requests_before = len(fake_do.requests)
    assert client.get(restore_url(run)).status_code == 403
    assert client.post(restore_url(run), {"run": str(run.pk)}).status_code == 403
    assert not SyncRun.objects.filter(kind=RunKind.RESTORE).exists() and len(fake_do.requests) == requests_before
    page = client.get(f"/w/{workspace.slug}/syncs/{run.sync_id}/").content.decode()
    assert "Deployed with errors" in page and "Restore previous values</a>" not in page


def test_the_restore_page_shows_keys_never_values_then_restores(fake_do, app, failed_run, owner, client_for,
                                                                 django_capture_on_commit_callbacks):
    run = failed_run()
    client = client_for(owner)
    detail = client.get(f"/w/{run.sync.workspace.slug}/syncs/{run.sync_id}/").content.decode()
    assert "The last sync deployed with errors." in detail and restore_url(run).split("/w/")[1] in detail
    page = client.get(restore_url(run)).content.decode()
    assert "restored to the value before" in page and "deleted (the run created it)" in page
    assert "recreated with the value before" in page
    values = [v["value"] for v in fake_do.app_envs(app["id"]).values()] + ["classic", "old-key", "bad-key-value",
                                                                          "new-key-value", "not ours"]
    assert not [v for v in values if v in page]
    assert "Restore 3 variables" in page and "Changed since" not in page

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(restore_url(run), {"run": str(run.pk)})
    assert response.status_code == 302 and response["Location"].endswith(f"/syncs/{run.sync_id}/")
    restore_run = SyncRun.objects.get(kind=RunKind.RESTORE)
    assert restore_run.status == SyncStatus.SUCCEEDED  # tasks run inline in tests
    detail = client.get(response["Location"]).content.decode()
    assert "Restore previous values" in detail and "Waiting to build" in detail
    assert 'hx-trigger="every 2s"' in detail  # following the restore's deployment
    assert "Nothing to restore" in client.get(restore_url(run)).content.decode()


def test_the_restore_page_warns_about_later_changes(fake_do, app, failed_run, owner, client_for):
    run = failed_run()
    write(run.sync, {"API_KEY": "later"})
    page = client_for(owner).get(restore_url(run)).content.decode()
    assert "Changed since this run: <code>API_KEY</code>" in page and "overwrites that later change" in page


def test_the_restore_page_without_a_restorable_run(workspace, make_sync, app, owner, client_for):
    sync = make_sync(app)
    page = client_for(owner).get(f"/w/{workspace.slug}/syncs/{sync.pk}/restore/")
    assert page.status_code == 200 and "Nothing to restore" in page.content.decode()
    assert client_for(owner).get(f"/w/{workspace.slug}/syncs/{sync.pk}/restore/?run=nope").status_code == 404


def test_the_status_fragment_polls_while_a_deployment_is_followed(fake_do, app, make_sync, owner, client_for):
    sync = make_sync(app)
    run = write(sync, {"NEW_KEY": "v"})
    client = client_for(owner)
    status_url = f"/w/{sync.workspace.slug}/syncs/{sync.pk}/status/"
    fragment = client.get(status_url, HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-trigger="every 2s"' in fragment and "Waiting to build" in fragment
    follow_to_end(run)
    fragment = client.get(status_url, HTTP_HX_REQUEST="true").content.decode()
    assert "hx-trigger" not in fragment and 'id="deployment-phase">Active<' in fragment


def test_the_admin_shows_deployment_fields_never_previous_values(fake_do, app, failed_run, owner, client_for):
    run = failed_run()
    owner.is_staff = owner.is_superuser = True
    owner.save()
    page = client_for(owner).get(f"/admin/syncs/syncrun/{run.pk}/change/").content.decode()
    assert run.deployment_id in page and "Building service api" in page
    assert "previous_ciphertext" not in page and run.previous_ciphertext not in page and "classic" not in page
    listing = client_for(owner).get("/admin/syncs/syncrun/").content.decode()
    assert "Failed" in listing


def test_the_fake_can_advance_deployments_with_time(fake_do, app, make_sync):
    fake_do.phase_seconds = 10
    run = write(make_sync(app), {"NEW_KEY": "v"})
    started = fake_do.app_deployments[app["id"]][run.deployment_id]

    def after(seconds):
        started["_since"] -= seconds  # as if that much time had passed
        return run.sync.connection.client().get_app(app["id"])

    assert after(0)["pending_deployment"]["id"] == run.deployment_id
    assert after(15)["in_progress_deployment"]["phase"] == "BUILDING"
    served = after(100)
    assert served["active_deployment"]["id"] == run.deployment_id and "in_progress_deployment" not in served
    assert run.sync.connection.client().get_deployment(app["id"], run.deployment_id)["phase"] == "ACTIVE"

"""Work survives lost tasks: the outbox row, the sweeper, bounded tries and reading back after an unknown outcome."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from connections import digitalocean
from devpilot import locks, outbox, secrets
from devpilot.models import Lock
from provisioning import agents, lifecycle, services, steps, tasks
from provisioning.models import Server, ServerStatus, StepStatus
from provisioning.schemas import ServerDetails
from devpilot.schemas import parse
from syncs import engine
from syncs import services as sync_services
from syncs import tasks as sync_tasks
from syncs.models import Sync, SyncStatus


@pytest.fixture
def queue(monkeypatch):
    """What would go to the broker, recorded instead of run; tests deliver it (or lose it) themselves."""
    sent = []
    monkeypatch.setattr(outbox, "enqueue", lambda func, *args: sent.append((func, args)))
    monkeypatch.setattr(transaction, "on_commit", lambda hook, *args, **kwargs: hook())  # as if committed
    monkeypatch.setattr(digitalocean, "_sleep", lambda s: None)
    return sent


def new_server(workspace, connection, name="web-1"):
    return services.create(workspace, connection, parse(ServerDetails, {"name": name}), region="nyc3",
                           size="s-1vcpu-1gb", image="ubuntu-24-04-x64")


def no_wait(seconds):
    return None


def deliver(sent):
    """The worker runs what was queued (each once), as a broker would."""
    results = []
    while sent:
        func, args = sent.pop(0)
        module, name = func.rsplit(".", 1)
        task = getattr(__import__(module, fromlist=[name]), name)
        results.append(task(*args, sleep=no_wait) if module == "provisioning.tasks" else task(*args))
    return results


def ready_server(workspace, connection, fake_do, queue, name="web-1"):
    server = new_server(workspace, connection, name)
    for _ in range(20):
        Server.objects.filter(pk=server.pk).update(next_run_at=None, create_attempted_at=None)
        if tasks.provision(str(server.pk), sleep=no_wait) == "settled" or Server.objects.get(
                pk=server.pk).status == ServerStatus.INSTALLING_AGENT:
            break
    (droplet,) = [d for d in fake_do.droplets.values() if server.tag in d["tags"]]
    import base64
    import re

    token = re.search(r"registration-token\n.*\n.*\n    content: (\S+)", droplet["_user_data"]).group(1)
    agents.register(base64.b64decode(token).decode(), {})
    queue.clear()
    return Server.objects.get(pk=server.pk)


# --- The outbox and the sweeper ---------------------------------------------------------------------


def test_a_web_process_killed_between_commit_and_enqueue_leaves_nothing_pending(workspace, connection, fake_do, queue,
                                                                                 django_capture_on_commit_callbacks,
                                                                                 monkeypatch):
    monkeypatch.undo()  # the real on_commit: its hooks are what the dying process never runs
    monkeypatch.setattr(outbox, "enqueue", lambda func, *args: queue.append((func, args)))
    monkeypatch.setattr(digitalocean, "_sleep", lambda s: None)
    with django_capture_on_commit_callbacks(execute=False):  # the process dies before its on_commit hooks run
        server = new_server(workspace, connection)
    assert queue == [] and Server.objects.get(pk=server.pk).next_run_at is not None  # the outbox row was committed
    assert not any(outbox.sweep().values())  # not yet
    Server.objects.filter(pk=server.pk).update(next_run_at=timezone.now() - timedelta(minutes=2))
    assert outbox.sweep()["provisioning"] == 1
    deliver(queue)
    assert Server.objects.get(pk=server.pk).status in (ServerStatus.BOOTING, ServerStatus.INSTALLING_AGENT)


def test_the_sweeper_leaves_work_with_a_live_holder_alone(workspace, connection, fake_do, queue):
    server = new_server(workspace, connection)
    queue.clear()
    Server.objects.filter(pk=server.pk).update(next_run_at=timezone.now() - timedelta(minutes=5))
    with locks.held(f"server:{server.pk}", renew=False):
        assert outbox.sweep()["provisioning"] == 0
    assert outbox.sweep()["provisioning"] == 1  # its holder is gone


def test_a_dead_holder_is_noticed_within_one_lease(db, settings):
    settings.DEVPILOT_LEASE_SECONDS = 30
    with locks.held("server:x", renew=False):
        Lock.objects.filter(name="server:x").update(expires_at=timezone.now() - timedelta(seconds=1))  # stopped renewing
        assert not locks.is_live("server:x")


def test_a_task_delivered_twice_runs_once(workspace, connection, fake_do, queue, dev_app,
                                          django_capture_on_commit_callbacks):
    dev, app = dev_app
    secrets.create_secret(dev, "/app", "A", "1")
    sync = Sync(workspace=workspace, name="web", connection=connection, environment=dev,
                folder=dev.folders.get(path="/app"), app_id=app["id"], app_name="web")
    with django_capture_on_commit_callbacks(execute=True):
        sync_services.create(sync)
    (first,) = queue
    queue.append(first)  # the broker delivers it again
    assert deliver(queue) == [{str(sync.pk): "succeeded"}, "already done"]
    assert fake_do.deployments(app["id"]) == 1


def test_a_lost_sync_run_is_resumed_by_the_sweeper(workspace, connection, fake_do, queue, dev_app,
                                                   django_capture_on_commit_callbacks):
    dev, app = dev_app
    sync = Sync(workspace=workspace, name="web", connection=connection, environment=dev,
                folder=dev.folders.get(path="/app"), app_id=app["id"], app_name="web")
    with django_capture_on_commit_callbacks(execute=True):
        sync_services.create(sync)
    queue.clear()  # lost with the worker that took it
    Sync.objects.filter(pk=sync.pk).update(queued_run_at=timezone.now() - timedelta(minutes=2))
    assert outbox.sweep()["runs"] == 1
    assert deliver(queue) == [{str(sync.pk): "succeeded"}]
    assert Sync.objects.get(pk=sync.pk).queued_run is None


def test_a_lost_autosync_dispatcher_is_resumed_and_sync_now_repairs_it(workspace, connection, fake_do, queue, dev_app,
                                                                       django_capture_on_commit_callbacks):
    dev, app = dev_app
    sync = Sync.objects.create(workspace=workspace, name="web", connection=connection, environment=dev,
                               folder=dev.folders.get(path="/app"), app_id=app["id"], app_name="web")
    with django_capture_on_commit_callbacks(execute=True):
        secrets.create_secret(dev, "/app", "A", "1")
    sync.refresh_from_db()
    assert sync.pending_run_at  # the check scheduled for after the debounce is lost with its worker
    Sync.objects.filter(pk=sync.pk).update(pending_run_at=timezone.now() - timedelta(minutes=2))
    assert outbox.sweep()["autosyncs"] == 1
    assert deliver(queue) == [1, {str(sync.pk): "succeeded"}]  # the folder check owed one run; its app's batch ran it
    sync.refresh_from_db()
    assert sync.pending_run_at is None
    # A pending auto-sync is also served by any run that reads the secrets after the edit.
    Sync.objects.filter(pk=sync.pk).update(pending_run_at=timezone.now() - timedelta(seconds=5))
    sync_services.sync_now(sync)
    deliver(queue)
    sync.refresh_from_db()
    assert sync.pending_run_at is None


def test_a_lost_action_is_resumed_by_the_sweeper(workspace, connection, fake_do, queue):
    server = ready_server(workspace, connection, fake_do, queue)
    lifecycle.request(server, "reboot")
    queue.clear()  # the worker died with it
    Server.objects.filter(pk=server.pk).update(action_due_at=timezone.now() - timedelta(minutes=2))
    assert outbox.sweep()["actions"] == 1
    assert deliver(queue) == ["Rebooted."]
    assert Server.objects.get(pk=server.pk).action_in_progress == ""
    assert deliver([("provisioning.tasks.run_action", (str(server.pk), "reboot", None))]) == [
        "This action has already ended."]  # delivered twice: runs once


# --- Retry and bounded tries -----------------------------------------------------------------------


def test_retry_works_for_a_server_stuck_pending(workspace, connection, fake_do, queue):
    server = new_server(workspace, connection)
    queue.clear()
    services.retry(server)  # no step failed: it resumes at the step it stands at
    assert queue == [("provisioning.tasks.provision", (str(server.pk),))]


def test_a_droplet_create_that_keeps_failing_ends_failed(workspace, connection, fake_do, queue):
    server = new_server(workspace, connection)
    fake_do.fail_next("POST", r"^/v2/droplets$", status=500, times=100)
    for _ in range(20):
        Server.objects.filter(pk=server.pk).update(create_attempted_at=timezone.now() - timedelta(minutes=5))
        if steps.advance(server.pk) is None:
            break
    server.refresh_from_db()
    assert server.status == ServerStatus.FAILED and "did not confirm 4 create calls" in server.status_message
    assert fake_do.count("POST", r"/v2/droplets") == steps.MAX_CREATE_CALLS and not fake_do.droplets
    services.retry(server)  # Retry allows as many again
    assert server.steps.get(key="droplet").status == StepStatus.PENDING


# --- Unknown outcomes are read back ----------------------------------------------------------------


def test_a_resize_whose_every_call_fails_after_taking_effect_shows_the_real_droplet(workspace, connection, fake_do,
                                                                                    queue):
    server = ready_server(workspace, connection, fake_do, queue)
    fake_do.action_seconds = 0  # DigitalOcean finishes each action by itself; we never learn their ids
    fake_do.fail_next("POST", r"/v2/droplets/\d+/actions", status=500, times=100, after_applying=True)
    lifecycle.request(server, "resize", size="s-2vcpu-2gb")
    message = deliver(queue)[0]
    server.refresh_from_db()
    droplet = fake_do.droplets[server.droplet_id]
    assert droplet["size_slug"] == "s-2vcpu-2gb" and droplet["status"] == "active"
    assert server.size == "s-2vcpu-2gb" and server.status == ServerStatus.READY, server.status_message
    assert message == "Resized to s-2vcpu-2gb." and server.action_in_progress == ""
    assert fake_do.count("POST", r"/v2/droplets/\d+/actions") == 3  # shutdown, resize, power on: each sent once


def test_power_off_refused_for_a_pending_event_is_surfaced_not_awaited(workspace, connection, fake_do, queue):
    # Issue 13: a refusal for another action running on the Droplet ends ours at once, as an error with
    # DigitalOcean's reason, and blocks actions until DigitalOcean reports the event over (Refresh, reconcile).
    server = ready_server(workspace, connection, fake_do, queue)
    fake_do.action_seconds = 3600
    pending = fake_do._action(server.droplet_id, "shutdown", "in-progress")  # a shutdown already under way
    lifecycle.request(server, "power_off")
    queue.clear()
    waits = []
    message = lifecycle.run(server.pk, "power_off", sleep=waits.append, queued=True)
    assert "Droplet already has a pending event." in message and waits == []
    server.refresh_from_db()
    assert server.pending_event and server.status_message_is_error and server.action_in_progress == ""
    pending["status"] = "completed"
    lifecycle.request(server, "refresh")
    assert lifecycle.run(server.pk, "refresh", sleep=waits.append, queued=True) == "Refreshed."
    assert not Server.objects.get(pk=server.pk).pending_event


def test_a_firewall_delete_that_keeps_failing_does_not_stay_destroying_and_destroy_resumes(workspace, connection,
                                                                                           fake_do, queue):
    server = ready_server(workspace, connection, fake_do, queue)
    fake_do.fail_next("DELETE", r"/v2/firewalls/", status=500, times=1000)
    lifecycle.request(server, "destroy")
    message = deliver(queue)[0]
    server.refresh_from_db()
    assert server.status == ServerStatus.FAILED and "the Droplet was deleted" in message and "Destroy again" in message
    assert not fake_do.droplets and len(fake_do.firewalls) == 1
    fake_do.faults.clear()
    lifecycle.request(server, "destroy")
    deliver(queue)
    server.refresh_from_db()
    assert server.status == ServerStatus.DESTROYED and not fake_do.firewalls


def test_a_droplet_delete_that_keeps_failing_leaves_a_healthy_server_as_it_is(workspace, connection, fake_do, queue):
    server = ready_server(workspace, connection, fake_do, queue)
    fake_do.fail_next("DELETE", r"/v2/droplets/\d+", status=500, times=1000)
    lifecycle.request(server, "destroy")
    message = deliver(queue)[0]
    server.refresh_from_db()
    assert server.status == ServerStatus.READY and "not deleted" in message and len(fake_do.droplets) == 1


@pytest.mark.parametrize("fault", [500, "timeout"])
def test_a_put_whose_answer_is_lost_is_not_sent_again_nor_called_drift(workspace, connection, fake_do, queue, dev_app,
                                                                       fault):
    dev, app = dev_app
    secrets.create_secret(dev, "/app", "TOKEN", "s3cret")
    sync = Sync.objects.create(workspace=workspace, name="web", connection=connection, environment=dev,
                               folder=dev.folders.get(path="/app"), app_id=app["id"], app_name="web")
    fake_do.fail_next("PUT", r"/v2/apps/", status=fault, times=1, after_applying=True)
    assert engine.run(sync, "manual").status == SyncStatus.SUCCEEDED
    assert fake_do.deployments(app["id"]) == 1 and fake_do.count("PUT", r"/v2/apps/.*") == 1
    assert engine.check_drift(sync) == []  # our own write, not a change made outside Devpilot
    assert engine.run(sync, "manual").deployment_started is False  # and nothing left to write


def test_a_put_that_did_not_take_effect_is_retried_later(workspace, connection, fake_do, queue, dev_app):
    dev, app = dev_app
    secrets.create_secret(dev, "/app", "TOKEN", "s3cret")
    sync = Sync.objects.create(workspace=workspace, name="web", connection=connection, environment=dev,
                               folder=dev.folders.get(path="/app"), app_id=app["id"], app_name="web")
    fake_do.fail_next("PUT", r"/v2/apps/", status=500, times=1)
    with pytest.raises(engine.Retry):
        engine.run(sync, "manual")
    assert fake_do.deployments(app["id"]) == 0
    assert engine.run(sync, "manual").status == SyncStatus.SUCCEEDED and fake_do.deployments(app["id"]) == 1


@pytest.fixture
def dev_app(workspace, fake_do):
    dev = workspace.environments.get(slug="dev")
    secrets.create_folder(dev, "/", "app")
    return dev, fake_do.add_app("web", envs=[])


def test_the_sweeper_is_scheduled_every_minute():
    from devpilot.schedules import SCHEDULES

    assert ("devpilot.outbox.sweep", 1) in SCHEDULES
    assert sync_tasks.sweep and tasks.sweep

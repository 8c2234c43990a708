"""Every provisioning step and lifecycle action ends: with success, a failure people can read, or housekeeping."""

import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from connections.models import Connection
from devpilot import locks
from devpilot.models import AuditEvent
from provisioning import agents, housekeeping, lifecycle, services, steps, tasks
from provisioning.models import Server, ServerStatus, StepStatus
from tests.test_provisioning import new_server, registration_token, settle


@pytest.fixture(autouse=True)
def manual_tasks(monkeypatch):
    """Tests drive the state machine and the actions themselves."""
    monkeypatch.setattr(tasks, "enqueue_provision", lambda server: None)
    monkeypatch.setattr(tasks, "enqueue_action", lambda server, action, size=None: None)
    from connections import digitalocean

    monkeypatch.setattr(digitalocean, "_sleep", lambda s: None)


@pytest.fixture
def ready_server(workspace, connection, fake_do):
    server = settle(new_server(workspace, connection))
    agents.register(registration_token(fake_do), {})
    server.refresh_from_db()
    assert server.status == ServerStatus.READY
    return server


def raising_once(monkeypatch, module, name, error):
    """Replace module.name with a function that raises `error` on its first call, then behaves."""
    real, calls = getattr(module, name), []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise error
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, flaky)


def as_the_worker(task, *args, **kwargs):
    """Run a task as django-q2 would: an exception is recorded against the task, and the state is what remains."""
    try:
        return task(*args, **kwargs)
    except Exception as error:
        return error


def backdate(server, action, by):
    """Move the server's audit events named `action` back in time, as if they happened `by` ago."""
    AuditEvent.objects.filter(target_id=str(server.pk), action=action).update(created_at=timezone.now() - by)


# --- An unexpected error in a step ----------------------------------------------------------------


def test_an_unexpected_error_in_a_step_fails_it_and_retry_reaches_ready(workspace, connection, fake_do, monkeypatch,
                                                                         caplog):
    server = new_server(workspace, connection)
    raising_once(monkeypatch, steps, "ensure_droplet", IndexError("list index out of range"))
    with caplog.at_level(logging.ERROR, logger="devpilot.provisioning"):
        assert tasks.provision(str(server.pk), sleep=lambda s: None) == "settled"  # nothing raised into the worker
    server.refresh_from_db()
    assert server.status == ServerStatus.FAILED
    assert server.status_message == ("Step 2 (Create the Droplet) failed unexpectedly: IndexError. "
                                      "The error was logged; Retry resumes here.")
    assert [s.status for s in server.steps.all()] == ["succeeded", "failed", "pending", "pending", "pending"]
    droplet_step = server.steps.get(key="droplet")
    assert droplet_step.message.startswith("Failed unexpectedly: IndexError") and droplet_step.finished_at
    (record,) = [r for r in caplog.records if r.name == "devpilot.provisioning"]
    assert record.exc_info and str(server.pk) in record.getMessage()

    services.retry(server)
    server = settle(server)
    assert server.status == ServerStatus.INSTALLING_AGENT and len(fake_do.droplets) == 1
    assert server.steps.get(key="ssh_key").attempts == 1  # resumed at step 2, not from the start
    token = registration_token(fake_do)
    assert token not in caplog.text
    agents.register(token, {})
    server.refresh_from_db()
    assert server.status == ServerStatus.READY


def test_an_unexpected_error_while_waiting_for_the_agent_is_a_failure_retry_resumes(workspace, connection, fake_do,
                                                                                     monkeypatch):
    server = settle(new_server(workspace, connection))
    raising_once(monkeypatch, steps, "wait_for_agent", KeyError("hostname"))
    as_the_worker(tasks.provision, str(server.pk), sleep=lambda s: None)
    server.refresh_from_db()
    assert server.status == ServerStatus.FAILED
    assert "Step 5 (Install the Devpilot agent) failed unexpectedly: KeyError" in server.status_message
    services.retry(server)
    assert settle(server).status == ServerStatus.INSTALLING_AGENT
    agents.register(registration_token(fake_do), {})
    server.refresh_from_db()
    assert server.status == ServerStatus.READY


def test_an_unexpected_error_outside_the_steps_fails_the_step_due_to_run(workspace, connection, monkeypatch):
    server = new_server(workspace, connection)
    raising_once(monkeypatch, Connection, "client", ValueError("odd data"))
    assert as_the_worker(steps.advance, server.pk) is None
    server.refresh_from_db()
    assert server.status == ServerStatus.FAILED
    assert server.status_message.startswith("Step 1 (Register the SSH key) failed unexpectedly: ValueError.")
    services.retry(server)
    assert settle(server).status == ServerStatus.INSTALLING_AGENT


# --- An unexpected error in an action -------------------------------------------------------------


def test_an_action_that_raises_unexpectedly_ends_with_a_message(ready_server, monkeypatch, caplog):
    server = ready_server
    lifecycle.request(server, "reboot")
    raising_once(monkeypatch, lifecycle, "_do", KeyError("id"))
    with caplog.at_level(logging.ERROR, logger="devpilot.provisioning"):
        as_the_worker(tasks.run_action, server.pk, "reboot")
    server.refresh_from_db()
    assert server.action_in_progress == "" and not server.is_busy
    message = server.status_message
    assert server.status_message.startswith("Reboot failed unexpectedly: KeyError.")
    assert AuditEvent.objects.get(action="server.reboot_failed").data == {"result": message}
    assert any(r.exc_info for r in caplog.records if r.name == "devpilot.provisioning")
    lifecycle.request(server, "reboot")  # the next action is accepted
    assert lifecycle.run(server.pk, "reboot", sleep=lambda s: None) == "Rebooted."


def test_a_destroy_that_raises_unexpectedly_does_not_stay_destroying(ready_server, connection, monkeypatch):
    server = ready_server
    lifecycle.request(server, "destroy")
    client = connection.client()
    monkeypatch.setattr(Connection, "client", lambda self: client)
    raising_once(monkeypatch, client, "delete_firewall", ValueError("odd firewall id"))
    as_the_worker(tasks.run_action, server.pk, "destroy")
    server.refresh_from_db()
    assert server.status == ServerStatus.FAILED and server.action_in_progress == ""
    assert server.status_message.startswith("Destroy failed unexpectedly: ValueError.")


# --- Housekeeping: actions ------------------------------------------------------------------------


def test_an_action_lost_past_its_bound_is_failed_by_housekeeping(ready_server):
    server = ready_server
    lifecycle.request(server, "reboot")  # its task never runs
    assert housekeeping.run() == {"actions": 0, "steps": 0}  # within the bound: a worker may still be on it
    assert Server.objects.get(pk=server.pk).action_in_progress == "reboot"

    backdate(server, "server.reboot_requested", housekeeping.ACTION_BOUND + timedelta(minutes=1))
    assert housekeeping.run() == {"actions": 1, "steps": 0}
    server.refresh_from_db()
    assert server.action_in_progress == "" and server.status == ServerStatus.READY
    assert server.status_message.startswith("Reboot did not finish within 24 minutes")
    assert AuditEvent.objects.get(action="server.reboot_failed").data == {"result": server.status_message}
    lifecycle.request(server, "refresh")  # the Droplet takes actions again


def test_a_lost_destroy_fails_the_server(ready_server):
    server = ready_server
    lifecycle.request(server, "destroy")
    steps.set_status(server, ServerStatus.DESTROYING)  # the worker died half-way
    backdate(server, "server.destroy_requested", housekeeping.ACTION_BOUND + timedelta(minutes=1))
    housekeeping.run()
    server.refresh_from_db()
    assert server.status == ServerStatus.FAILED and server.action_in_progress == ""
    assert "Destroy did not finish" in server.status_message


# --- Housekeeping: provisioning steps -------------------------------------------------------------


def test_a_step_stuck_past_its_bound_is_failed_by_housekeeping_and_retry_resumes(workspace, connection, fake_do):
    fake_do.boot_after_gets = 10_000
    server = settle(new_server(workspace, connection), rounds=3)  # then the worker dies, mid-boot
    boot = server.steps.get(key="boot")
    assert (server.status, boot.status) == (ServerStatus.BOOTING, StepStatus.RUNNING)
    assert housekeeping.fail_stuck_steps() == 0  # a Droplet may take a while to boot

    long_ago = timezone.now() - housekeeping.STEP_BOUNDS["boot"] - timedelta(minutes=1)
    server.steps.filter(key="boot").update(started_at=long_ago)
    with locks.held(f"server:{server.pk}"):  # a runner is in the step right now: leave it be
        assert housekeeping.fail_stuck_steps() == 0
    assert housekeeping.fail_stuck_steps() == 1
    server.refresh_from_db()
    assert server.status == ServerStatus.FAILED
    assert server.status_message.startswith("Step 3 (Wait for the Droplet to boot) failed: Nothing moved this step "
                                            "on for 39 minutes")
    assert server.steps.get(key="boot").status == StepStatus.FAILED

    fake_do.boot_after_gets = 0
    services.retry(server)
    assert settle(server).status == ServerStatus.INSTALLING_AGENT


def test_a_stuck_agent_step_becomes_agent_missing(workspace, connection, fake_do):
    server = settle(new_server(workspace, connection))
    long_ago = timezone.now() - housekeeping.STEP_BOUNDS["agent"] - timedelta(minutes=1)
    server.steps.filter(key="agent").update(started_at=long_ago)
    assert housekeeping.fail_stuck_steps() == 1
    server.refresh_from_db()
    assert server.status == ServerStatus.AGENT_MISSING  # the agent may still call in
    agents.register(registration_token(fake_do), {})
    server.refresh_from_db()
    assert server.status == ServerStatus.READY


def test_a_server_whose_first_task_was_lost_is_failed_by_housekeeping(workspace, connection):
    server = new_server(workspace, connection)  # the provision task never runs
    assert housekeeping.fail_stuck_steps() == 0
    long_ago = housekeeping.STEP_BOUNDS["ssh_key"] + timedelta(minutes=1)
    Server.objects.filter(pk=server.pk).update(created_at=timezone.now() - long_ago)
    backdate(server, "server.created", long_ago)
    assert housekeeping.fail_stuck_steps() == 1
    server.refresh_from_db()
    assert server.status == ServerStatus.FAILED and "Step 1 (Register the SSH key) failed" in server.status_message
    services.retry(server)
    assert housekeeping.fail_stuck_steps() == 0  # the retry is progress: the clock starts again
    assert settle(server).status == ServerStatus.INSTALLING_AGENT


def test_housekeeping_is_a_schedule():
    from devpilot.schedules import SCHEDULES

    assert ("provisioning.tasks.housekeeping", 2) in SCHEDULES
    assert callable(tasks.housekeeping)

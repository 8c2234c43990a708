"""The agent's credential goes only to Devpilot, only over HTTPS unless allowed, and dies with its server."""

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from provisioning import agents, steps
from provisioning.cloudinit import AGENT_PATH, user_data
from provisioning.models import ServerStatus
from tests.test_provisioning import new_server, registration_token, settle


def run_agent(*args, timeout=60):
    return subprocess.run([sys.executable, str(AGENT_PATH), *args], capture_output=True, text=True, timeout=timeout)


class Recorder(BaseHTTPRequestHandler):
    """A local HTTP server that records who sent what, and redirects when told to."""

    seen: list = []
    redirect_to: str | None = None

    def do_POST(self):  # noqa: N802 - the stdlib's name
        type(self).seen.append((self.path, self.headers.get("Authorization")))
        if type(self).redirect_to:
            self.send_response(307)
            self.send_header("Location", type(self).redirect_to + self.path)
            self.end_headers()
            return
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'{"interval": 60}')

    def log_message(self, *args):
        pass


def serve(handler):
    server = HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


@pytest.fixture
def origins():
    devpilot = type("Devpilot", (Recorder,), {"seen": []})
    elsewhere = type("Elsewhere", (Recorder,), {"seen": []})
    servers = [serve(devpilot), serve(elsewhere)]
    yield devpilot, servers[0][1], elsewhere, servers[1][1]
    for server, _ in servers:
        server.shutdown()


def test_the_agent_never_sends_its_credential_to_another_origin(origins, tmp_path):
    devpilot, devpilot_url, elsewhere, elsewhere_url = origins
    devpilot.redirect_to = elsewhere_url
    state = tmp_path / "agent.json"
    state.write_text(json.dumps({"credential": "dpa_the-credential"}))
    result = run_agent("--allow-http", "--server", devpilot_url, "--state", str(state), "--once", "--attempts", "1")
    assert result.returncode != 0 and "refused a redirect to another origin" in result.stderr
    assert devpilot.seen == [("/api/v1/agent/heartbeat", "Bearer dpa_the-credential")]
    assert elsewhere.seen == []  # not even asked
    assert "dpa_the-credential" not in result.stderr


def test_the_agent_follows_a_redirect_on_devpilot_s_own_origin(origins, tmp_path):
    devpilot, devpilot_url, _, _ = origins
    state = tmp_path / "agent.json"
    state.write_text(json.dumps({"credential": "dpa_x"}))
    assert run_agent("--allow-http", "--server", devpilot_url, "--state", str(state), "--once").returncode == 0


def test_the_agent_refuses_plain_http_unless_allowed(origins, tmp_path, settings):
    devpilot, devpilot_url, _, _ = origins
    result = run_agent("--server", devpilot_url, "--token", "dpr_x", "--state", str(tmp_path / "a.json"), "--once")
    assert result.returncode != 0 and "must be an https:// URL" in result.stderr
    assert devpilot.seen == []
    settings.DEVPILOT_AGENT_ALLOW_HTTP = False
    assert "--allow-http" not in user_data("http://10.0.0.2:8000", "dpr_x")
    settings.DEVPILOT_AGENT_ALLOW_HTTP = True
    assert "--allow-http" in user_data("http://10.0.0.2:8000", "dpr_x")


def test_a_destroyed_server_s_agent_is_refused(workspace, connection, fake_do, live_server, settings, tmp_path):  # noqa: F811
    settings.DEVPILOT_PUBLIC_URL = live_server.url
    server = settle(new_server(workspace, connection))
    state = tmp_path / "agent.json"
    token = registration_token(fake_do)
    assert run_agent("--allow-http", "--server", live_server.url, "--token", token, "--state", str(state),
                     "--once").returncode == 0
    steps.set_status(server, ServerStatus.DESTROYED, "Destroyed.")
    again = run_agent("--allow-http", "--server", live_server.url, "--state", str(state), "--once", "--attempts", "1")
    assert again.returncode != 0 and "HTTP 401" not in again.stdout
    with pytest.raises(agents.AgentError, match="destroyed"):
        agents.heartbeat(json.loads(state.read_text())["credential"], {})
    server.refresh_from_db()
    assert server.status == ServerStatus.DESTROYED and server.agent_status == "gone with the Droplet"

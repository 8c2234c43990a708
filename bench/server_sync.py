"""Secrets delivered to servers: an edit reaching the file on 20 agents (the real agent script, each its own
process) through the agent channel, once the auto-sync debounce has passed.

Devpilot runs in this process behind a threaded WSGI server on loopback (PostgreSQL: every request thread
has its own connection); 20 servers are tagged `bench`; each has one sync of the same folder writing its file (one tag sync would write the
same path on each, and these agents share one filesystem). Each of
EDITS edits changes the secret, ends the debounce (the scheduled folder check runs), and times, per agent,
the moment its file holds the new value. The agents ask every second while an auto-sync targets their
server (the "work pending" hint), so p95 stays under the 2 s the issue allows beyond the debounce.

The database is BENCH_SERVER_SYNC_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/bench14servers),
dropped and created afresh.

    .venv/bin/python -m bench server_sync
"""

import json
import os
import secrets as random_tokens
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from socketserver import ThreadingMixIn
from urllib.parse import urlparse
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

ROOT = Path(__file__).resolve().parent.parent
DATABASE_URL = os.environ.get("BENCH_SERVER_SYNC_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench14servers")
AGENTS = int(os.environ.get("BENCH_SERVER_SYNC_AGENTS", "20"))
EDITS = int(os.environ.get("BENCH_SERVER_SYNC_EDITS", "10"))


class _ThreadedServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def _recreate_database():
    url = urlparse(DATABASE_URL)
    args = ["-h", url.hostname or "127.0.0.1", "-p", str(url.port or 5432), "-U", url.username or "postgres"]
    name = url.path.lstrip("/")
    subprocess.run(["dropdb", *args, "--if-exists", "--force", name], check=True, capture_output=True)
    subprocess.run(["createdb", *args, name], check=True, capture_output=True)


def _serve():
    from django.core.wsgi import get_wsgi_application

    server = make_server("127.0.0.1", 0, get_wsgi_application(), server_class=_ThreadedServer, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def _value_in(path: Path) -> str | None:
    try:
        for line in path.read_text().splitlines():
            if line.startswith("BENCH_VALUE="):
                return line.split("=", 1)[1]
    except FileNotFoundError:
        return None
    return None


def _wait_all(files: list[Path], value: str, started: float, limit: float = 30) -> list[float]:
    """Seconds from `started` until each file holds `value` (polled every 10 ms)."""
    seen: dict[Path, float] = {}
    while len(seen) < len(files) and time.monotonic() - started < limit:
        for path in files:
            if path not in seen and _value_in(path) == value:
                seen[path] = time.monotonic() - started
        time.sleep(0.01)
    if len(seen) < len(files):
        missing = [p for p in files if p not in seen]
        log = (missing[0].parent.parent / "agent.log").read_text()[-2000:]
        raise RuntimeError(f"{len(missing)} of {len(files)} files never received the edit; {missing[0]}'s agent:\n{log}")
    return list(seen.values())


def main():
    try:
        _recreate_database()
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"\nServer sync: skipped, no PostgreSQL to recreate {DATABASE_URL} ({e}).")
        return
    os.environ["DATABASE_URL"] = DATABASE_URL
    from bench.common import setup_django

    setup_django()
    from django.conf import settings
    from django.db import connection

    # A thread per request (the WSGI server here): a connection kept past its request would outlive its thread.
    settings.DATABASES["default"]["CONN_MAX_AGE"] = 0
    from django.utils import timezone

    from devpilot import secrets
    from devpilot.models import User, hash_token
    from devpilot.workspaces import create_workspace
    from provisioning.cloudinit import AGENT_PATH
    from provisioning.models import Server, ServerStatus
    from syncs import services, tasks
    from syncs.models import Sync

    tasks._check_folder_at = lambda environment_id, path, when: None  # the debounce's end is driven below
    owner = User.objects.create_user(email="bench@example.com", password="bench-password-1")
    workspace = create_workspace(owner, "Bench")
    dev = workspace.environments.get(slug="dev")
    secrets.create_folder(dev, "/", "app")
    secrets.create_secret(dev, "/app", "BENCH_VALUE", "start")
    for n in range(5):
        secrets.create_secret(dev, "/app", f"OTHER_{n}", "x" * 64)
    root = Path(tempfile.mkdtemp(prefix="devpilot-bench-agents-"))
    web, base = _serve()
    agents, files, homes = [], [], []
    try:
        for n in range(AGENTS):
            credential = "dpa_" + random_tokens.token_urlsafe(32)
            now = timezone.now()
            Server.objects.create(workspace=workspace, name=f"app-{n:02d}", region="nyc3", size="s-1vcpu-1gb",
                                  image="ubuntu-24-04-x64", status=ServerStatus.READY, devpilot_tags=["bench"],
                                  agent_credential_hash=hash_token(credential), agent_registered_at=now,
                                  agent_last_seen_at=now)
            home = root / f"agent-{n:02d}"
            (home / "ssh").mkdir(parents=True)
            (home / "agent.json").write_text(json.dumps({"credential": credential}))
            files.append(home / "etc" / "bench.env")
            homes.append(home)
        # The syncs exist before the agents start, so every agent's first answer already says "work pending"
        # (a sync created while an agent sleeps its 60-s interval reaches it at its next heartbeat).
        _create_per_agent(services, workspace, dev, files)
        started = time.monotonic()
        for home in homes:
            agents.append(subprocess.Popen(
                [sys.executable, str(AGENT_PATH), "--allow-http", "--server", base, "--state", str(home / "agent.json"),
                 "--authorized-keys", str(home / "ssh" / "authorized_keys"), "--host-key", str(home / "none.pub")],
                stdout=subprocess.DEVNULL, stderr=(home / "agent.log").open("w")))
        first = _wait_all(files, "start", started, limit=180)
        print(f"\nServer sync: {AGENTS} agents (real script, one process each), threaded WSGI on loopback, "
              f"PostgreSQL; first file on every agent {max(first):.1f} s after {AGENTS} agent processes started at once")
        latencies = []
        for edit in range(EDITS):
            value = f"edit-{edit}"
            secrets.update_secret(dev.secrets.get(key="BENCH_VALUE"), value=value)
            Sync.objects.filter(workspace=workspace).update(pending_run_at=timezone.now())  # the debounce ended
            started = time.monotonic()
            tasks.dispatch_folder(dev.pk, "/app")
            latencies += _wait_all(files, value, started)
            time.sleep(0.3)
        latencies.sort()
        p95 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))]
        print(f"  edit -> file updated, after the debounce: {len(latencies)} deliveries ({EDITS} edits x {AGENTS} "
              f"agents): p50 {statistics.median(latencies) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
              f"max {latencies[-1] * 1000:.0f} ms")
    finally:
        for agent in agents:
            agent.terminate()
        for agent in agents:
            agent.wait(timeout=10)
        web.shutdown()
        connection.close()


def _create_per_agent(services, workspace, environment, files):
    """One sync per agent (each its own server and file under the agent's temporary root), all reading the
    same folder: one edit owes every one of them a delivery, as one tag sync does for 20 servers in production
    (where every server has its own /etc)."""
    from provisioning.models import Server
    from syncs.models import Sync

    for n, (server, path) in enumerate(zip(Server.objects.order_by("name"), files, strict=True)):
        sync = Sync(workspace=workspace, name=f"bench-{n:02d}", environment=environment,
                    folder=environment.folders.get(path="/app"), destination="devpilot-server", server=server,
                    file_path=str(path))
        services.create(sync)


if __name__ == "__main__":
    main()

"""The web tier under load: gunicorn (4 workers, DEBUG off, production settings) on PostgreSQL.

A bounded thread-pool client on loopback measures req/s and p50/p99 latency of:
  - a minimal view (returns "ok", no database, no template) through the same middleware: the ceiling;
  - the raw secrets API (member token, values) for folders of 100 and 5,000 secrets;
  - the secrets page of the 100-secret folder and the first page of a 10,000-secret folder;
  - the Overview (workspace home);
each also as a ratio to the minimal view of the same run, measured again between URLs (each ratio is to
the mean of the minimal view just before and just after it: the shared host's speed drifts). Issue 16's goals: API(100) >= 0.25,
page >= 0.15, the 10,000-secret folder's first page under 100 KB. Figures are printed, not asserted.

The database is BENCH_WEB_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/bench16), dropped
and created afresh each run; Redis at BENCH_WEB_REDIS_URL (default redis://127.0.0.1:6379/15) is
the cache when it answers. BENCH_WEB_SECONDS (default 5) and BENCH_WEB_CLIENTS (default 8) bound
the load on each URL; CONN_MAX_AGE passes through (unset: the settings' default).

    .venv/bin/python -m bench web
"""

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
DATABASE_URL = os.environ.get("BENCH_WEB_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench16")
REDIS_URL = os.environ.get("BENCH_WEB_REDIS_URL", "redis://127.0.0.1:6379/15")
SECONDS = float(os.environ.get("BENCH_WEB_SECONDS", "5"))
CLIENTS = int(os.environ.get("BENCH_WEB_CLIENTS", "8"))
MAX_REQUESTS = 20_000  # per URL, whatever the time bound
WORKERS = 4
FOLDERS = {"/small": 100, "/large": 5_000, "/huge": 10_000}
MINIMAL_PATH = "/bench/minimal/"


# --- Inside the server and the preparing process ---------------------------------------------------


def _configure():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "devpilot.settings")
    sys.path.insert(0, str(ROOT))
    from django.conf import settings

    settings.STATIC_ROOT = os.environ["BENCH_WEB_STATIC_ROOT"]  # collected here, not into the checkout
    import django

    django.setup()


def minimal(request):
    from django.http import HttpResponse

    return HttpResponse("ok", content_type="text/plain")


def wsgi():
    """gunicorn 'bench.web:wsgi()': Devpilot's application plus the minimal view, same settings and middleware."""
    _configure()
    from django.core.wsgi import get_wsgi_application
    from django.urls import path

    import devpilot.urls

    devpilot.urls.urlpatterns.insert(0, path(MINIMAL_PATH.strip("/") + "/", minimal))
    return get_wsgi_application()


def prepare():
    """Schema, static files, a member with an API token and a session, and the folders; prints them as JSON."""
    _configure()
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command
    from django.db import connection

    from devpilot import secrets
    from devpilot.models import Membership, Role, Secret, User
    from devpilot.tokens import create_api_token
    from devpilot.workspaces import create_workspace

    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    owner = User.objects.create_user("bench-owner@example.com", "bench-password-1")
    member = User.objects.create_user("bench-member@example.com", "bench-password-1")
    workspace = create_workspace(owner, "Bench web")
    Membership.objects.create(workspace=workspace, user=member, role=Role.MEMBER)
    env = workspace.environments.get(slug="dev")
    for path, count in FOLDERS.items():
        folder = secrets.create_folder(env, "/", path.strip("/"))
        Secret.objects.bulk_create(
            [Secret(workspace=workspace, environment=env, folder=folder, key=f"KEY_{i:05d}", value=f"value-{i}-" + "x" * 24,
                    comment="", created_by=member, updated_by=member) for i in range(count)],
            batch_size=1000,
        )
    secrets.create_folder(env, "/", "empty")
    with connection.cursor() as cursor:
        # Planner statistics and visibility maps as autovacuum keeps them on a running install, not those of
        # tables filled a second ago (counts in an index alone need the visibility map).
        cursor.execute("VACUUM ANALYZE")
    _, token = create_api_token(workspace, "bench", role=Role.MEMBER, created_by=member)
    session = SessionStore()
    session[SESSION_KEY] = str(member.pk)
    session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
    session[HASH_SESSION_KEY] = member.get_session_auth_hash()
    session.create()
    print(json.dumps({"workspace": workspace.slug, "workspace_id": str(workspace.pk), "token": token,
                      "session": session.session_key, "session_cookie": settings.SESSION_COOKIE_NAME}))


# --- Outside: database, server and client ----------------------------------------------------------


def _redis_answers(url):
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _recreate_database():
    url = urlparse(DATABASE_URL)
    args = ["-h", url.hostname or "127.0.0.1", "-p", str(url.port or 5432), "-U", url.username or "postgres"]
    name = url.path.lstrip("/")
    subprocess.run(["dropdb", *args, "--if-exists", "--force", name], check=True)
    subprocess.run(["createdb", *args, name], check=True)


def _environment(static_root):
    from cryptography.fernet import Fernet

    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL", "REDIS_URL"))}
    env.update({
        "DJANGO_SETTINGS_MODULE": "devpilot.settings",
        "DATABASE_URL": DATABASE_URL,
        "SECRET_KEY": "bench-web-" + Fernet.generate_key().decode(),
        "DEVPILOT_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "DEBUG": "false",
        "DEVPILOT_HTTPS": "false",  # plain HTTP on loopback: no redirect to https
        "ALLOWED_HOSTS": "127.0.0.1",
        "DEVPILOT_API_RATE_LIMIT": "100000000",  # the load would exceed a token's minute otherwise
        "LOG_LEVEL": "WARNING",
        "BENCH_WEB_STATIC_ROOT": static_root,
        "PYTHONPATH": str(ROOT),
    })
    if _redis_answers(REDIS_URL):
        env["REDIS_URL"] = REDIS_URL
    return env


def load(session, url, headers=None, seconds=SECONDS, clients=CLIENTS):
    """Requests from `clients` threads for `seconds` (at most MAX_REQUESTS): (req/s, p50 ms, p99 ms, bytes)."""
    import requests

    for _ in range(10):  # warm up every worker's connection and caches
        requests.get(url, headers=headers, cookies=session, timeout=30).raise_for_status()
    latencies, sizes, lock = [], [], threading.Lock()
    deadline = time.perf_counter() + seconds

    def client():
        with requests.Session() as http:
            http.cookies.update(session or {})
            while time.perf_counter() < deadline:
                with lock:
                    if len(latencies) >= MAX_REQUESTS:
                        return
                start = time.perf_counter()
                response = http.get(url, headers=headers, timeout=30)
                elapsed = time.perf_counter() - start
                response.raise_for_status()
                with lock:
                    latencies.append(elapsed)
                    sizes.append(len(response.content))

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(client) for _ in range(clients)]:
            future.result()
    wall = time.perf_counter() - started
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return len(latencies) / wall, statistics.median(latencies) * 1000, p99 * 1000, statistics.median(sizes)


def main():
    try:
        _recreate_database()
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"\nWeb tier: skipped, no PostgreSQL to recreate {DATABASE_URL} ({e}).")
        return
    static_root = tempfile.mkdtemp(prefix="devpilot-bench-static-")
    env = _environment(static_root)
    server = None
    try:
        start = time.perf_counter()
        prepared = subprocess.run([sys.executable, "-m", "bench.web", "prepare"], env=env, cwd=ROOT,
                                  capture_output=True, text=True, timeout=600)
        if prepared.returncode:
            raise RuntimeError(f"preparing the database failed:\n{prepared.stderr[-3000:]}")
        info = json.loads(prepared.stdout.strip().splitlines()[-1])
        fill_seconds = time.perf_counter() - start
        port = _free_port()
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "bench.web:wsgi()", "--workers", str(WORKERS),
             "--bind", f"127.0.0.1:{port}", "--log-level", "warning", "--timeout", "60"],
            env=env, cwd=ROOT)
        base = f"http://127.0.0.1:{port}"
        _wait_for(base + MINIMAL_PATH, server)
        ws, api = info["workspace"], f"{base}/api/v3/secrets/raw?workspaceId={info['workspace_id']}&environment=dev"
        token = {"Authorization": f"Bearer {info['token']}"}
        cookie = {info["session_cookie"]: info["session"]}
        targets = [
            ("minimal view (the ceiling)", base + MINIMAL_PATH, None, None),
            ("secrets API, 100 secrets", api + "&secretPath=/small", token, None),
            ("secrets API, 5,000 secrets", api + "&secretPath=/large", token, None),
            ("secrets page, 100 secrets", f"{base}/w/{ws}/secrets/dev/?path=/small", None, cookie),
            ("secrets page, 10,000 secrets", f"{base}/w/{ws}/secrets/dev/?path=/huge", None, cookie),
            ("Overview", f"{base}/w/{ws}/", None, cookie),
            # What any API call or page pays before its own work (token or session, layout): the floor.
            ("(floor) API, GET /v1/workspaces", f"{base}/api/v1/workspaces", token, None),
            ("(floor) secrets page, empty", f"{base}/w/{ws}/secrets/dev/?path=/empty", None, cookie),
        ]
        print(f"\nWeb tier: gunicorn {WORKERS} sync workers, DEBUG off, PostgreSQL"
              f"{', Redis cache' if 'REDIS_URL' in env else ', local-memory cache'}, "
              f"CONN_MAX_AGE {env.get('CONN_MAX_AGE', 'default')}; {CLIENTS} client threads x {SECONDS:g} s a URL "
              f"on loopback (set up in {fill_seconds:.0f} s)")
        print(f"  {'':<33} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'of minimal':>10} {'size':>10}")
        # The machine's speed drifts within a run (a shared host: the minimal view alone varied 460-700 req/s
        # from run to run), so each URL is set against the minimal view measured just before and just after it.
        (_, minimal_url, _, _), sizes = targets[0], {}
        before = load(None, minimal_url)
        ceilings = [before[0]]
        print(f"  {targets[0][0]:<33} {before[0]:>8.1f} {before[1]:>8.1f} {before[2]:>8.1f} {1:>10.3f} "
              f"{before[3] / 1000:>8.1f} KB")
        for label, url, headers, cookies in targets[1:]:
            rate, p50, p99, size = load(cookies, url, headers)
            after = load(None, minimal_url)[0]
            ceiling, sizes[label] = (ceilings[-1] + after) / 2, size
            ceilings.append(after)
            print(f"  {label:<33} {rate:>8.1f} {p50:>8.1f} {p99:>8.1f} {rate / ceiling:>10.3f} {size / 1000:>8.1f} KB")
        print(f"  the minimal view measured {len(ceilings)} times, between the URLs: {min(ceilings):.0f}-"
              f"{max(ceilings):.0f} req/s; each ratio is to the mean of the two around it")
        print(f"  goals: API(100) >= 0.25 of minimal, page >= 0.15, the 10,000-secret folder's first page "
              f"< 100 KB (it is {sizes['secrets page, 10,000 secrets'] / 1000:.1f} KB)")
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
        shutil.rmtree(static_root, ignore_errors=True)


def _wait_for(url, server, timeout=90):
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {server.returncode}")
        try:
            if requests.get(url, timeout=10).status_code == 200:
                return
        except requests.RequestException:  # not listening yet, or still importing Django
            pass
        time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not answer {url} within {timeout} s")


if __name__ == "__main__":
    if sys.argv[1:] == ["prepare"]:
        prepare()
    else:
        main()

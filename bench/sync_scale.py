"""Syncs at scale: 200 auto-syncs of one folder into 20 apps (10 per app), one edit, real workers.

The fake DigitalOcean runs as a local HTTP server with DigitalOcean's 250 requests/minute per
token (429 past it) and a 0.3-s PUT; a real `manage.py qcluster` (2 workers, the default) runs
the syncs on PostgreSQL. Printed: DigitalOcean calls, deployments and 429s per edit, seconds until
every app holds the new value, the edit request's time and SQL queries, repeated bursts, and how
soon "Sync now" starts while a burst is being debounced.

Goals (issue "Syncs at scale"): <= 40 calls, 20 deployments, 0 429s, every app current within
debounce + 10 s, the edit <= 50 ms; one sync into one app: 2 calls/1 deployment changed, 1/0 not.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench python -m bench sync_scale
"""

import os
import time

from bench.common import count_queries, report, setup_django

APPS, SYNCS_PER_APP = 20, 10
DEBOUNCE = 5


def main():
    setup_django()
    from django.conf import settings
    from django.db import connection as db

    if db.vendor != "postgresql":
        print("\nsync_scale: skipped (needs DATABASE_URL=postgres://...; workers share the database)")
        return
    from django_q.conf import Conf
    from django_q.models import OrmQ, Schedule

    from bench.recovery import Cluster, worker_env
    from connections.models import Connection
    from devpilot import secrets
    from devpilot.models import User
    from devpilot.workspaces import create_workspace
    from syncs import tasks
    from syncs.models import Sync, SyncRun
    from tests.fake_digitalocean import FakeDigitalOcean

    Conf.SYNC, Conf.ORM = False, "default"  # this process is the web side: it enqueues into the workers' broker
    OrmQ.objects.all().delete()
    Schedule.objects.filter(name__startswith=("autosync")).delete()
    settings.DEVPILOT_AUTOSYNC_DEBOUNCE = DEBOUNCE
    fake = FakeDigitalOcean()  # DigitalOcean's own 250/min
    fake.add_token("dop_v1_bench")
    fake.latency.append(("PUT", r"^/v2/apps/", 0.3))
    settings.DIGITALOCEAN_API_URL = fake.serve()
    stamp = time.time_ns()
    user = User.objects.create_user(f"bench-scale-{stamp}@example.com", "bench-password-1")
    workspace = create_workspace(user, f"Scale {stamp}")
    dev = workspace.environments.get(slug="dev")
    connection = Connection.objects.create(workspace=workspace, name="do", token="dop_v1_bench")
    shared = secrets.create_folder(dev, "/", "shared")
    secrets.bulk_import(dev, "/shared", {"TOKEN": "v0", "URL": "https://example.test"}, overwrite=True)
    apps = [fake.add_app(f"app-{n}", envs=[{"key": "FOREIGN", "value": "x", "type": "GENERAL"}]) for n in range(APPS)]
    syncs = Sync.objects.bulk_create([
        Sync(workspace=workspace, name=f"s-{n}-{i}", connection=connection, environment=dev, folder=shared,
             app_id=app["id"], app_name=app["spec"]["name"], key_schema=f"T{i}_{{{{secretKey}}}}")
        for n, app in enumerate(apps) for i in range(SYNCS_PER_APP)])
    cluster = Cluster(worker_env(os.environ["DATABASE_URL"], settings.DIGITALOCEAN_API_URL), os.environ.get(
        "BENCH_WORKER_LOG"))
    rows = []
    try:
        tasks.owe(syncs, "manual")
        wait_for(lambda: SyncRun.objects.filter(sync__workspace=workspace, status="succeeded").count() == len(syncs),
                 "the first run of every sync")
        fake.requests.clear()
        time.sleep(60)  # a fresh minute of DigitalOcean's rate limit for the measured edit

        for burst, edits in enumerate((1, 20, 20), start=1):
            value = f"v{burst}"
            before = len(fake.requests), total_deployments(fake, apps), count_429(fake)
            token = dev.secrets.get(folder=shared, key="TOKEN")
            started = time.monotonic()
            with count_queries() as queries:
                edit_started = time.perf_counter()
                for n in range(edits):
                    token = secrets.update_secret(token, value=value if n == edits - 1 else f"{value}.{n}")
                edit_ms = (time.perf_counter() - edit_started) * 1000 / edits
            if burst == 2:
                rows.append(sync_now_latency(syncs[0], SyncRun, time))
            current = wait_for(lambda: all_current(fake, apps, value), f"burst {burst}", started=started)
            settle(fake)  # the deployments followed to their end, so their checks count with this edit
            sent = fake.requests[before[0]:]
            app_calls = sum(1 for _, path, _ in sent if "/deployments/" not in path)
            deployments = total_deployments(fake, apps) - before[1]
            label = "one edit" if edits == 1 else f"burst of {edits} edits"
            rows.append((f"{label}: app reads+writes / deployments / 429s",
                         f"{app_calls} / {deployments} / {count_429(fake) - before[2]}  "
                         f"(goal <= {2 * APPS} / {APPS} / 0)"))
            rows.append((f"{label}: deployment checks (following each to its end)", f"{len(sent) - app_calls}"))
            rows.append((f"{label}: every app current after (s)", f"{current:.1f}  (goal <= debounce {DEBOUNCE} + 10)"))
            rows.append((f"{label}: edit request (ms per edit) / SQL queries per edit",
                         f"{edit_ms:.1f} / {len(queries) / edits:.0f}  (goal <= 50 ms)"))
    finally:
        cluster.stop()
        fake.stop()
    report(f"Syncs at scale: {len(syncs)} auto-syncs of one folder into {APPS} apps, real worker, debounce "
           f"{DEBOUNCE} s", rows)


def sync_now_latency(sync, SyncRun, time):
    """While the burst's debounce runs: how soon a "Sync now" of one sync starts (its run row appears)."""
    from syncs import services

    known = set(SyncRun.objects.filter(sync=sync).values_list("pk", flat=True))
    asked = time.monotonic()
    services.sync_now(sync)
    started = wait_for(lambda: SyncRun.objects.filter(sync=sync).exclude(pk__in=known).exists(), "sync now",
                       started=asked)
    return ('"Sync now" during a debounced burst: starts after (s)', f"{started:.2f}  (goal <= 1)")


def settle(fake):
    """Wait until no call has reached DigitalOcean for 3 s (the burst's batches have all ended)."""
    last = -1
    while last != len(fake.requests):
        last = len(fake.requests)
        time.sleep(3)


def all_current(fake, apps, value):
    for app in apps:
        envs = fake.app_envs(app["id"])
        if any(fake.plaintext(envs.get(f"T{i}_TOKEN", {}).get("value", "")) != value for i in range(SYNCS_PER_APP)):
            return False
    return True


def total_deployments(fake, apps):
    return sum(fake.deployments(app["id"]) for app in apps)


def count_429(fake):
    return sum(1 for _, _, status, _ in list(fake.answers) if status == 429)


def wait_for(condition, what, started=None, limit=300):
    from django.db import connection as db

    started = started if started is not None else time.monotonic()
    while not condition():
        if time.monotonic() - started > limit:
            raise SystemExit(f"sync_scale: {what} did not happen within {limit} s")
        db.close()
        time.sleep(0.1)
    return time.monotonic() - started


if __name__ == "__main__":
    main()

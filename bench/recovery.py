"""Recovery after a worker dies: time from `kill -9` of a qcluster to the resumed work, per broker.

Needs PostgreSQL (DATABASE_URL=postgres://...); the Redis broker is measured when REDIS_URL is
set too. Servers are provisioned against the fake DigitalOcean run as a local HTTP server by
real `manage.py qcluster` processes; at a random moment the cluster is killed and a fresh one
started. For each server not finished at the kill (its task running, sleeping or scheduled), "resumed"
is the first sign of progress afterwards (a step attempted or finished, a status change).
Prints figures (goal: p95 <= 90 s with either broker); asserts nothing.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench REDIS_URL=redis://127.0.0.1:6379/5 python -m bench recovery
"""

import os
import random
import signal
import statistics
import subprocess
import sys
import time

from bench.common import ROOT, report, setup_django

ROUNDS = int(os.environ.get("BENCH_RECOVERY_ROUNDS", 4))
SERVERS = 3


class Cluster:
    """One `manage.py qcluster` in its own process group."""

    def __init__(self, env, log=None):
        """`log`: a file the cluster's output is appended to (a failing test prints it); none by default."""
        output = open(log, "ab") if log else subprocess.DEVNULL
        self.process = subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env,
                                        start_new_session=True, stdout=output, stderr=subprocess.STDOUT)
        if log:
            output.close()  # the child has its own descriptor

    def kill(self):
        """kill -9 of the whole cluster (sentinel, pusher, monitor and workers), as a machine would lose them."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()

    def stop(self, grace=5):
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=grace)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            self.kill()


def worker_env(database_url, api_url, redis_url=None, lease=None):
    lease = lease or os.environ.get("DEVPILOT_LEASE_SECONDS", "20")  # production's default unless set
    env = {**os.environ, "DATABASE_URL": database_url, "DEVPILOT_TEST_Q_SYNC": "false", "DIGITALOCEAN_API_URL": api_url,
           "DJANGO_SETTINGS_MODULE": "tests.settings", "Q_WORKERS": "2", "DEVPILOT_LEASE_SECONDS": str(lease)}
    env.pop("REDIS_URL", None)
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


def progress(server_ids):
    """A fingerprint of each server's visible progress."""
    from provisioning.models import Server, ServerStep

    marks = {str(pk): [status] for pk, status in Server.objects.filter(pk__in=server_ids).values_list("pk", "status")}
    for server_id, number, status, attempts in ServerStep.objects.filter(server_id__in=server_ids).values_list(
            "server_id", "number", "status", "attempts"):
        marks[str(server_id)].append((number, status, attempts))
    return {k: tuple(sorted(map(str, v))) for k, v in marks.items()}


def one_round(broker, redis_url, fake, workspace, connection, n):
    from django.conf import settings
    from django.db import connection as db
    from django_q.models import OrmQ

    from devpilot.schedules import install
    from provisioning import services
    from provisioning.models import Server
    from provisioning.schemas import ServerDetails
    from devpilot.schemas import parse

    from django_q.conf import Conf

    Conf.SYNC = False  # this process is the web side: it enqueues into the workers' broker
    Conf.ORM, Conf.REDIS = (None, redis_url) if redis_url else ("default", Conf.REDIS)
    if redis_url:
        import redis

        redis.Redis.from_url(redis_url).flushdb()
    OrmQ.objects.all().delete()
    install()
    env = worker_env(os.environ["DATABASE_URL"], settings.DIGITALOCEAN_API_URL, redis_url)
    cluster = Cluster(env)
    ids = [services.create(workspace, connection, parse(ServerDetails, {"name": f"r{n}-{broker}-{i}"}), region="nyc3",
                           size="s-1vcpu-1gb", image="ubuntu-24-04-x64").pk for i in range(SERVERS)]
    db.close()
    time.sleep(random.uniform(4, 12))  # somewhere in create, boot polling or the firewall
    final = ("ready", "failed", "agent_missing", "installing_agent")  # no agent calls in here: its wait is the end
    held = [pk for pk in ids if Server.objects.get(pk=pk).status not in final]  # work in flight or waiting
    before = progress(ids)
    cluster.kill()
    killed_at = time.monotonic()
    cluster = Cluster(env)
    resumed = {}
    while len(resumed) < len(held) and time.monotonic() - killed_at < 300:
        now = progress(held)
        for pk in held:
            if pk not in resumed and now[str(pk)] != before[str(pk)]:
                resumed[pk] = time.monotonic() - killed_at
        time.sleep(0.5)
    cluster.stop()
    Server.objects.filter(pk__in=ids).delete()
    return list(resumed.values()), len(held) - len(resumed)


def main():
    setup_django()
    from django.conf import settings
    from django.db import connection as db

    if db.vendor != "postgresql":
        print("\nrecovery: skipped (needs DATABASE_URL=postgres://...; workers share the database)")
        return
    from connections.models import Connection
    from devpilot.models import User
    from devpilot.workspaces import create_workspace
    from tests.fake_digitalocean import FakeDigitalOcean

    fake = FakeDigitalOcean(per_minute=100_000)
    fake.add_token("dop_v1_bench", account={"droplet_limit": 5000, "uuid": "acct-recovery"})
    fake.boot_after_gets = 8
    fake.latency.append(("POST", r"^/v2/(droplets|firewalls)$", 1.5))
    settings.DIGITALOCEAN_API_URL = fake.serve()
    user = User.objects.create_user(f"bench-recovery-{time.time_ns()}@example.com", "bench-password-1")
    workspace = create_workspace(user, f"Recovery {time.time_ns()}")
    connection = Connection.objects.create(workspace=workspace, name="do", token="dop_v1_bench",
                                           account_uuid="acct-recovery")
    brokers = [("orm", None)] + ([("redis", os.environ["REDIS_URL"])] if os.environ.get("REDIS_URL") else [])
    rows = []
    for broker, redis_url in brokers:
        times, lost = [], 0
        for n in range(ROUNDS):
            got, missing = one_round(broker, redis_url, fake, workspace, connection, n)
            times += got
            lost += missing
        if times:
            ordered = sorted(times)
            p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
            rows.append((f"{broker} broker: kill -> resumed (s)",
                         f"p50 {statistics.median(ordered):.1f}  p95 {p95:.1f}  max {ordered[-1]:.1f}  "
                         f"(n={len(ordered)}, not resumed in 300 s: {lost})"))
        else:
            rows.append((f"{broker} broker", f"no work was in flight at the kills (not resumed: {lost})"))
    fake.stop()
    report(f"Recovery after kill -9 of the worker ({ROUNDS} kills per broker, lease "
           f"{worker_env('', '')['DEVPILOT_LEASE_SECONDS']} s, sweeper every minute)", rows)


if __name__ == "__main__":
    main()

"""One sync against the fake DigitalOcean: API calls, deployments, engine time, bursts.

Goals: a changed source costs 2 calls and 1 deployment; an unchanged one 1 call and
0 deployments; engine time grows linearly with the number of secrets; a burst of 100
edits gives 1 deployment.
"""

import time

import responses

from bench.common import report, setup_django


def main():
    setup_django()
    from django.conf import settings
    from django.utils import timezone

    from connections.models import Connection
    from devpilot import secrets
    from devpilot.models import User
    from devpilot.workspaces import create_workspace
    from syncs import engine, tasks
    from syncs.models import Sync
    from tests.fake_digitalocean import FakeDigitalOcean

    fake = FakeDigitalOcean(per_minute=100000)
    fake.add_token("dop_v1_bench")
    settings.DIGITALOCEAN_API_URL = fake.base_url
    user = User.objects.create_user("bench-syncs@example.com", "bench-password-1")
    workspace = create_workspace(user, "Bench syncs")
    dev = workspace.environments.get(slug="dev")
    connection = Connection.objects.create(workspace=workspace, name="do", token="dop_v1_bench")
    rows = []

    def new_sync(name, count, auto_sync=False):
        path = secrets.create_folder(dev, "/", name).path
        secrets.bulk_import(dev, path, {f"KEY_{i:05d}": f"value-{i}" for i in range(count)}, overwrite=True)
        app = fake.add_app(name, envs=[{"key": "FOREIGN", "value": "x", "type": "GENERAL"}])
        return Sync.objects.create(workspace=workspace, name=name, connection=connection, environment=dev,
                                   folder=dev.folders.get(path=path), app_id=app["id"], app_name=name,
                                   key_schema="APP_{{secretKey}}", auto_sync_enabled=auto_sync)

    def measured_run(sync):
        before_calls, before_deploys = len(fake.requests), fake.deployments(sync.app_id)
        start = time.perf_counter()
        run = engine.run(sync, "manual")
        took = (time.perf_counter() - start) * 1000
        assert run.status == "succeeded", run.message
        return len(fake.requests) - before_calls, fake.deployments(sync.app_id) - before_deploys, took

    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fake.install(rsps)
        sync = new_sync("small", 20)
        calls, deploys, _ = measured_run(sync)
        rows.append(("first sync (20 secrets): API calls / deployments", f"{calls} / {deploys}"))
        secrets.update_secret(dev.secrets.get(folder=sync.folder, key="KEY_00001"), value="changed")
        calls, deploys, _ = measured_run(sync)
        rows.append(("something changed: API calls / deployments", f"{calls} / {deploys}  (goal 2 / 1)"))
        calls, deploys, _ = measured_run(sync)
        rows.append(("nothing changed: API calls / deployments", f"{calls} / {deploys}  (goal 1 / 0)"))

        for count in (1000, 10000):
            big = new_sync(f"big{count}", count)
            _, _, first = measured_run(big)
            _, _, unchanged = measured_run(big)
            rows.append((f"engine time, {count:,} secrets: first sync / unchanged", f"{first:.0f} ms / {unchanged:.0f} ms"))

        burst = new_sync("burst", 5, auto_sync=True)
        engine.run(burst, "manual")
        before = fake.deployments(burst.app_id)
        checks = []
        real_check = tasks._check_folder_at
        tasks._check_folder_at = lambda environment_id, path, when: checks.append(path)
        try:
            secret = dev.secrets.get(folder=burst.folder, key="KEY_00000")
            from django.db import transaction

            for i in range(100):
                with transaction.atomic():
                    secret = secrets.update_secret(secret, value=f"edit-{i}")
            # The debounce window passes once, after the last edit; then the scheduled check runs.
            Sync.objects.filter(pk=burst.pk).update(pending_run_at=timezone.now())
            tasks.dispatch_folder(dev.pk, burst.folder.path)
        finally:
            tasks._check_folder_at = real_check
        rows.append(("burst of 100 edits: scheduled checks (moved by each edit) / deployments",
                     f"{len(set(checks))} / {fake.deployments(burst.app_id) - before}  (goal 1 deployment)"))
    report("Secret sync (fake DigitalOcean in-process)", rows)

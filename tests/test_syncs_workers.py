"""Real django-q2 workers, many syncs, one app: no sync overwrites another's update, and they share deployments."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection as db

from connections.models import Connection
from devpilot import secrets
from syncs import services
from syncs.models import Sync

ROOT = Path(__file__).resolve().parent.parent
from tests.conftest import worker_database_url

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def workers(fake_do_server, requires_postgres):
    env = {**os.environ, "DATABASE_URL": worker_database_url(), "DEVPILOT_TEST_Q_SYNC": "false",
           "DIGITALOCEAN_API_URL": settings.DIGITALOCEAN_API_URL, "DJANGO_SETTINGS_MODULE": "tests.settings",
           "Q_WORKERS": "3"}
    processes = [
        subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env, start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(2)
    ]
    yield processes
    for process in processes:
        os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + 5  # a graceful stop is not what is tested here
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_many_syncs_to_one_app_lose_nothing(workspace, fake_do_server, workers, monkeypatch):
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", False)
    dev = workspace.environments.get(slug="dev")
    connection = Connection.objects.create(workspace=workspace, name="do", token="dop_v1_good")
    app = fake_do_server.add_app("shared", envs=[{"key": "FOREIGN", "value": "keep me", "type": "GENERAL"}])
    count = 8
    for i in range(count):
        secrets.create_folder(dev, "/", f"team{i}")
        secrets.bulk_import(dev, f"/team{i}", {"TOKEN": f"t{i}", "URL": f"u{i}"}, overwrite=True)
        sync = Sync(workspace=workspace, name=f"team-{i}", connection=connection, environment=dev,
                    folder=dev.folders.get(path=f"/team{i}"), app_id=app["id"], app_name="shared",
                    key_schema=f"TEAM{i}_{{{{secretKey}}}}")
        services.create(sync)
    db.close()

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        statuses = list(Sync.objects.values_list("sync_status", flat=True))
        if all(s in ("succeeded", "failed") for s in statuses):
            break
        time.sleep(0.5)
    assert statuses == ["succeeded"] * count, list(Sync.objects.values_list("name", "sync_status", "last_sync_message"))
    envs = fake_do_server.app_envs(app["id"])
    expected = {"FOREIGN"} | {f"TEAM{i}_{k}" for i in range(count) for k in ("TOKEN", "URL")}
    assert set(envs) == expected
    assert {fake_do_server.plaintext(envs[f"TEAM{i}_TOKEN"]["value"]) for i in range(count)} == {f"t{i}" for i in range(count)}
    assert envs["FOREIGN"]["value"] == "keep me"
    # Runs owed at once share one batch (one PUT, one deployment); creations spread over time may take a few.
    assert 1 <= fake_do_server.deployments(app["id"]) < count

"""Provisioning against the fake DigitalOcean: API calls per provision and per
reconciliation pass, and the servers list page with 1,000 servers."""

from collections import Counter

import responses

from bench.common import count_queries, median_time, report, setup_django


def main():
    setup_django()
    from django.conf import settings
    from django.test import Client

    from connections.models import Connection
    from devpilot.models import User
    from devpilot.workspaces import create_workspace
    from provisioning import reconcile, services, steps, tasks
    from provisioning.models import Server, ServerStatus
    from provisioning.schemas import ServerDetails
    from tests.fake_digitalocean import FakeDigitalOcean

    fake = FakeDigitalOcean(per_minute=1_000_000)
    fake.add_token("dop_v1_bench", account={"droplet_limit": 5000, "uuid": "acct-bench"})
    fake.boot_after_gets = 1
    fake.regions[0]["sizes"].append("s-1vcpu-1gb")
    settings.DIGITALOCEAN_API_URL = fake.base_url
    tasks.enqueue_provision = lambda server: None  # the benchmark drives the steps itself
    user = User.objects.create_user("bench-servers@example.com", "bench-password-1")
    workspace = create_workspace(user, "Bench servers")
    connection = Connection.objects.create(workspace=workspace, name="do", token="dop_v1_bench", account_uuid="acct-bench")
    rows = []
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fake.install(rsps)
        server = services.create(workspace, connection, ServerDetails(name="web-0"), region="nyc3",
                                 size="s-1vcpu-1gb", image="ubuntu-24-04-x64")
        before = len(fake.requests)
        while steps.advance(server.pk) is not None and Server.objects.get(pk=server.pk).status != ServerStatus.INSTALLING_AGENT:
            pass
        kinds = Counter(f"{m} {_kind(p)}" for m, p, _ in fake.requests[before:])
        rows.append(("one provision (to waiting for the agent): API calls", sum(kinds.values())))
        rows += [(f"    {kind}", n) for kind, n in sorted(kinds.items())]

        # 1,000 servers whose Droplets exist at DigitalOcean.
        for i in range(1, 1000):
            droplet = connection.client().create_droplet(name=f"web-{i}", region="nyc3", size="s-1vcpu-1gb",
                                                         image="ubuntu-24-04-x64", tags=["devpilot"])
            Server.objects.create(workspace=workspace, connection=connection, name=f"web-{i}", region="nyc3",
                                  size="s-1vcpu-1gb", image="ubuntu-24-04-x64", droplet_id=droplet["id"],
                                  status=ServerStatus.READY)
        Server.objects.filter(pk=server.pk).update(status=ServerStatus.READY)
        before = len(fake.requests)
        reconciled = reconcile.reconcile_all()
        rows.append((f"reconciliation of {reconciled} servers: API calls", len(fake.requests) - before))

    client = Client()
    client.force_login(user)
    url = f"/w/{workspace.slug}/servers/"
    client.get(url)
    with count_queries() as queries:
        assert client.get(url).status_code == 200
    rows.append(("servers list, 1,000 servers: median", f"{median_time(lambda: client.get(url)):.0f} ms"))
    rows.append(("servers list, 1,000 servers: SQL queries", len(queries)))
    report("Provisioning (fake DigitalOcean in-process)", rows)


def _kind(path):
    parts = [p for p in path.split("/") if p and p != "v2" and not p.isdigit() and len(p) < 30 or p in ("keys",)]
    return "/".join(parts)

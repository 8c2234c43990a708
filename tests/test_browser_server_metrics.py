"""In a browser: the server page loads its access and metrics blocks (server-rendered SVG charts, no
console error, axe clean), the period switch works, and a person adds an SSH key in their profile."""

from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from django.utils import timezone

from provisioning import alerts, metrics
from provisioning.models import MemberSshKey, Server, ServerStatus
from tests.conftest import axe_violations, describe_violations, log_in
from tests.test_browser_every_page import _UNREACHABLE_ROW_ACTIONS, PHONE

pytestmark = pytest.mark.browser
GIB = 2**30


@pytest.fixture
def server_with_metrics(workspace):
    now = timezone.now()
    server = Server.objects.create(workspace=workspace, name="web-1", region="nyc3", size="s-1vcpu-1gb",
                                   image="ubuntu-24-04-x64", status=ServerStatus.READY, agent_registered_at=now,
                                   agent_last_seen_at=now, ipv4_public="203.0.113.5", droplet_id=4242,
                                   agent_info={"hostKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKeyOfTheServerForTestsOnly0000000000000",
                                               "sshKeys": []})
    for minute in range(24 * 60, 0, -1):  # a day of heartbeats, a minute apart, CPU busier each hour
        at = now - timedelta(minutes=minute)
        metrics.record(server, metrics.Metrics(
            cpuPercent=float(minute % 60), memoryUsedBytes=GIB, memoryTotalBytes=2 * GIB, diskUsedBytes=20 * GIB,
            diskTotalBytes=50 * GIB, load1=0.4, load5=0.3, load15=0.2, uptimeSeconds=86400), at=at)
        if minute % 5 == 0:
            metrics.compact_server(server, now=at)
    metrics.compact_server(server, now=now)
    return server


def test_the_server_page_draws_the_metrics(page, owner, workspace, server_with_metrics):
    server = server_with_metrics
    alerts.create_rule(workspace, {"kind": "disk_high", "threshold": 30})
    alerts.evaluate()
    log_in(page, owner.email)
    page.wait_for_url(f"**/w/{workspace.slug}/")
    assert "Disk / on web-1 is 40% full" in page.locator("#open-alerts").inner_text()
    page.click("#open-alerts >> text=web-1")
    page.wait_for_selector("#server-metrics svg")
    assert page.locator("#server-metrics svg[role=img]").count() == 4
    assert page.locator("#chart-cpu svg path").count() >= 1
    assert "CPU over the last hour: latest" in page.locator("#chart-cpu figcaption").inner_text()
    connect = page.locator("#server-access").get_by_text("ssh root@203.0.113.5")
    connect.wait_for()  # the access block loads on its own, after the charts may have
    assert connect.count() == 1
    assert page.locator("#host-key-fingerprint").inner_text().startswith("SHA256:")
    violations = describe_violations(page.url, axe_violations(page))
    page.click("#server-metrics button:has-text('The last day')")
    page.wait_for_selector("#server-metrics button[aria-pressed=true]:has-text('The last day')")
    assert "CPU over the last day" in page.locator("#chart-cpu figcaption").inner_text()
    page.click("#server-metrics button:has-text('The last 30 days')")
    page.wait_for_selector("#server-metrics button[aria-pressed=true]:has-text('The last 30 days')")
    assert "hourly averages" in page.locator("#server-metrics").inner_text()
    violations += describe_violations(page.url + " (30 days)", axe_violations(page))
    assert not violations, "\n".join(violations)


def test_a_person_adds_an_ssh_key_in_their_profile_and_gets_access(page, owner, workspace, server_with_metrics):
    key = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode() + " owner@laptop"
    log_in(page, owner.email)
    page.wait_for_url(f"**/w/{workspace.slug}/")
    page.click("text=Security")
    page.click("text=SSH keys")
    page.wait_for_selector("h1:has-text('Your SSH keys')")
    page.fill("#key-public", "ssh-ed25519 nonsense")
    page.click("button:has-text('Add key')")
    page.wait_for_selector("text=This is not an SSH public key")
    page.fill("#key-public", key)
    page.click("button:has-text('Add key')")
    fingerprint = MemberSshKey.objects.get().fingerprint
    page.wait_for_selector(f"text={fingerprint}")
    violations = describe_violations(page.url, axe_violations(page))
    # The admin (here: the owner) gives themself access on the server page.
    page.goto(f"/w/{workspace.slug}/servers/{server_with_metrics.pk}/")
    page.wait_for_selector("#server-access select#access-member")
    page.click("button:has-text('Give SSH access')")
    page.wait_for_selector(f"#server-access >> text={fingerprint}")
    assert page.locator("#server-access").get_by_text("Add 1 SSH key to root's authorized_keys").count() == 1
    violations += describe_violations(page.url, axe_violations(page))
    page.goto(f"/w/{workspace.slug}/settings/alerts/")
    page.fill("#rule-threshold", "85")
    page.click("button:has-text('Add rule')")
    page.wait_for_selector("td:has-text('CPU above 85% for 5 minutes')")
    violations += describe_violations(page.url, axe_violations(page))
    assert not violations, "\n".join(violations)
    # On a phone, every row action (remove access, delete a key, turn a rule off) is within reach.
    page.set_viewport_size(PHONE)
    for url in (f"/w/{workspace.slug}/servers/{server_with_metrics.pk}/", "/accounts/ssh-keys/",
                f"/w/{workspace.slug}/settings/alerts/"):
        page.goto(url)
        page.wait_for_load_state("networkidle")
        assert page.evaluate(_UNREACHABLE_ROW_ACTIONS) == [], url

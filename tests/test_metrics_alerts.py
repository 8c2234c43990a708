"""Metrics are downsampled so a server's rows stay bounded, drawn as accessible SVG; alert rules fire
and resolve, emailing admins and showing on the Overview while open."""

from datetime import datetime, timedelta, timezone as dt_timezone

import pytest
from django.core import mail
from django.utils import timezone

from devpilot.errors import Invalid
from devpilot.models import Role
from devpilot.templatetags.devpilot import audit_sentence_text
from provisioning import alerts, metrics
from provisioning.models import Alert, AlertRule, MetricSample, PowerState, Server, ServerStatus

T0 = datetime(2026, 11, 1, 0, 0, tzinfo=dt_timezone.utc)
GIB = 2**30


@pytest.fixture
def server(workspace):
    return Server.objects.create(workspace=workspace, name="web-1", region="nyc3", size="s-1vcpu-1gb",
                                 image="ubuntu-24-04-x64", status=ServerStatus.READY, agent_registered_at=T0,
                                 agent_last_seen_at=T0, ipv4_public="203.0.113.5")


def reading(cpu=10.0, disk_used=10 * GIB, memory_used=GIB, load=0.5) -> metrics.Metrics:
    return metrics.Metrics(cpuPercent=cpu, memoryUsedBytes=memory_used, memoryTotalBytes=2 * GIB,
                           diskUsedBytes=disk_used, diskTotalBytes=50 * GIB, load1=load, load5=load, load15=load,
                           uptimeSeconds=1000)


def rows(server, tier=None):
    samples = MetricSample.objects.filter(server=server)
    return samples.filter(resolution=tier).count() if tier is not None else samples.count()


# --- Downsampling and retention ------------------------------------------------------------------


def test_finished_buckets_are_averaged_once(server):
    for minute, cpu in enumerate([10, 20, 30, 40, 50, 60, 70]):  # 00:00 .. 00:06
        metrics.record(server, reading(cpu=cpu, load=minute), at=T0 + timedelta(minutes=minute))
    metrics.compact_server(server, now=T0 + timedelta(minutes=7))
    (first,) = MetricSample.objects.filter(server=server, resolution=metrics.FIVE_MINUTES)
    assert first.at == T0 and first.cpu_percent == 30 and first.load1 == 2  # 00:00-00:04; 00:05 is not finished
    assert first.memory_used == GIB and isinstance(first.memory_used, int)
    metrics.compact_server(server, now=T0 + timedelta(minutes=9))
    assert rows(server, metrics.FIVE_MINUTES) == 1  # idempotent
    metrics.compact_server(server, now=T0 + timedelta(minutes=10))
    assert list(MetricSample.objects.filter(server=server, resolution=metrics.FIVE_MINUTES)
                .values_list("cpu_percent", flat=True)) == [30, 65]
    metrics.compact_server(server, now=T0 + timedelta(hours=1))
    (hour,) = MetricSample.objects.filter(server=server, resolution=metrics.HOUR)
    assert hour.at == T0 and hour.cpu_percent == pytest.approx((30 + 65) / 2)


def test_a_chatty_agent_does_not_grow_storage(server):
    for second in range(0, 600, 5):
        metrics.record(server, reading(), at=T0 + timedelta(seconds=second))
    assert rows(server, metrics.RAW) == 11  # one per 55 s at most: 0, 55, ... 550


def test_storage_stays_within_the_bound_over_weeks(server):
    """Six hours of heartbeats with the 5-minute compaction, on top of 40 days of older averages."""
    start = T0 + timedelta(days=40)
    MetricSample.objects.bulk_create(
        [MetricSample(server=server, resolution=metrics.HOUR, at=T0 + timedelta(hours=h), **averages())
         for h in range(40 * 24)]
        + [MetricSample(server=server, resolution=metrics.FIVE_MINUTES, at=start - timedelta(minutes=5 * i), **averages())
           for i in range(1, 3 * 24 * 12)])
    now = start
    for minute in range(6 * 60):
        now = start + timedelta(minutes=minute)
        metrics.record(server, reading(cpu=minute % 100), at=now)
        if minute % 5 == 0:
            metrics.compact_server(server, now=now)
    assert rows(server, metrics.RAW) <= 121  # 2 hours at one a minute
    assert rows(server, metrics.FIVE_MINUTES) <= 2 * 24 * 12 + 1
    assert rows(server, metrics.HOUR) <= 31 * 24 + 1
    assert rows(server) <= metrics.ROW_BOUND == 1453
    oldest = MetricSample.objects.filter(server=server).order_by("at").first().at
    assert oldest >= now - timedelta(days=31)
    # The 6 hours just recorded were averaged into the hour tier, not lost.
    assert MetricSample.objects.filter(server=server, resolution=metrics.HOUR, at__gte=start).count() == 5


def averages():
    return {"cpu_percent": 5.0, "memory_used": GIB, "memory_total": 2 * GIB, "disk_used": GIB, "disk_total": 50 * GIB,
            "load1": 0.1, "load5": 0.1, "load15": 0.1}


def test_the_schedule_runs_compaction_expiry_and_alerts():
    from devpilot.schedules import SCHEDULES

    assert {("provisioning.metrics.compact", 5), ("provisioning.commands.expire_overdue", 1),
            ("provisioning.alerts.evaluate", 1)} <= set(SCHEDULES)


# --- Charts --------------------------------------------------------------------------------------


def test_charts_are_svg_with_a_title_a_description_and_a_text_summary(server, workspace, owner, client_for):
    now = timezone.now()
    for minute in range(30):
        metrics.record(server, reading(cpu=20 + minute, disk_used=25 * GIB), at=now - timedelta(minutes=30 - minute))
    page = client_for(owner).get(f"/w/{workspace.slug}/servers/{server.pk}/metrics/")
    html = page.content.decode()
    assert page.status_code == 200 and html.count("<svg") == 4 and html.count('<path d="M ') == 4
    assert '<title id="chart-cpu-title">CPU, the last hour</title>' in html
    assert "CPU over the last hour: latest 49.0%, average 34.5%, peak 49.0%." in html
    assert "25.0 GiB of 50.0 GiB in use now." in html  # disk, in the figure caption as text too
    assert 'aria-labelledby="chart-disk-title chart-disk-desc"' in html
    day = client_for(owner).get(f"/w/{workspace.slug}/servers/{server.pk}/metrics/?range=day").content.decode()
    assert "no data for the last day yet" in day  # 5-minute averages come with compaction
    metrics.compact_server(server)
    day = client_for(owner).get(f"/w/{workspace.slug}/servers/{server.pk}/metrics/?range=day").content.decode()
    assert "CPU over the last day: latest" in day and 'aria-pressed="true"' in day
    month = client_for(owner).get(f"/w/{workspace.slug}/servers/{server.pk}/metrics/?range=month").content.decode()
    assert "the last 30 days" in month


def test_a_gap_in_reporting_breaks_the_line(server):
    now = timezone.now()
    for minute in (50, 49, 48, 10, 9):
        metrics.record(server, reading(), at=now - timedelta(minutes=minute))
    cpu = metrics.charts(server, "hour", now)[0]
    assert len(cpu.paths) == 2


# --- Alert rules ---------------------------------------------------------------------------------


def test_rules_are_checked_and_managed_by_admins(workspace, owner, make_member, client_for):
    url = f"/w/{workspace.slug}/settings/alerts/"
    admin = client_for(owner)
    refused = admin.post(url, {"kind": "cpu_high", "threshold": "150", "minutes": "5"})
    assert refused.status_code == 200 and 'value="150"' in refused.content.decode()
    assert "less than or equal to 99" in refused.content.decode()
    missing = admin.post(url, {"kind": "agent_offline", "threshold": "", "minutes": ""})
    assert "how many minutes" in missing.content.decode()
    admin.post(url, {"kind": "cpu_high", "threshold": "80", "minutes": "5"})
    admin.post(url, {"kind": "disk_high", "threshold": "90", "minutes": "5"})
    page = admin.get(url).content.decode()
    assert "CPU above 80% for 5 minutes" in page and "Disk above 90%" in page
    assert AlertRule.objects.get(kind="disk_high").minutes is None
    rule = AlertRule.objects.get(kind="cpu_high")
    admin.post(f"{url}{rule.pk}/", {"action": "disable"})
    rule.refresh_from_db()
    assert not rule.enabled
    member = client_for(make_member(workspace, Role.MEMBER))
    assert member.get(url).status_code == 200 and "Add a rule" not in member.get(url).content.decode()
    assert member.post(url, {"kind": "disk_high", "threshold": "50"}).status_code == 403
    assert member.post(f"{url}{rule.pk}/", {"action": "delete"}).status_code == 403
    admin.post(f"{url}{rule.pk}/", {"action": "delete"})
    assert AlertRule.objects.count() == 1
    sentences = [audit_sentence_text(e) for e in workspace.audit_events.filter(action__startswith="alert_rule")]
    assert "owner@example.com added the alert rule \u201cCPU above 80% for 5 minutes\u201d" in sentences
    assert "owner@example.com turned off the alert rule \u201cCPU above 80% for 5 minutes\u201d" in sentences
    assert "owner@example.com deleted the alert rule \u201cCPU above 80% for 5 minutes\u201d" in sentences


def test_a_cpu_alert_fires_emails_admins_shows_on_the_overview_and_resolves(server, workspace, owner, make_member,
                                                                           client_for):
    make_member(workspace, Role.ADMIN, "ada@example.com")
    make_member(workspace, Role.MEMBER, "mo@example.com")
    rule = alerts.create_rule(workspace, {"kind": "cpu_high", "threshold": 80, "minutes": 5})
    now = timezone.now()
    for minute in range(3, -1, -1):  # 4 minutes of 95% (each sample: the minute before it): not long enough yet
        metrics.record(server, reading(cpu=95), at=now - timedelta(minutes=minute))
    assert alerts.evaluate(now) == {"opened": 0, "resolved": 0}
    later = now + timedelta(minutes=2)
    metrics.record(server, reading(cpu=97), at=now + timedelta(minutes=1))
    metrics.record(server, reading(cpu=96), at=later)
    assert alerts.evaluate(later) == {"opened": 1, "resolved": 0}
    assert alerts.evaluate(later) == {"opened": 0, "resolved": 0}  # one alert, one email, however often it runs
    (alert,) = Alert.objects.filter(resolved_at__isnull=True)
    assert alert.message.startswith("CPU on web-1 has been above 80% for 5 minutes")
    (fired,) = mail.outbox
    assert sorted(fired.to) == ["ada@example.com", "owner@example.com"]  # admins and owners, not members
    assert fired.subject == "Acme: Alert: web-1: CPU above 80% for 5 minutes"
    assert f"/w/{workspace.slug}/servers/{server.pk}/" in fired.body
    overview = client_for(owner).get(f"/w/{workspace.slug}/").content.decode()
    assert 'id="open-alerts"' in overview and alert.message in overview
    assert alert.message in client_for(owner).get(f"/w/{workspace.slug}/servers/{server.pk}/metrics/").content.decode()

    cooled = later + timedelta(minutes=1)
    metrics.record(server, reading(cpu=12), at=cooled)
    assert alerts.evaluate(cooled) == {"opened": 0, "resolved": 1}
    alert.refresh_from_db()
    assert alert.resolved_at == cooled
    resolved = mail.outbox[1]
    assert resolved.subject == "Acme: Resolved: web-1: CPU above 80% for 5 minutes" and "The condition cleared." in resolved.body
    assert 'id="open-alerts"' not in client_for(owner).get(f"/w/{workspace.slug}/").content.decode()
    sentences = [audit_sentence_text(e) for e in workspace.audit_events.filter(action__startswith="alert.")]
    assert "Devpilot opened an alert on the server web-1: CPU above 80% for 5 minutes" in sentences
    assert "Devpilot resolved the alert on the server web-1: CPU above 80% for 5 minutes" in sentences
    assert rule.alerts.count() == 1


def test_disk_and_agent_offline_alerts(server, workspace):
    disk = alerts.create_rule(workspace, {"kind": "disk_high", "threshold": 80})
    offline = alerts.create_rule(workspace, {"kind": "agent_offline", "minutes": 10})
    now = timezone.now()
    Server.objects.filter(pk=server.pk).update(agent_last_seen_at=now - timedelta(minutes=11))
    metrics.record(server, reading(disk_used=45 * GIB), at=now - timedelta(minutes=11))  # 90% full, 11 minutes ago
    assert alerts.evaluate(now) == {"opened": 1, "resolved": 0}
    assert Alert.objects.get().rule == offline  # the disk reading is too old to speak for now
    metrics.record(server, reading(disk_used=45 * GIB), at=now)
    Server.objects.filter(pk=server.pk).update(agent_last_seen_at=now)
    assert alerts.evaluate(now) == {"opened": 1, "resolved": 1}
    assert Alert.objects.get(resolved_at__isnull=True).rule == disk
    assert "90% full" in Alert.objects.get(resolved_at__isnull=True).message
    # A powered-off server is not judged (its agent is silent by design); on again, it is.
    Server.objects.filter(pk=server.pk).update(power_state=PowerState.OFF)
    assert alerts.evaluate(now) == {"opened": 0, "resolved": 1}
    assert "web-1 is powered off" in mail.outbox[-1].body
    Server.objects.filter(pk=server.pk).update(power_state=PowerState.ACTIVE)
    assert alerts.evaluate(now) == {"opened": 1, "resolved": 0}
    # A destroyed (archived) server's alerts close; it is watched no more.
    Server.objects.filter(pk=server.pk).update(status=ServerStatus.DESTROYED, archived_at=now)
    assert alerts.evaluate(now) == {"opened": 0, "resolved": 1}
    assert not Alert.objects.filter(resolved_at__isnull=True).exists()
    assert "web-1 was destroyed." in mail.outbox[-1].body


def test_rule_input_is_one_definition(workspace):
    with pytest.raises(Invalid, match="percentage"):
        alerts.create_rule(workspace, {"kind": "disk_high"})
    with pytest.raises(Invalid, match="at most 120 minutes"):
        alerts.create_rule(workspace, {"kind": "cpu_high", "threshold": 50, "minutes": 500})
    with pytest.raises(Invalid):
        alerts.create_rule(workspace, {"kind": "cpu_high", "threshold": "50", "minutes": 5})  # strict: not a string
    assert not AlertRule.objects.exists()


# --- The same through the JSON API ---------------------------------------------------------------


def test_metrics_rules_and_alerts_in_the_api(server, workspace, api, api_client_for):
    now = timezone.now()
    for minute in range(3, 0, -1):
        metrics.record(server, reading(cpu=50 + minute, disk_used=45 * GIB), at=now - timedelta(minutes=minute))
    samples = api.get(f"/api/v1/servers/{server.pk}/metrics", {"range": "hour"}).json()
    assert samples["resolutionSeconds"] == 55 and [s["cpuPercent"] for s in samples["samples"]] == [53, 52, 51]
    assert api.get(f"/api/v1/servers/{server.pk}/metrics", {"range": "week"}).status_code == 400
    assert api.get(f"/api/v1/servers/{server.pk}/metrics", {"range": "day"}).json()["samples"] == []

    refused = api.post("/api/v1/alert-rules", {"kind": "disk_high"})
    assert refused.status_code == 400 and "percentage" in refused.json()["message"]
    created = api.post("/api/v1/alert-rules", {"kind": "disk_high", "threshold": 80})
    assert created.status_code == 201 and created.json()["alertRule"]["description"] == "Disk above 80%"
    viewer = api_client_for(workspace, Role.VIEWER)
    assert viewer.post("/api/v1/alert-rules", {"kind": "disk_high", "threshold": 50}).status_code == 403
    assert [r["kind"] for r in viewer.get("/api/v1/alert-rules").json()["alertRules"]] == ["disk_high"]
    alerts.evaluate()
    (alert,) = viewer.get("/api/v1/alerts").json()["alerts"]
    assert alert["serverName"] == "web-1" and "90% full" in alert["message"] and alert["resolvedAt"] is None
    rule_id = created.json()["alertRule"]["id"]
    assert api.delete(f"/api/v1/alert-rules/{rule_id}").status_code == 200
    assert api.get("/api/v1/alerts").json()["alerts"] == [] and not AlertRule.objects.exists()

"""Alert rules per workspace, evaluated every minute: a rule firing for a server opens an Alert,
the condition clearing resolves it; the workspace's admins and owners get an email each time."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Min
from django.urls import reverse
from django.utils import timezone
from pydantic import Field, model_validator

from devpilot import audit
from devpilot.accounts import clean_header
from devpilot.errors import Invalid
from devpilot.models import Membership, Role, Workspace
from devpilot.schemas import Strict, parse
from provisioning import metrics
from provisioning.models import Alert, AlertKind, AlertRule, MetricSample, PowerState, Server, ServerStatus

# Servers that cannot be judged: gone, going, archived or powered off (an off server's agent is silent).
NOT_WATCHED = (ServerStatus.DESTROYING, ServerStatus.DESTROYED, ServerStatus.DELETED_OUTSIDE, ServerStatus.OFF)
DISK_FRESHNESS = timedelta(minutes=10)  # a disk reading older than this says nothing about now
MAX_CPU_MINUTES = 120  # raw samples are kept 2 hours (provisioning/metrics.py)
COVERAGE_SLACK = timedelta(seconds=90)  # the oldest sample in the window may be a heartbeat late


class AlertRuleInput(Strict):
    """One definition of a valid rule, for the settings page (and any later API)."""

    kind: Literal["cpu_high", "disk_high", "agent_offline"]  # AlertKind's values
    threshold: int | None = Field(default=None, ge=1, le=99)
    minutes: int | None = Field(default=None, ge=1, le=1440)
    enabled: bool = True

    @model_validator(mode="after")
    def _fields_of_the_kind(self) -> AlertRuleInput:
        if self.kind in (AlertKind.CPU_HIGH, AlertKind.DISK_HIGH) and self.threshold is None:
            raise Invalid.for_field("threshold", "Give the percentage above which the alert fires (1–99).")
        if self.kind in (AlertKind.CPU_HIGH, AlertKind.AGENT_OFFLINE) and self.minutes is None:
            raise Invalid.for_field("minutes", "Give how many minutes the condition must last.")
        if self.kind == AlertKind.CPU_HIGH and self.minutes and self.minutes > MAX_CPU_MINUTES:
            raise Invalid.for_field("minutes", f"A CPU alert can look back at most {MAX_CPU_MINUTES} minutes.")
        if self.kind == AlertKind.DISK_HIGH:
            self.minutes = None
        if self.kind == AlertKind.AGENT_OFFLINE:
            self.threshold = None
        return self


def describe(rule: AlertRule) -> str:
    if rule.kind == AlertKind.CPU_HIGH:
        return f"CPU above {rule.threshold}% for {rule.minutes} minute{'s' if rule.minutes != 1 else ''}"
    if rule.kind == AlertKind.DISK_HIGH:
        return f"Disk above {rule.threshold}%"
    return f"Agent offline for {rule.minutes} minute{'s' if rule.minutes != 1 else ''}"


# --- Managing rules (admins) ---------------------------------------------------------------------


def create_rule(workspace: Workspace, data: dict, *, request=None) -> AlertRule:
    checked = parse(AlertRuleInput, data)
    rule = AlertRule.objects.create(workspace=workspace, **checked.model_dump())
    audit.record(workspace, "alert_rule.created", request=request, target=rule)
    return rule


def set_enabled(rule: AlertRule, enabled: bool, *, request=None) -> AlertRule:
    if rule.enabled != enabled:
        rule.enabled = enabled
        rule.save(update_fields=["enabled"])
        if not enabled:
            rule.alerts.filter(resolved_at__isnull=True).update(resolved_at=timezone.now())
        audit.record(rule.workspace, "alert_rule.enabled" if enabled else "alert_rule.disabled", request=request,
                     target=rule)
    return rule


def delete_rule(rule: AlertRule, *, request=None) -> None:
    audit.record(rule.workspace, "alert_rule.deleted", request=request, target=rule)
    rule.delete()


def open_alerts(workspace: Workspace):
    return (Alert.objects.filter(rule__workspace=workspace, resolved_at__isnull=True)
            .select_related("server", "rule").order_by("-opened_at"))


# --- Evaluation ----------------------------------------------------------------------------------


def firing(rule: AlertRule, server: Server, now: datetime) -> str | None:
    """The alert's message when the rule's condition holds for the server now, else None."""
    if rule.kind == AlertKind.CPU_HIGH:
        return _cpu_high(rule, server, now)
    if rule.kind == AlertKind.DISK_HIGH:
        return _disk_high(rule, server, now)
    return _agent_offline(rule, server, now)


def _cpu_high(rule: AlertRule, server: Server, now: datetime) -> str | None:
    window = MetricSample.objects.filter(server=server, resolution=metrics.RAW,
                                         at__gte=now - timedelta(minutes=rule.minutes))
    seen = window.aggregate(lowest=Min("cpu_percent"), oldest=Min("at"))
    if seen["oldest"] is None or seen["oldest"] > now - timedelta(minutes=rule.minutes) + COVERAGE_SLACK:
        return None  # not enough samples to say it lasted that long
    if seen["lowest"] <= rule.threshold:
        return None
    return f"CPU on {server.name} has been above {rule.threshold}% for {rule.minutes} minutes (lowest {seen['lowest']:.0f}%)."


def _disk_high(rule: AlertRule, server: Server, now: datetime) -> str | None:
    latest = (MetricSample.objects.filter(server=server, resolution=metrics.RAW, at__gte=now - DISK_FRESHNESS)
              .order_by("-at").first())
    if latest is None or not latest.disk_total:
        return None
    used = 100 * latest.disk_used / latest.disk_total
    if used <= rule.threshold:
        return None
    return f"Disk / on {server.name} is {used:.0f}% full (above {rule.threshold}%)."


def _agent_offline(rule: AlertRule, server: Server, now: datetime) -> str | None:
    if not server.agent_registered_at or server.agent_last_seen_at is None:
        return None
    if now - server.agent_last_seen_at < timedelta(minutes=rule.minutes):
        return None
    return (f"The agent of {server.name} has not sent a heartbeat for {rule.minutes} minutes "
            f"(last at {timezone.localtime(server.agent_last_seen_at):%Y-%m-%d %H:%M %Z}).")


def evaluate(now: datetime | None = None) -> dict[str, int]:
    """Scheduled every minute (devpilot/schedules.py). Returns how many alerts opened and resolved."""
    now = now or timezone.now()
    counts = {"opened": 0, "resolved": 0}
    for rule in AlertRule.objects.filter(enabled=True).select_related("workspace"):
        servers = Server.objects.live().filter(workspace=rule.workspace).exclude(status__in=NOT_WATCHED)
        watched = {s.pk: s for s in servers.exclude(power_state=PowerState.OFF)}
        open_by_server = {a.server_id: a for a in rule.alerts.filter(resolved_at__isnull=True).select_related("server")}
        for server in watched.values():
            message = firing(rule, server, now)
            if message and server.pk not in open_by_server:
                counts["opened"] += _open(rule, server, message)
            elif not message and server.pk in open_by_server:
                counts["resolved"] += _resolve(open_by_server[server.pk], now, "The condition cleared.")
        for server_id, alert in open_by_server.items():
            if server_id not in watched:
                counts["resolved"] += _resolve(alert, now, _not_watched(alert.server))
    return counts


def _not_watched(server: Server) -> str:
    if server.power_state == PowerState.OFF:
        return f"{server.name} is powered off; it is not watched until it is on again."
    if server.is_archived:
        return f"{server.name} was destroyed."
    return f"{server.name} is {server.get_status_display().lower()}; it is not watched."


def _open(rule: AlertRule, server: Server, message: str) -> int:
    try:
        with transaction.atomic():
            alert = Alert.objects.create(rule=rule, server=server, message=message)
            audit.record(rule.workspace, "alert.opened", target=server, rule=describe(rule))
    except IntegrityError:  # opened by a concurrent evaluation
        return 0
    _email(rule.workspace, f"Alert: {server.name}: {describe(rule)}",
           f"{message}\n\nOpened at {timezone.localtime(alert.opened_at):%Y-%m-%d %H:%M %Z}.", server)
    return 1


def _resolve(alert: Alert, now: datetime, why: str) -> int:
    if not Alert.objects.filter(pk=alert.pk, resolved_at__isnull=True).update(resolved_at=now):
        return 0
    audit.record(alert.rule.workspace, "alert.resolved", target=alert.server, rule=describe(alert.rule))
    _email(alert.rule.workspace, f"Resolved: {alert.server.name}: {describe(alert.rule)}",
           f"{why}\n\nThe alert \"{alert.message}\" was open from "
           f"{timezone.localtime(alert.opened_at):%Y-%m-%d %H:%M} to {timezone.localtime(now):%Y-%m-%d %H:%M %Z}.",
           alert.server)
    return 1


def _email(workspace: Workspace, subject: str, body: str, server: Server) -> None:
    admins = list(Membership.objects.filter(workspace=workspace, role__in=[Role.ADMIN, Role.OWNER])
                  .values_list("user__email", flat=True))
    if not admins:
        return
    link = settings.DEVPILOT_PUBLIC_URL + reverse("server_detail", kwargs={"ws": workspace.slug, "server_id": server.pk})
    send_mail(clean_header(f"{workspace.name}: {subject}"), f"{body}\n\n{link}\n", None, admins)


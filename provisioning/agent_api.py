"""The agent's work in the JSON API: who may SSH into a server, its agent's commands, its metrics,
and the workspace's alert rules and alerts. Thin adapters over access.py, metrics.py and alerts.py."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Query, Router, Status
from pydantic import Field

from devpilot.api import answers, iso, token
from devpilot.errors import Invalid
from devpilot.schemas import Out, Strict
from provisioning import access, alerts, commands, metrics
from provisioning.models import Alert, AlertRule, Server

router = Router(tags=["Servers"])
ONE = "/v1/servers/{uuid:server_id}"


# --- Schemas -------------------------------------------------------------------------------------


class AccessGrantIn(Strict):
    email: str = Field(min_length=3, max_length=254)


class MemberKeyOut(Out):
    id: str
    name: str
    fingerprint: str


class AccessOut(Out):
    userId: int
    email: str
    keys: list[MemberKeyOut]


class ServerAccessEnvelope(Out):
    sshCommand: str | None
    hostKeyFingerprint: str | None
    access: list[AccessOut]


class CommandOut(Out):
    id: str
    kind: str
    description: str
    state: Literal["pending", "sent", "done", "failed"]
    error: str | None
    createdAt: str | None
    sentAt: str | None
    finishedAt: str | None


class CommandsEnvelope(Out):
    commands: list[CommandOut]


class MetricsQuery(Strict):
    range: Literal["hour", "day", "month"] = "hour"


class SampleOut(Out):
    at: str | None
    cpuPercent: float
    memoryUsedBytes: int
    memoryTotalBytes: int
    diskUsedBytes: int
    diskTotalBytes: int
    load1: float
    load5: float
    load15: float


class MetricsEnvelope(Out):
    range: str
    resolutionSeconds: int
    samples: list[SampleOut]


class AlertRuleOut(Out):
    id: int
    kind: str
    threshold: int | None
    minutes: int | None
    enabled: bool
    description: str


class AlertRuleEnvelope(Out):
    alertRule: AlertRuleOut


class AlertRulesEnvelope(Out):
    alertRules: list[AlertRuleOut]


class AlertOut(Out):
    id: int
    ruleId: int
    serverId: str
    serverName: str
    message: str
    openedAt: str | None
    resolvedAt: str | None


class AlertsEnvelope(Out):
    alerts: list[AlertOut]


# --- Helpers -------------------------------------------------------------------------------------


def _server(request: HttpRequest, server_id: UUID) -> Server:
    return get_object_or_404(Server.objects.live(), workspace=request.workspace, pk=server_id)  # type: ignore[attr-defined]


def _access_json(server: Server) -> dict:
    return {
        "sshCommand": f"ssh root@{server.ipv4_public}" if server.ipv4_public else None,
        "hostKeyFingerprint": access.host_key_fingerprint(server) or None,
        "access": [{"userId": m.user_id, "email": m.user.email,
                    "keys": [{"id": str(k.pk), "name": k.name, "fingerprint": k.fingerprint}
                             for k in m.user.ssh_public_keys.all()]}
                   for m in access.members_with_access(server)],
    }


def _rule_json(rule: AlertRule) -> dict:
    return {"id": rule.pk, "kind": rule.kind, "threshold": rule.threshold, "minutes": rule.minutes,
            "enabled": rule.enabled, "description": alerts.describe(rule)}


def _alert_json(alert: Alert) -> dict:
    return {"id": alert.pk, "ruleId": alert.rule_id, "serverId": str(alert.server_id), "serverName": alert.server.name,
            "message": alert.message, "openedAt": iso(alert.opened_at), "resolvedAt": iso(alert.resolved_at)}


# --- Access --------------------------------------------------------------------------------------


@router.get(ONE + "/access", auth=token(), response=answers(ServerAccessEnvelope))
def get_access(request: HttpRequest, server_id: UUID) -> dict:
    """Who may SSH into the server with their own keys, how to connect, and the host key's fingerprint."""
    return _access_json(_server(request, server_id))


@router.post(ONE + "/access", auth=token("servers.manage"), response=answers(ServerAccessEnvelope, 201))
def grant_access(request: HttpRequest, server_id: UUID, payload: AccessGrantIn) -> Status:
    """Let a member of the workspace SSH in: the agent adds their profile's keys to root's authorized_keys."""
    server = _server(request, server_id)
    membership = request.workspace.memberships.select_related("user").filter(  # type: ignore[attr-defined]
        user__email__iexact=payload.email.strip()).first()
    if membership is None:
        raise Invalid.for_field("email", "email does not name a member of this workspace.")
    access.grant(server, membership.user, request=request)
    return Status(201, _access_json(server))


@router.delete(ONE + "/access/{int:user_id}", auth=token("servers.manage"), response=answers(ServerAccessEnvelope))
def revoke_access(request: HttpRequest, server_id: UUID, user_id: int) -> dict:
    """Take a member's access away: the agent removes their keys from the server."""
    server = _server(request, server_id)
    membership = get_object_or_404(request.workspace.memberships.select_related("user"), user_id=user_id)  # type: ignore[attr-defined]
    access.revoke(server, membership.user, request=request)
    return _access_json(server)


# --- Commands and metrics ------------------------------------------------------------------------


@router.get(ONE + "/agent-commands", auth=token(), response=answers(CommandsEnvelope))
def list_commands(request: HttpRequest, server_id: UUID) -> dict:
    """The server's latest 50 agent commands, newest first, with their state and any failure's reason."""
    server = _server(request, server_id)
    return {"commands": [{"id": str(c.pk), "kind": c.kind, "description": commands.describe(c), "state": c.state,
                          "error": c.error or None, "createdAt": iso(c.created_at), "sentAt": iso(c.sent_at),
                          "finishedAt": iso(c.finished_at)} for c in access.recent_commands(server, 50)]}


@router.get(ONE + "/metrics", auth=token(), response=answers(MetricsEnvelope))
def get_metrics(request: HttpRequest, server_id: UUID, q: Query[MetricsQuery]) -> dict:
    """Samples for the last hour (raw), day (5-minute averages) or 30 days (hourly averages)."""
    server = get_object_or_404(Server, workspace=request.workspace, pk=server_id)  # type: ignore[attr-defined]
    return {"range": q.range, "resolutionSeconds": metrics.RANGES[q.range].tier or metrics.MIN_RAW_SPACING.seconds,
            "samples": [{"at": iso(s.at), "cpuPercent": s.cpu_percent, "memoryUsedBytes": s.memory_used,
                         "memoryTotalBytes": s.memory_total, "diskUsedBytes": s.disk_used,
                         "diskTotalBytes": s.disk_total, "load1": s.load1, "load5": s.load5, "load15": s.load15}
                        for s in metrics.series(server, q.range)]}


# --- Alert rules and alerts ----------------------------------------------------------------------


@router.get("/v1/alert-rules", auth=token(), response=answers(AlertRulesEnvelope))
def list_alert_rules(request: HttpRequest) -> dict:
    return {"alertRules": [_rule_json(r) for r in request.workspace.alert_rules.all()]}  # type: ignore[attr-defined]


@router.post("/v1/alert-rules", auth=token("servers.manage"), response=answers(AlertRuleEnvelope, 201))
def create_alert_rule(request: HttpRequest, payload: alerts.AlertRuleInput) -> Status:
    """{kind: cpu_high|disk_high|agent_offline, threshold?, minutes?, enabled?}"""
    rule = alerts.create_rule(request.workspace, payload.model_dump(), request=request)  # type: ignore[attr-defined]
    return Status(201, {"alertRule": _rule_json(rule)})


@router.delete("/v1/alert-rules/{int:rule_id}", auth=token("servers.manage"), response=answers(AlertRuleEnvelope))
def delete_alert_rule(request: HttpRequest, rule_id: int) -> dict:
    rule = get_object_or_404(AlertRule, workspace=request.workspace, pk=rule_id)  # type: ignore[attr-defined]
    body = {"alertRule": _rule_json(rule)}
    alerts.delete_rule(rule, request=request)
    return body


@router.get("/v1/alerts", auth=token(), response=answers(AlertsEnvelope))
def list_alerts(request: HttpRequest) -> dict:
    """Open alerts, newest first (resolved ones are in the audit log)."""
    return {"alerts": [_alert_json(a) for a in alerts.open_alerts(request.workspace)]}  # type: ignore[attr-defined]

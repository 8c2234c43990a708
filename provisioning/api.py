"""Servers API, and the endpoints the Devpilot agent calls."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.views.decorators.debug import sensitive_variables
from ninja import Query, Router, Status
from ninja.security import HttpBearer

from devpilot.api import answers, iso, token
from devpilot.errors import Invalid, Unauthenticated
from provisioning import agents, lifecycle, services
from provisioning.agent_schemas import AgentChannelOut, AgentCommandOut
from provisioning.models import Server
from provisioning.schemas import (AgentRegistered, FirewallUpdate, ServerAction, ServerCreate, ServerDeleteQuery,
                                  ServerEnvelope, ServersEnvelope, ServersQuery, SizesEnvelope, SnapshotCreate,
                                  SnapshotsEnvelope)

router = Router(tags=["Servers"])
ONE = "/v1/servers/{uuid:server_id}"


def server_json(server: Server) -> dict:
    return {
        "id": str(server.pk), "name": server.name, "status": server.status, "statusMessage": server.status_message or None,
        "statusMessageIsError": server.status_message_is_error, "powerState": server.power_state or None,
        "pendingEvent": server.pending_event, "archivedAt": iso(server.archived_at), "diskGb": server.disk_gb,
        "memoryMb": server.memory_mb, "vcpus": server.vcpus,
        "monthlyCost": float(server.monthly_cost) if server.monthly_cost is not None else None,
        "connectionId": str(server.connection_id) if server.connection_id else None,
        "dropletId": server.droplet_id, "region": server.region, "size": server.size, "image": server.image,
        "priceMonthly": float(server.price_monthly) if server.price_monthly is not None else None,
        "ipv4": server.ipv4_public, "ipv4Private": server.ipv4_private, "ipv6": server.ipv6_address,
        "tags": ["devpilot", f"devpilot:workspace:{server.workspace.slug}", server.tag],
        "firewallId": server.firewall_id or None, "inboundRules": server.inbound_rules,
        "monitoring": server.monitoring, "backups": server.backups,
        "steps": [{"number": s.number, "name": s.label, "status": s.status, "message": s.message or None,
                   "startedAt": iso(s.started_at), "finishedAt": iso(s.finished_at)} for s in server.steps.all()],
        # A destroyed server has no agent: no stale "online" or facts.
        "agent": {"status": "gone with the Droplet", "lastSeenAt": None, "info": {}} if server.is_archived else
                 {"status": server.agent_status, "lastSeenAt": iso(server.agent_last_seen_at), "info": server.agent_info},
        "actionInProgress": server.action_in_progress or None,
        "createdAt": iso(server.created_at), "updatedAt": iso(server.updated_at),
    }


def _server(request: HttpRequest, server_id: UUID) -> Server:
    return get_object_or_404(Server.objects.select_related("workspace").prefetch_related("steps"),
                             workspace=request.workspace, pk=server_id)  # type: ignore[attr-defined]


@router.get("/v1/servers", auth=token(), response=answers(ServersEnvelope))
def list_servers(request: HttpRequest, q: Query[ServersQuery]) -> dict:
    """The workspace's servers; with archived=true, its destroyed servers (the archive) instead."""
    servers = request.workspace.servers  # type: ignore[attr-defined]
    rows = (servers.archived() if q.archived else servers.live()).select_related("workspace").prefetch_related("steps")
    return {"servers": [server_json(s) for s in rows]}


@router.post("/v1/servers", auth=token("servers.manage"), response=answers(ServerEnvelope, 201))
def create_server(request: HttpRequest, payload: ServerCreate) -> Status:
    connection = request.workspace.connections.filter(pk=payload.connectionId).first()  # type: ignore[attr-defined]
    if connection is None:
        raise Invalid.for_field("connectionId", "connectionId does not name a connection of this workspace.")
    server = services.create(request.workspace, connection, payload, region=payload.region,  # type: ignore[attr-defined]
                             size=payload.size, image=payload.image, request=request)
    return Status(201, {"server": server_json(server)})


@router.get(ONE, auth=token(), response=answers(ServerEnvelope))
def get_server(request: HttpRequest, server_id: UUID) -> dict:
    return {"server": server_json(_server(request, server_id))}


@router.delete(ONE, auth=token("servers.manage"), response={**answers(ServerEnvelope), 202: ServerEnvelope})
def delete_server(request: HttpRequest, server_id: UUID, q: Query[ServerDeleteQuery]) -> Any:
    """Destroy the Droplet and its firewall (202, in a worker), or with keepDroplet=true forget the server only."""
    server = _server(request, server_id)
    if q.keepDroplet:
        body = server_json(server)
        services.remove_record(server, request=request)
        return {"server": body}
    lifecycle.request(server, "destroy", request=request)
    server.refresh_from_db()
    return Status(202, {"server": server_json(server)})


@router.post(ONE + "/actions", auth=token("servers.manage"), response=answers(ServerEnvelope, 202))
def server_action(request: HttpRequest, server_id: UUID, payload: ServerAction) -> Status:
    server = _server(request, server_id)
    services.act(server, payload, request=request)
    server.refresh_from_db()
    return Status(202, {"server": server_json(server)})


@router.get(ONE + "/sizes", auth=token(), response=answers(SizesEnvelope))
def resize_sizes(request: HttpRequest, server_id: UUID) -> dict:
    """The sizes a resize action may name: sold in the server's region, with a disk at least as big."""
    server = _server(request, server_id)
    return {"sizes": [services.size_json(s, server.backups) for s in services.resize_options(server)]}


@router.put(ONE + "/firewall", auth=token("servers.manage"), response=answers(ServerEnvelope, 202))
def update_firewall(request: HttpRequest, server_id: UUID, payload: FirewallUpdate) -> Status:
    """Replace the cloud firewall's inbound rules (every other attribute of the firewall is kept)."""
    server = _server(request, server_id)
    services.update_firewall(server, payload, request=request)
    server.refresh_from_db()
    return Status(202, {"server": server_json(server)})


@router.get(ONE + "/snapshots", auth=token(), response=answers(SnapshotsEnvelope))
def list_snapshots(request: HttpRequest, server_id: UUID) -> dict:
    server = _server(request, server_id)
    return {"snapshots": [services.snapshot_json(s) for s in services.snapshots(server)]}


@router.post(ONE + "/snapshots", auth=token("servers.manage"), response=answers(ServerEnvelope, 202))
def take_snapshot(request: HttpRequest, server_id: UUID, payload: SnapshotCreate) -> Status:
    server = _server(request, server_id)
    services.take_snapshot(server, payload.name, request=request)
    server.refresh_from_db()
    return Status(202, {"server": server_json(server)})


@router.delete(ONE + "/snapshots/{droplet_snapshot_id}", auth=token("servers.manage"),
               response=answers(ServerEnvelope, 202))
def delete_snapshot(request: HttpRequest, server_id: UUID, droplet_snapshot_id: str) -> Status:
    """Delete a snapshot of this server's Droplet (DigitalOcean's numeric id, as the list gives it)."""
    server = _server(request, server_id)
    services.delete_snapshot(server, droplet_snapshot_id, request=request)
    server.refresh_from_db()
    return Status(202, {"server": server_json(server)})


# --- The agent's endpoints: authenticated by the agent's own tokens, not workspace API tokens ---


class AgentToken(HttpBearer):
    """The agent's bearer token, checked by the handler itself (registration and credential differ)."""

    @sensitive_variables("token")
    def authenticate(self, request: HttpRequest, token: str) -> str:
        return token

    def __call__(self, request: HttpRequest) -> str:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not token:
            raise Unauthenticated("Send the agent's token as 'Authorization: Bearer <token>'.")
        return token


def _facts(request: HttpRequest) -> dict:
    import json

    try:
        facts = json.loads(request.body or b"{}")
    except ValueError:
        raise Invalid("The body is not valid JSON.") from None
    if not isinstance(facts, dict):
        raise Invalid("The body must be a JSON object.")
    return facts


@router.post("/v1/agent/register", auth=AgentToken(), response=answers(AgentRegistered), tags=["Agent"])
@sensitive_variables("credential")
def agent_register(request: HttpRequest) -> dict:
    server, credential = agents.register(request.auth, _facts(request))  # type: ignore[attr-defined]
    return {"credential": credential, "serverId": str(server.pk), "interval": server.heartbeat_interval}


@router.post("/v1/agent/heartbeat", auth=AgentToken(), response=answers(AgentChannelOut), tags=["Agent"])
def agent_heartbeat(request: HttpRequest) -> dict:
    """The agent's channel: facts and metrics in; the interval and the commands waiting for it out."""
    return agents.exchange(request.auth, _facts(request))  # type: ignore[attr-defined]


@router.post("/v1/agent/command-results", auth=AgentToken(), response=answers(AgentCommandOut), tags=["Agent"])
def agent_command_result(request: HttpRequest) -> dict:
    """The agent's report on a command it was sent: {"id", "ok": true, "result": {...}} or {"id", "ok": false, "error"}."""
    command = agents.acknowledge(request.auth, _facts(request))  # type: ignore[attr-defined]
    return {"id": str(command.pk), "state": command.state}

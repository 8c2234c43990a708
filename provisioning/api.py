"""Servers API, and the endpoints the Devpilot agent calls."""

import json

from django.http import JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt

from devpilot.api import ApiError, api_view, error_response, iso
from devpilot.permissions import can
from provisioning import agents, lifecycle, services
from provisioning.models import Server


def server_json(server):
    return {
        "id": str(server.pk), "name": server.name, "status": server.status, "statusMessage": server.status_message or None,
        "connectionId": str(server.connection_id) if server.connection_id else None,
        "dropletId": server.droplet_id, "region": server.region, "size": server.size, "image": server.image,
        "priceMonthly": float(server.price_monthly) if server.price_monthly is not None else None,
        "ipv4": server.ipv4_public, "ipv4Private": server.ipv4_private, "ipv6": server.ipv6_address,
        "tags": ["devpilot", f"devpilot:workspace:{server.workspace.slug}", server.tag],
        "firewallId": server.firewall_id or None, "inboundRules": server.inbound_rules,
        "monitoring": server.monitoring, "backups": server.backups,
        "steps": [{"number": s.number, "name": s.label, "status": s.status, "message": s.message or None,
                   "startedAt": iso(s.started_at), "finishedAt": iso(s.finished_at)} for s in server.steps.all()],
        "agent": {"status": server.agent_status, "lastSeenAt": iso(server.agent_last_seen_at), "info": server.agent_info},
        "actionInProgress": server.action_in_progress or None,
        "createdAt": iso(server.created_at), "updatedAt": iso(server.updated_at),
    }


def _server(request, server_id):
    return get_object_or_404(Server.objects.select_related("workspace").prefetch_related("steps"),
                             workspace=request.workspace, pk=server_id)


def _require(request, permission):
    if not can(request.role, permission):
        raise ApiError(403, f"This token's role ({request.role}) does not allow this.")


def _rules(body):
    rules = body.get("inboundRules")
    if rules is None:
        return None
    if not isinstance(rules, list):
        raise ApiError(400, "inboundRules must be a list.")
    clean = []
    for rule in rules:
        try:
            protocol = rule.get("protocol", "tcp")
            if protocol not in ("tcp", "udp"):
                raise services.ServerError(f"protocol must be tcp or udp, not {protocol!r}.")
            clean.append({"protocol": protocol, "ports": services.validate_ports(str(rule["ports"])),
                          "sources": list(rule.get("sources") or ["0.0.0.0/0", "::/0"])})
        except (KeyError, AttributeError):
            raise ApiError(400, "Each inbound rule needs ports.", {"inboundRules": ["Give {protocol, ports, sources}."]}) from None
        except services.ServerError as e:
            raise ApiError(400, str(e), {"inboundRules": [str(e)]}) from None
    return clean


@api_view("workspace.read", methods=["GET", "POST"])
def servers(request):
    if request.method == "GET":
        rows = request.workspace.servers.select_related("workspace").prefetch_related("steps")
        return JsonResponse({"servers": [server_json(s) for s in rows]})
    _require(request, "servers.manage")
    body = request.json
    missing = [f for f in ("name", "connectionId", "region", "size", "image") if not body.get(f)]
    if missing:
        raise ApiError(400, "Missing fields.", {f: ["This field is required."] for f in missing})
    connection = request.workspace.connections.filter(pk=body["connectionId"]).first()
    if connection is None:
        raise ApiError(400, "connectionId does not name a connection of this workspace.")
    try:
        server = services.create(
            request.workspace, connection, name=body["name"], region=body["region"], size=body["size"],
            image=body["image"], inbound_rules=_rules(body), extra_public_keys=body.get("sshPublicKeys") or [],
            monitoring=bool(body.get("monitoring", True)), backups=bool(body.get("backups", False)),
            ipv6=bool(body.get("ipv6", False)), request=request)
    except services.ServerError as e:
        raise ApiError(400, str(e)) from None
    return JsonResponse({"server": server_json(server)}, status=201)


@api_view("workspace.read", methods=["GET", "DELETE"])
def server(request, server_id):
    server = _server(request, server_id)
    if request.method == "GET":
        return JsonResponse({"server": server_json(server)})
    _require(request, "servers.manage")
    if request.GET.get("keepDroplet", "false").lower() == "true":
        body = server_json(server)
        services.remove_record(server, request=request)
        return JsonResponse({"server": body})
    try:
        lifecycle.request(server, "destroy", request=request)
    except lifecycle.ActionRefused as e:
        raise ApiError(409, str(e)) from None
    server.refresh_from_db()
    return JsonResponse({"server": server_json(server)}, status=202)


@api_view("servers.manage", methods=["POST"])
def server_actions(request, server_id):
    server = _server(request, server_id)
    kind = request.json.get("type")
    try:
        if kind == "retry":
            services.retry(server, request=request)
        elif kind in lifecycle.ACTIONS and kind != "destroy":
            lifecycle.request(server, kind, size=request.json.get("size"), request=request)
        else:
            raise ApiError(400, "type must be power_on, power_off, reboot, resize, refresh or retry.")
    except (lifecycle.ActionRefused, services.ServerError) as e:
        raise ApiError(409, str(e)) from None
    server.refresh_from_db()
    return JsonResponse({"server": server_json(server)}, status=202)


# --- The agent's endpoints: authenticated by the agent's own tokens, not workspace API tokens ---


def _agent_call(request, handler):
    if request.method != "POST":
        return error_response(405, "Use POST.")
    token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    try:
        facts = json.loads(request.body or b"{}")
    except ValueError:
        return error_response(400, "The body is not valid JSON.")
    try:
        return handler(token, facts if isinstance(facts, dict) else {})
    except agents.AgentError as e:
        return error_response(401, str(e))


@csrf_exempt
def agent_register(request):
    def handle(token, facts):
        server, credential = agents.register(token, facts)
        return JsonResponse({"credential": credential, "serverId": str(server.pk), "interval": server.heartbeat_interval})

    return _agent_call(request, handle)


@csrf_exempt
def agent_heartbeat(request):
    return _agent_call(request, lambda token, facts: JsonResponse({"interval": agents.heartbeat(token, facts)}))

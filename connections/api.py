"""Infisical-compatible App Connections API for DigitalOcean."""

from django.http import JsonResponse
from django.shortcuts import get_object_or_404

from connections import digitalocean, services
from connections.models import Connection, Provider
from devpilot.api import ApiError, api_view, iso, require_workspace_id
from devpilot.permissions import can

PROVIDER = Provider.DIGITALOCEAN


def connection_json(connection):
    return {
        "id": str(connection.pk),
        "name": connection.name,
        "description": connection.description or None,
        "version": connection.version,
        "projectId": str(connection.workspace_id),
        "orgId": str(connection.workspace_id),
        "createdAt": iso(connection.created_at),
        "updatedAt": iso(connection.updated_at),
        "isPlatformManagedCredentials": False,
        "credentialsHash": connection.credentials_hash,
        "app": connection.provider,
        "method": "api-token",
        "credentials": {},
        "status": connection.status,
        "account": {"email": connection.account_email, "team": connection.team_name or None,
                    "dropletLimit": connection.droplet_limit},
    }


def _connection(request, connection_id):
    return get_object_or_404(Connection, workspace=request.workspace, provider=PROVIDER, pk=connection_id)


def _credentials_token(body):
    if body.get("method", "api-token") != "api-token":
        raise ApiError(400, "Only the api-token method is supported.", {"method": ["Use api-token."]})
    credentials = body.get("credentials")
    if not isinstance(credentials, dict) or not str(credentials.get("apiToken") or "").strip():
        raise ApiError(400, "credentials.apiToken is required.", {"credentials.apiToken": ["This field is required."]})
    return str(credentials["apiToken"])


def _errors(fn):
    try:
        return fn()
    except services.AccountChanged as e:
        raise ApiError(409, str(e) + " Send confirmAccountChange: true.") from None
    except services.ConnectionError_ as e:
        raise ApiError(400, str(e)) from None


@api_view("workspace.read", methods=["GET", "POST"])
def connections(request):
    if request.method == "GET":
        rows = request.workspace.connections.filter(provider=PROVIDER)
        return JsonResponse({"appConnections": [connection_json(c) for c in rows]})
    if not _can_manage(request):
        raise ApiError(403, f"This token's role ({request.role}) does not allow managing connections.")
    body = request.json
    require_workspace_id(request, body.get("projectId"))
    if not str(body.get("name") or "").strip():
        raise ApiError(400, "name is required.", {"name": ["This field is required."]})
    token = _credentials_token(body)
    connection = _errors(lambda: services.connect(
        request.workspace, PROVIDER, body["name"], token, body.get("description") or "", request=request))
    return JsonResponse({"appConnection": connection_json(connection)})


def _can_manage(request):
    return can(request.role, "integrations.manage")


@api_view("workspace.read", methods=["GET", "PATCH", "DELETE"])
def connection(request, connection_id):
    conn = _connection(request, connection_id)
    if request.method == "GET":
        return JsonResponse({"appConnection": connection_json(conn)})
    if not _can_manage(request):
        raise ApiError(403, f"This token's role ({request.role}) does not allow managing connections.")
    if request.method == "DELETE":
        body = connection_json(conn)
        services.remove(conn, request=request)
        return JsonResponse({"appConnection": body})
    body = request.json
    if "credentials" in body:
        _errors(lambda: services.rotate(conn, _credentials_token(body),
                                        confirm_account_change=bool(body.get("confirmAccountChange")),
                                        request=request))
    if "name" in body or "description" in body:
        _errors(lambda: services.update_details(conn, name=body.get("name"), description=body.get("description"),
                                                request=request))
    conn.refresh_from_db()
    return JsonResponse({"appConnection": connection_json(conn)})


@api_view("workspace.read", methods=["GET"])
def connection_apps(request, connection_id):
    """Every App Platform app of the account (all pages), or the real error: never an empty list on failure."""
    conn = _connection(request, connection_id)
    try:
        apps = conn.client().list_apps()
    except digitalocean.DigitalOceanError as e:
        status = {401: 401, 403: 403, 404: 404, 429: 429}.get(e.status, 502)
        if isinstance(e, digitalocean.InvalidToken):
            status = 400  # our token is fine; the stored DigitalOcean token is not
        raise ApiError(status, e.message) from None
    return JsonResponse({"apps": [{"id": a["id"], "name": (a.get("spec") or {}).get("name", a["id"])} for a in apps]})

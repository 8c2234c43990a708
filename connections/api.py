"""Infisical-compatible App Connections API for DigitalOcean."""

from __future__ import annotations

from uuid import UUID

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Router

from connections import services
from connections.models import Connection, Provider
from connections.schemas import AppsEnvelope, ConnectionCreate, ConnectionEnvelope, ConnectionsEnvelope, ConnectionUpdate
from devpilot.api import answers, iso, require_workspace, token

router = Router(tags=["App connections"])
PROVIDER = Provider.DIGITALOCEAN
BASE = "/v1/app-connections/digital-ocean"


def connection_json(connection: Connection) -> dict:
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


def _connection(request: HttpRequest, connection_id: UUID) -> Connection:
    return get_object_or_404(Connection, workspace=request.workspace, provider=PROVIDER, pk=connection_id)  # type: ignore[attr-defined]


@router.get(BASE, auth=token(), response=answers(ConnectionsEnvelope))
def list_connections(request: HttpRequest) -> dict:
    rows = request.workspace.connections.filter(provider=PROVIDER)  # type: ignore[attr-defined]
    return {"appConnections": [connection_json(c) for c in rows]}


@router.post(BASE, auth=token("integrations.manage"), response=answers(ConnectionEnvelope))
def create_connection(request: HttpRequest, payload: ConnectionCreate) -> dict:
    if payload.projectId is not None:
        require_workspace(request, payload.projectId)
    connection = services.connect(request.workspace, PROVIDER, payload.name, payload.credentials.apiToken,  # type: ignore[attr-defined]
                                  payload.description, request=request)
    return {"appConnection": connection_json(connection)}


@router.get(BASE + "/{uuid:connection_id}", auth=token(), response=answers(ConnectionEnvelope))
def get_connection(request: HttpRequest, connection_id: UUID) -> dict:
    return {"appConnection": connection_json(_connection(request, connection_id))}


@router.get(BASE + "/connection-name/{connection_name}", auth=token(), response=answers(ConnectionEnvelope))
def get_connection_by_name(request: HttpRequest, connection_name: str) -> dict:
    connection = get_object_or_404(Connection, workspace=request.workspace, provider=PROVIDER,  # type: ignore[attr-defined]
                                   name=connection_name)
    return {"appConnection": connection_json(connection)}


@router.patch(BASE + "/{uuid:connection_id}", auth=token("integrations.manage"), response=answers(ConnectionEnvelope))
def update_connection(request: HttpRequest, connection_id: UUID, payload: ConnectionUpdate) -> dict:
    connection = _connection(request, connection_id)
    if payload.credentials is not None:
        services.rotate(connection, payload.credentials.apiToken,
                        confirm_account_change=payload.confirmAccountChange, request=request)
    if payload.name is not None or payload.description is not None:
        services.update_details(connection, name=payload.name, description=payload.description, request=request)
    connection.refresh_from_db()
    return {"appConnection": connection_json(connection)}


@router.delete(BASE + "/{uuid:connection_id}", auth=token("integrations.manage"), response=answers(ConnectionEnvelope))
def delete_connection(request: HttpRequest, connection_id: UUID) -> dict:
    connection = _connection(request, connection_id)
    body = connection_json(connection)
    services.remove(connection, request=request)
    return {"appConnection": body}


@router.get(BASE + "/{uuid:connection_id}/apps", auth=token(), response=answers(AppsEnvelope))
def list_apps(request: HttpRequest, connection_id: UUID) -> dict:
    """Every App Platform app of the account (all pages), or DigitalOcean's error: never an empty list on failure."""
    apps = _connection(request, connection_id).client().list_apps()
    return {"apps": [{"id": a["id"], "name": (a.get("spec") or {}).get("name", a["id"])} for a in apps]}

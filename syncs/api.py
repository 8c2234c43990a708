"""Infisical-compatible Secret Syncs API for DigitalOcean App Platform."""

from django.http import JsonResponse
from django.shortcuts import get_object_or_404

from devpilot import secrets
from devpilot.api import ApiError, api_view, iso, require_workspace_id
from devpilot.permissions import can
from syncs import keyschema, services
from syncs.forms import DetailsForm
from syncs.models import EnvScope, EnvType, Sync, Trigger

DESTINATION = "digital-ocean-app-platform"


def sync_json(sync):
    return {
        "id": str(sync.pk),
        "name": sync.name,
        "description": sync.description or None,
        "isEnabled": True,
        "isAutoSyncEnabled": sync.auto_sync_enabled,
        "version": sync.version,
        "folderId": str(sync.folder_id),
        "connectionId": str(sync.connection_id) if sync.connection_id else None,
        "createdAt": iso(sync.created_at),
        "updatedAt": iso(sync.updated_at),
        "syncStatus": sync.sync_status or None,
        "lastSyncJobId": str(sync.last_sync_job_id) if sync.last_sync_job_id else None,
        "lastSyncMessage": sync.last_sync_message or None,
        "lastSyncedAt": iso(sync.last_synced_at),
        "removeStatus": sync.remove_status or None,
        "lastRemoveJobId": str(sync.last_remove_job_id) if sync.last_remove_job_id else None,
        "lastRemoveMessage": sync.last_remove_message or None,
        "lastRemovedAt": iso(sync.last_removed_at),
        "syncOptions": {
            "initialSyncBehavior": sync.initial_sync_behavior,
            "keySchema": sync.key_schema or None,
            "autoSyncEnabled": sync.auto_sync_enabled,
            "disableSecretDeletion": sync.disable_secret_deletion,
        },
        "projectId": str(sync.workspace_id),
        "connection": {"app": "digital-ocean", "name": sync.connection.name, "id": str(sync.connection_id)}
        if sync.connection else None,
        "environment": {"slug": sync.environment.slug, "name": sync.environment.name, "id": str(sync.environment_id)},
        "folder": {"id": str(sync.folder_id), "path": sync.folder.path},
        "destination": "digital-ocean",
        "destinationConfig": {
            "appId": sync.app_id, "appName": sync.app_name, "component": sync.component or None,
            "variableType": sync.env_type, "scope": sync.env_scope,
        },
        "driftKeys": sync.drift_keys,
    }


def _sync(request, sync_id):
    return get_object_or_404(
        Sync.objects.select_related("connection", "environment", "folder"), workspace=request.workspace, pk=sync_id)


def _require(request, permission):
    if not can(request.role, permission):
        raise ApiError(403, f"This token's role ({request.role}) does not allow this.")


def _auto_sync(body, default):
    options = body.get("syncOptions") or {}
    for value in (body.get("isAutoSyncEnabled"), options.get("autoSyncEnabled"), body.get("isEnabled")):
        if value is not None:
            return bool(value)
    return default


def _options(body, sync):
    """Apply syncOptions and destinationConfig from a request body onto `sync` (unsaved)."""
    errors = {}
    options = body.get("syncOptions") or {}
    if not isinstance(options, dict):
        raise ApiError(400, "syncOptions must be an object.")
    behavior = options.get("initialSyncBehavior", sync.initial_sync_behavior or "overwrite-destination")
    if behavior != "overwrite-destination":
        errors["syncOptions.initialSyncBehavior"] = [
            "App Platform cannot import secrets: only overwrite-destination is supported."]
    try:
        sync.key_schema = keyschema.validate(options.get("keySchema", sync.key_schema) or "")
    except keyschema.KeySchemaError as e:
        errors["syncOptions.keySchema"] = [str(e)]
    sync.disable_secret_deletion = bool(options.get("disableSecretDeletion", sync.disable_secret_deletion))
    sync.auto_sync_enabled = _auto_sync(body, sync.auto_sync_enabled)
    config = body.get("destinationConfig")
    if config is not None:
        if not isinstance(config, dict) or not config.get("appId"):
            errors["destinationConfig.appId"] = ["This field is required."]
        else:
            sync.app_id = str(config["appId"])
            sync.app_name = str(config.get("appName") or sync.app_name or "")
            sync.component = str(config.get("component") or "")
            sync.env_type = config.get("variableType") or sync.env_type or EnvType.SECRET
            sync.env_scope = config.get("scope") or sync.env_scope or EnvScope.RUN_AND_BUILD_TIME
            if sync.env_type not in EnvType.values:
                errors["destinationConfig.variableType"] = [f"Use one of {', '.join(EnvType.values)}."]
            if sync.env_scope not in EnvScope.values:
                errors["destinationConfig.scope"] = [f"Use one of {', '.join(EnvScope.values)}."]
    if errors:
        raise ApiError(400, "The request is invalid.", errors)


def _source(request, body, sync):
    environment = request.workspace.environments.filter(slug=body.get("environment")).first()
    if environment is None:
        raise ApiError(400, f"Environment {body.get('environment')!r} not found.", {"environment": ["Unknown environment."]})
    try:
        folder = secrets.get_folder(environment, body.get("secretPath") or "/")
    except secrets.SecretsError as e:
        raise ApiError(400, str(e), {"secretPath": [str(e)]}) from None
    sync.environment, sync.folder = environment, folder


def _connection(request, connection_id):
    connection = request.workspace.connections.filter(pk=connection_id).first() if connection_id else None
    if connection is None:
        raise ApiError(400, "connectionId does not name a connection of this workspace.",
                       {"connectionId": ["Unknown connection."]})
    return connection


def _service(fn):
    try:
        return fn()
    except services.SyncError as e:
        raise ApiError(400, str(e)) from None


@api_view("workspace.read", methods=["GET", "POST"])
def syncs(request):
    if request.method == "GET":
        rows = request.workspace.syncs.select_related("connection", "environment", "folder")
        return JsonResponse({"secretSyncs": [sync_json(s) for s in rows]})
    _require(request, "syncs.manage")
    body = request.json
    require_workspace_id(request, body.get("projectId"))
    details = DetailsForm({"name": body.get("name", ""), "description": body.get("description") or ""},
                          workspace=request.workspace)
    if not details.is_valid():
        raise ApiError(400, "The request is invalid.", {k: [str(e) for e in v] for k, v in details.errors.items()})
    if body.get("destinationConfig") is None:
        raise ApiError(400, "destinationConfig is required.", {"destinationConfig.appId": ["This field is required."]})
    sync = Sync(workspace=request.workspace, name=details.cleaned_data["name"],
                description=details.cleaned_data["description"], connection=_connection(request, body.get("connectionId")))
    _source(request, body, sync)
    _options(body, sync)
    _service(lambda: services.create(sync, trigger=Trigger.API, request=request))
    return JsonResponse({"secretSync": sync_json(sync)})


@api_view("workspace.read", methods=["GET", "PATCH", "DELETE"])
def sync(request, sync_id):
    sync = _sync(request, sync_id)
    if request.method == "GET":
        return JsonResponse({"secretSync": sync_json(sync)})
    _require(request, "syncs.manage")
    if request.method == "DELETE":
        body = sync_json(sync)
        remove = request.GET.get("removeSecrets", "false").lower() == "true"
        _service(lambda: services.delete(sync, remove_secrets_first=remove, request=request))
        return JsonResponse({"secretSync": body})
    body = request.json
    changes = {}
    if "name" in body or "description" in body:
        details = DetailsForm({"name": body.get("name", sync.name), "description": body.get("description", sync.description) or ""},
                              workspace=request.workspace, exclude=sync)
        if not details.is_valid():
            raise ApiError(400, "The request is invalid.", {k: [str(e) for e in v] for k, v in details.errors.items()})
        changes.update(details.cleaned_data)
    if "connectionId" in body:
        changes["connection"] = _connection(request, body["connectionId"])
    if "environment" in body or "secretPath" in body:
        probe = Sync()
        _source(request, {"environment": body.get("environment", sync.environment.slug),
                          "secretPath": body.get("secretPath", sync.folder.path)}, probe)
        changes.update(environment=probe.environment, folder=probe.folder)
    before = {f: getattr(sync, f) for f in ("key_schema", "disable_secret_deletion", "auto_sync_enabled", "app_id",
                                             "app_name", "component", "env_type", "env_scope")}
    _options(body, sync)
    changes.update({f: getattr(sync, f) for f, old in before.items() if getattr(sync, f) != old})
    _service(lambda: services.update(sync, changes, request=request))
    return JsonResponse({"secretSync": sync_json(sync)})


@api_view("syncs.manage", methods=["POST"])
def sync_secrets(request, sync_id):
    sync = _sync(request, sync_id)
    _service(lambda: services.sync_now(sync, trigger=Trigger.API, request=request))
    return JsonResponse({"secretSync": sync_json(sync)})


@api_view("syncs.manage", methods=["POST"])
def remove_secrets(request, sync_id):
    sync = _sync(request, sync_id)
    _service(lambda: services.remove_secrets(sync, trigger=Trigger.API, request=request))
    return JsonResponse({"secretSync": sync_json(sync)})

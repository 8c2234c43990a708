"""Infisical's raw secrets API (v3): list, read, create, update, delete, batch."""

from django.http import JsonResponse

from devpilot import secrets
from devpilot.api import ApiError, api_view, iso, require_workspace_id
from devpilot.models import Secret
from devpilot.permissions import can


def secret_json(secret, *, with_value):
    return {
        "id": str(secret.pk),
        "workspace": str(secret.workspace_id),
        "environment": secret.environment.slug,
        "secretPath": secret.folder.path,
        "secretKey": secret.key,
        "secretValue": secret.value if with_value else None,
        "secretComment": secret.comment,
        "version": secret.version,
        "type": "shared",
        "createdAt": iso(secret.created_at),
        "updatedAt": iso(secret.updated_at),
    }


def _params(request):
    """workspaceId, environment and secretPath from the query string or the JSON body."""
    source = request.json or request.GET
    workspace_id = source.get("workspaceId") or source.get("projectId") or request.GET.get("workspaceId")
    require_workspace_id(request, workspace_id, field="workspaceId")
    slug = source.get("environment") or request.GET.get("environment")
    if not slug:
        raise ApiError(400, "environment is required.", {"environment": ["This field is required."]})
    environment = request.workspace.environments.filter(slug=slug).first()
    if environment is None:
        raise ApiError(404, f"Environment {slug} not found.")
    try:
        folder = secrets.get_folder(environment, source.get("secretPath") or request.GET.get("secretPath") or "/")
    except secrets.SecretsError as e:
        raise ApiError(404, str(e)) from None
    return environment, folder


def _can_read_values(request):
    return can(request.role, "secrets.read_values")


def _require(permission, request):
    if not can(request.role, permission):
        raise ApiError(403, f"This token's role ({request.role}) does not allow this.")


def _service_errors(fn):
    try:
        return fn()
    except secrets.StaleVersion as e:
        raise ApiError(409, str(e)) from None
    except secrets.SecretsError as e:
        raise ApiError(400, str(e)) from None


@api_view(methods=["GET"])
def secrets_list(request):
    """Keys and metadata for every token; values only for member tokens and up (null for viewers)."""
    environment, folder = _params(request)
    rows = folder.secrets.select_related("environment", "folder")
    with_value = _can_read_values(request)
    return JsonResponse({"secrets": [secret_json(s, with_value=with_value) for s in rows]})


@api_view(methods=["GET", "POST", "PATCH", "DELETE"])
def secret_detail(request, secret_name):
    environment, folder = _params(request)
    body = request.json
    if request.method == "POST":
        _require("secrets.write", request)
        if "secretValue" not in body:
            raise ApiError(400, "secretValue is required.", {"secretValue": ["This field is required."]})
        secret = _service_errors(lambda: secrets.create_secret(
            environment, folder.path, secret_name, str(body["secretValue"]), body.get("secretComment") or "",
            request=request))
        return JsonResponse({"secret": secret_json(secret, with_value=True)})
    secret = Secret.objects.select_related("environment", "folder").filter(folder=folder, key=secret_name).first()
    if secret is None:
        raise ApiError(404, f"Secret {secret_name} not found in {environment.slug}:{folder.path}.")
    if request.method == "GET":
        _require("secrets.read_values", request)
        return JsonResponse({"secret": secret_json(secret, with_value=True)})
    _require("secrets.write", request)
    if request.method == "PATCH":
        secret = _service_errors(lambda: secrets.update_secret(
            secret, value=body.get("secretValue"), comment=body.get("secretComment"), key=body.get("newSecretName"),
            expected_version=body.get("version"), request=request))
        return JsonResponse({"secret": secret_json(secret, with_value=True)})
    secrets.delete_secret(secret, request=request)
    return JsonResponse({"secret": secret_json(secret, with_value=False)})


@api_view(methods=["POST", "PATCH", "DELETE"])
def secrets_batch(request):
    """Many secrets in one request and one transaction: all or nothing, one change event."""
    environment, folder = _params(request)
    _require("secrets.write", request)
    items = request.json.get("secrets")
    if not isinstance(items, list) or not items:
        raise ApiError(400, "secrets must be a non-empty list.", {"secrets": ["Give at least one secret."]})
    keys = [str(item.get("secretKey", "")) for item in items if isinstance(item, dict)]
    if len(keys) != len(items) or len(set(keys)) != len(keys):
        raise ApiError(400, "Each item needs a distinct secretKey.")
    if request.method == "DELETE":
        doomed = list(folder.secrets.filter(key__in=keys).select_related("environment", "folder"))
        missing = sorted(set(keys) - {s.key for s in doomed})
        if missing:
            raise ApiError(404, f"Not found in {environment.slug}:{folder.path}: {', '.join(missing)}.")
        secrets.delete_secrets(environment, folder.path, keys, request=request)
        return JsonResponse({"secrets": [secret_json(s, with_value=False) for s in doomed]})
    entries = {str(i["secretKey"]): str(i.get("secretValue", "")) for i in items}
    existing = set(folder.secrets.filter(key__in=keys).values_list("key", flat=True))
    if request.method == "POST" and existing:
        raise ApiError(400, f"Already exist: {', '.join(sorted(existing))}. Use PATCH to update them.")
    if request.method == "PATCH" and set(keys) - existing:
        raise ApiError(404, f"Not found: {', '.join(sorted(set(keys) - existing))}. Use POST to create them.")
    _service_errors(lambda: secrets.bulk_import(environment, folder.path, entries, overwrite=True, request=request))
    rows = folder.secrets.filter(key__in=keys).select_related("environment", "folder")
    return JsonResponse({"secrets": [secret_json(s, with_value=True) for s in rows]})

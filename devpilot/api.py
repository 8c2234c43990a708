"""The JSON API's plumbing: bearer-token authentication, role checks, JSON errors.

    @api_view("syncs.manage", methods=["POST"])
    def create_sync(request):    # request.workspace, request.api_token, request.json

Errors are always JSON: {"statusCode": 400, "message": "...", "error": "Bad Request"},
with "details" holding field errors for a 400.
"""

import json
from datetime import timedelta
from functools import wraps
from http import HTTPStatus

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from devpilot.models import ApiToken, hash_token
from devpilot.permissions import can

TOKEN_PREFIX = "dvp_"


class ApiError(Exception):
    def __init__(self, status: int, message: str, details=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details


def error_response(status: int, message: str, details=None) -> JsonResponse:
    body = {"statusCode": status, "message": message, "error": HTTPStatus(status).phrase}
    if details:
        body["details"] = details
    return JsonResponse(body, status=status)


def authenticate(request) -> ApiToken:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "Send an API token as 'Authorization: Bearer <token>'.")
    api_token = (
        ApiToken.objects.select_related("workspace").filter(token_hash=hash_token(token.strip())).first()
    )
    if api_token is None or api_token.revoked_at:
        raise ApiError(401, "This API token is invalid or has been revoked.")
    now = timezone.now()
    if api_token.expires_at and api_token.expires_at <= now:
        raise ApiError(401, "This API token has expired.")
    # One write a minute at most, not one per request.
    if api_token.last_used_at is None or now - api_token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=api_token.pk).update(last_used_at=now)
        api_token.last_used_at = now
    return api_token


def check_rate_limit(api_token: ApiToken):
    limit = settings.DEVPILOT_API_RATE_LIMIT
    window = int(timezone.now().timestamp() // 60)
    key = f"api-rate:{api_token.pk}:{window}"
    cache.add(key, 0, timeout=120)
    if cache.incr(key) > limit:
        raise ApiError(429, f"Rate limit of {limit} requests a minute exceeded; retry in a minute.")


def parse_json(request):
    if not request.body:
        return {}
    try:
        data = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    return data


def api_view(permission="workspace.read", methods=("GET",)):
    def decorator(view):
        @csrf_exempt
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            try:
                if request.method not in methods:
                    raise ApiError(405, f"Method {request.method} is not allowed here.")
                api_token = authenticate(request)
                check_rate_limit(api_token)
                request.api_token = api_token
                request.workspace = api_token.workspace
                request.role = api_token.role
                if not can(api_token.role, permission):
                    raise ApiError(403, f"This token's role ({api_token.role}) does not allow this.")
                request.json = parse_json(request) if request.method in ("POST", "PUT", "PATCH", "DELETE") else {}
                return view(request, *args, **kwargs)
            except ApiError as e:
                return error_response(e.status, e.message, e.details)
            except Http404 as e:
                return error_response(404, str(e) or "Not found.")
            except PermissionDenied as e:
                return error_response(403, str(e) or "Forbidden.")

        wrapped.api_permission = permission
        return wrapped

    return decorator


def require_workspace_id(request, workspace_id, field="projectId"):
    """Infisical-style bodies name the workspace (projectId / workspaceId): it must be the token's."""
    if not workspace_id:
        raise ApiError(400, f"{field} is required.", {field: ["This field is required."]})
    if str(workspace_id) != str(request.workspace.pk):
        raise ApiError(404, "Workspace not found.")
    return request.workspace


def form_errors(form) -> dict:
    return {field: [str(e) for e in errors] for field, errors in form.errors.items()}


def validate(form):
    """Return the form's cleaned data or raise a 400 with its field errors."""
    if not form.is_valid():
        raise ApiError(400, "The request is invalid.", form_errors(form))
    return form.cleaned_data


def iso(dt):
    return dt.isoformat().replace("+00:00", "Z") if dt else None

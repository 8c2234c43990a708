"""The JSON API: one django-ninja instance, bearer-token auth with a role per operation, JSON errors.

    @router.post("/v1/servers", auth=token("servers.manage"), response=answers(ServerOut, 201))
    def create_server(request, payload: ServerCreate): ...   # request.workspace, request.role

Every error is JSON in Infisical's shape, from one handler per error family:
{"statusCode": 400, "message": "...", "error": "Bad Request", "details": [{"field": ..., "message": ...}]}.
The OpenAPI document is served at /api/openapi.json and its reference at /api/docs.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import HttpBearer
from pydantic import BaseModel

from connections.digitalocean import DigitalOceanError, as_devpilot_error
from devpilot.errors import (DevpilotError, Forbidden, Invalid, NotFound, PayloadTooLarge, RateLimited,
                             Unauthenticated, error_body)
from devpilot.models import ApiToken, MachineIdentity, Workspace, capped_role, creator_role, hash_token
from devpilot.permissions import can
from devpilot.prepared import PreparedQuery
from devpilot.schemas import ErrorOut, invalid

TOKEN_PREFIX = "dvp_"
ACCESS_TOKEN_PREFIX = "dvpat_"  # machine identities' access tokens (devpilot/identities.py)
ERROR_STATUSES = (400, 401, 403, 404, 409, 413, 429, 502)


class Api(NinjaAPI):
    def create_response(self, request: HttpRequest, data: Any, *, status: int | None = None,
                        temporal_response: HttpResponse | None = None) -> HttpResponse:
        response = super().create_response(request, data, status=status, temporal_response=temporal_response)
        response["Content-Type"] = "application/json"  # no charset parameter, as Infisical answers
        return response


api = Api(
    title="Devpilot API",
    version="1",
    description="Secrets, DigitalOcean connections, secret syncs and servers. Paths and shapes follow "
                "Infisical's API, so Infisical's clients work against Devpilot. Authenticate with a workspace "
                "API token (`Authorization: Bearer dvp_…`, Settings > API tokens) or a machine identity's access token "
                "from `POST /api/v1/auth/universal-auth/login` (Settings > Machine identities).",
    urls_namespace="api",
    docs_url="/docs",
    openapi_url="/openapi.json",
)


def answers(ok: type[BaseModel] | None, status: int = 200) -> dict[int, Any]:
    """The responses of an operation: its success schema and the error shape for every error status."""
    return {status: ok, **{code: ErrorOut for code in ERROR_STATUSES}}


# --- Authentication and roles --------------------------------------------------------------


class WorkspaceToken(HttpBearer):
    """A workspace API token or a machine identity's access token whose effective role holds `permission`.

    Sets request.workspace and request.role (the effective role), and request.api_token or
    request.machine_identity (with request.identity_token), whichever authenticated.
    """

    openapi_scheme = "bearer"

    def __init__(self, permission: str = "workspace.read") -> None:
        super().__init__()
        self.permission = permission

    def __call__(self, request: HttpRequest) -> ApiToken | MachineIdentity:
        scheme, _, raw = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not raw.strip():
            raise Unauthenticated("Send an API token or an access token as 'Authorization: Bearer <token>'.")
        return self.authenticate(request, raw.strip())

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken | MachineIdentity:
        request.api_token = request.machine_identity = request.identity_token = None  # type: ignore[attr-defined]
        if token.startswith(ACCESS_TOKEN_PREFIX):
            from devpilot import identities

            access = identities.authenticate(token, ip=request.META.get("REMOTE_ADDR"))
            principal: ApiToken | MachineIdentity = access.identity
            request.machine_identity, request.identity_token = access.identity, access  # type: ignore[attr-defined]
        else:
            principal = authenticate_token(token)
            request.api_token = principal  # type: ignore[attr-defined]
        check_rate_limit(principal)
        request.workspace = principal.workspace  # type: ignore[attr-defined]
        request.role = effective_role(principal)  # type: ignore[attr-defined]
        require(request, self.permission)
        return principal


def token(permission: str = "workspace.read") -> WorkspaceToken:
    return WorkspaceToken(permission)


def effective_role(principal: ApiToken | MachineIdentity) -> str:
    """The lower of the token's (or identity's) role and its creator's current role in the workspace.

    A token or identity created by someone who has since left the workspace is refused (401). One made
    without a person (manage.py commands, tests) keeps its own role.
    """
    role = capped_role(principal)
    if role is None:
        what = "API token" if isinstance(principal, ApiToken) else "machine identity"
        raise Unauthenticated(f"The {what} {principal.name} was created by someone who is no longer a member of "
                              "this workspace, so it no longer works; an admin can create a new one.")
    return role


# Every API call's first query, so its SQL is built once per process (devpilot/prepared.py). The creator's
# current role comes in the same query (capped_role reads it), not in a second one.
_TOKEN_BY_HASH = PreparedQuery(lambda token_hash: ApiToken.objects.select_related("workspace").annotate(
    creator_role=creator_role()).filter(token_hash=token_hash)[:1], token_hash=str)


def authenticate_token(raw: str) -> ApiToken:
    api_token = next(iter(_TOKEN_BY_HASH(token_hash=hash_token(raw))), None)
    if api_token is None or api_token.revoked_at:
        raise Unauthenticated("This API token is invalid or has been revoked.")
    now = timezone.now()
    if api_token.expires_at and api_token.expires_at <= now:
        raise Unauthenticated("This API token has expired.")
    # One write a minute at most, not one per request.
    if api_token.last_used_at is None or now - api_token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=api_token.pk).update(last_used_at=now)
        api_token.last_used_at = now
    return api_token


def check_rate_limit(principal: ApiToken | MachineIdentity) -> None:
    limit = settings.DEVPILOT_API_RATE_LIMIT
    window = int(timezone.now().timestamp() // 60)
    if count_in_window(f"api-rate:{principal.pk}:{window}", 120) > limit:
        raise RateLimited(f"Rate limit of {limit} requests a minute exceeded; retry in a minute.")


def count_in_window(key: str, timeout: int) -> int:
    """Add one to a counter shared by every web process and return it: one round trip to Redis (INCR and
    EXPIRE in a pipeline), where Django's cache API takes three (add, then incr = EXISTS + INCR)."""
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        name = backend.make_and_validate_key(key)
        pipeline = backend._cache.get_client(name, write=True).pipeline()
        pipeline.incr(name)
        pipeline.expire(name, timeout)  # the key names its minute: renewing the expiry is harmless
        count, _ = pipeline.execute()
        return int(count)
    cache.add(key, 0, timeout=timeout)
    return cache.incr(key)


def require(request: HttpRequest, permission: str) -> None:
    """The one role check of the API (the token's role holds `permission`)."""
    if not can(request.role, permission):  # type: ignore[attr-defined]
        raise Forbidden(f"This token's role ({request.role}) does not allow this.")  # type: ignore[attr-defined]


def require_workspace_ref(request: HttpRequest, workspace_id: Any = None, slug: str | None = None,
                          field: str = "workspaceId") -> Workspace:
    """The workspace named by id (workspaceId / projectId) or by slug (workspaceSlug / projectSlug)."""
    if workspace_id is None and slug:
        if slug != request.workspace.slug:  # type: ignore[attr-defined]
            raise NotFound("Workspace not found.")
        return request.workspace  # type: ignore[attr-defined]
    return require_workspace(request, workspace_id, field=field)


def require_workspace(request: HttpRequest, workspace_id: Any, field: str = "projectId") -> Workspace:
    """Infisical-style inputs name the workspace (projectId / workspaceId): it must be the token's."""
    if not workspace_id:
        raise Invalid.for_field(field, "This field is required.")
    if str(workspace_id) != str(request.workspace.pk):  # type: ignore[attr-defined]
        raise NotFound("Workspace not found.")
    return request.workspace  # type: ignore[attr-defined]


def iso(dt: datetime | None) -> str | None:
    return dt.isoformat().replace("+00:00", "Z") if dt else None


# --- One handler per error family ----------------------------------------------------------


def _error(request: HttpRequest, error: DevpilotError) -> HttpResponse:
    response = api.create_response(request, error.as_json(), status=error.status)
    if isinstance(error, Unauthenticated):
        response["WWW-Authenticate"] = "Bearer"
    return response


@api.exception_handler(DevpilotError)
def devpilot_error(request: HttpRequest, exc: DevpilotError) -> HttpResponse:
    return _error(request, exc)


@api.exception_handler(ValidationError)
def validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    return _error(request, invalid(exc.errors, location=_as_sent))


def _as_sent(location: tuple) -> tuple:
    """ninja's ('body', 'payload', 'secrets', 0, 'secretValue') -> ('secrets', 0, 'secretValue')."""
    parts = list(location)
    if parts and parts[0] in ("body", "query", "path", "header"):
        source = parts.pop(0)
        if source == "body" and parts and parts[0] == "payload":
            parts.pop(0)
    return tuple(parts)


@api.exception_handler(AuthenticationError)
def authentication_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return _error(request, Unauthenticated("Send an API token or an access token as 'Authorization: Bearer <token>'."))


@api.exception_handler(HttpError)
def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    # ninja's own: an unparsable body ("Cannot parse request body") and the like.
    message = "The request body is not valid JSON." if exc.status_code == 400 else str(exc)
    return api.create_response(request, error_body(exc.status_code, message), status=exc.status_code)


@api.exception_handler(DigitalOceanError)
def upstream_error(request: HttpRequest, exc: DigitalOceanError) -> HttpResponse:
    return _error(request, as_devpilot_error(exc))


@api.exception_handler(Http404)
def not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return _error(request, NotFound(str(exc) or "Not found."))


@api.exception_handler(PermissionDenied)
def permission_denied(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
    return _error(request, Forbidden(str(exc) or "Forbidden."))


@api.exception_handler(RequestDataTooBig)
def too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    return _error(request, PayloadTooLarge(
        f"The request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes."))


def register_routers() -> None:
    """Every app's router, added once when the URL conf loads."""
    from connections.api import router as connections
    from devpilot.folder_api import router as folders
    from devpilot.identity_api import router as identities
    from devpilot.import_api import router as secret_imports
    from devpilot.secret_api import router as secrets
    from devpilot.snapshot_api import router as snapshots
    from devpilot.workspace_api import router as workspaces
    from provisioning.agent_api import router as server_agents
    from provisioning.api import router as servers
    from syncs.api import router as syncs
    from syncs.server_api import router as server_syncs

    for router in (workspaces, secrets, folders, identities, connections, syncs, servers, secret_imports, snapshots,
                   server_agents, server_syncs):
        api.add_router("/", router)

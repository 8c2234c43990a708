"""Universal auth (login, renew, revoke) and machine identity management, on Infisical's paths."""

from __future__ import annotations

import ipaddress
from uuid import UUID

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Router

from devpilot import identities
from devpilot.api import answers, effective_role, iso, require_workspace, token
from devpilot.errors import Invalid, Unauthenticated
from devpilot.models import IdentityAccessToken, IdentityClientSecret, MachineIdentity
from devpilot.schemas import (AccessTokenIn, AccessTokenOut, ClientSecretCreate, ClientSecretCreated,
                              ClientSecretEnvelope, ClientSecretsEnvelope, IdentitiesEnvelope, IdentityCreate,
                              IdentityEnvelope, IdentityUpdate, MessageOut, UniversalAuthEnvelope,
                              UniversalAuthLogin, UniversalAuthUpdate)

router = Router(tags=["Machine identities"])
IDENTITY = "/v1/identities/{uuid:identity_id}"
UNIVERSAL_AUTH = "/v1/auth/universal-auth/identities/{uuid:identity_id}"


def _ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR")


def token_json(access: IdentityAccessToken, plaintext: str) -> dict:
    return {"accessToken": plaintext, "expiresIn": identities.expires_in(access),
            "accessTokenMaxTTL": access.max_ttl, "tokenType": "Bearer"}


# --- Universal auth: no bearer token, the body carries the credentials -----------------------


def credentials_in_body(request: HttpRequest) -> bool:
    """These operations authenticate with what the body carries: a request without a body is a 401."""
    if not request.body.strip():
        raise Unauthenticated("Send the credentials in a JSON body.")
    return True


@router.post("/v1/auth/universal-auth/login", auth=credentials_in_body, response=answers(AccessTokenOut))
def universal_auth_login(request: HttpRequest, payload: UniversalAuthLogin) -> dict:
    """`{clientId, clientSecret}` for `{accessToken, expiresIn, accessTokenMaxTTL, tokenType: "Bearer"}`."""
    if not payload.clientId or not payload.clientSecret:
        raise Unauthenticated("Send the machine identity's clientId and clientSecret.")
    access, plaintext = identities.login(payload.clientId, payload.clientSecret, ip=_ip(request), request=request)
    return token_json(access, plaintext)


@router.post("/v1/auth/token/renew", auth=credentials_in_body, response=answers(AccessTokenOut))
def renew_access_token(request: HttpRequest, payload: AccessTokenIn) -> dict:
    """Extends a live access token by its TTL, never past its max TTL (then 401: log in again)."""
    if not payload.accessToken:
        raise Unauthenticated("Send the accessToken to renew.")
    access = identities.renew(payload.accessToken, ip=_ip(request), request=request)
    return token_json(access, payload.accessToken)


@router.post("/v1/auth/token/revoke", auth=credentials_in_body, response=answers(MessageOut))
def revoke_access_token(request: HttpRequest, payload: AccessTokenIn) -> dict:
    if not payload.accessToken:
        raise Unauthenticated("Send the accessToken to revoke.")
    identities.revoke(payload.accessToken, request=request)
    return {"message": "Successfully revoked access token"}


# --- Identities --------------------------------------------------------------------------------


def identity_json(identity: MachineIdentity) -> dict:
    try:
        effective = effective_role(identity)
    except Unauthenticated:
        effective = "none"
    return {
        "id": str(identity.pk), "name": identity.name, "role": identity.role, "effectiveRole": effective,
        "projectId": str(identity.workspace_id), "clientId": str(identity.client_id),
        "authMethods": ["universal-auth"], "accessTokenTTL": identity.access_token_ttl,
        "accessTokenMaxTTL": identity.access_token_max_ttl, "trustedIps": list(identity.trusted_ips),
        "createdBy": identity.created_by.email if identity.created_by else None,
        "createdAt": iso(identity.created_at), "updatedAt": iso(identity.updated_at),
    }


def _identity(request: HttpRequest, identity_id: UUID) -> MachineIdentity:
    return get_object_or_404(MachineIdentity.objects.select_related("workspace", "created_by"),
                             workspace=request.workspace, pk=identity_id)  # type: ignore[attr-defined]


def _acting_user(request: HttpRequest):
    """The person behind the calling token or identity: new identities are capped by their role."""
    principal = request.api_token or request.machine_identity  # type: ignore[attr-defined]
    return principal.created_by if principal is not None else None


def _ranges(values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    try:
        return identities.parse_ranges(values)
    except identities.IdentityError as e:
        raise Invalid.for_field("trustedIps", e.message) from None


@router.get("/v1/identities", auth=token("tokens.manage"), response=answers(IdentitiesEnvelope))
def list_identities(request: HttpRequest) -> dict:
    rows = request.workspace.machine_identities.select_related("created_by")  # type: ignore[attr-defined]
    return {"identities": [identity_json(i) for i in rows]}


@router.post("/v1/identities", auth=token("tokens.manage"), response=answers(IdentityEnvelope))
def create_identity(request: HttpRequest, payload: IdentityCreate) -> dict:
    """`{name, role, accessTokenTTL?, accessTokenMaxTTL?, trustedIps?}`; projectId (or organizationId) may
    name the token's workspace. The role is at most the caller's own."""
    for named in (payload.projectId, payload.organizationId):
        if named is not None:
            require_workspace(request, named, field="projectId")
    identity = identities.create_identity(
        request.workspace, payload.name, payload.role, ttl=payload.accessTokenTTL,  # type: ignore[attr-defined]
        max_ttl=payload.accessTokenMaxTTL, trusted_ips=_ranges(payload.trustedIps) or [],
        created_by=_acting_user(request), granted_by=request.role, request=request)  # type: ignore[attr-defined]
    return {"identity": identity_json(identity)}


@router.get(IDENTITY, auth=token("tokens.manage"), response=answers(IdentityEnvelope))
def get_identity(request: HttpRequest, identity_id: UUID) -> dict:
    return {"identity": identity_json(_identity(request, identity_id))}


@router.patch(IDENTITY, auth=token("tokens.manage"), response=answers(IdentityEnvelope))
def update_identity(request: HttpRequest, identity_id: UUID, payload: IdentityUpdate) -> dict:
    identity = identities.update_identity(
        _identity(request, identity_id), name=payload.name, role=payload.role, ttl=payload.accessTokenTTL,
        max_ttl=payload.accessTokenMaxTTL, trusted_ips=_ranges(payload.trustedIps),
        granted_by=request.role, request=request)  # type: ignore[attr-defined]
    return {"identity": identity_json(identity)}


@router.delete(IDENTITY, auth=token("tokens.manage"), response=answers(IdentityEnvelope))
def delete_identity(request: HttpRequest, identity_id: UUID) -> dict:
    identity = _identity(request, identity_id)
    body = identity_json(identity)
    identities.delete_identity(identity, request=request)
    return {"identity": body}


# --- Universal auth settings and client secrets (Infisical's paths) ---------------------------


def _trusted(ranges: list[str]) -> list[dict]:
    if not ranges:
        ranges = ["0.0.0.0/0", "::/0"]
    out = []
    for r in ranges:
        network = ipaddress.ip_network(r, strict=False)
        out.append({"ipAddress": str(network.network_address), "type": f"ipv{network.version}",
                    "prefix": network.prefixlen})
    return out


def universal_auth_json(identity: MachineIdentity) -> dict:
    trusted = _trusted(identity.trusted_ips)
    return {"id": str(identity.pk), "identityId": str(identity.pk), "clientId": str(identity.client_id),
            "accessTokenTTL": identity.access_token_ttl, "accessTokenMaxTTL": identity.access_token_max_ttl,
            "accessTokenNumUsesLimit": 0, "clientSecretTrustedIps": trusted, "accessTokenTrustedIps": trusted,
            "createdAt": iso(identity.created_at), "updatedAt": iso(identity.updated_at)}


def client_secret_json(secret: IdentityClientSecret) -> dict:
    ttl = int((secret.expires_at - secret.created_at).total_seconds()) if secret.expires_at else 0
    return {"id": str(secret.pk), "identityId": str(secret.identity_id), "description": secret.description,
            "clientSecretPrefix": secret.prefix, "clientSecretNumUses": secret.uses,
            "clientSecretNumUsesLimit": secret.uses_limit, "clientSecretTTL": max(ttl, 0),
            "isClientSecretRevoked": secret.revoked_at is not None, "expiresAt": iso(secret.expires_at),
            "lastUsedAt": iso(secret.last_used_at), "createdAt": iso(secret.created_at),
            "updatedAt": iso(secret.revoked_at or secret.last_used_at or secret.created_at)}


@router.get(UNIVERSAL_AUTH, auth=token("tokens.manage"), response=answers(UniversalAuthEnvelope))
def get_universal_auth(request: HttpRequest, identity_id: UUID) -> dict:
    return {"identityUniversalAuth": universal_auth_json(_identity(request, identity_id))}


@router.patch(UNIVERSAL_AUTH, auth=token("tokens.manage"), response=answers(UniversalAuthEnvelope))
def update_universal_auth(request: HttpRequest, identity_id: UUID, payload: UniversalAuthUpdate) -> dict:
    identity = identities.update_identity(
        _identity(request, identity_id), ttl=payload.accessTokenTTL, max_ttl=payload.accessTokenMaxTTL,
        trusted_ips=_ranges(payload.trustedIps), request=request)
    return {"identityUniversalAuth": universal_auth_json(identity)}


@router.get(UNIVERSAL_AUTH + "/client-secrets", auth=token("tokens.manage"), response=answers(ClientSecretsEnvelope))
def list_client_secrets(request: HttpRequest, identity_id: UUID) -> dict:
    identity = _identity(request, identity_id)
    return {"clientSecretData": [client_secret_json(s) for s in identity.client_secrets.all()]}


@router.post(UNIVERSAL_AUTH + "/client-secrets", auth=token("tokens.manage"), response=answers(ClientSecretCreated))
def create_client_secret(request: HttpRequest, identity_id: UUID, payload: ClientSecretCreate) -> dict:
    """The client secret is in this answer only; Devpilot keeps its hash."""
    secret, plaintext = identities.add_client_secret(
        _identity(request, identity_id), description=payload.description, ttl=payload.ttl,
        uses_limit=payload.numUsesLimit, created_by=_acting_user(request), request=request)
    return {"clientSecret": plaintext, "clientSecretData": client_secret_json(secret)}


@router.post(UNIVERSAL_AUTH + "/client-secrets/{uuid:client_secret_id}/revoke", auth=token("tokens.manage"),
             response=answers(ClientSecretEnvelope))
def revoke_client_secret(request: HttpRequest, identity_id: UUID, client_secret_id: UUID) -> dict:
    identity = _identity(request, identity_id)
    secret = get_object_or_404(IdentityClientSecret, identity=identity, pk=client_secret_id)
    identities.revoke_client_secret(secret, request=request)
    return {"clientSecretData": client_secret_json(secret)}

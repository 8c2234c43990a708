"""Machine identities and universal auth: the service behind the pages and the JSON API.

An identity belongs to one workspace and holds a role (never owner). It logs in with its
client id and one of its client secrets (`login`), which issues an access token valid for the
identity's access token TTL; `renew` extends a token by the TTL again, never past the max TTL
counted from the login; `revoke` ends it. Client secrets and access tokens are shown once and
stored as SHA-256 hashes. Trusted IP ranges, when set, apply both to logins and to every use of
an access token.
"""

from __future__ import annotations

import ipaddress
import secrets as random
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from devpilot import audit
from devpilot.errors import Forbidden, Invalid, Unauthenticated
from devpilot.models import (IdentityAccessToken, IdentityClientSecret, MachineIdentity, Role, creator_role,
                             hash_token)
from devpilot.permissions import RANK
from devpilot.prepared import PreparedQuery

CLIENT_SECRET_PREFIX = "dvpcs_"
ACCESS_TOKEN_PREFIX = "dvpat_"
MAX_TTL_SECONDS = 315_360_000  # ten years: the longest TTL, max TTL or client secret lifetime accepted
IDENTITY_ROLES = (Role.ADMIN, Role.MEMBER, Role.VIEWER)


class IdentityError(Invalid):
    """A change the rules refuse; the message is shown as it is."""


# --- Validation ------------------------------------------------------------------------------


def validate_role(role: str, *, granted_by: str | None = None) -> str:
    if role not in IDENTITY_ROLES:
        raise IdentityError("An identity's role is admin, member or viewer (an identity can never be owner).")
    if granted_by is not None and RANK[Role(role)] > RANK[Role(granted_by)]:
        raise IdentityError(f"You cannot give an identity a role above your own ({granted_by}).")
    return role


def validate_ttls(ttl: int, max_ttl: int) -> tuple[int, int]:
    for value, name in ((ttl, "accessTokenTTL"), (max_ttl, "accessTokenMaxTTL")):
        if not isinstance(value, int) or value < 0 or value > MAX_TTL_SECONDS:
            raise IdentityError.for_field(name, f"Use a number of seconds from 0 to {MAX_TTL_SECONDS}.")
    if ttl < 1:
        raise IdentityError.for_field("accessTokenTTL", "The access token TTL is at least 1 second.")
    if max_ttl and ttl > max_ttl:
        raise IdentityError.for_field("accessTokenTTL", "The access token TTL cannot exceed the max TTL.")
    return ttl, max_ttl


def parse_ranges(ranges: list[str] | str) -> list[str]:
    """['10.0.0.0/8', '203.0.113.7'] (or the same, comma or newline separated) -> normalized CIDRs."""
    if isinstance(ranges, str):
        ranges = [r for r in ranges.replace(",", "\n").split("\n")]
    out = []
    for raw in ranges:
        raw = raw.strip()
        if not raw:
            continue
        try:
            network = ipaddress.ip_network(raw, strict=False)
        except ValueError:
            raise IdentityError.for_field("trustedIps", f"{raw!r} is not an IP address or CIDR range.") from None
        if str(network) not in out:
            out.append(str(network))
    return out


def ip_allowed(identity: MachineIdentity, ip: str | None) -> bool:
    if not identity.trusted_ips:
        return True
    try:
        address = ipaddress.ip_address(ip or "")
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(r, strict=False) for r in identity.trusted_ips
               if ipaddress.ip_network(r, strict=False).version == address.version)


def _check_ip(identity: MachineIdentity, ip: str | None) -> None:
    if not ip_allowed(identity, ip):
        raise Forbidden(f"The identity {identity.name} is not allowed from {ip or 'an unknown address'} "
                        "(outside its trusted IP ranges).")


# --- Identities ------------------------------------------------------------------------------


@transaction.atomic
def create_identity(workspace, name, role, *, ttl=MachineIdentity.DEFAULT_TTL, max_ttl=MachineIdentity.DEFAULT_TTL,
                    trusted_ips=(), created_by=None, granted_by=None, request=None) -> MachineIdentity:
    name = (name or "").strip()
    if not name:
        raise IdentityError.for_field("name", "An identity needs a name.")
    validate_role(role, granted_by=granted_by)
    ttl, max_ttl = validate_ttls(ttl, max_ttl)
    if workspace.machine_identities.filter(name=name).exists():
        raise IdentityError.for_field("name", f"An identity named {name} already exists.")
    try:
        with transaction.atomic():
            identity = MachineIdentity.objects.create(
                workspace=workspace, name=name, role=role, access_token_ttl=ttl, access_token_max_ttl=max_ttl,
                trusted_ips=parse_ranges(list(trusted_ips)), created_by=created_by)
    except IntegrityError:
        raise IdentityError.for_field("name", f"An identity named {name} already exists.") from None
    audit.record(workspace, "identity.created", request=request, target=identity, role=role)
    return identity


@transaction.atomic
def update_identity(identity, *, name=None, role=None, ttl=None, max_ttl=None, trusted_ips=None, granted_by=None,
                    request=None) -> MachineIdentity:
    changes = []
    if name is not None:
        name = name.strip()
        if not name:
            raise IdentityError.for_field("name", "An identity needs a name.")
        if name != identity.name:
            if identity.workspace.machine_identities.filter(name=name).exclude(pk=identity.pk).exists():
                raise IdentityError.for_field("name", f"An identity named {name} already exists.")
            identity.name = name
            changes.append("name")
    if role is not None and role != identity.role:
        validate_role(role, granted_by=granted_by)
        identity.role = role
        changes.append("role")
    if ttl is not None or max_ttl is not None:
        new = validate_ttls(identity.access_token_ttl if ttl is None else ttl,
                            identity.access_token_max_ttl if max_ttl is None else max_ttl)
        if new != (identity.access_token_ttl, identity.access_token_max_ttl):
            identity.access_token_ttl, identity.access_token_max_ttl = new
            changes.append("ttl")
    if trusted_ips is not None:
        ranges = parse_ranges(trusted_ips)
        if ranges != identity.trusted_ips:
            identity.trusted_ips = ranges
            changes.append("trusted_ips")
    if changes:
        identity.save()
        audit.record(identity.workspace, "identity.updated", request=request, target=identity, fields=changes)
    return identity


@transaction.atomic
def delete_identity(identity, *, request=None) -> None:
    workspace, name = identity.workspace, identity.name
    identity.delete()
    audit.record(workspace, "identity.deleted", request=request, target_label=name)


# --- Client secrets --------------------------------------------------------------------------


def add_client_secret(identity, *, description="", ttl=0, uses_limit=0, created_by=None,
                      request=None) -> tuple[IdentityClientSecret, str]:
    """Returns (the client secret, its plaintext). `ttl` seconds until it expires (0: never)."""
    if not isinstance(ttl, int) or not 0 <= ttl <= MAX_TTL_SECONDS:
        raise IdentityError.for_field("ttl", f"Use a number of seconds from 0 to {MAX_TTL_SECONDS}.")
    if not isinstance(uses_limit, int) or not 0 <= uses_limit <= 2**31 - 1:
        raise IdentityError.for_field("numUsesLimit", "Use a whole number of uses (0: unlimited).")
    plaintext = CLIENT_SECRET_PREFIX + random.token_hex(32)
    secret = IdentityClientSecret.objects.create(
        identity=identity, description=(description or "").strip()[:200], prefix=plaintext[:12],
        secret_hash=hash_token(plaintext), expires_at=timezone.now() + timedelta(seconds=ttl) if ttl else None,
        uses_limit=uses_limit, created_by=created_by)
    audit.record(identity.workspace, "identity.client_secret.created", request=request, target=identity,
                 client_secret=secret.prefix)
    return secret, plaintext


def revoke_client_secret(secret, *, request=None) -> IdentityClientSecret:
    if secret.revoked_at is None:
        secret.revoked_at = timezone.now()
        secret.save(update_fields=["revoked_at"])
        # Tokens it issued end with it.
        secret.access_tokens.filter(revoked_at__isnull=True).update(revoked_at=secret.revoked_at)
        audit.record(secret.identity.workspace, "identity.client_secret.revoked", request=request,
                     target=secret.identity, client_secret=secret.prefix)
    return secret


# --- Universal auth --------------------------------------------------------------------------


def _issue(identity, client_secret=None) -> tuple[IdentityAccessToken, str]:
    plaintext = ACCESS_TOKEN_PREFIX + random.token_urlsafe(32)
    now = timezone.now()
    token = IdentityAccessToken.objects.create(
        identity=identity, client_secret=client_secret, token_hash=hash_token(plaintext),
        ttl=identity.access_token_ttl, max_ttl=identity.access_token_max_ttl, created_at=now,
        expires_at=now + timedelta(seconds=identity.access_token_ttl))
    return token, plaintext


def login(client_id, client_secret, *, ip=None, request=None) -> tuple[IdentityAccessToken, str]:
    """Universal auth: a client id and secret for an access token. Every refusal is a 401 (403 for the IP)."""
    secret = (IdentityClientSecret.objects.select_related("identity__workspace")
              .filter(secret_hash=hash_token(str(client_secret or "")), identity__client_id=_uuid(client_id)).first())
    if secret is None:
        raise Unauthenticated("Invalid credentials: no identity has this client id and client secret.")
    identity = secret.identity
    now = timezone.now()
    if secret.revoked_at:
        raise Unauthenticated("This client secret has been revoked.")
    if secret.expires_at and secret.expires_at <= now:
        raise Unauthenticated("This client secret has expired.")
    _check_ip(identity, ip)
    with transaction.atomic():
        # Counted with a conditional update, so concurrent logins never exceed the limit.
        counted = IdentityClientSecret.objects.filter(pk=secret.pk, revoked_at__isnull=True).filter(
            Q(uses_limit=0) | Q(uses__lt=F("uses_limit"))).update(uses=F("uses") + 1, last_used_at=now)
        if not counted:
            raise Unauthenticated("This client secret has reached its use limit.")
        token, plaintext = _issue(identity, secret)
    audit.record(identity.workspace, "identity.login", request=request, target=identity,
                 actor_identity=identity, client_secret=secret.prefix)
    return token, plaintext


def _uuid(value):
    import uuid

    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


# Every API call made with an access token starts here, so the SQL is built once per process
# (devpilot/prepared.py); the identity's creator's current role comes in the same query (capped_role reads it).
_ACCESS_TOKEN_BY_HASH = PreparedQuery(
    lambda token_hash: IdentityAccessToken.objects.select_related("identity__workspace", "identity__created_by")
    .annotate(creator_role=creator_role(of="identity__")).filter(token_hash=token_hash)[:1],
    token_hash=str)


def find_access_token(raw: str) -> IdentityAccessToken:
    """The live access token `raw`, or Unauthenticated saying why not."""
    token = next(iter(_ACCESS_TOKEN_BY_HASH(token_hash=hash_token(raw or ""))), None)
    if token is None:
        raise Unauthenticated("This access token is invalid.")
    token.identity.creator_role = token.creator_role  # type: ignore[attr-defined]
    if token.revoked_at:
        raise Unauthenticated("This access token has been revoked.")
    if token.expires_at <= timezone.now():
        raise Unauthenticated("This access token has expired; log in again (or renew it before it expires).")
    return token


def authenticate(raw: str, *, ip=None) -> IdentityAccessToken:
    token = find_access_token(raw)
    _check_ip(token.identity, ip)
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        IdentityAccessToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def renew(raw: str, *, ip=None, request=None) -> IdentityAccessToken:
    """Extend a live token to its TTL from now, but never past its max TTL counted from the login.

    A token already at its max TTL cannot be renewed (401: log in again)."""
    token = find_access_token(raw)
    _check_ip(token.identity, ip)
    now = timezone.now()
    new_expiry = now + timedelta(seconds=token.ttl)
    if token.max_ttl:
        limit = token.created_at + timedelta(seconds=token.max_ttl)
        if new_expiry > limit:
            new_expiry = limit
        if new_expiry <= token.expires_at:
            raise Unauthenticated(f"This access token has reached its max TTL ({token.max_ttl} s from login, "
                                  f"until {limit:%Y-%m-%d %H:%M:%S} UTC) and cannot be renewed; log in again.")
    token.expires_at, token.renewed_at = new_expiry, now
    token.save(update_fields=["expires_at", "renewed_at"])
    audit.record(token.identity.workspace, "identity.token.renewed", request=request, target=token.identity,
                 actor_identity=token.identity)
    return token


def revoke(raw: str, *, request=None) -> IdentityAccessToken:
    token = find_access_token(raw)
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    audit.record(token.identity.workspace, "identity.token.revoked", request=request, target=token.identity,
                 actor_identity=token.identity)
    return token


def expires_in(token: IdentityAccessToken) -> int:
    return max(0, int((token.expires_at - timezone.now()).total_seconds()))

"""Workspace API tokens: shown once, stored as a SHA-256 hash."""

import secrets

from devpilot.api import TOKEN_PREFIX
from devpilot.models import ApiToken, Role, hash_token


def create_api_token(workspace, name, *, role=Role.ADMIN, created_by=None, expires_at=None):
    """Returns (ApiToken, plaintext token). The plaintext is never stored."""
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        workspace=workspace,
        name=name,
        role=role,
        prefix=plaintext[:10],
        token_hash=hash_token(plaintext),
        created_by=created_by,
        expires_at=expires_at,
    )
    return token, plaintext


def revoke_api_token(token):
    from django.utils import timezone

    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])

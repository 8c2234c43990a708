"""The workspace key pair: ed25519, made with `cryptography`, the private key encrypted at rest."""

import base64
import hashlib

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.db import IntegrityError, transaction

from provisioning.models import SshKey


def md5_fingerprint(public_key: str) -> str:
    """DigitalOcean's fingerprint: MD5 of the key's base64 body, colon-separated hex."""
    body = base64.b64decode(public_key.split()[1])
    digest = hashlib.md5(body).hexdigest()  # noqa: S324 - the fingerprint format, not a security use
    return ":".join(digest[i:i + 2] for i in range(0, 32, 2))


def generate(comment: str):
    """(OpenSSH public key, OpenSSH private key PEM)."""
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption())
    return f"{public.decode()} {comment}", private.decode()


def valid_public_key(text: str) -> bool:
    try:
        serialization.load_ssh_public_key(text.strip().encode())
        return True
    except (ValueError, IndexError, TypeError, UnsupportedAlgorithm):
        return False


def workspace_key(workspace) -> SshKey:
    existing = SshKey.objects.filter(workspace=workspace).first()
    if existing:
        return existing
    public, private = generate(f"devpilot-{workspace.slug}")
    key = SshKey(workspace=workspace, public_key=public, fingerprint=md5_fingerprint(public))
    key.private_key = private
    try:
        with transaction.atomic():
            key.save()
    except IntegrityError:  # made at the same moment by another worker
        return SshKey.objects.get(workspace=workspace)
    return key

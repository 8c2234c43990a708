"""Encryption at rest for tokens, secret values and private keys.

AES-256-GCM with a random 96-bit nonce. The associated data names the row and the
field, so a ciphertext copied into another row or field does not decrypt. Each
value records the id of the key that sealed it; keys come from
DEVPILOT_ENCRYPTION_KEYS, newest first, and `manage.py rotate_encryption_keys`
re-seals every value under the newest key.

Models never touch ciphertext directly: they declare `EncryptedValue(...)`.
"""

import base64
import binascii
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

FORMAT = "v1"


class DecryptionError(Exception):
    """A value could not be decrypted: unknown key, wrong key or tampered data."""


def _key_id(key: bytes) -> str:
    return hashlib.sha256(b"devpilot-key-id" + key).hexdigest()[:12]


def load_keys(encoded_keys=None) -> list[tuple[str, bytes]]:
    """The configured keys as (key id, key bytes), newest first."""
    encoded_keys = settings.DEVPILOT_ENCRYPTION_KEYS if encoded_keys is None else encoded_keys
    keys = []
    for encoded in encoded_keys:
        try:
            key = base64.urlsafe_b64decode(encoded.strip().encode())
        except (binascii.Error, ValueError):
            key = b""
        if len(key) != 32:
            raise ImproperlyConfigured(
                "Each DEVPILOT_ENCRYPTION_KEYS entry must be 32 bytes in URL-safe base64 "
                "(generate one with: python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())')."
            )
        keys.append((_key_id(key), key))
    if not keys:
        raise ImproperlyConfigured("DEVPILOT_ENCRYPTION_KEYS is empty.")
    return keys


def generate_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def encrypt(plaintext: str, associated_data: str) -> str:
    key_id, key = load_keys()[0]
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), associated_data.encode())
    return f"{FORMAT}:{key_id}:{base64.b64encode(nonce + sealed).decode()}"


def key_id_of(ciphertext: str) -> str:
    return ciphertext.split(":", 2)[1]


class KeyRing:
    """The configured keys, read once: decrypt many values (a list of secrets) without re-reading
    and re-decoding DEVPILOT_ENCRYPTION_KEYS for each. `decrypt()` below is one value through one."""

    def __init__(self, keys: list[tuple[str, bytes]] | None = None):
        self._keys = dict(load_keys() if keys is None else keys)
        self._ciphers: dict[str, AESGCM] = {}

    def decrypt(self, ciphertext: str, associated_data: str) -> str:
        try:
            version, key_id, payload = ciphertext.split(":", 2)
            raw = binascii.a2b_base64(payload, strict_mode=True)  # b64decode(validate=True), without its regex
        except (ValueError, binascii.Error):
            raise DecryptionError("Malformed ciphertext.") from None
        if version != FORMAT:
            raise DecryptionError(f"Unknown ciphertext format {version!r}.")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            key = self._keys.get(key_id)
            if key is None:
                raise DecryptionError(
                    f"Value was encrypted with key {key_id}, which is not in DEVPILOT_ENCRYPTION_KEYS."
                )
            cipher = self._ciphers[key_id] = AESGCM(key)
        try:
            return cipher.decrypt(raw[:12], raw[12:], associated_data.encode()).decode()
        except InvalidTag:
            raise DecryptionError("Ciphertext does not match its key or its row.") from None


def decrypt(ciphertext: str, associated_data: str) -> str:
    return KeyRing().decrypt(ciphertext, associated_data)


def needs_rotation(ciphertext: str) -> bool:
    return bool(ciphertext) and key_id_of(ciphertext) != load_keys()[0][0]


class EncryptedValue(property):
    """A model attribute that reads and writes plaintext but stores ciphertext.

        class Secret(models.Model):
            id = models.UUIDField(primary_key=True, default=uuid.uuid4)
            value_ciphertext = models.TextField(editable=False)
            value = EncryptedValue("value_ciphertext")

    The associated data is "<app_label.model>:<pk>:<name>", so the model needs a
    primary key that exists before the first save (a UUID default). An empty
    ciphertext reads as None. Being a property, it can be passed to the model's
    constructor: Secret(value="...").
    """

    def __init__(self, ciphertext_field: str):
        self.ciphertext_field = ciphertext_field
        super().__init__(self._get, self._set)

    def __set_name__(self, owner, name):
        self.name = name
        self.owner = owner
        if not hasattr(owner, "_encrypted_fields"):
            owner._encrypted_fields = {}
        owner._encrypted_fields = {**owner._encrypted_fields, name: self.ciphertext_field}

    def associated_data(self, instance) -> str:
        if instance.pk is None:
            raise ValueError(f"{type(instance).__name__} needs a primary key before encryption.")
        return self.associated_data_for(instance.pk, instance._meta.label_lower)

    def associated_data_for(self, pk, label_lower: str | None = None) -> str:
        """The associated data of row `pk`, for reading values from `.values()` rows without model instances."""
        return f"{label_lower or self.owner._meta.label_lower}:{pk}:{self.name}"

    def decrypt_value(self, ciphertext: str, pk, keyring: KeyRing) -> str | None:
        """What the attribute reads for row `pk` holding `ciphertext`, with keys already loaded in `keyring`."""
        return keyring.decrypt(ciphertext, self.associated_data_for(pk)) if ciphertext else None

    def _get(self, instance):
        ciphertext = getattr(instance, self.ciphertext_field)
        if not ciphertext:
            return None
        return decrypt(ciphertext, self.associated_data(instance))

    def _set(self, instance, plaintext):
        ciphertext = "" if plaintext is None else encrypt(plaintext, self.associated_data(instance))
        setattr(instance, self.ciphertext_field, ciphertext)


def encrypted_models():
    from django.apps import apps

    return [m for m in apps.get_models() if getattr(m, "_encrypted_fields", None)]


def rotate_all(batch_size: int = 500) -> dict[str, int]:
    """Re-encrypt every stored value under the newest key. Returns counts per model."""
    from django.db import transaction

    counts = {}
    for model in encrypted_models():
        fields = model._encrypted_fields
        rotated = 0
        queryset = model._base_manager.order_by("pk").only("pk", *fields.values())
        for obj in queryset.iterator(chunk_size=batch_size):
            changed = [c for c in fields.values() if needs_rotation(getattr(obj, c))]
            if not changed:
                continue
            for name, column in fields.items():
                if column in changed:
                    setattr(obj, name, getattr(obj, name))
            with transaction.atomic():
                model._base_manager.filter(pk=obj.pk).update(**{c: getattr(obj, c) for c in changed})
            rotated += 1
        counts[model._meta.label] = rotated
    return counts

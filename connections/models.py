import hashlib
import uuid
from datetime import UTC, datetime

from django.conf import settings
from django.db import models

from devpilot.crypto import EncryptedValue
from devpilot.models import Workspace


class Provider(models.TextChoices):
    DIGITALOCEAN = "digital-ocean", "DigitalOcean"


class Status(models.TextChoices):
    OK = "ok", "Working"
    INVALID = "invalid", "Token invalid or revoked"
    UNREACHABLE = "unreachable", "Provider unreachable"
    RATE_LIMITED = "rate_limited", "Rate limited"


class Connection(models.Model):
    """A workspace's credentials for one provider account (Infisical's "App Connection").

    `name` is the form's Access Key (a label); `token` is its Secret Key. Syncs and
    servers point here with on_delete=SET_NULL: removing a connection never
    deletes them (related names `syncs` and `servers`).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="connections")
    provider = models.CharField(max_length=32, choices=Provider.choices, default=Provider.DIGITALOCEAN)
    name = models.CharField("Access Key", max_length=64)
    description = models.TextField(blank=True)
    token_ciphertext = models.TextField(editable=False)
    token = EncryptedValue("token_ciphertext")
    version = models.PositiveIntegerField(default=1)
    # What the provider told us when the token was last checked.
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OK)
    last_error = models.TextField(blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    account_uuid = models.CharField(max_length=64, blank=True, db_index=True)
    account_email = models.EmailField(blank=True)
    team_uuid = models.CharField(max_length=64, blank=True)
    team_name = models.CharField(max_length=200, blank=True)
    droplet_limit = models.PositiveIntegerField(null=True, blank=True)
    capabilities = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="connection_name_unique")
        ]

    def __str__(self):
        return self.name

    @property
    def credentials_hash(self):
        """SHA-256 of the stored ciphertext (as Infisical): shows that credentials changed, reveals nothing."""
        return hashlib.sha256(self.token_ciphertext.encode()).hexdigest()

    @property
    def provider_module(self):
        from connections.providers import get_provider

        return get_provider(self.provider)

    def client(self):
        from connections.digitalocean import DigitalOceanClient

        return DigitalOceanClient.for_connection(self)

    @property
    def rate_key(self) -> str:
        """The key of this token's DigitalOcean call budget: shared by every connection holding the same token."""
        from connections.budget import rate_key_for

        return rate_key_for(self.token)


SLOT_SECONDS = 10  # CallBucket's slot length (connections/budget.py)


class CallBucket(models.Model):
    """DigitalOcean calls made with one token in one 10-second slot: the budget every worker and machine
    shares (connections/budget.py). `rate_key` is the token's SHA-256, never the token."""

    rate_key = models.CharField(max_length=64)
    slot = models.BigIntegerField(help_text="Seconds since 1970 divided by the slot length (10 s).")
    calls = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rate_key", "slot"], name="callbucket_key_slot_unique")]
        indexes = [models.Index(fields=["slot"], name="callbucket_slot")]  # pruning old slots of every token

    def __str__(self):
        return f"{self.rate_key[:12]}… at {self.starts_at:%H:%M:%S}: {self.calls} calls"

    @property
    def starts_at(self) -> datetime:
        return datetime.fromtimestamp(self.slot * SLOT_SECONDS, tz=UTC)


class RateLimitState(models.Model):
    """DigitalOcean's own word for one token (a 429, or few calls left): every worker holds off until reset_at.

    Written only when it matters (connections/budget.py), keyed like CallBucket."""

    rate_key = models.CharField(max_length=64, unique=True)
    remaining = models.IntegerField()
    reset_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"{self.rate_key}: {self.remaining} left until {self.reset_at:%H:%M:%S}"

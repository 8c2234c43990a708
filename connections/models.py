import hashlib
import uuid

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


class RateLimitState(models.Model):
    """The last rate-limit headers DigitalOcean sent for one token: shared by every worker."""

    rate_key = models.CharField(max_length=64, unique=True)
    remaining = models.IntegerField()
    reset_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"{self.rate_key}: {self.remaining} left until {self.reset_at:%H:%M:%S}"

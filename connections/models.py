import uuid

from django.conf import settings
from django.db import models

from devpilot.crypto import EncryptedValue
from devpilot.models import Workspace


class Provider(models.TextChoices):
    DIGITALOCEAN = "digital-ocean", "DigitalOcean"


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

    def client(self):
        from connections.digitalocean import DigitalOceanClient

        return DigitalOceanClient.for_connection(self)

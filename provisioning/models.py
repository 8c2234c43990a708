import uuid

from django.conf import settings
from django.db import models

from connections.models import Connection
from devpilot.crypto import EncryptedValue
from devpilot.models import Workspace


class SshKey(models.Model):
    """The workspace's key pair, put on every Droplet it provisions. The private key is encrypted."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.OneToOneField(Workspace, models.CASCADE, related_name="ssh_key")
    public_key = models.TextField()
    fingerprint = models.CharField(max_length=64)  # MD5, colon-separated, as DigitalOcean shows it
    private_key_ciphertext = models.TextField(editable=False)
    private_key = EncryptedValue("private_key_ciphertext")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"{self.workspace} key {self.fingerprint}"


class ServerStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    CREATING = "creating", "Creating Droplet"
    BOOTING = "booting", "Booting"
    CONFIGURING = "configuring", "Configuring firewall"
    INSTALLING_AGENT = "installing_agent", "Installing agent"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"
    OFF = "off", "Off"
    DESTROYING = "destroying", "Destroying"
    DESTROYED = "destroyed", "Destroyed"
    DELETED_OUTSIDE = "deleted_outside", "Deleted outside Devpilot"
    NO_CONNECTION = "no_connection", "No connection"
    AGENT_MISSING = "agent_missing", "Agent missing"


class Server(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="servers")
    connection = models.ForeignKey(Connection, models.SET_NULL, null=True, blank=True, related_name="servers")
    # The DigitalOcean account the Droplet lives in: a new connection to it takes the server back.
    account_uuid = models.CharField(max_length=64, blank=True, db_index=True)
    name = models.CharField(max_length=63)
    region = models.CharField(max_length=32)
    size = models.CharField(max_length=64)
    image = models.CharField(max_length=64)
    price_monthly = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    monitoring = models.BooleanField(default=True)
    backups = models.BooleanField(default=False)
    ipv6 = models.BooleanField(default=False)
    inbound_rules = models.JSONField(default=list)  # [{"protocol", "ports", "sources": [addresses]}]
    extra_public_keys = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=20, choices=ServerStatus.choices, default=ServerStatus.PENDING)
    status_message = models.TextField(blank=True)
    droplet_id = models.BigIntegerField(null=True, blank=True)
    droplet_created_at = models.DateTimeField(null=True, blank=True)
    firewall_id = models.CharField(max_length=64, blank=True)
    ssh_key_ids = models.JSONField(default=list, blank=True)
    ipv4_public = models.GenericIPAddressField(null=True, blank=True)
    ipv4_private = models.GenericIPAddressField(null=True, blank=True)
    ipv6_address = models.GenericIPAddressField(null=True, blank=True)
    # Agent: a one-time registration token (hashed, short-lived), then a long-lived credential (hashed).
    registration_token_hash = models.CharField(max_length=64, blank=True, db_index=True)
    # Kept (encrypted) until used, so a retried create puts the same token in user_data.
    registration_token_ciphertext = models.TextField(blank=True, editable=False)
    registration_token = EncryptedValue("registration_token_ciphertext")
    create_attempted_at = models.DateTimeField(null=True, blank=True)
    registration_expires_at = models.DateTimeField(null=True, blank=True)
    agent_credential_hash = models.CharField(max_length=64, blank=True, db_index=True)
    agent_registered_at = models.DateTimeField(null=True, blank=True)
    agent_last_seen_at = models.DateTimeField(null=True, blank=True)
    agent_info = models.JSONField(default=dict, blank=True)
    heartbeat_interval = models.PositiveIntegerField(default=60)
    action_in_progress = models.CharField(max_length=32, blank=True)
    # The outbox (devpilot/outbox.py): when a worker should next look at this server's provisioning or
    # action. Written in the same transaction as the change that makes the work; a sweeper re-enqueues
    # work that is due and has no live lease (`server:<id>`, `server-action:<id>`).
    next_run_at = models.DateTimeField(null=True, blank=True, db_index=True)
    action_due_at = models.DateTimeField(null=True, blank=True, db_index=True)
    action_state = models.JSONField(default=dict, blank=True)  # the action's phase, DigitalOcean action id, tries
    create_calls = models.PositiveSmallIntegerField(default=0)  # Droplet create calls sent (bounded)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["workspace", "name"], name="server_name_unique")]

    def __str__(self):
        return self.name

    @property
    def tag(self):
        return f"devpilot:server:{self.pk}"

    @property
    def firewall_name(self):
        return f"devpilot-{str(self.pk)[:8]}-{self.name}"[:63].rstrip("-.")

    @property
    def is_busy(self):
        return self.status in (ServerStatus.PENDING, ServerStatus.CREATING, ServerStatus.BOOTING,
                               ServerStatus.CONFIGURING, ServerStatus.INSTALLING_AGENT, ServerStatus.DESTROYING) \
            or bool(self.action_in_progress)

    @property
    def agent_status(self):
        from provisioning import agents

        return agents.status(self)


class StepStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Done"
    FAILED = "failed", "Failed"


class ServerStep(models.Model):
    server = models.ForeignKey(Server, models.CASCADE, related_name="steps")
    number = models.PositiveSmallIntegerField()
    key = models.CharField(max_length=16)
    label = models.CharField(max_length=64)
    status = models.CharField(max_length=10, choices=StepStatus.choices, default=StepStatus.PENDING)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["number"]
        constraints = [models.UniqueConstraint(fields=["server", "number"], name="server_step_unique")]

    def __str__(self):
        return f"{self.number}. {self.label}"

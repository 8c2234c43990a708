import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

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
    OFF = "off", "Off"  # before power state was its own field (power_state); migrated to ready + off
    DESTROYING = "destroying", "Destroying"
    DESTROYED = "destroyed", "Destroyed"
    DELETED_OUTSIDE = "deleted_outside", "Deleted outside Devpilot"
    NO_CONNECTION = "no_connection", "No connection"
    AGENT_MISSING = "agent_missing", "Agent missing"


class PowerState(models.TextChoices):
    """The Droplet's `status` at DigitalOcean, as last read (after every action and by reconciliation)."""

    UNKNOWN = "", "Unknown"
    NEW = "new", "Starting"
    ACTIVE = "active", "On"
    OFF = "off", "Off"
    ARCHIVE = "archive", "Archived at DigitalOcean"


class ServerQuerySet(models.QuerySet):
    def live(self) -> "ServerQuerySet":
        """Servers not archived: listed, holding their name, their agent accepted."""
        return self.filter(archived_at__isnull=True)

    def archived(self) -> "ServerQuerySet":
        """Destroyed servers, kept with their history; they hold no name and no agent is accepted for them."""
        return self.filter(archived_at__isnull=False)


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
    # The Droplet's own price (its size's), without backups; `monthly_cost` adds them. Follows a resize.
    price_monthly = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    disk_gb = models.PositiveIntegerField(null=True, blank=True)
    memory_mb = models.PositiveIntegerField(null=True, blank=True)
    vcpus = models.PositiveSmallIntegerField(null=True, blank=True)
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
    # When the action in progress must have ended: past it a pass or housekeeping ends it as failed.
    action_deadline = models.DateTimeField(null=True, blank=True, db_index=True)
    # The status message reports a failure (a refused or failed action), shown as an error.
    status_message_is_error = models.BooleanField(default=False)
    power_state = models.CharField(max_length=10, choices=PowerState.choices, blank=True, default="")
    power_state_at = models.DateTimeField(null=True, blank=True)
    # DigitalOcean reports an action in progress on the Droplet (it refuses others with "pending event").
    pending_event = models.BooleanField(default=False)
    archived_at = models.DateTimeField(null=True, blank=True, db_index=True)  # destroyed: out of the list
    # The outbox (devpilot/outbox.py): when a worker should next look at this server's provisioning or
    # action. Written in the same transaction as the change that makes the work; a sweeper re-enqueues
    # work that is due and has no live lease (`server:<id>`, `server-action:<id>`).
    next_run_at = models.DateTimeField(null=True, blank=True, db_index=True)
    action_due_at = models.DateTimeField(null=True, blank=True, db_index=True)
    action_state = models.JSONField(default=dict, blank=True)  # the action's phase, DigitalOcean action id, tries
    create_calls = models.PositiveSmallIntegerField(default=0)  # Droplet create calls sent (bounded)
    # Devpilot's own labels (a sync may target every live server with a tag, those tagged later too).
    devpilot_tags = models.JSONField(default=list, blank=True)
    # The only commands a sync may ask the agent to run after writing a file (argv, never through a shell).
    reload_commands = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ServerQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        # An archived (destroyed) server frees its name.
        constraints = [models.UniqueConstraint(fields=["workspace", "name"], condition=models.Q(archived_at__isnull=True),
                                               name="server_name_unique_live")]

    def __str__(self):
        return self.name

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None

    @property
    def monthly_cost(self):
        """What the Droplet costs a month: its price, plus 20% for weekly backups."""
        from provisioning.pricing import monthly_cost

        return monthly_cost(self.price_monthly, self.backups)

    @property
    def tag(self):
        return f"devpilot:server:{self.pk}"

    @property
    def firewall_name(self):
        return f"devpilot-{str(self.pk)[:8]}-{self.name}"[:63].rstrip("-.")

    @property
    def is_busy(self):
        if self.is_archived:
            return False
        return self.pending_event or self.status in (ServerStatus.PENDING, ServerStatus.CREATING, ServerStatus.BOOTING,
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
    STOPPED = "stopped", "Stopped"  # the server was destroyed before the step ended


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


# --- Agent channel, people's keys, metrics, alerts ---


class CommandState(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent to the agent"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class AgentCommand(models.Model):
    """One instruction for a server's agent, of a kind Devpilot defines (provisioning/commands.py).

    Fetched by the agent with its heartbeat, acknowledged with its result; one not acknowledged
    before `due_at` ends failed (commands.expire_overdue).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    server = models.ForeignKey(Server, models.CASCADE, related_name="agent_commands")
    kind = models.CharField(max_length=40)
    payload = models.JSONField(default=dict)
    state = models.CharField(max_length=10, choices=CommandState.choices, default=CommandState.PENDING)
    error = models.TextField(blank=True)
    result = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["server", "state"], name="agent_command_open")]

    def __str__(self):
        return f"{self.kind} on {self.server} ({self.state})"


class MemberSshKey(models.Model):
    """A person's own SSH public key, put on the servers an admin lets them reach."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="ssh_public_keys")
    name = models.CharField(max_length=100)
    public_key = models.TextField()  # "<type> <base64>", without the comment
    fingerprint = models.CharField(max_length=64)  # SHA256:…, as `ssh-keygen -l` shows it
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [models.UniqueConstraint(fields=["user", "fingerprint"], name="member_ssh_key_unique")]

    def __str__(self):
        return f"{self.name} ({self.fingerprint})"


class ServerAccess(models.Model):
    """A member may SSH into a server as root with their own keys."""

    server = models.ForeignKey(Server, models.CASCADE, related_name="access_grants")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="server_access")
    granted_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["server", "user"], name="server_access_unique")]

    def __str__(self):
        return f"{self.user} on {self.server}"


class MetricSample(models.Model):
    """A heartbeat's metrics (resolution 0) or an average over `resolution` seconds (provisioning/metrics.py)."""

    server = models.ForeignKey(Server, models.CASCADE, related_name="metric_samples")
    resolution = models.PositiveIntegerField()  # 0 raw, 300, 3600
    at = models.DateTimeField()  # the sample's time, or the start of the averaged bucket
    cpu_percent = models.FloatField()
    memory_used = models.BigIntegerField()
    memory_total = models.BigIntegerField()
    disk_used = models.BigIntegerField()
    disk_total = models.BigIntegerField()
    load1 = models.FloatField()
    load5 = models.FloatField()
    load15 = models.FloatField()

    class Meta:
        ordering = ["at"]
        indexes = [models.Index(fields=["server", "resolution", "at"], name="metric_sample_series")]

    def __str__(self):
        return f"{self.server} {self.at:%Y-%m-%d %H:%M} ({self.resolution}s)"


class AlertKind(models.TextChoices):
    CPU_HIGH = "cpu_high", "CPU above a threshold"
    DISK_HIGH = "disk_high", "Disk above a threshold"
    AGENT_OFFLINE = "agent_offline", "Agent offline"


class AlertRule(models.Model):
    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="alert_rules")
    kind = models.CharField(max_length=20, choices=AlertKind.choices)
    threshold = models.PositiveSmallIntegerField(null=True, blank=True)  # percent (CPU, disk)
    minutes = models.PositiveSmallIntegerField(null=True, blank=True)  # for how long (CPU, agent offline)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["kind", "threshold", "minutes", "pk"]

    def __str__(self):
        from provisioning import alerts

        return alerts.describe(self)


class Alert(models.Model):
    """A rule firing for a server: open until the condition clears (resolved_at)."""

    rule = models.ForeignKey(AlertRule, models.CASCADE, related_name="alerts")
    server = models.ForeignKey(Server, models.CASCADE, related_name="alerts")
    message = models.TextField()
    opened_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at"]
        constraints = [models.UniqueConstraint(fields=["rule", "server"], condition=models.Q(resolved_at__isnull=True),
                                               name="one_open_alert_per_rule_and_server")]

    def __str__(self):
        return self.message

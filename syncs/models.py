import uuid

from django.conf import settings
from django.db import models

from connections.models import Connection
from devpilot.crypto import EncryptedValue
from devpilot.models import Environment, Folder, Workspace


class SyncStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    # The variables were written, but the deployment DigitalOcean started with them failed or was canceled.
    DEPLOY_FAILED = "deploy_failed", "Deployed with errors"


class DeploymentPhase(models.TextChoices):
    """DigitalOcean's App Platform deployment phases (apps_deployment_phase)."""

    UNKNOWN = "UNKNOWN", "Unknown"
    PENDING_BUILD = "PENDING_BUILD", "Waiting to build"
    BUILDING = "BUILDING", "Building"
    PENDING_DEPLOY = "PENDING_DEPLOY", "Waiting to deploy"
    DEPLOYING = "DEPLOYING", "Deploying"
    ACTIVE = "ACTIVE", "Active"
    SUPERSEDED = "SUPERSEDED", "Superseded by a newer deployment"
    ERROR = "ERROR", "Failed"
    CANCELED = "CANCELED", "Canceled"


DEPLOYMENT_ENDED = {DeploymentPhase.ACTIVE, DeploymentPhase.SUPERSEDED, DeploymentPhase.ERROR,
                    DeploymentPhase.CANCELED}


class EnvType(models.TextChoices):
    SECRET = "SECRET", "Secret (encrypted by DigitalOcean)"
    GENERAL = "GENERAL", "General (plain text)"


class EnvScope(models.TextChoices):
    RUN_AND_BUILD_TIME = "RUN_AND_BUILD_TIME", "Run and build time"
    RUN_TIME = "RUN_TIME", "Run time"
    BUILD_TIME = "BUILD_TIME", "Build time"


class FileFormat(models.TextChoices):
    DOTENV = "dotenv", ".env"
    JSON = "json", "JSON"
    YAML = "yaml", "YAML"


class Sync(models.Model):
    """Pushes one environment folder's secrets into a DigitalOcean App Platform app."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="syncs")
    name = models.SlugField(max_length=64)
    description = models.TextField(blank=True)
    connection = models.ForeignKey(Connection, models.SET_NULL, null=True, blank=True, related_name="syncs")
    environment = models.ForeignKey(Environment, models.PROTECT, related_name="syncs")
    folder = models.ForeignKey(Folder, models.PROTECT, related_name="syncs")
    destination = models.CharField(max_length=64, default="digital-ocean-app-platform")
    # Destination: the app, and where in it (blank component = app-level variables).
    app_id = models.CharField(max_length=64)
    app_name = models.CharField(max_length=255, blank=True)
    component = models.CharField(max_length=64, blank=True)
    env_type = models.CharField(max_length=8, choices=EnvType.choices, default=EnvType.SECRET)
    env_scope = models.CharField(max_length=20, choices=EnvScope.choices, default=EnvScope.RUN_AND_BUILD_TIME)
    # Destination "devpilot-server": one server, or every live server of the workspace with a Devpilot tag.
    server = models.ForeignKey("provisioning.Server", models.SET_NULL, null=True, blank=True, related_name="syncs")
    server_tag = models.CharField(max_length=64, blank=True)
    file_path = models.CharField(max_length=512, blank=True)
    file_format = models.CharField(max_length=8, choices=FileFormat.choices, default=FileFormat.DOTENV)
    file_owner = models.CharField(max_length=32, blank=True)
    file_group = models.CharField(max_length=32, blank=True)
    file_mode = models.CharField(max_length=4, default="0600")
    reload_command = models.CharField(max_length=255, blank=True)  # one of the server's reload_commands
    # Options.
    initial_sync_behavior = models.CharField(max_length=32, default="overwrite-destination")
    key_schema = models.CharField(max_length=255, blank=True)
    auto_sync_enabled = models.BooleanField(default=True)
    disable_secret_deletion = models.BooleanField(default=False)
    # Status, named as Infisical names it.
    sync_status = models.CharField(max_length=16, choices=SyncStatus.choices, blank=True)
    last_sync_job_id = models.UUIDField(null=True, blank=True)
    last_sync_message = models.TextField(blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    remove_status = models.CharField(max_length=16, choices=SyncStatus.choices, blank=True)
    last_remove_job_id = models.UUIDField(null=True, blank=True)
    last_remove_message = models.TextField(blank=True)
    last_removed_at = models.DateTimeField(null=True, blank=True)
    # Values changed at DigitalOcean outside Devpilot, as last seen by the drift check.
    drift_keys = models.JSONField(default=list, blank=True)
    drift_checked_at = models.DateTimeField(null=True, blank=True)
    # Auto-sync: edits push this forward; a scheduled check of the folder owes the run once it has passed.
    pending_run_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # The outbox (devpilot/outbox.py): a run or removal owed, written in the same transaction as the request.
    # Runs are served per app, by whichever batch holds the app's lease; a removal's id travels with its task,
    # so a task delivered twice (or superseded) runs once. A sweeper re-enqueues what is due with no live lease.
    queued_run = models.UUIDField(null=True, blank=True)
    queued_run_at = models.DateTimeField(null=True, blank=True, db_index=True)
    queued_run_trigger = models.CharField(max_length=10, blank=True)
    queued_remove = models.UUIDField(null=True, blank=True)
    queued_remove_at = models.DateTimeField(null=True, blank=True, db_index=True)
    queued_remove_trigger = models.CharField(max_length=10, blank=True)
    # Deleting with "remove secrets first": a worker removes the variables, then deletes the sync.
    delete_after_removal = models.BooleanField(default=False)
    # Transient failures: when the current streak began (retries stop after 30 minutes).
    failing_since = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "secret sync"
        constraints = [models.UniqueConstraint(fields=["workspace", "name"], name="sync_name_unique")]

    def __str__(self):
        return self.name

    @property
    def target_label(self):
        return f"component {self.component}" if self.component else "app-level variables"

    @property
    def has_destination(self) -> bool:
        """Whether a run can reach the destination: an App Platform sync needs its connection (a removed one
        leaves it empty); a server sync's agents need none."""
        return self.connection_id is not None or self.destination == "devpilot-server"

    @property
    def is_busy(self):
        return self.delete_after_removal or self.sync_status in (SyncStatus.PENDING, SyncStatus.RUNNING) or \
            self.remove_status in (SyncStatus.PENDING, SyncStatus.RUNNING)


class SyncedKey(models.Model):
    """What this sync last sent for one destination key, and what DigitalOcean stored.

    SECRET values come back as EV[...], which cannot be compared with plaintext: a key is
    unchanged when the source value hashes to `value_hash` and DigitalOcean still holds
    `remote_value`.
    """

    sync = models.ForeignKey(Sync, models.CASCADE, related_name="synced_keys")
    key = models.CharField(max_length=255)
    value_hash = models.CharField(max_length=64)
    remote_value = models.TextField()
    synced_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["sync", "key"], name="synced_key_unique")]

    def __str__(self):
        return self.key


class RunKind(models.TextChoices):
    SYNC = "sync", "Sync"
    REMOVE = "remove", "Remove secrets"
    RESTORE = "restore", "Restore previous values"


class Trigger(models.TextChoices):
    CREATED = "created", "Sync created"
    MANUAL = "manual", "Sync now"
    AUTO = "auto", "Source changed"
    API = "api", "API"
    RETRY = "retry", "Retry"
    SCHEDULE = "schedule", "Scheduled retry"


class SyncRun(models.Model):
    """One run of a sync or of a secret removal: the history shown on the sync page."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)  # the job id
    sync = models.ForeignKey(Sync, models.CASCADE, related_name="runs")
    kind = models.CharField(max_length=8, choices=RunKind.choices, default=RunKind.SYNC)
    trigger = models.CharField(max_length=10, choices=Trigger.choices)
    status = models.CharField(max_length=16, choices=SyncStatus.choices, default=SyncStatus.RUNNING)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    deleted = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    deployment_started = models.BooleanField(default=False)
    drift_keys = models.JSONField(default=list, blank=True)
    request_ids = models.JSONField(default=list, blank=True)
    message = models.TextField(blank=True)
    # The deployment DigitalOcean started with this run's write, followed until it ends (syncs/deployments.py).
    deployment_id = models.CharField(max_length=64, blank=True)
    deployment_phase = models.CharField(max_length=16, choices=DeploymentPhase.choices, blank=True)
    deployment_message = models.TextField(blank=True)
    deployment_checked_at = models.DateTimeField(null=True, blank=True)
    deployment_ended_at = models.DateTimeField(null=True, blank=True)
    # The variables this run changed, as they were before it (JSON: {"component": str, "variables":
    # {key: variable dict, or null when the run created it}}), for "Restore previous values".
    # Encrypted: GENERAL variables hold plain text.
    previous_ciphertext = models.TextField(blank=True, editable=False)
    previous = EncryptedValue("previous_ciphertext")
    restores = models.ForeignKey("self", models.SET_NULL, null=True, blank=True, related_name="restored_by")

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["sync", "-started_at"])]

    def __str__(self):
        return f"{self.sync} {self.kind} {self.started_at:%Y-%m-%d %H:%M:%S}"


class ServerDelivery(models.Model):
    """A server sync's file on one target server: the latest command sent for it, and what was last applied.

    Only key names and HMACs of values (keyed by a server-side secret) are kept, never values: the dry run
    compares the source with them. The state shown is the latest command's (pending, sent, done, failed).
    """

    sync = models.ForeignKey(Sync, models.CASCADE, related_name="deliveries")
    server = models.ForeignKey("provisioning.Server", models.CASCADE, related_name="deliveries")
    command = models.ForeignKey("provisioning.AgentCommand", models.SET_NULL, null=True, blank=True, related_name="+")
    # What the command being delivered carried (set when the agent fetched it), moved to applied_* on success.
    sent_command_id = models.UUIDField(null=True, blank=True)
    sent_key_hashes = models.JSONField(default=dict, blank=True)
    applied_key_hashes = models.JSONField(default=dict, blank=True)  # key -> HMAC of the value written
    path = models.CharField(max_length=512, blank=True)  # the file the applied keys are in
    applied_sha256 = models.CharField(max_length=64, blank=True)
    applied_version = models.PositiveIntegerField(null=True, blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    reload_command = models.CharField(max_length=255, blank=True)
    reload_exit_status = models.IntegerField(null=True, blank=True)

    class Meta:
        ordering = ["server__name"]
        constraints = [models.UniqueConstraint(fields=["sync", "server"], name="server_delivery_unique")]

    def __str__(self):
        return f"{self.sync} on {self.server}"

    @property
    def managed_keys(self) -> list[str]:
        return sorted(self.applied_key_hashes)

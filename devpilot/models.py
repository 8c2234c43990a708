import hashlib
import uuid

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from devpilot.crypto import EncryptedValue


class UserManager(BaseUserManager):
    use_in_migrations = True

    def create_user(self, email, password=None, **extra):
        email = self.normalize_email(email).lower()
        user = self.model(email=email, **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email, password=None, **extra):
        extra.update(is_staff=True, is_superuser=True)
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    email = models.EmailField(unique=True)
    name = models.CharField(max_length=150, blank=True)
    is_staff = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = []

    def __str__(self):
        return self.email

    def get_full_name(self):
        return self.name or self.email

    def get_short_name(self):
        return self.name or self.email.split("@")[0]


class Role(models.TextChoices):
    """Ordered from most to least powerful; see devpilot/permissions.py."""

    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"
    VIEWER = "viewer", "Viewer"


class Workspace(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=60, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Only owners turn it on; members without MFA are sent to set it up (devpilot/access.py).
    require_mfa = models.BooleanField(default=False)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Membership(models.Model):
    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)
    # When this member hid the Overview's first-run checklist (per user, per workspace).
    checklist_dismissed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "user"], name="one_membership_per_user")
        ]

    def __str__(self):
        return f"{self.user} in {self.workspace} ({self.role})"


def hash_token(token: str) -> str:
    """Tokens are random and long, so a plain SHA-256 is the right hash (no salt or KDF needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


class Invitation(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"Invitation of {self.email} to {self.workspace}"

    @property
    def is_pending(self):
        return not self.accepted_at and not self.revoked_at and self.expires_at > timezone.now()


_NOT_READ = object()


def creator_role(of: str = "") -> Subquery:
    """Annotate a token or identity query with its creator's current role (`creator_role`), for capped_role;
    `of` names the related token or identity ("identity__") when the query is of something else."""
    return Subquery(Membership.objects.filter(workspace_id=OuterRef(f"{of}workspace_id"), user_id=OuterRef(
        f"{of}created_by_id")).values("role")[:1])


def capped_role(obj) -> str | None:
    """An API token's or machine identity's effective role: the lower of its own role and its creator's
    current role in the workspace; None when the creator is no longer a member. Made without a person
    (manage.py commands, tests): its own role."""
    if obj.created_by_id is None:
        return obj.role
    creator = getattr(obj, "creator_role", _NOT_READ)
    if creator is _NOT_READ:
        creator = Membership.objects.filter(workspace_id=obj.workspace_id, user_id=obj.created_by_id).values_list(
            "role", flat=True).first()
    if creator is None:
        return None
    order = [Role.VIEWER, Role.MEMBER, Role.ADMIN, Role.OWNER]
    return obj.role if order.index(Role(obj.role)) <= order.index(Role(creator)) else creator


class ApiToken(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.ADMIN)
    # The first characters of the token, shown so people can tell tokens apart.
    prefix = models.CharField(max_length=16, editable=False)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self):
        return not self.revoked_at and (self.expires_at is None or self.expires_at > timezone.now())

    @property
    def effective_role(self):
        return capped_role(self)


class MachineIdentity(models.Model):
    """A workspace's non-human member: logs in with universal auth (a client id and a client secret).

    Its role is one of the members' roles except owner; it acts with at most its creator's current role.
    """

    DEFAULT_TTL = 2_592_000  # 30 days, Infisical's default access token TTL and max TTL

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="machine_identities")
    name = models.CharField(max_length=100)
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)
    client_id = models.UUIDField(unique=True, default=uuid.uuid4, editable=False)
    # Seconds. A max TTL of 0 means renewals are not capped.
    access_token_ttl = models.PositiveIntegerField(default=DEFAULT_TTL)
    access_token_max_ttl = models.PositiveIntegerField(default=DEFAULT_TTL)
    # CIDR ranges (or single addresses) allowed to log in and to use access tokens; empty means anywhere.
    trusted_ips = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "created_at"]
        verbose_name_plural = "machine identities"
        constraints = [models.UniqueConstraint(fields=["workspace", "name"], name="identity_name_unique")]

    def __str__(self):
        return self.name

    @property
    def effective_role(self):
        return capped_role(self)


class IdentityClientSecret(models.Model):
    """A universal-auth client secret: shown once, stored as a SHA-256 hash; optional expiry and use limit."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    identity = models.ForeignKey(MachineIdentity, models.CASCADE, related_name="client_secrets")
    description = models.CharField(max_length=200, blank=True)
    prefix = models.CharField(max_length=16, editable=False)
    secret_hash = models.CharField(max_length=64, unique=True, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    uses_limit = models.PositiveIntegerField(default=0)  # 0: unlimited
    uses = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.identity} ({self.prefix}…)"

    @property
    def is_active(self):
        return (not self.revoked_at and (self.expires_at is None or self.expires_at > timezone.now())
                and (not self.uses_limit or self.uses < self.uses_limit))


class IdentityAccessToken(models.Model):
    """A bearer token issued by a universal-auth login; renewable up to its max TTL; stored hashed."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    identity = models.ForeignKey(MachineIdentity, models.CASCADE, related_name="access_tokens")
    client_secret = models.ForeignKey(IdentityClientSecret, models.SET_NULL, null=True, blank=True,
                                      related_name="access_tokens")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    ttl = models.PositiveIntegerField()
    max_ttl = models.PositiveIntegerField()
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    renewed_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.identity} token of {self.created_at:%Y-%m-%d %H:%M}"


class AuditEvent(models.Model):
    """Who did what, when and from where. Never holds a secret value or token."""

    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="audit_events")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+")
    actor_token = models.ForeignKey(ApiToken, models.SET_NULL, null=True, blank=True, related_name="+")
    actor_identity = models.ForeignKey("MachineIdentity", models.SET_NULL, null=True, blank=True, related_name="+")
    actor_label = models.CharField(max_length=200, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_label = models.CharField(max_length=300, blank=True)
    data = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["workspace", "-created_at"])]

    def __str__(self):
        return f"{self.actor_label} {self.action} {self.target_label}"


class Environment(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="environments")
    name = models.CharField(max_length=64)
    slug = models.SlugField(max_length=64)
    position = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["position", "created_at"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "slug"], name="environment_slug_unique")
        ]

    def __str__(self):
        return self.name


class Folder(models.Model):
    """A folder path in an environment. `/` always exists; paths never end in `/` otherwise."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="folders")
    environment = models.ForeignKey(Environment, models.CASCADE, related_name="folders")
    path = models.CharField(max_length=500)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["path"]
        constraints = [
            models.UniqueConstraint(fields=["environment", "path"], name="folder_path_unique")
        ]

    def __str__(self):
        return f"{self.environment.slug}:{self.path}"

    @property
    def name(self):
        return self.path.rsplit("/", 1)[-1] or "/"


class Secret(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="secrets")
    environment = models.ForeignKey(Environment, models.CASCADE, related_name="secrets")
    folder = models.ForeignKey(Folder, models.CASCADE, related_name="secrets")
    key = models.CharField(max_length=255)
    value_ciphertext = models.TextField(editable=False)
    value = EncryptedValue("value_ciphertext")
    comment = models.TextField(blank=True)
    # Bumped on every write: the optimistic check against lost updates.
    version = models.PositiveIntegerField(default=1)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, related_name="+")
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]
        constraints = [models.UniqueConstraint(fields=["folder", "key"], name="secret_key_unique")]
        indexes = [models.Index(fields=["environment", "key"])]

    def __str__(self):
        return self.key


class SecretVersion(models.Model):
    """A value a secret had, kept for history, restore and folder snapshots. It outlives its secret (the
    secret is then null) so a deleted secret stays recoverable: it records the folder and key itself."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    secret = models.ForeignKey(Secret, models.SET_NULL, null=True, blank=True, related_name="versions")
    folder = models.ForeignKey(Folder, models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    version = models.PositiveIntegerField()
    value_ciphertext = models.TextField(editable=False)
    value = EncryptedValue("value_ciphertext")
    comment = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(fields=["secret", "version"], name="secret_version_unique")
        ]

    def __str__(self):
        return f"{self.key} v{self.version}"


class SnapshotKind(models.TextChoices):
    CREATE = "create", "Secret created"
    EDIT = "edit", "Secret changed"
    DELETE = "delete", "Secrets deleted"
    RESTORE = "restore", "Version restored"
    IMPORT = "import", "Bulk import"
    PROMOTION = "promotion", "Promotion"
    ROLLBACK = "rollback", "Rollback"
    BASE = "base", "State when history began"


class FolderSnapshot(models.Model):
    """One change to a folder, numbered per folder (1, 2, 3…). Its entries name only the keys it changed;
    the folder's state at snapshot N is the last entry per key at or before N (devpilot/snapshots.py)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    folder = models.ForeignKey(Folder, models.CASCADE, related_name="snapshots")
    number = models.PositiveIntegerField()
    kind = models.CharField(max_length=16, choices=SnapshotKind.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+")
    actor_label = models.CharField(max_length=200, blank=True)
    summary = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-number"]
        constraints = [models.UniqueConstraint(fields=["folder", "number"], name="snapshot_number_unique")]
        indexes = [models.Index(fields=["folder", "created_at"])]

    def __str__(self):
        return f"{self.folder} #{self.number}"


class SnapshotEntry(models.Model):
    """A key's version as of a snapshot; a null version means the key was deleted. `folder` and `number`
    repeat the snapshot's, so a state is read from one index (folder, key, number)."""

    snapshot = models.ForeignKey(FolderSnapshot, models.CASCADE, related_name="entries")
    folder = models.ForeignKey(Folder, models.CASCADE, related_name="+")
    number = models.PositiveIntegerField()
    key = models.CharField(max_length=255)
    version = models.ForeignKey(SecretVersion, models.CASCADE, null=True, blank=True, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["snapshot", "key"], name="snapshot_entry_key_unique")]
        indexes = [models.Index(fields=["folder", "key", "number"])]

    def __str__(self):
        return f"{self.key} at #{self.number}"


class SecretReference(models.Model):
    """One `${...}` reference in a secret's value, in plaintext (environment slug, path, key; never a value).

    Values are encrypted, so this index is how Devpilot finds, without decrypting anything, which secrets
    depend on a folder: to refuse deleting a referenced secret and to auto-sync the syncs reading them.
    Kept by devpilot/references.py on every write of a value."""

    secret = models.ForeignKey(Secret, models.CASCADE, related_name="references")
    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="+")
    environment_slug = models.CharField(max_length=64)
    path = models.CharField(max_length=500)
    key = models.CharField(max_length=255)

    class Meta:
        indexes = [models.Index(fields=["workspace", "environment_slug", "path"])]

    def __str__(self):
        return f"{self.secret_id} -> {self.environment_slug}:{self.path}:{self.key}"


class SecretImport(models.Model):
    """A folder imports another folder's secrets (devpilot/imports.py). `position` orders a folder's imports:
    a later import overrides an earlier one, and the folder's own secrets override them all."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="+")
    folder = models.ForeignKey(Folder, models.CASCADE, related_name="imports")
    source_folder = models.ForeignKey(Folder, models.CASCADE, related_name="imported_by")
    position = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "created_at"]
        constraints = [models.UniqueConstraint(fields=["folder", "source_folder"], name="secret_import_unique")]

    def __str__(self):
        return f"{self.folder} imports {self.source_folder}"


class WorkerHeartbeat(models.Model):
    """Written by a scheduled task every minute: proof that a django-q2 worker is alive."""

    name = models.CharField(max_length=100, unique=True)
    seen_at = models.DateTimeField()

    def __str__(self):
        return f"{self.name} at {self.seen_at:%Y-%m-%d %H:%M:%S}"


class Lock(models.Model):
    """A named lease shared by every process through the database (see devpilot/locks.py)."""

    name = models.CharField(max_length=200, unique=True)
    holder = models.CharField(max_length=32, blank=True)
    expires_at = models.DateTimeField()

    def __str__(self):
        return self.name

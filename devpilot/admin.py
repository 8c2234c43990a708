"""Admin for the core models. Ciphertext and token hashes are never shown or editable."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from devpilot.models import (
    ApiToken, AuditEvent, Environment, Folder, FolderSnapshot, IdentityAccessToken, IdentityClientSecret, Invitation,
    Lock, MachineIdentity, Membership, Secret, SecretImport, SecretReference, SecretVersion, SnapshotEntry, User,
    WorkerHeartbeat, Workspace,
)


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "name", "is_staff", "is_active", "date_joined"]
    search_fields = ["email", "name"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Profile", {"fields": ["name"]}),
        ("Permissions", {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]}),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "password1", "password2"]})]


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "created_at"]
    search_fields = ["name", "slug"]
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "workspace", "role", "created_at"]
    list_filter = ["role"]
    list_select_related = ["user", "workspace"]
    search_fields = ["user__email", "workspace__name"]


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["email", "workspace", "role", "created_at", "expires_at", "accepted_at", "revoked_at"]
    list_select_related = ["workspace"]
    exclude = ["token_hash"]
    search_fields = ["email"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "workspace", "role", "created_at", "expires_at", "last_used_at", "revoked_at"]
    list_select_related = ["workspace"]
    readonly_fields = ["prefix", "last_used_at", "created_at"]
    exclude = ["token_hash"]


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "workspace", "actor_label", "action", "target_label", "ip_address"]
    list_filter = ["action"]
    list_select_related = ["workspace"]
    search_fields = ["action", "actor_label", "target_label"]

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Environment)
class EnvironmentAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "workspace", "position"]
    list_select_related = ["workspace"]


@admin.register(Folder)
class FolderAdmin(admin.ModelAdmin):
    list_display = ["path", "environment", "workspace"]
    list_select_related = ["environment", "workspace"]


@admin.register(Secret)
class SecretAdmin(admin.ModelAdmin):
    """Keys and comments only: values are never shown in the admin."""

    list_display = ["key", "environment", "folder", "workspace", "version", "updated_at"]
    list_select_related = ["environment", "folder", "workspace"]
    search_fields = ["key"]
    fields = ["workspace", "environment", "folder", "key", "comment", "version"]
    readonly_fields = ["workspace", "environment", "folder", "key", "version"]

    def has_add_permission(self, request):
        return False


@admin.register(SecretVersion)
class SecretVersionAdmin(admin.ModelAdmin):
    list_display = ["secret", "version", "created_by", "created_at"]
    list_select_related = ["secret", "created_by"]
    fields = ["secret", "version", "comment", "created_by", "created_at"]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False


class ReadOnlyAdmin(admin.ModelAdmin):
    """Shown, never added, edited or deleted here: rows that Devpilot's services write, where their rules hold
    (imports and the reference index: cycles and broken references refused; folder history; agent commands)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(SecretImport)
class SecretImportAdmin(ReadOnlyAdmin):
    list_display = ["folder", "source_folder", "position", "workspace", "created_at"]
    list_select_related = ["folder__environment", "source_folder__environment", "workspace"]


@admin.register(SecretReference)
class SecretReferenceAdmin(ReadOnlyAdmin):
    """Targets only (environment slug, path, key): the index never holds a value."""

    list_display = ["secret", "environment_slug", "path", "key", "workspace"]
    list_select_related = ["secret", "workspace"]
    search_fields = ["key", "path"]


@admin.register(FolderSnapshot)
class FolderSnapshotAdmin(ReadOnlyAdmin):
    """Folder history is written by changes only: read-only here (roll back from the folder's History page)."""

    list_display = ["folder", "number", "kind", "actor_label", "created_at"]
    list_select_related = ["folder__environment"]
    fields = ["folder", "number", "kind", "actor_label", "summary", "created_at"]
    readonly_fields = fields


@admin.register(SnapshotEntry)
class SnapshotEntryAdmin(ReadOnlyAdmin):
    list_display = ["key", "number", "folder", "version"]
    list_select_related = ["folder__environment", "version"]
    fields = ["snapshot", "key", "version"]
    readonly_fields = fields


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ["name", "seen_at"]


@admin.register(Lock)
class LockAdmin(admin.ModelAdmin):
    list_display = ["name", "holder", "expires_at"]


class ClientSecretInline(admin.TabularInline):
    """Client secrets by prefix: the hash is never shown; secrets are created on the Machine identities page."""

    model = IdentityClientSecret
    extra = 0
    fields = ["prefix", "description", "uses", "uses_limit", "expires_at", "created_at", "revoked_at"]
    readonly_fields = ["prefix", "description", "uses", "uses_limit", "expires_at", "created_at"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(MachineIdentity)
class MachineIdentityAdmin(admin.ModelAdmin):
    list_display = ["name", "workspace", "role", "client_id", "access_token_ttl", "access_token_max_ttl", "created_at"]
    list_filter = ["role"]
    list_select_related = ["workspace"]
    search_fields = ["name", "workspace__name"]
    readonly_fields = ["client_id", "created_by", "created_at", "updated_at"]
    inlines = [ClientSecretInline]

    def has_add_permission(self, request):
        return False  # identities are made on the Machine identities page, which shows the credentials once


@admin.register(IdentityAccessToken)
class IdentityAccessTokenAdmin(admin.ModelAdmin):
    """Issued access tokens: when, until when, revoked or not. The token hash is never shown."""

    list_display = ["identity", "created_at", "expires_at", "last_used_at", "revoked_at"]
    list_select_related = ["identity"]
    fields = ["identity", "client_secret", "ttl", "max_ttl", "created_at", "expires_at", "renewed_at", "last_used_at",
              "revoked_at"]
    readonly_fields = ["identity", "client_secret", "ttl", "max_ttl", "created_at", "expires_at", "renewed_at",
                       "last_used_at"]

    def has_add_permission(self, request):
        return False


@admin.register(IdentityClientSecret)
class IdentityClientSecretAdmin(admin.ModelAdmin):
    """Client secrets by prefix; the hash is never shown. Revoke by setting revoked_at."""

    list_display = ["prefix", "identity", "description", "uses", "uses_limit", "expires_at", "revoked_at"]
    list_select_related = ["identity"]
    fields = ["identity", "prefix", "description", "uses", "uses_limit", "expires_at", "created_by", "created_at",
              "last_used_at", "revoked_at"]
    readonly_fields = ["identity", "prefix", "description", "uses", "uses_limit", "expires_at", "created_by",
                       "created_at", "last_used_at"]

    def has_add_permission(self, request):
        return False

from django.contrib import admin

from devpilot.admin import ReadOnlyAdmin
from syncs.models import ServerDelivery, Sync, SyncedKey, SyncRun


# Deployment fields are shown read-only; `previous` (the variables as they were before a run, GENERAL ones in
# plain text) never is, nor its ciphertext.
DEPLOYMENT_FIELDS = ["deployment_id", "deployment_phase", "deployment_message", "deployment_checked_at",
                     "deployment_ended_at"]


class SyncRunInline(admin.TabularInline):
    model = SyncRun
    extra = 0
    can_delete = False
    fields = ["started_at", "kind", "trigger", "status", "created", "updated", "deleted", "unchanged",
              "deployment_started", "deployment_phase", "message"]
    readonly_fields = fields
    ordering = ["-started_at"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Sync)
class SyncAdmin(admin.ModelAdmin):
    list_display = ["name", "workspace", "environment", "folder", "app_name", "sync_status", "last_synced_at",
                    "auto_sync_enabled"]
    list_filter = ["sync_status", "auto_sync_enabled"]
    list_select_related = ["workspace", "environment", "folder"]
    search_fields = ["name", "app_name", "app_id"]
    readonly_fields = ["sync_status", "last_sync_job_id", "last_sync_message", "last_synced_at", "remove_status",
                       "last_remove_job_id", "last_remove_message", "last_removed_at", "drift_keys", "drift_checked_at",
                       "pending_run_at", "failing_since"]
    inlines = [SyncRunInline]


@admin.register(SyncRun)
class SyncRunAdmin(admin.ModelAdmin):
    list_display = ["started_at", "sync", "kind", "trigger", "status", "created", "updated", "deleted", "unchanged",
                    "deployment_started", "deployment_phase"]
    list_filter = ["status", "kind", "trigger", "deployment_phase"]
    list_select_related = ["sync"]
    fields = ["sync", "kind", "trigger", "status", "started_at", "finished_at", "duration_ms", "created", "updated",
              "deleted", "unchanged", "drift_keys", "request_ids", "message", "deployment_started", *DEPLOYMENT_FIELDS,
              "restores"]
    readonly_fields = fields


@admin.register(SyncedKey)
class SyncedKeyAdmin(admin.ModelAdmin):
    """Hashes and DigitalOcean's EV[...] ciphertexts only: no plaintext is stored here."""

    list_display = ["key", "sync", "synced_at"]
    list_select_related = ["sync"]
    readonly_fields = ["sync", "key", "value_hash", "remote_value", "synced_at"]



@admin.register(ServerDelivery)
class ServerDeliveryAdmin(ReadOnlyAdmin):
    """Key names, HMACs of values and the file's SHA-256: no value is stored here."""

    list_display = ["sync", "server", "applied_version", "applied_at", "reload_exit_status"]
    list_select_related = ["sync", "server"]

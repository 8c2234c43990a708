from django.contrib import admin

from devpilot.admin import ReadOnlyAdmin
from provisioning.models import (AgentCommand, Alert, AlertRule, MemberSshKey, MetricSample, Server, ServerAccess,
                                 ServerStep, SshKey)


class ServerStepInline(admin.TabularInline):
    model = ServerStep
    extra = 0
    can_delete = False
    fields = ["number", "label", "status", "attempts", "started_at", "finished_at", "message"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Server)
class ServerAdmin(admin.ModelAdmin):
    """Registration tokens and agent credentials are never shown (only their existence)."""

    list_display = ["name", "workspace", "status", "power_state", "region", "size", "droplet_id", "ipv4_public",
                    "agent_last_seen_at", "archived_at"]
    list_filter = ["status", "power_state", "region", ("archived_at", admin.EmptyFieldListFilter)]
    list_select_related = ["workspace"]
    search_fields = ["name", "ipv4_public", "droplet_id"]
    exclude = ["registration_token_hash", "registration_token_ciphertext", "agent_credential_hash"]
    readonly_fields = ["droplet_id", "firewall_id", "ssh_key_ids", "ipv4_public", "ipv4_private", "ipv6_address",
                       "agent_registered_at", "agent_last_seen_at", "agent_info", "create_attempted_at",
                       "droplet_created_at", "account_uuid", "power_state", "power_state_at", "pending_event",
                       "disk_gb", "memory_mb", "vcpus", "archived_at"]
    inlines = [ServerStepInline]


@admin.register(SshKey)
class SshKeyAdmin(admin.ModelAdmin):
    """The private key is never shown here; admins download it from the workspace's SSH key page."""

    list_display = ["workspace", "fingerprint", "created_at"]
    fields = ["workspace", "fingerprint", "public_key", "created_at"]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False


@admin.register(ServerStep)
class ServerStepAdmin(admin.ModelAdmin):
    list_display = ["server", "number", "label", "status", "attempts", "finished_at"]
    list_filter = ["status", "key"]
    list_select_related = ["server"]


# --- Agent channel, people's keys, metrics, alerts (read-only: the pages and the agent write them) ---


@admin.register(AgentCommand)
class AgentCommandAdmin(ReadOnlyAdmin):
    list_display = ["server", "kind", "state", "created_at", "finished_at"]
    list_filter = ["state", "kind"]
    list_select_related = ["server"]


@admin.register(MemberSshKey)
class MemberSshKeyAdmin(ReadOnlyAdmin):
    list_display = ["user", "name", "fingerprint", "created_at"]
    search_fields = ["user__email", "fingerprint"]


@admin.register(ServerAccess)
class ServerAccessAdmin(ReadOnlyAdmin):
    list_display = ["server", "user", "granted_by", "created_at"]
    list_select_related = ["server", "user", "granted_by"]


@admin.register(MetricSample)
class MetricSampleAdmin(ReadOnlyAdmin):
    list_display = ["server", "resolution", "at", "cpu_percent", "load1"]
    list_filter = ["resolution"]
    list_select_related = ["server"]


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    list_display = ["workspace", "kind", "threshold", "minutes", "enabled"]
    list_filter = ["kind", "enabled"]


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ["server", "rule", "opened_at", "resolved_at"]
    list_select_related = ["server", "rule"]

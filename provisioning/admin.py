from django.contrib import admin

from provisioning.models import Server, ServerStep, SshKey


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

    list_display = ["name", "workspace", "status", "region", "size", "droplet_id", "ipv4_public", "agent_last_seen_at"]
    list_filter = ["status", "region"]
    list_select_related = ["workspace"]
    search_fields = ["name", "ipv4_public", "droplet_id"]
    exclude = ["registration_token_hash", "registration_token_ciphertext", "agent_credential_hash"]
    readonly_fields = ["droplet_id", "firewall_id", "ssh_key_ids", "ipv4_public", "ipv4_private", "ipv6_address",
                       "agent_registered_at", "agent_last_seen_at", "agent_info", "create_attempted_at",
                       "droplet_created_at", "account_uuid"]
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

from django.contrib import admin

from connections.models import Connection, RateLimitState


@admin.register(Connection)
class ConnectionAdmin(admin.ModelAdmin):
    """The token is never shown: only whether one is stored."""

    list_display = ["name", "provider", "workspace", "status", "account_email", "team_name", "version", "last_checked_at"]
    list_filter = ["provider", "status"]
    list_select_related = ["workspace"]
    search_fields = ["name", "account_email", "team_name"]
    fields = ["workspace", "provider", "name", "description", "token_stored", "version", "status", "last_error",
              "account_uuid", "account_email", "team_uuid", "team_name", "droplet_limit", "capabilities",
              "last_checked_at", "created_by", "created_at", "updated_at"]
    readonly_fields = ["token_stored", "version", "status", "last_error", "account_uuid", "account_email", "team_uuid",
                       "team_name", "droplet_limit", "capabilities", "last_checked_at", "created_by", "created_at",
                       "updated_at", "workspace", "provider"]

    @admin.display(boolean=True, description="Token stored")
    def token_stored(self, obj):
        return bool(obj.token_ciphertext)

    def has_add_permission(self, request):
        return False  # connecting validates the token first: use the Integrations page or the API


@admin.register(RateLimitState)
class RateLimitStateAdmin(admin.ModelAdmin):
    list_display = ["rate_key", "remaining", "reset_at", "updated_at"]

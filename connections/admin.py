from django.contrib import admin

from devpilot.admin import ReadOnlyAdmin
from connections.models import CallBucket, Connection, RateLimitState


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


@admin.register(CallBucket)
class CallBucketAdmin(ReadOnlyAdmin):
    """Calls per token (its SHA-256) and 10-second slot."""

    list_display = ["rate_key", "starts_at", "calls"]
    search_fields = ["rate_key"]
    ordering = ["-slot"]


@admin.register(RateLimitState)
class RateLimitStateAdmin(ReadOnlyAdmin):
    """DigitalOcean's own word: a 429 or few calls left, heeded until reset_at."""

    list_display = ["rate_key", "remaining", "reset_at", "updated_at"]

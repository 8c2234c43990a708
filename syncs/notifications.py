"""Telling people a sync failed: an email to the workspace's admins and owners."""

from django.conf import settings
from django.core.mail import send_mail
from django.urls import reverse

from devpilot.models import Role


def sync_failed(sync, run):
    recipients = list(
        sync.workspace.memberships.filter(role__in=[Role.OWNER, Role.ADMIN]).values_list("user__email", flat=True)
    )
    if not recipients:
        return 0
    link = settings.DEVPILOT_PUBLIC_URL + reverse("sync_detail", kwargs={"ws": sync.workspace.slug, "sync_id": sync.pk})
    return send_mail(
        f"Secret sync {sync.name} failed",
        f"The secret sync {sync.name} ({sync.environment.slug}:{sync.folder.path} → {sync.app_name or sync.app_id}) "
        f"failed:\n\n{run.message}\n\nDetails and history: {link}\n",
        None,
        recipients,
    )

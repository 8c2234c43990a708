"""Telling people about a sync: an email to the workspace's admins and owners."""

from django.conf import settings
from django.core.mail import send_mail
from django.urls import reverse

from devpilot.models import Role
from syncs.models import DeploymentPhase, RunKind


def _admins(sync) -> list[str]:
    return list(sync.workspace.memberships.filter(role__in=[Role.OWNER, Role.ADMIN]).values_list("user__email", flat=True))


def _link(sync) -> str:
    return settings.DEVPILOT_PUBLIC_URL + reverse("sync_detail", kwargs={"ws": sync.workspace.slug, "sync_id": sync.pk})


def _route(sync) -> str:
    return f"{sync.environment.slug}:{sync.folder.path} → {sync.app_name or sync.app_id}"


def sync_failed(sync, run) -> int:
    recipients = _admins(sync)
    if not recipients:
        return 0
    return send_mail(
        f"Secret sync {sync.name} failed",
        f"The secret sync {sync.name} ({_route(sync)}) failed:\n\n{run.message}\n\nDetails and history: {_link(sync)}\n",
        None,
        recipients,
    )


def deployment_failed(sync, run) -> int:
    """The variables were written, but the deployment DigitalOcean started with them failed or was canceled."""
    recipients = _admins(sync)
    if not recipients:
        return 0
    what = "restore of previous values" if run.kind == RunKind.RESTORE else "variables"
    ended = "was canceled" if run.deployment_phase == DeploymentPhase.CANCELED else "failed"
    return send_mail(
        f"Secret sync {sync.name}: the deployment {ended}",
        f"The secret sync {sync.name} ({_route(sync)}) wrote its {what}, but the deployment DigitalOcean started "
        f"with them {ended}:\n\n{run.deployment_message}\n\n"
        f"The sync's page offers \"Restore previous values\" (the variables as they were before the run), or fix "
        f"the secrets and sync again: {_link(sync)}\n",
        None,
        recipients,
    )

"""Members, roles and invitations. Every rule about who may belong and how lives here."""

import secrets
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from devpilot import audit
from devpilot.accounts import clean_header, has_verified_email
from devpilot.models import Invitation, Membership, Role, hash_token
from devpilot.permissions import can
from devpilot.signals import member_removed

INVITATION_LIFETIME = timedelta(days=7)


class MembershipError(Exception):
    """A membership change that the rules forbid; the message is shown to the user."""


def _owner_count(workspace):
    return workspace.memberships.filter(role=Role.OWNER).count()


def _check_can_assign(actor_membership, role):
    if role == Role.OWNER and not can(actor_membership.role, "owners.manage"):
        raise MembershipError("Only owners can make someone an owner.")


@transaction.atomic
def change_role(actor_membership, membership, role, request=None):
    membership = Membership.objects.select_for_update().get(pk=membership.pk)
    if membership.role == role:
        return membership
    _check_can_assign(actor_membership, role)
    if membership.role == Role.OWNER:
        if not can(actor_membership.role, "owners.manage"):
            raise MembershipError("Only owners can change an owner's role.")
        if _owner_count(membership.workspace) == 1:
            raise MembershipError("The last owner cannot be demoted. Make someone else an owner first.")
    old_role = membership.role
    membership.role = role
    membership.save(update_fields=["role"])
    audit.record(
        membership.workspace, "member.role_changed", request=request, target=membership.user,
        old_role=old_role, new_role=role,
    )
    return membership


@transaction.atomic
def remove_member(actor_membership, membership, request=None):
    """Remove someone (or, when actor and membership are the same, leave)."""
    membership = Membership.objects.select_for_update().get(pk=membership.pk)
    leaving = membership.pk == actor_membership.pk
    if membership.role == Role.OWNER:
        if not leaving and not can(actor_membership.role, "owners.manage"):
            raise MembershipError("Only owners can remove an owner.")
        if _owner_count(membership.workspace) == 1:
            raise MembershipError(
                "The last owner cannot leave. Make someone else an owner, or delete the workspace."
            )
    membership.delete()
    member_removed.send(sender=Membership, membership=membership)
    audit.record(
        membership.workspace, "member.left" if leaving else "member.removed", request=request,
        target=membership.user,
    )


def invitation_url(token):
    return settings.DEVPILOT_PUBLIC_URL + reverse("accept_invitation", args=[token])


def invite(actor_membership, email, role, request=None):
    """Returns (invitation, link). The link holds the only copy of the token."""
    email = email.strip().lower()
    workspace = actor_membership.workspace
    _check_can_assign(actor_membership, role)
    if workspace.memberships.filter(user__email__iexact=email).exists():
        raise MembershipError(f"{email} is already a member of this workspace.")
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        # A new invitation replaces any pending one for the same address.
        workspace.invitations.filter(
            email=email, accepted_at__isnull=True, revoked_at__isnull=True
        ).update(revoked_at=timezone.now())
        invitation = Invitation.objects.create(
            workspace=workspace,
            email=email,
            role=role,
            token_hash=hash_token(token),
            invited_by=actor_membership.user,
            expires_at=timezone.now() + INVITATION_LIFETIME,
        )
        audit.record(workspace, "invitation.created", request=request, target=invitation, role=role)
    link = invitation_url(token)
    send_mail(
        clean_header(f"You are invited to {workspace.name} on Devpilot"),
        f"{actor_membership.user.email} invited you to join the workspace {workspace.name} "
        f"as {invitation.get_role_display().lower()}.\n\nOpen this link to join (valid for 7 days):\n{link}\n",
        None,
        [email],
    )
    return invitation, link


def find_invitation(token):
    """The invitation a link names, whatever its state; None when the link is wrong."""
    return Invitation.objects.select_related("workspace").filter(token_hash=hash_token(token)).first()


class WrongAccountError(MembershipError):
    """The invitation was sent to an address this account has not verified."""


def can_accept(invitation, user) -> bool:
    """Only an account holding the invited address, verified, may accept an invitation."""
    return has_verified_email(user, invitation.email)


@transaction.atomic
def accept(invitation, user, request=None):
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if not invitation.is_pending:
        raise MembershipError("This invitation has expired, was revoked, or was already used.")
    if not can_accept(invitation, user):
        raise WrongAccountError(
            f"This invitation was sent to {invitation.email}. Log in with that address "
            "(verified) to accept it."
        )
    membership, created = Membership.objects.get_or_create(
        workspace=invitation.workspace, user=user, defaults={"role": invitation.role}
    )
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    if created:
        audit.record(invitation.workspace, "member.joined", request=request, actor=user, target=user,
                     role=invitation.role)
    return membership


def revoke(invitation, request=None):
    if invitation.accepted_at or invitation.revoked_at:
        raise MembershipError("Only pending invitations can be revoked.")
    invitation.revoked_at = timezone.now()
    invitation.save(update_fields=["revoked_at"])
    audit.record(invitation.workspace, "invitation.revoked", request=request, target=invitation)

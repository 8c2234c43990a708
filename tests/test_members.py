import re
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from devpilot import members
from devpilot.models import Invitation, Membership, Role
from tests.conftest import PASSWORD


def invite(client, workspace, email, role="member"):
    response = client.post(f"/w/{workspace.slug}/settings/members/", {"email": email, "role": role})
    return re.search(r'value="(http://testserver/invitations/[^"]+)"', response.content.decode()).group(1)


def test_an_invitation_link_is_shown_and_emailed(client_for, owner, workspace):
    link = invite(client_for(owner), workspace, "bob@example.com")
    assert link in mail.outbox[0].body
    assert Invitation.objects.get().token_hash not in link  # only the hash is stored


def test_a_new_person_signs_up_from_the_link_and_joins(client, client_for, owner, workspace):
    link = invite(client_for(owner), workspace, "bob@example.com", role="viewer")
    path = link.removeprefix("http://testserver")
    assert "Sign up to join" in client.get(path).content.decode()
    client.post("/accounts/signup/", {"email": "bob@example.com", "password1": PASSWORD, "password2": PASSWORD, "next": path})
    response = client.post(path)
    assert response.url == f"/w/{workspace.slug}/"
    membership = Membership.objects.get(user__email="bob@example.com")
    assert (membership.workspace, membership.role) == (workspace, Role.VIEWER)
    assert membership.user.memberships.count() == 1  # no empty workspace of their own


def test_used_revoked_and_expired_invitations_cannot_be_used(client_for, owner, workspace, make_user):
    bob = make_user("bob@example.com")
    link = invite(client_for(owner), workspace, "bob@example.com").removeprefix("http://testserver")
    Invitation.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    assert client_for(bob).post(link).status_code == 404
    link = invite(client_for(owner), workspace, "bob@example.com").removeprefix("http://testserver")
    invitation = Invitation.objects.filter(revoked_at__isnull=True).get()
    client_for(owner).post(f"/w/{workspace.slug}/settings/invitations/{invitation.pk}/revoke/")
    assert client_for(bob).post(link).status_code == 404
    assert not Membership.objects.filter(user=bob).exists()


def test_the_last_owner_cannot_leave_or_be_demoted(workspace, owner):
    membership = Membership.objects.get(user=owner)
    with pytest.raises(members.MembershipError, match="last owner"):
        members.remove_member(membership, membership)
    with pytest.raises(members.MembershipError, match="last owner"):
        members.change_role(membership, membership, Role.ADMIN)


def test_an_owner_can_step_down_once_there_is_another_owner(workspace, owner, make_member):
    second = make_member(workspace, Role.OWNER)
    membership = Membership.objects.get(user=owner)
    members.change_role(membership, membership, Role.ADMIN)
    assert Membership.objects.get(user=second).role == Role.OWNER


def test_admins_manage_members_but_not_owners(client_for, workspace, owner, make_member):
    admin = make_member(workspace, Role.ADMIN)
    member = Membership.objects.get(user=make_member(workspace, Role.MEMBER))
    owner_membership = Membership.objects.get(user=owner)
    client = client_for(admin)
    client.post(f"/w/{workspace.slug}/settings/members/{member.pk}/role/", {"role": "viewer"})
    assert Membership.objects.get(pk=member.pk).role == Role.VIEWER
    client.post(f"/w/{workspace.slug}/settings/members/{member.pk}/role/", {"role": "owner"})
    assert Membership.objects.get(pk=member.pk).role == Role.VIEWER
    client.post(f"/w/{workspace.slug}/settings/members/{owner_membership.pk}/remove/")
    assert Membership.objects.filter(pk=owner_membership.pk).exists()
    response = client.post(f"/w/{workspace.slug}/settings/members/", {"email": "x@example.com", "role": "owner"})
    assert "Only owners" in response.content.decode()


@pytest.mark.parametrize("role", [Role.MEMBER, Role.VIEWER])
def test_members_and_viewers_cannot_invite_or_change_roles(client_for, workspace, make_member, role):
    user = make_member(workspace, role)
    client = client_for(user)
    assert client.post(f"/w/{workspace.slug}/settings/members/", {"email": "x@example.com", "role": "member"}).status_code == 403
    target = Membership.objects.get(user=user)
    assert client.post(f"/w/{workspace.slug}/settings/members/{target.pk}/role/", {"role": "admin"}).status_code == 403
    assert client.get(f"/w/{workspace.slug}/settings/members/").status_code == 200


def test_anyone_but_the_last_owner_can_leave(client_for, workspace, make_member):
    viewer = make_member(workspace, Role.VIEWER)
    membership = Membership.objects.get(user=viewer)
    response = client_for(viewer).post(f"/w/{workspace.slug}/settings/members/{membership.pk}/remove/")
    assert response.status_code == 302
    assert not Membership.objects.filter(pk=membership.pk).exists()

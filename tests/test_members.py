import re
from datetime import timedelta

import pytest
from allauth.account.models import EmailAddress
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


def test_a_new_person_signs_up_from_the_link_verifies_and_joins_in_one_step(client, client_for, owner, workspace):
    link = invite(client_for(owner), workspace, "bob@example.com", role="viewer")
    path = link.removeprefix("http://testserver")
    assert "Sign up to join" in client.get(path).content.decode()
    form = client.get(f"/accounts/signup/?next={path}").content.decode()
    assert 'value="bob@example.com"' in form and "disabled" in form  # prefilled and locked
    assert 'name="workspace_name"' not in form
    # A changed address is ignored: the account is the invited address.
    response = client.post("/accounts/signup/", {"email": "mallory@example.com", "password1": PASSWORD,
                                                 "password2": PASSWORD, "next": path})
    assert response.url == "/accounts/confirm-email/"  # not in yet: the address must be verified
    assert not Membership.objects.filter(user__email="bob@example.com").exists()
    assert not Membership.objects.filter(user__email="mallory@example.com").exists()
    confirm = re.search(r"http://testserver(/accounts/confirm-email/\S+/)", mail.outbox[-1].body).group(1)
    assert mail.outbox[-1].to == ["bob@example.com"]
    response = client.post(confirm, follow=True)
    assert response.redirect_chain[-1][0] == f"/w/{workspace.slug}/"
    membership = Membership.objects.get(user__email="bob@example.com")
    assert (membership.workspace, membership.role) == (workspace, Role.VIEWER)
    assert membership.user.memberships.count() == 1  # no empty workspace of their own


def test_an_invitation_is_accepted_only_by_the_invited_verified_address(client_for, owner, workspace, make_user):
    link = invite(client_for(owner), workspace, "bob@example.com", role="admin").removeprefix("http://testserver")
    mallory = make_user("mallory@example.com")
    EmailAddress.objects.create(user=mallory, email=mallory.email, verified=True, primary=True)
    client = client_for(mallory)
    page = client.get(link)
    assert page.status_code == 200
    assert "This invitation was sent to <strong>bob@example.com</strong>" in page.content.decode()
    refused = client.post(link)
    assert refused.status_code == 403 and "bob@example.com" in refused.content.decode()
    assert not Membership.objects.filter(user=mallory).exists()
    assert Invitation.objects.get().is_pending
    with pytest.raises(members.WrongAccountError, match="bob@example.com"):
        members.accept(Invitation.objects.get(), mallory)


def test_an_existing_account_verifies_the_invited_address_before_joining(client_for, owner, workspace, make_user):
    bob = make_user("bob@example.com")  # an account from before, address never verified
    link = invite(client_for(owner), workspace, "bob@example.com").removeprefix("http://testserver")
    client = client_for(bob)
    assert "Send the verification link" in client.get(link).content.decode()
    assert client.post(link).status_code == 403
    client.post(link, {"action": "verify"})
    confirm = re.search(r"http://testserver(/accounts/confirm-email/\S+/)", mail.outbox[-1].body).group(1)
    response = client.post(confirm, follow=True)
    assert response.redirect_chain[-1][0] == f"/w/{workspace.slug}/"
    assert Membership.objects.filter(user=bob, workspace=workspace).exists()


def test_a_control_character_in_a_workspace_name_cannot_break_the_invitation_mail(client_for, owner):
    from devpilot.workspaces import create_workspace

    workspace = create_workspace(owner, "Acme\r\nBcc: everyone@example.com")
    response = client_for(owner).post(f"/w/{workspace.slug}/settings/members/", {"email": "bob@example.com",
                                                                                  "role": "member"})
    assert response.status_code == 200
    (message,) = mail.outbox
    assert message.subject == "You are invited to Acme Bcc: everyone@example.com on Devpilot"
    assert message.recipients() == ["bob@example.com"]
    # Names typed in forms lose control characters before they are stored.
    client_for(owner).post(f"/w/{workspace.slug}/settings/", {"action": "rename", "name": "New\r\nName"})
    workspace.refresh_from_db()
    assert workspace.name == "New Name"


def test_allauth_mail_subjects_are_one_line(rf):
    from devpilot.accounts import AccountAdapter

    assert AccountAdapter().format_email_subject("Hi\r\nBcc: x@example.com") == "Devpilot: Hi Bcc: x@example.com"


def test_used_revoked_and_expired_invitations_cannot_be_used(client_for, owner, workspace, make_user):
    bob = make_user("bob@example.com")
    EmailAddress.objects.create(user=bob, email=bob.email, verified=True, primary=True)
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

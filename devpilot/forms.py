from datetime import timedelta

from allauth.account.forms import SignupForm
from django import forms
from django.db import transaction
from django.utils import timezone

from devpilot import audit
from devpilot.accounts import clean_header
from devpilot.models import Role, Workspace
from devpilot.workspaces import create_workspace


class SignUpForm(SignupForm):
    """allauth's sign-up form (email, password twice) plus the first workspace's name.

    From an invitation the email is the invited address, shown and locked, and there is
    no workspace name: the new account joins the inviting workspace instead.
    """

    workspace_name = forms.CharField(
        label="Workspace name", max_length=100, required=False,
        help_text="Your first workspace. You can create more later.",
    )

    def __init__(self, *args, invitation=None, **kwargs):
        self.invitation = invitation
        super().__init__(*args, **kwargs)
        if invitation is not None:
            del self.fields["workspace_name"]
            self.fields["email"].initial = invitation.email
            self.fields["email"].disabled = True
            self.fields["email"].help_text = "The address the invitation was sent to."

    def clean_email(self):
        if self.invitation is not None:
            self.cleaned_data["email"] = self.invitation.email
        return super().clean_email()

    def clean_workspace_name(self):
        return clean_header(self.cleaned_data["workspace_name"])

    def save(self, request):
        with transaction.atomic():
            user = super().save(request)
            if self.invitation is None:
                name = self.cleaned_data.get("workspace_name") or f"{user.email.split('@')[0]}'s workspace"
                workspace = create_workspace(user, name)
                audit.record(workspace, "workspace.created", request=request, actor=user, target=workspace)
                request.devpilot_new_workspace = workspace
        return user


class WorkspaceForm(forms.Form):
    name = forms.CharField(max_length=100)

    def clean_name(self):
        return clean_header(self.cleaned_data["name"])


class WorkspaceMfaForm(forms.ModelForm):
    class Meta:
        model = Workspace
        fields = ["require_mfa"]
        labels = {"require_mfa": "Members must use two-factor authentication"}


class DeleteWorkspaceForm(forms.Form):
    confirm = forms.CharField(label="Type the workspace name to confirm")

    def __init__(self, *args, workspace, **kwargs):
        super().__init__(*args, **kwargs)
        self.workspace = workspace

    def clean_confirm(self):
        if self.cleaned_data["confirm"] != self.workspace.name:
            raise forms.ValidationError("The name does not match.")
        return self.cleaned_data["confirm"]


class InviteForm(forms.Form):
    email = forms.EmailField()
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class ApiTokenForm(forms.Form):
    EXPIRY_CHOICES = [("", "Never"), ("7", "7 days"), ("30", "30 days"), ("90", "90 days"), ("365", "1 year")]

    name = forms.CharField(max_length=100)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.ADMIN,
                             help_text="What the token may do, as a member with this role.")
    expires_in = forms.ChoiceField(choices=EXPIRY_CHOICES, required=False, label="Expires")

    def clean_name(self):
        return self.cleaned_data["name"].strip()

    @property
    def expires_at(self):
        days = self.cleaned_data.get("expires_in")
        return timezone.now() + timedelta(days=int(days)) if days else None

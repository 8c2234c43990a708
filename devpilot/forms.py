from datetime import timedelta

from django import forms
from django.contrib.auth.forms import BaseUserCreationForm
from django.utils import timezone

from devpilot.models import Role, User


class SignUpForm(BaseUserCreationForm):
    workspace_name = forms.CharField(
        label="Workspace name", max_length=100, required=False,
        help_text="Your first workspace. You can create more later.",
    )

    class Meta:
        model = User
        fields = ["email"]

    def clean_email(self):
        email = self.cleaned_data["email"].strip().lower()
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError("An account with this email already exists. Log in instead.")
        return email


class WorkspaceForm(forms.Form):
    name = forms.CharField(max_length=100)


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

"""Settings > Machine identities: create identities, manage their client secrets and universal auth settings."""

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from devpilot import identities
from devpilot.access import get_in_workspace, workspace_view
from devpilot.api import effective_role
from devpilot.errors import DevpilotError, Unauthenticated
from devpilot.models import IdentityClientSecret, MachineIdentity, Role

ROLE_CHOICES = [(r.value, r.label) for r in Role if r != Role.OWNER]
TTL_HELP = "Seconds. Default 2592000 (30 days)."


class IdentityForm(forms.Form):
    name = forms.CharField(max_length=100)
    role = forms.ChoiceField(choices=ROLE_CHOICES, initial=Role.VIEWER,
                             help_text="What the identity may do, as a member with this role (never owner).")
    access_token_ttl = forms.IntegerField(label="Access token TTL", min_value=1, max_value=identities.MAX_TTL_SECONDS,
                                          initial=MachineIdentity.DEFAULT_TTL, help_text=TTL_HELP)
    access_token_max_ttl = forms.IntegerField(label="Access token max TTL", min_value=0,
                                              max_value=identities.MAX_TTL_SECONDS,
                                              initial=MachineIdentity.DEFAULT_TTL,
                                              help_text="Seconds from login that renewals cannot pass; 0: no cap.")
    trusted_ips = forms.CharField(label="Trusted IP ranges", required=False, widget=forms.Textarea(attrs={"rows": 2}),
                                  help_text="One address or CIDR range a line (e.g. 203.0.113.0/24); empty: anywhere.")

    def clean_name(self):
        return self.cleaned_data["name"].strip()

    def clean_trusted_ips(self):
        try:
            return identities.parse_ranges(self.cleaned_data["trusted_ips"])
        except DevpilotError as e:
            raise forms.ValidationError(e.message) from None


class ClientSecretForm(forms.Form):
    EXPIRY_CHOICES = [("0", "Never"), ("3600", "1 hour"), ("86400", "1 day"), ("604800", "7 days"),
                      ("2592000", "30 days"), ("31536000", "1 year")]

    description = forms.CharField(max_length=200, required=False)
    ttl = forms.TypedChoiceField(choices=EXPIRY_CHOICES, coerce=int, initial="0", label="Expires")
    uses_limit = forms.IntegerField(min_value=0, max_value=2**31 - 1, initial=0, label="Use limit",
                                    help_text="Logins allowed with this secret; 0: unlimited.")


def _effective(identity):
    try:
        return effective_role(identity)
    except Unauthenticated:
        return None


def _apply_errors(form, error):
    for detail in error.details or [{"field": "", "message": error.message}]:
        field = {"name": "name", "accessTokenTTL": "access_token_ttl", "accessTokenMaxTTL": "access_token_max_ttl",
                 "trustedIps": "trusted_ips", "role": "role"}.get(detail["field"])
        form.add_error(field, detail["message"])


@workspace_view("tokens.manage")
def identity_list(request):
    form = IdentityForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            identity = identities.create_identity(
                request.workspace, data["name"], data["role"], ttl=data["access_token_ttl"],
                max_ttl=data["access_token_max_ttl"], trusted_ips=data["trusted_ips"], created_by=request.user,
                granted_by=request.membership.role, request=request)
        except DevpilotError as e:
            _apply_errors(form, e)
        else:
            messages.success(request, f"Identity {identity.name} created. Add a client secret to log in with it.")
            return redirect("identity_detail", ws=request.workspace.slug, identity_id=identity.pk)
    rows = list(request.workspace.machine_identities.select_related("created_by"))
    for identity in rows:
        identity.effective = _effective(identity)
    return render(request, "devpilot/identities.html",
                  {"settings_tab": "identities", "form": form, "identities": rows})


@workspace_view("tokens.manage")
def identity_detail(request, identity_id):
    identity = get_in_workspace(request, MachineIdentity.objects.select_related("created_by"), pk=identity_id)
    initial = {"name": identity.name, "role": identity.role, "access_token_ttl": identity.access_token_ttl,
               "access_token_max_ttl": identity.access_token_max_ttl, "trusted_ips": "\n".join(identity.trusted_ips)}
    action = request.POST.get("action") if request.method == "POST" else None
    form = IdentityForm(request.POST if action == "update" else None, initial=initial)
    secret_form = ClientSecretForm(request.POST if action == "add_secret" else None)
    new_secret = None
    if action == "update" and form.is_valid():
        data = form.cleaned_data
        try:
            identities.update_identity(identity, name=data["name"], role=data["role"], ttl=data["access_token_ttl"],
                                       max_ttl=data["access_token_max_ttl"], trusted_ips=data["trusted_ips"],
                                       granted_by=request.membership.role, request=request)
        except DevpilotError as e:
            _apply_errors(form, e)
        else:
            messages.success(request, f"Identity {identity.name} saved.")
            return redirect("identity_detail", ws=request.workspace.slug, identity_id=identity.pk)
    if action == "add_secret" and secret_form.is_valid():
        data = secret_form.cleaned_data
        _, new_secret = identities.add_client_secret(identity, description=data["description"], ttl=data["ttl"],
                                                     uses_limit=data["uses_limit"], created_by=request.user,
                                                     request=request)
        secret_form = ClientSecretForm()
    identity.effective = _effective(identity)
    return render(request, "devpilot/identity_detail.html", {
        "settings_tab": "identities", "identity": identity, "form": form, "secret_form": secret_form,
        "new_secret": new_secret, "client_secrets": identity.client_secrets.all(),
        "login_url": request.build_absolute_uri("/api/v1/auth/universal-auth/login"),
    })


@require_POST
@workspace_view("tokens.manage")
def client_secret_revoke(request, identity_id, client_secret_id):
    identity = get_in_workspace(request, MachineIdentity, pk=identity_id)
    secret = IdentityClientSecret.objects.filter(identity=identity, pk=client_secret_id).first()
    if secret is None:
        from django.http import Http404

        raise Http404("No such client secret.")
    identities.revoke_client_secret(secret, request=request)
    messages.success(request, f"Client secret {secret.prefix}… revoked; the access tokens it issued no longer work.")
    return redirect("identity_detail", ws=request.workspace.slug, identity_id=identity.pk)


@require_POST
@workspace_view("tokens.manage")
def identity_delete(request, identity_id):
    identity = get_in_workspace(request, MachineIdentity, pk=identity_id)
    identities.delete_identity(identity, request=request)
    messages.success(request, f"Identity {identity.name} deleted; its client secrets and access tokens no longer work.")
    return redirect("identities", ws=request.workspace.slug)

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.templatetags.static import static
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_POST

from devpilot import accounts, audit, health, members, overview
from devpilot.access import CURRENT_WORKSPACE_SESSION_KEY, get_in_workspace, workspace_view
from devpilot.middleware import error_response, is_api
from devpilot.forms import ApiTokenForm, DeleteWorkspaceForm, InviteForm, RoleForm, WorkspaceForm, WorkspaceMfaForm
from devpilot.models import ApiToken, Membership, Role
from devpilot.permissions import can
from devpilot.tokens import create_api_token, revoke_api_token
from devpilot.workspaces import create_workspace, delete_workspace


@login_required
def home(request):
    memberships = request.user.memberships.select_related("workspace")
    current = request.session.get(CURRENT_WORKSPACE_SESSION_KEY)
    membership = memberships.filter(workspace__slug=current).first() or memberships.first()
    if membership is None:
        return redirect("workspace_create")
    return redirect("workspace_home", ws=membership.workspace.slug)


@login_required
def workspace_create(request):
    form = WorkspaceForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        workspace = create_workspace(request.user, form.cleaned_data["name"])
        audit.record(workspace, "workspace.created", request=request, target=workspace)
        messages.success(request, f"Workspace {workspace.name} created.")
        return redirect("workspace_home", ws=workspace.slug)
    return render(request, "devpilot/workspace_create.html", {"form": form})


def first_run_checklist(request, *, connected, has_secrets, has_syncs, has_servers):
    """The Overview's getting-started steps, in order, each (label, done, url or None), or None once
    every step is done or this member dismissed it."""
    if request.membership.checklist_dismissed_at is not None or (connected and has_secrets and has_syncs and has_servers):
        return None
    ws, perms = request.workspace.slug, request.membership.role

    def link(permission, name, **kwargs):
        return reverse(name, kwargs={"ws": ws, **kwargs}) if can(perms, permission) else None

    return [
        ("Connect DigitalOcean", connected, link("integrations.manage", "connection_connect", provider="digital-ocean")),
        ("Add secrets", has_secrets, link("secrets.write", "secrets_home")),
        ("Create a secret sync", has_syncs, link("syncs.manage", "sync_new")),
        ("Create a server", has_servers, link("servers.manage", "server_new")),
    ]


@workspace_view()
def workspace_home(request):
    workspace = request.workspace
    if request.method == "POST" and request.POST.get("action") == "dismiss_checklist":
        Membership.objects.filter(pk=request.membership.pk).update(checklist_dismissed_at=timezone.now())
        return redirect("workspace_home", ws=workspace.slug)
    recent = overview.RECENT_EVENTS(workspace_id=workspace.pk) if can(request.membership.role, "audit.read") else None
    environments = overview.ENVIRONMENTS_WITH_SECRET_COUNTS(workspace_id=workspace.pk)
    connections = overview.CONNECTIONS(workspace_id=workspace.pk)
    sync_counts = dict(overview.SYNC_COUNTS(workspace_id=workspace.pk))
    server_counts = dict(overview.LIVE_SERVER_COUNTS(workspace_id=workspace.pk))
    return render(request, "devpilot/workspace_home.html", {
        "environments": environments,
        "member_count": workspace.memberships.count(),
        "connections": connections,
        "sync_counts": sync_counts,
        "failing_syncs": overview.FAILING_SYNCS(workspace_id=workspace.pk),
        "server_counts": server_counts,
        "recent_events": recent,
        "checklist": first_run_checklist(
            request, connected=bool(connections), has_secrets=any(e.secret_count for e in environments),
            has_syncs=bool(sync_counts), has_servers=bool(server_counts)),
    })


@workspace_view()
def settings_general(request):
    workspace = request.workspace
    can_rename = can(request.membership.role, "members.manage")
    rename_form = WorkspaceForm(initial={"name": workspace.name})
    delete_form = DeleteWorkspaceForm(workspace=workspace)
    if request.method == "POST" and request.POST.get("action") == "rename":
        if not can_rename:
            raise PermissionDenied
        rename_form = WorkspaceForm(request.POST)
        if rename_form.is_valid():
            old = workspace.name
            workspace.name = rename_form.cleaned_data["name"]
            workspace.save(update_fields=["name"])
            audit.record(workspace, "workspace.renamed", request=request, target=workspace, old_name=old)
            messages.success(request, "Workspace renamed.")
            return redirect("settings_general", ws=workspace.slug)
    elif request.method == "POST" and request.POST.get("action") == "mfa":
        if not can(request.membership.role, "owners.manage"):
            raise PermissionDenied("Only owners can change the MFA requirement.")
        mfa_form = WorkspaceMfaForm(request.POST, instance=workspace)
        if mfa_form.is_valid():
            required = mfa_form.cleaned_data["require_mfa"]
            if required and not accounts.has_mfa(request.user):
                messages.error(request, "Set up two-factor authentication for yourself first.")
                return redirect("mfa_index")
            mfa_form.save()
            audit.record(workspace, "workspace.mfa_required" if required else "workspace.mfa_not_required",
                         request=request, target=workspace)
            messages.success(request, "Members must now use two-factor authentication." if required
                             else "Two-factor authentication is no longer required.")
            return redirect("settings_general", ws=workspace.slug)
    elif request.method == "POST" and request.POST.get("action") == "delete":
        if not can(request.membership.role, "workspace.delete"):
            raise PermissionDenied("Only owners can delete a workspace.")
        delete_form = DeleteWorkspaceForm(request.POST, workspace=workspace)
        if delete_form.is_valid():
            delete_workspace(workspace)
            request.session.pop(CURRENT_WORKSPACE_SESSION_KEY, None)
            messages.success(request, f"Workspace {workspace.name} was deleted.")
            return redirect("home")
    return render(
        request,
        "devpilot/settings_general.html",
        {"settings_tab": "general", "rename_form": rename_form, "delete_form": delete_form,
         "can_rename": can_rename, "mfa_form": WorkspaceMfaForm(instance=workspace),
         "can_require_mfa": can(request.membership.role, "owners.manage"),
         "members_without_mfa": _members_without_mfa(workspace)},
    )


def _members_without_mfa(workspace):
    with_mfa = Authenticator.objects.filter(type__in=accounts.MFA_TYPES).values("user_id")
    return workspace.memberships.exclude(user_id__in=with_mfa).count()


MEMBERS_PAGE_SIZE = 100


@workspace_view()
def member_list(request):
    workspace = request.workspace
    can_manage = can(request.membership.role, "members.manage")
    invite_form = InviteForm()
    new_link = None
    if request.method == "POST":
        if not can_manage:
            raise PermissionDenied
        invite_form = InviteForm(request.POST)
        if invite_form.is_valid():
            try:
                _, new_link = members.invite(
                    request.membership, invite_form.cleaned_data["email"], invite_form.cleaned_data["role"],
                    request=request,
                )
                messages.success(request, f"Invitation sent to {invite_form.cleaned_data['email']}.")
                invite_form = InviteForm()
            except members.MembershipError as e:
                invite_form.add_error(None, str(e))
    memberships = Paginator(workspace.memberships.select_related("user").order_by("user__email", "pk"),
                            MEMBERS_PAGE_SIZE).get_page(request.GET.get("page"))
    invitations = [i for i in workspace.invitations.select_related("invited_by") if i.is_pending]
    return render(
        request,
        "devpilot/members.html",
        {
            "settings_tab": "members",
            "memberships": memberships,
            "invitations": invitations,
            "invite_form": invite_form,
            "new_link": new_link,
            "can_manage": can_manage,
            "can_manage_owners": can(request.membership.role, "owners.manage"),
            "roles": Role.choices,
        },
    )


@require_POST
@workspace_view("members.manage")
def member_role(request, membership_id):
    membership = get_in_workspace(request, Membership, pk=membership_id)
    form = RoleForm(request.POST)
    if form.is_valid():
        try:
            members.change_role(request.membership, membership, form.cleaned_data["role"], request=request)
            messages.success(request, f"{membership.user.email} is now {form.cleaned_data['role']}.")
        except members.MembershipError as e:
            messages.error(request, str(e))
    return redirect("members", ws=request.workspace.slug)


@require_POST
@workspace_view()
def member_remove(request, membership_id):
    membership = get_in_workspace(request, Membership, pk=membership_id)
    leaving = membership.pk == request.membership.pk
    if not leaving and not can(request.membership.role, "members.manage"):
        raise PermissionDenied
    try:
        members.remove_member(request.membership, membership, request=request)
    except members.MembershipError as e:
        messages.error(request, str(e))
        return redirect("members", ws=request.workspace.slug)
    if leaving:
        request.session.pop(CURRENT_WORKSPACE_SESSION_KEY, None)
        messages.success(request, f"You left {request.workspace.name}.")
        return redirect("home")
    messages.success(request, f"{membership.user.email} was removed.")
    return redirect("members", ws=request.workspace.slug)


@require_POST
@workspace_view("members.manage")
def invitation_revoke(request, invitation_id):
    invitation = get_in_workspace(request, request.workspace.invitations, pk=invitation_id)
    try:
        members.revoke(invitation, request=request)
        messages.success(request, f"Invitation for {invitation.email} revoked.")
    except members.MembershipError as e:
        messages.error(request, str(e))
    return redirect("members", ws=request.workspace.slug)


@sensitive_variables("token")
def accept_invitation(request, token):
    """Join a workspace from an invitation link: only as the invited, verified address."""
    invitation = members.find_invitation(token)
    if invitation is None or not invitation.is_pending:
        return render(request, "devpilot/invitation_invalid.html", status=404)
    context = {"invitation": invitation, "path": request.path}
    if not request.user.is_authenticated:
        return render(request, "devpilot/invitation.html", context)
    join = request.session.get(accounts.JOIN_SESSION_KEY) or {}
    joining = join.get("invitation") == str(invitation.pk)
    if not members.can_accept(invitation, request.user):
        owns_address = request.user.email.lower() == invitation.email.lower() or EmailAddress.objects.filter(
            user=request.user, email__iexact=invitation.email).exists()
        if owns_address and request.method == "POST" and request.POST.get("action") == "verify":
            address = EmailAddress.objects.filter(user=request.user, email__iexact=invitation.email).first()
            if address is None:
                address = EmailAddress.objects.create(user=request.user, email=invitation.email.lower(),
                                                      primary=not EmailAddress.objects.filter(user=request.user).exists())
            address.send_confirmation(request)
            request.session[accounts.JOIN_SESSION_KEY] = {"invitation": str(invitation.pk), "path": request.path}
            messages.success(request, f"We sent a verification link to {invitation.email}.")
            return redirect(request.path)
        context.update(wrong_account=not owns_address, unverified=owns_address)
        return render(request, "devpilot/invitation.html", context, status=403 if request.method == "POST" else 200)
    if request.method == "POST" or joining:
        request.session.pop(accounts.JOIN_SESSION_KEY, None)
        try:
            members.accept(invitation, request.user, request=request)
        except members.MembershipError as e:
            messages.error(request, str(e))
            return redirect("home")
        messages.success(request, f"Welcome to {invitation.workspace.name}.")
        return redirect("workspace_home", ws=invitation.workspace.slug)
    return render(request, "devpilot/invitation.html", context)


@workspace_view("tokens.manage")
def api_tokens(request):
    form = ApiTokenForm(request.POST or None)
    new_token = None
    if request.method == "POST" and form.is_valid():
        role = form.cleaned_data["role"]
        if role == Role.OWNER and not can(request.membership.role, "owners.manage"):
            form.add_error("role", "Only owners can create owner tokens.")
        else:
            token, new_token = create_api_token(
                request.workspace, form.cleaned_data["name"], role=role,
                created_by=request.user, expires_at=form.expires_at,
            )
            audit.record(request.workspace, "api_token.created", request=request, target=token, role=role)
            form = ApiTokenForm()
    tokens = request.workspace.api_tokens.select_related("created_by")
    return render(
        request,
        "devpilot/api_tokens.html",
        {"settings_tab": "tokens", "form": form, "tokens": tokens, "new_token": new_token},
    )


@require_POST
@workspace_view("tokens.manage")
def api_token_revoke(request, token_id):
    token = get_in_workspace(request, ApiToken, pk=token_id)
    revoke_api_token(token)
    audit.record(request.workspace, "api_token.revoked", request=request, target=token)
    messages.success(request, f"Token {token.name} revoked.")
    return redirect("api_tokens", ws=request.workspace.slug)


AUDIT_PAGE_SIZE = 50


@dataclass
class AuditWindow:
    events: list
    newer_url: str | None
    older_url: str | None

    def __iter__(self):
        return iter(self.events)


def _audit_cursor(value):
    """"<created_at ISO>~<id>" -> (datetime, id), or None for anything else."""
    stamp, _, pk = value.rpartition("~")
    try:
        return datetime.fromisoformat(stamp), int(pk)
    except ValueError:
        return None


def _audit_window(events, *, older="", newer="", keep):
    """A page of the log, newest first, by keyset on (created_at, id): page 1,000 costs what page 1 does."""
    older_than, newer_than = _audit_cursor(older), _audit_cursor(newer)
    if newer_than:
        at, pk = newer_than
        page = list(events.filter(Q(created_at__gt=at) | Q(created_at=at, id__gt=pk))
                    .order_by("created_at", "id")[: AUDIT_PAGE_SIZE + 1])[::-1]
        more_newer, page = len(page) > AUDIT_PAGE_SIZE, page[-AUDIT_PAGE_SIZE:]
        more_older = True
    else:
        if older_than:
            at, pk = older_than
            events = events.filter(Q(created_at__lt=at) | Q(created_at=at, id__lt=pk))
        page = list(events.order_by("-created_at", "-id")[: AUDIT_PAGE_SIZE + 1])
        more_older, page = len(page) > AUDIT_PAGE_SIZE, page[:AUDIT_PAGE_SIZE]
        more_newer = bool(older_than)

    def link(key, event):
        return "?" + urlencode({**keep, key: f"{event.created_at.isoformat()}~{event.pk}"})

    newer_url = (link("newer", page[0]) if page else "?" + urlencode(keep)) if more_newer else None
    return AuditWindow(page, newer_url, link("older", page[-1]) if more_older and page else None)


@workspace_view("audit.read")
def audit_log(request):
    events = request.workspace.audit_events.all()
    action = request.GET.get("action", "").strip()
    if action:
        events = events.filter(action__startswith=action)
    page = _audit_window(events, older=request.GET.get("older", ""), newer=request.GET.get("newer", ""),
                         keep={"action": action} if action else {})
    return render(request, "devpilot/audit_log.html", {"settings_tab": "audit", "page": page, "action": action})


def favicon(request):
    """Browsers ask for /favicon.ico on pages without a <link rel=icon> (e.g. HTMX fragments)."""
    return redirect(static("devpilot/favicon.svg"), permanent=True)


def health_view(request):
    report = health.check()
    return JsonResponse(report, status=200 if report["ok"] else 503)


def not_found(request, exception=None):
    if is_api(request):
        return error_response(404, "Not found.")
    return render(request, "404.html", status=404)


def forbidden(request, exception=None):
    if is_api(request):
        return error_response(403, "Forbidden.")
    return render(request, "403.html", {"reason": str(exception or "")}, status=403)


def server_error(request):
    if is_api(request):
        return error_response(500, "Internal server error.")
    return render(request, "500.html", status=500)

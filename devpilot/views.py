from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count
from django.db import transaction
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from devpilot import audit, health, members
from devpilot.access import CURRENT_WORKSPACE_SESSION_KEY, get_in_workspace, workspace_view
from devpilot.api import error_response
from devpilot.forms import ApiTokenForm, DeleteWorkspaceForm, InviteForm, RoleForm, SignUpForm, WorkspaceForm
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


def _safe_next(request):
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return ""


def signup(request):
    if request.user.is_authenticated:
        return redirect("home")
    next_url = _safe_next(request)
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            user = form.save()
            # Invitees join the inviting workspace instead of getting an empty one of their own.
            workspace = None
            if not next_url.startswith("/invitations/"):
                name = form.cleaned_data["workspace_name"] or f"{user.email.split('@')[0]}'s workspace"
                workspace = create_workspace(user, name)
                audit.record(workspace, "workspace.created", request=request, actor=user, target=workspace)
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        if next_url:
            return redirect(next_url)
        return redirect("workspace_home", ws=workspace.slug)
    return render(request, "registration/signup.html", {"form": form, "next": next_url})


@login_required
def workspace_create(request):
    form = WorkspaceForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        workspace = create_workspace(request.user, form.cleaned_data["name"])
        audit.record(workspace, "workspace.created", request=request, target=workspace)
        messages.success(request, f"Workspace {workspace.name} created.")
        return redirect("workspace_home", ws=workspace.slug)
    return render(request, "devpilot/workspace_create.html", {"form": form})


@workspace_view()
def workspace_home(request):
    workspace = request.workspace
    recent = workspace.audit_events.all()[:8] if can(request.membership.role, "audit.read") else None
    return render(request, "devpilot/workspace_home.html", {
        "environments": workspace.environments.annotate(secret_count=Count("secrets")),
        "member_count": workspace.memberships.count(),
        "connections": workspace.connections.all(),
        "sync_counts": dict(workspace.syncs.values_list("sync_status").annotate(n=Count("id")).order_by()),
        "failing_syncs": workspace.syncs.filter(sync_status="failed").only("id", "name", "workspace_id")[:5],
        "server_counts": dict(workspace.servers.values_list("status").annotate(n=Count("id")).order_by()),
        "recent_events": recent,
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
         "can_rename": can_rename},
    )


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
    memberships = workspace.memberships.select_related("user").order_by("user__email")
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


def accept_invitation(request, token):
    invitation = members.find_invitation(token)
    if invitation is None or not invitation.is_pending:
        return render(request, "devpilot/invitation_invalid.html", status=404)
    if not request.user.is_authenticated:
        return render(request, "devpilot/invitation.html", {"invitation": invitation, "path": request.path})
    if request.method == "POST":
        try:
            members.accept(invitation, request.user, request=request)
        except members.MembershipError as e:
            messages.error(request, str(e))
            return redirect("home")
        messages.success(request, f"Welcome to {invitation.workspace.name}.")
        return redirect("workspace_home", ws=invitation.workspace.slug)
    return render(request, "devpilot/invitation.html", {"invitation": invitation, "path": request.path})


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


@workspace_view("audit.read")
def audit_log(request):
    events = request.workspace.audit_events.all()
    action = request.GET.get("action", "").strip()
    if action:
        events = events.filter(action__startswith=action)
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    return render(request, "devpilot/audit_log.html", {"settings_tab": "audit", "page": page, "action": action})


def favicon(request):
    """Browsers ask for /favicon.ico on pages without a <link rel=icon> (e.g. HTMX fragments)."""
    return redirect(static("devpilot/favicon.svg"), permanent=True)


def health_view(request):
    report = health.check()
    return JsonResponse(report, status=200 if report["ok"] else 503)


def _is_api(request):
    return request.path.startswith("/api/")


def not_found(request, exception=None):
    if _is_api(request):
        return error_response(404, "Not found.")
    return render(request, "404.html", status=404)


def forbidden(request, exception=None):
    if _is_api(request):
        return error_response(403, "Forbidden.")
    return render(request, "403.html", {"reason": str(exception or "")}, status=403)


def server_error(request):
    if _is_api(request):
        return error_response(500, "Internal server error.")
    return render(request, "500.html", status=500)

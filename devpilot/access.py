"""Workspace access for pages: membership and role checks in one decorator.

    @workspace_view("secrets.write")
    def edit_secret(request, secret_id): ...   # request.workspace, request.membership

A user who is not a member of the workspace gets a 404 (the workspace's existence is
not revealed); a member whose role lacks the permission gets a 403. In a workspace that
requires MFA, a member without it is sent to set it up (and back here afterwards).
"""

from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse

from devpilot.accounts import MFA_NEXT_SESSION_KEY, has_mfa

from devpilot.models import Membership
from devpilot.permissions import can
from devpilot.prepared import PreparedQuery

CURRENT_WORKSPACE_SESSION_KEY = "workspace"


# All the user's memberships in the one query (the page's workspace switcher lists them too), on every page:
# its SQL is built once per process (devpilot/prepared.py).
MEMBERSHIPS_OF = PreparedQuery(lambda user_id: Membership.objects.select_related("workspace").filter(
    user_id=user_id).order_by("workspace__name", "workspace__slug"), user_id=int)


def workspace_view(permission="workspace.read"):
    def decorator(view):
        @login_required
        @wraps(view)
        def wrapped(request, ws, *args, **kwargs):
            memberships = MEMBERSHIPS_OF(user_id=request.user.pk)
            membership = next((m for m in memberships if m.workspace.slug == ws), None)
            if membership is None:
                raise Http404("No such workspace.")
            if membership.workspace.require_mfa and not has_mfa(request.user):
                return _set_up_mfa(request, membership.workspace)
            if not can(membership.role, permission):
                raise PermissionDenied("Your role in this workspace does not allow this.")
            request.workspace = membership.workspace
            request.membership = membership
            request.memberships = memberships
            if request.session.get(CURRENT_WORKSPACE_SESSION_KEY) != ws:
                request.session[CURRENT_WORKSPACE_SESSION_KEY] = ws
            return view(request, *args, **kwargs)

        wrapped.workspace_permission = permission
        return wrapped

    return decorator


def _set_up_mfa(request, workspace):
    if request.method == "GET":
        request.session[MFA_NEXT_SESSION_KEY] = request.get_full_path()
    messages.warning(
        request, f"{workspace.name} requires two-factor authentication. Set it up to continue."
    )
    url = reverse("mfa_index")
    if getattr(request, "htmx", False):
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return redirect(url)


def get_in_workspace(request, model_or_queryset, **lookup):
    """get_object_or_404, restricted to the request's workspace."""
    return get_object_or_404(model_or_queryset, workspace=request.workspace, **lookup)


def has_permission(request, permission) -> bool:
    membership = getattr(request, "membership", None)
    return membership is not None and can(membership.role, permission)

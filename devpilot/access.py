"""Workspace access for pages: membership and role checks in one decorator.

    @workspace_view("secrets.write")
    def edit_secret(request, secret_id): ...   # request.workspace, request.membership

A user who is not a member of the workspace gets a 404 (the workspace's existence is
not revealed); a member whose role lacks the permission gets a 403.
"""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404

from devpilot.models import Membership
from devpilot.permissions import can

CURRENT_WORKSPACE_SESSION_KEY = "workspace"


def workspace_view(permission="workspace.read"):
    def decorator(view):
        @login_required
        @wraps(view)
        def wrapped(request, ws, *args, **kwargs):
            membership = (
                Membership.objects.select_related("workspace")
                .filter(workspace__slug=ws, user=request.user)
                .first()
            )
            if membership is None:
                raise Http404("No such workspace.")
            if not can(membership.role, permission):
                raise PermissionDenied("Your role in this workspace does not allow this.")
            request.workspace = membership.workspace
            request.membership = membership
            if request.session.get(CURRENT_WORKSPACE_SESSION_KEY) != ws:
                request.session[CURRENT_WORKSPACE_SESSION_KEY] = ws
            return view(request, *args, **kwargs)

        wrapped.workspace_permission = permission
        return wrapped

    return decorator


def get_in_workspace(request, model_or_queryset, **lookup):
    """get_object_or_404, restricted to the request's workspace."""
    return get_object_or_404(model_or_queryset, workspace=request.workspace, **lookup)


def has_permission(request, permission) -> bool:
    membership = getattr(request, "membership", None)
    return membership is not None and can(membership.role, permission)

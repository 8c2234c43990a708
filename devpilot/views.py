from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render

from devpilot.access import CURRENT_WORKSPACE_SESSION_KEY, workspace_view
from devpilot.api import error_response


@login_required
def home(request):
    memberships = request.user.memberships.select_related("workspace")
    current = request.session.get(CURRENT_WORKSPACE_SESSION_KEY)
    membership = memberships.filter(workspace__slug=current).first() or memberships.first()
    if membership is None:
        return redirect("login")
    return redirect("workspace_home", ws=membership.workspace.slug)


@workspace_view()
def workspace_home(request):
    return render(request, "devpilot/workspace_home.html")


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

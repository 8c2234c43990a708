from devpilot.permissions import permissions_of


def workspace(request):
    """The current workspace, the user's role and permissions, and the switcher's list."""
    membership = getattr(request, "membership", None)
    if membership is None:
        return {}
    return {
        "workspace": membership.workspace,
        "membership": membership,
        "workspace_perms": permissions_of(membership.role),
        "switcher_memberships": request.memberships,
    }

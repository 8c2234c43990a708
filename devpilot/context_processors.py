from devpilot.permissions import permissions_of


def workspace(request):
    """The current workspace, the user's role in it and the permissions that role holds."""
    membership = getattr(request, "membership", None)
    if membership is None:
        return {}
    return {
        "workspace": membership.workspace,
        "membership": membership,
        "workspace_perms": permissions_of(membership.role),
    }

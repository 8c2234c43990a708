from devpilot.models import Membership
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
        # By user id: membership.user would fetch the user again (request.user is already loaded).
        "switcher_memberships": Membership.objects.filter(user_id=membership.user_id).select_related(
            "workspace").order_by("workspace__name"),
    }

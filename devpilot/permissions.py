"""The roles matrix, enforced here and nowhere else.

Each permission names the least powerful role that has it; every more powerful
role has it too. Views and API endpoints name the permission they need
(`@workspace_view("secrets.write")`, `@api_view("syncs.manage")`).
"""

from devpilot.models import Role

RANK = {Role.VIEWER: 0, Role.MEMBER: 1, Role.ADMIN: 2, Role.OWNER: 3}

PERMISSIONS = {
    "workspace.read": Role.VIEWER,  # everything except secret values
    "secrets.read_values": Role.MEMBER,
    "secrets.write": Role.MEMBER,
    "environments.manage": Role.ADMIN,
    "integrations.manage": Role.ADMIN,
    "syncs.manage": Role.ADMIN,
    "servers.manage": Role.ADMIN,
    "members.manage": Role.ADMIN,
    "tokens.manage": Role.ADMIN,
    "audit.read": Role.ADMIN,
    "workspace.delete": Role.OWNER,
    "owners.manage": Role.OWNER,
}


def can(role: str, permission: str) -> bool:
    """Whether `role` holds `permission`. Unknown permissions are a programming error."""
    return RANK[Role(role)] >= RANK[PERMISSIONS[permission]]


def permissions_of(role: str) -> set[str]:
    return {name for name in PERMISSIONS if can(role, name)}

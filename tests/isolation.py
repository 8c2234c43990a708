"""Objects for the isolation test: one factory per uuid URL kwarg.

Each factory takes a workspace (and its owner) and returns an object of that workspace
whose pk fills the kwarg (or the plain value to use, for slugs and names). tests/test_isolation.py walks every workspace URL with ids of
workspace A as a member of workspace B and as an anonymous user; a uuid kwarg without a
factory here fails that test, so every new URL is covered.
"""

FACTORIES = {}


def factory(*kwarg_names):
    def register(fn):
        for name in kwarg_names:
            FACTORIES[name] = fn
        return fn

    return register


# --- Core --------------------------------------------------------------------------------


@factory("membership_id")
def a_membership(workspace, owner):
    from devpilot.models import Membership, Role, User

    existing = workspace.memberships.filter(user__email=f"member-{workspace.slug}@example.com").first()
    if existing:
        return existing
    user = User.objects.create_user(email=f"member-{workspace.slug}@example.com", password="x")
    return Membership.objects.create(workspace=workspace, user=user, role=Role.MEMBER)


@factory("invitation_id")
def an_invitation(workspace, owner):
    from devpilot import members

    pending = [i for i in workspace.invitations.all() if i.is_pending]
    if pending:
        return pending[0]
    invitation, _ = members.invite(owner.memberships.get(workspace=workspace), "invitee@example.com", "member")
    return invitation


@factory("token_id")
def an_api_token(workspace, owner):
    from devpilot.tokens import create_api_token

    return workspace.api_tokens.filter(name="isolation").first() or create_api_token(workspace, "isolation")[0]


# --- Secrets -----------------------------------------------------------------------------


@factory("secret_id")
def a_secret(workspace, owner):
    from devpilot import secrets

    env = workspace.environments.get(slug="dev")
    existing = env.secrets.filter(key="ISOLATED_SECRET").first()
    return existing or secrets.create_secret(env, "/", "ISOLATED_SECRET", "isolated-value")


@factory("secret_name")
def a_secret_name(workspace, owner):
    return a_secret(workspace, owner).key


@factory("env")
def an_environment_slug(workspace, owner):
    return "dev"


@factory("import_id", "secret_import_id")
def a_secret_import(workspace, owner):
    from devpilot import imports, secrets

    env = workspace.environments.get(slug="dev")
    folder = env.folders.filter(path="/imports-here").first() or secrets.create_folder(env, "/", "imports-here")
    return folder.imports.first() or imports.add_import(folder, env.folders.get(path="/"))


@factory("version_id")
def a_secret_version(workspace, owner):
    return a_secret(workspace, owner).versions.get()


@factory("secret_snapshot_id")
def a_folder_snapshot(workspace, owner):
    return a_secret(workspace, owner).folder.snapshots.order_by("-number").first()


@factory("folder_id")
def a_folder(workspace, owner):
    from devpilot import secrets

    env = workspace.environments.get(slug="dev")
    return env.folders.filter(path="/isolated").first() or secrets.create_folder(env, "/", "isolated")


@factory("environment_id")
def an_environment(workspace, owner):
    return workspace.environments.get(slug="staging")


# --- Connections -------------------------------------------------------------------------


@factory("connection_id")
def a_connection(workspace, owner):
    from connections.models import Connection

    existing = workspace.connections.first()
    return existing or Connection.objects.create(workspace=workspace, name="isolated", token="dop_v1_isolated",
                                                 account_uuid="acct-isolated")


@factory("provider")
def a_provider_slug(workspace, owner):
    return "digital-ocean"


# --- Secret syncs ------------------------------------------------------------------------


@factory("sync_id")
def a_sync(workspace, owner):
    from syncs.models import Sync

    env = workspace.environments.get(slug="dev")
    existing = workspace.syncs.first()
    return existing or Sync.objects.create(
        workspace=workspace, name="isolated-sync", connection=a_connection(workspace, owner), environment=env,
        folder=env.folders.get(path="/"), app_id="app-isolated", app_name="isolated-app")


@factory("step")
def a_wizard_step(workspace, owner):
    return "source"


# --- Servers -----------------------------------------------------------------------------


@factory("server_id")
def a_server(workspace, owner):
    from provisioning.models import Server

    existing = workspace.servers.first()
    return existing or Server.objects.create(workspace=workspace, connection=a_connection(workspace, owner),
                                             name="isolated-server", region="nyc3", size="s-1vcpu-1gb",
                                             image="ubuntu-24-04-x64", droplet_id=4242)


@factory("action")
def a_careful_action(workspace, owner):
    return "power_off"  # a server action that asks first (provisioning/views.py CAREFUL)


@factory("droplet_snapshot_id")
def a_droplet_snapshot_id(workspace, owner):
    return "4243"  # DigitalOcean's id of a Droplet snapshot (a number); read from DigitalOcean, not a row


@factory("user_id")
def a_member(workspace, owner):
    return owner


@factory("rule_id")
def an_alert_rule(workspace, owner):
    from provisioning.models import AlertRule

    return workspace.alert_rules.first() or AlertRule.objects.create(workspace=workspace, kind="disk_high", threshold=90)


# --- Machine identities, folders by id, environments and names -------------------------------


@factory("identity_id")
def an_identity(workspace, owner):
    from devpilot import identities

    return (workspace.machine_identities.filter(name="isolated-identity").first()
            or identities.create_identity(workspace, "isolated-identity", "member", created_by=owner))


@factory("client_secret_id")
def a_client_secret(workspace, owner):
    from devpilot import identities

    identity = an_identity(workspace, owner)
    return identity.client_secrets.first() or identities.add_client_secret(identity, description="isolated")[0]


@factory("workspace_id")
def the_workspace(workspace, owner):
    return workspace


@factory("connection_name")
def a_connection_name(workspace, owner):
    return a_connection(workspace, owner).name


@factory("sync_name")
def a_sync_name(workspace, owner):
    return a_sync(workspace, owner).name

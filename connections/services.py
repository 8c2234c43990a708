"""Connecting, testing, rotating and removing provider connections."""

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from connections.models import Connection, Status
from connections.signals import connection_created, connection_removed
from connections.providers import get_provider
from connections.providers.errors import ProviderError
from devpilot import audit
from devpilot.errors import Conflict, Invalid


class ConnectionError_(Invalid):
    """A connection change that cannot be made; the message is for the user."""


class AccountChanged(Conflict):
    """The new token belongs to another account or team: the user must confirm."""

    def __init__(self, connection, account):
        self.connection = connection
        self.account = account
        old = connection.team_name or connection.account_email
        new = account.team_name or account.email
        super().__init__(
            f"The new token belongs to another DigitalOcean {'team' if account.team_uuid else 'account'} "
            f"({new}) than the current one ({old}). Syncs and servers using this connection point at resources of "
            f"the old one. Confirm to switch anyway (in the API: confirmAccountChange: true).",
            details=[{"field": "confirmAccountChange", "message": "Send confirmAccountChange: true to switch."}],
        )


def _apply_account(connection, account, capabilities):
    connection.account_uuid = account.uuid
    connection.account_email = account.email
    connection.team_uuid = account.team_uuid
    connection.team_name = account.team_name
    connection.droplet_limit = account.droplet_limit
    connection.capabilities = capabilities
    connection.status = Status.OK
    connection.last_error = ""
    connection.last_checked_at = timezone.now()


def _check_name(workspace, name, exclude=None):
    name = (name or "").strip()
    if not name:
        raise ConnectionError_("An Access Key (label) is required.")
    others = workspace.connections.filter(name__iexact=name)
    if exclude is not None:
        others = others.exclude(pk=exclude.pk)
    if others.exists():
        raise ConnectionError_(f"A connection named {name} already exists in this workspace.")
    return name


@sensitive_variables("token")
def connect(workspace, provider_slug, name, token, description="", *, user=None, request=None):
    """Validate the token with a read-only call, then store it encrypted. Nothing is saved on failure."""
    provider = get_provider(provider_slug)
    name = _check_name(workspace, name)
    token = (token or "").strip()
    if not token:
        raise ConnectionError_("The Secret Key (your personal access token) is required.")
    try:
        account = provider.validate(token)
    except ProviderError as e:
        raise ConnectionError_(e.message) from None
    capabilities = provider.probe(token)
    connection = Connection(workspace=workspace, provider=provider_slug, name=name, description=description or "",
                            created_by=user)
    connection.token = token
    _apply_account(connection, account, capabilities)
    try:
        with transaction.atomic():
            connection.save()
            audit.record(workspace, "connection.created", request=request, actor=user, target=connection,
                         account=account.email, team=account.team_name)
    except IntegrityError:
        raise ConnectionError_(f"A connection named {name} already exists in this workspace.") from None
    connection_created.send(sender=Connection, connection=connection)
    return connection


def test(connection, *, user=None, request=None):
    """Re-run validation and the probes; record the outcome on the connection."""
    provider = connection.provider_module
    try:
        account = provider.validate(connection.token)
    except ProviderError as e:
        connection.status = e.connection_status
        connection.last_error = e.message
        connection.last_checked_at = timezone.now()
        connection.save(update_fields=["status", "last_error", "last_checked_at", "updated_at"])
        audit.record(connection.workspace, "connection.tested", request=request, actor=user, target=connection,
                     result=e.connection_status)
        return connection
    _apply_account(connection, account, provider.probe(connection.token))
    connection.save()
    audit.record(connection.workspace, "connection.tested", request=request, actor=user, target=connection,
                 result=Status.OK)
    return connection


@sensitive_variables("new_token")
def rotate(connection, new_token, *, confirm_account_change=False, user=None, request=None):
    """Replace the token. A token of another account or team needs confirm_account_change."""
    new_token = (new_token or "").strip()
    if not new_token:
        raise ConnectionError_("Paste the new token.")
    provider = connection.provider_module
    try:
        account = provider.validate(new_token)
    except ProviderError as e:
        raise ConnectionError_(e.message) from None
    changed = account.uuid != connection.account_uuid or account.team_uuid != connection.team_uuid
    if changed and not confirm_account_change:
        raise AccountChanged(connection, account)
    connection.token = new_token
    connection.version += 1
    _apply_account(connection, account, provider.probe(new_token))
    connection.save()
    audit.record(connection.workspace, "connection.rotated", request=request, actor=user, target=connection,
                 version=connection.version, account_changed=changed)
    return connection


def update_details(connection, *, name=None, description=None, user=None, request=None):
    if name is not None:
        connection.name = _check_name(connection.workspace, name, exclude=connection)
    if description is not None:
        connection.description = description
    connection.save()
    audit.record(connection.workspace, "connection.updated", request=request, actor=user, target=connection)
    return connection


def usage(connection):
    """What points at a connection (secret syncs, servers...), as {verbose name plural: [objects]}."""
    used = {}
    for relation in connection._meta.related_objects:
        objects = list(getattr(connection, relation.get_accessor_name()).all())
        if objects:
            used[str(relation.related_model._meta.verbose_name_plural)] = objects
    return used


@transaction.atomic
def remove(connection, *, user=None, request=None):
    """Delete the stored credentials. Syncs stop; servers stay, marked as having no connection.

    Nothing is destroyed at the provider.
    """
    used = usage(connection)
    audit.record(connection.workspace, "connection.removed", request=request, actor=user, target=connection,
                 **{kind.replace(" ", "_"): len(objects) for kind, objects in used.items()})
    connection_removed.send(sender=Connection, connection=connection, used=used)
    connection.delete()  # SET_NULL on syncs and servers
    return used

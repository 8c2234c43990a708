"""People's SSH keys on servers: who may reach which server, and keeping the servers in step.

Desired state: the keys of every member an admin granted access to a server (still a member of its
workspace). Known state: the managed key ids the agent last reported (heartbeat or command result),
plus what the open commands will change. The difference becomes install/remove commands on the
agent's channel (provisioning/commands.py); the agent edits root's authorized_keys, keeping every
line Devpilot does not manage.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from django.db import IntegrityError, transaction
from django.utils import timezone

from devpilot import audit
from devpilot.errors import Conflict, Invalid
from devpilot.models import Membership
from provisioning import commands
from provisioning.models import AgentCommand, CommandState, MemberSshKey, Server, ServerAccess

MIN_RSA_BITS = 2048
RETRY_AFTER = timedelta(minutes=5)
REPORTED = "sshKeys"  # agent_info field: the managed key ids the agent last reported
HOST_KEY = "hostKey"  # agent_info field: the server's ed25519 host public key


# --- A person's keys -----------------------------------------------------------------------------


def sha256_fingerprint(public_key: str) -> str:
    """As `ssh-keygen -l` shows it: SHA256: then the unpadded base64 of the key blob's digest."""
    blob = base64.b64decode(public_key.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def parse_public_key(text: str) -> tuple[str, str]:
    """(the key as "<type> <base64>", the comment) of an ed25519, RSA (≥ 2048 bits) or ECDSA public key."""
    text = " ".join(text.split())
    if not text:
        raise Invalid.for_field("public_key", "Paste your public key (the one line in ~/.ssh/id_ed25519.pub).")
    if "PRIVATE KEY" in text:
        raise Invalid.for_field("public_key", "That is a private key: never paste it anywhere. "
                                              "Paste the public key (the .pub file) instead.")
    parts = text.split(" ")
    try:
        key = serialization.load_ssh_public_key(" ".join(parts[:2]).encode())
    except (ValueError, IndexError, TypeError, UnsupportedAlgorithm):
        raise Invalid.for_field("public_key", "This is not an SSH public key. Paste the whole line, "
                                              "e.g. ssh-ed25519 AAAA… you@laptop.") from None
    if not isinstance(key, ed25519.Ed25519PublicKey | rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise Invalid.for_field("public_key", "Only ed25519, RSA and ECDSA keys are accepted.")
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        raise Invalid.for_field("public_key", f"This RSA key has {key.key_size} bits; use at least {MIN_RSA_BITS} "
                                              "(or an ed25519 key).")
    normalized = " ".join(parts[:2])
    if not commands.KEY_LINE.match(normalized):
        raise Invalid.for_field("public_key", "Only ed25519, RSA and ECDSA keys are accepted.")
    return normalized, " ".join(parts[2:])


def add_key(user, name: str, public_key: str) -> MemberSshKey:
    key_text, comment = parse_public_key(public_key)
    name = " ".join(name.split())[:100] or comment[:100] or "SSH key"
    key = MemberSshKey(user=user, name=name, public_key=key_text, fingerprint=sha256_fingerprint(key_text))
    try:
        with transaction.atomic():
            key.save()
    except IntegrityError:
        raise Conflict.for_field("public_key", f"You have already added this key ({key.fingerprint}).") from None
    servers = servers_reached_by(user)
    _record_key_change(servers, user, key, added=True)
    for server in servers:
        sync_server(server)
    return key


@transaction.atomic
def delete_key(key: MemberSshKey) -> int:
    """Deletes the key and removes it from every server it is on; the number of servers changed."""
    servers = servers_reached_by(key.user)
    _record_key_change(servers, key.user, key, added=False)
    key.delete()
    return sum(bool(sync_server(server)) for server in servers)


def _record_key_change(servers: list[Server], user, key: MemberSshKey, *, added: bool) -> None:
    """A key that opens servers is the business of each workspace they belong to: its audit log says so."""
    for workspace in {server.workspace_id: server.workspace for server in servers}.values():
        audit.record(workspace, "member_ssh_key.added" if added else "member_ssh_key.deleted", actor=user, target=key,
                     fingerprint=key.fingerprint)


def servers_reached_by(user) -> list[Server]:
    from provisioning.agents import REFUSED

    return list(Server.objects.live().filter(access_grants__user=user).exclude(status__in=REFUSED)
                .select_related("workspace"))


# --- Who may reach a server ----------------------------------------------------------------------


def members_with_access(server: Server) -> list[Membership]:
    granted = set(server.access_grants.values_list("user_id", flat=True))
    members = Membership.objects.filter(workspace=server.workspace).select_related("user").order_by("user__email")
    return [m for m in members if m.user_id in granted]


@transaction.atomic
def grant(server: Server, user, *, request=None) -> ServerAccess:
    if not Membership.objects.filter(workspace=server.workspace, user=user).exists():
        raise Invalid.for_field("user", "Only members of this workspace can be given access to its servers.")
    if _refused(server):
        raise Conflict("This server is destroyed or being destroyed; nobody can be given access to it.")
    by = getattr(request, "user", None)
    access, created = ServerAccess.objects.get_or_create(
        server=server, user=user, defaults={"granted_by": by if by is not None and by.is_authenticated else None})
    if created:
        audit.record(server.workspace, "server.access_granted", request=request, target=server, member=user.email)
        sync_server(server)
    return access


@transaction.atomic
def revoke(server: Server, user, *, request=None) -> None:
    if ServerAccess.objects.filter(server=server, user=user).delete()[0]:
        audit.record(server.workspace, "server.access_revoked", request=request, target=server, member=user.email)
        sync_server(server)


def member_removed(sender, membership, **kwargs) -> None:
    """devpilot.signals.member_removed: their access to the workspace's servers ends, keys come off."""
    servers = list(Server.objects.filter(workspace=membership.workspace, access_grants__user=membership.user_id))
    ServerAccess.objects.filter(server__workspace=membership.workspace, user=membership.user_id).delete()
    for server in servers:
        sync_server(server)


# --- Keeping a server in step --------------------------------------------------------------------


def desired_keys(server: Server) -> dict[str, str]:
    """{key id: "<type> <base64>"} of every key that belongs on the server now."""
    members = Membership.objects.filter(workspace=server.workspace).values("user_id")
    keys = MemberSshKey.objects.filter(user__server_access__server=server, user__in=members)
    return {str(k.pk): k.public_key for k in keys}


def expected_keys(server: Server) -> set[str]:
    """The managed key ids on the server once its open commands have run."""
    expected = set(server.agent_info.get(REPORTED) or [])
    for command in AgentCommand.objects.filter(server=server, state__in=commands.OPEN).order_by("created_at"):
        if command.kind == commands.INSTALL_SSH_KEYS.name:
            expected |= {k["id"] for k in command.payload["keys"]}
        elif command.kind == commands.REMOVE_SSH_KEYS.name:
            expected -= set(command.payload["ids"])
    return expected


def sync_server(server: Server) -> list[AgentCommand]:
    """The commands that bring the server's authorized_keys to the desired keys (none when in step).

    Only for a server whose agent has registered and reported its keys: an older agent, or one that
    cannot read the file, is never sent commands it cannot run. Runs on every heartbeat, so any drift
    (a line removed by hand, a key or account deleted) is mended within one heartbeat.
    """
    server.refresh_from_db(fields=["agent_info", "agent_registered_at", "status", "archived_at"])
    if _refused(server) or not server.agent_registered_at or REPORTED not in server.agent_info:
        return []
    if server.agent_commands.filter(state=CommandState.FAILED, finished_at__gt=timezone.now() - RETRY_AFTER).exists():
        return []  # a change just failed (see the server page): tried again after RETRY_AFTER, not every heartbeat
    with transaction.atomic():
        Server.objects.select_for_update().filter(pk=server.pk).first()  # one reconciler per server at a time
        desired, expected = desired_keys(server), expected_keys(server)
        made = []
        missing = sorted(set(desired) - expected)
        if missing:
            made.append(commands.enqueue(server, commands.INSTALL_SSH_KEYS.name,
                                         {"keys": [{"id": i, "publicKey": desired[i]} for i in missing]}))
        extra = sorted(expected - set(desired))
        if extra:
            made.append(commands.enqueue(server, commands.REMOVE_SSH_KEYS.name, {"ids": extra}))
    return made


def _refused(server: Server) -> bool:
    from provisioning.agents import refused  # agents imports this module

    return refused(server)


def record_reported_keys(server: Server, ids: list[str]) -> None:
    info = dict(Server.objects.values_list("agent_info", flat=True).get(pk=server.pk) or {})
    info[REPORTED] = sorted(set(ids))
    Server.objects.filter(pk=server.pk).update(agent_info=info)
    server.agent_info = info


def open_commands(server: Server):
    return server.agent_commands.filter(state__in=commands.OPEN)


def recent_commands(server: Server, limit: int = 10) -> list[AgentCommand]:
    return list(server.agent_commands.order_by("-created_at")[:limit])


def host_key_fingerprint(server: Server) -> str:
    key = (server.agent_info or {}).get(HOST_KEY) or ""
    try:
        return sha256_fingerprint(key) if commands.KEY_LINE.match(key) else ""
    except ValueError:
        return ""


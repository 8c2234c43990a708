"""Agent registration and its one channel: heartbeats (facts, metrics, SSH keys) out, commands back."""

import secrets
from datetime import timedelta
from typing import Annotated

from django.utils import timezone
from django.views.decorators.debug import sensitive_variables
from pydantic import Field

from devpilot import audit
from devpilot.errors import Unauthenticated
from devpilot.models import hash_token
from devpilot.schemas import Strict, parse
from provisioning import access, commands, metrics
from provisioning.metrics import Metrics
from provisioning.models import Server, ServerStatus

REGISTRATION_LIFETIME = timedelta(hours=2)
HEARTBEAT_INTERVAL = 60
MISSED_HEARTBEATS = 3


class AgentError(Unauthenticated):
    pass


def new_registration_token(server):
    """A one-time token for the Droplet's user_data; only its hash is kept."""
    token = "dpr_" + secrets.token_urlsafe(32)
    server.registration_token_hash = hash_token(token)
    server.registration_token = token
    server.registration_expires_at = timezone.now() + REGISTRATION_LIFETIME
    return token


@sensitive_variables("token", "credential")
def register(token, facts):
    """Exchange the one-time token for a long-lived credential; the server becomes ready."""
    server = Server.objects.filter(registration_token_hash=hash_token(token)).first() if token else None
    if server is None or not server.registration_expires_at or server.registration_expires_at < timezone.now():
        raise AgentError("This registration token is unknown, used or expired.")
    if refused(server):
        raise AgentError("This server was destroyed; its agent is no longer accepted.")
    credential = "dpa_" + secrets.token_urlsafe(32)
    now = timezone.now()
    Server.objects.filter(pk=server.pk).update(
        registration_token_hash="", registration_token_ciphertext="", registration_expires_at=None,
        agent_credential_hash=hash_token(credential),
        agent_registered_at=now, agent_last_seen_at=now, agent_info=_clean(facts))
    server.refresh_from_db()
    audit.record(server.workspace, "server.agent_registered", target=server, hostname=server.agent_info.get("hostname", ""))
    from provisioning import steps

    steps.agent_registered(server)
    return server, credential


# A server in one of these is gone at DigitalOcean: whatever still calls in with its credential is not it.
GONE = (ServerStatus.DESTROYED, ServerStatus.DELETED_OUTSIDE)
# ...and its agent is refused from the moment its destruction is asked for.
REFUSED = (ServerStatus.DESTROYING, *GONE)


def refused(server: Server) -> bool:
    """Whether the server's agent may no longer call in: destroyed, going, or archived."""
    return server.status in REFUSED or server.is_archived


class AgentReport(Strict):
    """What a heartbeat carries beyond the facts: metrics, the managed SSH keys present, the host key.

    Strict, unlike the free-form facts an older agent sends: a field it has is checked, a field it
    lacks is simply not reported (no SSH key commands are sent to an agent that does not report keys).
    """

    metrics: Metrics | None = None
    sshKeys: list[Annotated[str, Field(pattern=commands.KEY_ID)]] | None = Field(default=None, max_length=1000)
    hostKey: str | None = Field(default=None, max_length=16384)


@sensitive_variables("credential")
def authenticate(credential: str) -> Server:
    server = Server.objects.select_related("workspace").filter(
        agent_credential_hash=hash_token(credential)).first() if credential else None
    if server is None:
        raise AgentError("Unknown agent credential.")
    if refused(server):
        raise AgentError("This server was destroyed; its agent is no longer accepted.")
    return server


@sensitive_variables("credential")
def heartbeat(credential: str, body: dict) -> int:
    """Records a heartbeat; the interval the agent should wait before the next one."""
    return _record_heartbeat(authenticate(credential), body).heartbeat_interval


@sensitive_variables("credential")
def exchange(credential: str, body: dict) -> dict:
    """The agent's one call: a heartbeat in, the interval and the commands waiting for it out."""
    interval = heartbeat(credential, body)
    server = authenticate(credential)
    access.sync_server(server)
    taken = commands.take(server)
    return {"interval": WORK_PENDING_INTERVAL if expects_work(server) else interval, "commands": taken}


# The "work pending" hint: an agent that may be sent work at any moment (its server is the target of a sync
# that follows its source, or has commands open) is told to ask again after 1 s instead of its interval, so
# an edit reaches it within the auto-sync debounce plus 2 s. One small request a second per such server,
# rather than a long-poll holding one of the web tier's workers per agent.
WORK_PENDING_INTERVAL = 1


def expects_work(server: Server) -> bool:
    from syncs.destinations import devpilot_server

    return server.agent_commands.filter(state__in=commands.OPEN).exists() or \
        devpilot_server.follows_sources(server)


@sensitive_variables("credential")
def acknowledge(credential: str, body: dict):
    return commands.acknowledge(authenticate(credential), body)


def _record_heartbeat(server: Server, body: dict) -> Server:
    report = parse(AgentReport, {k: body[k] for k in AgentReport.model_fields if k in body})
    info = _clean(body)
    if report.sshKeys is not None:
        info[access.REPORTED] = sorted(set(report.sshKeys))
    if report.hostKey and commands.KEY_LINE.match(report.hostKey.strip()):
        info[access.HOST_KEY] = report.hostKey.strip()
    Server.objects.filter(pk=server.pk).update(agent_last_seen_at=timezone.now(), agent_info=info)
    server.agent_info = info
    if report.metrics is not None:
        metrics.record(server, report.metrics)
    return server


def status(server):
    if server.status in GONE:
        return "gone with the Droplet"
    if not server.agent_registered_at:
        return "not installed"
    limit = timedelta(seconds=server.heartbeat_interval * MISSED_HEARTBEATS)
    if server.agent_last_seen_at and timezone.now() - server.agent_last_seen_at <= limit:
        return "online"
    return "offline"


def _clean(facts):
    keys = ("hostname", "os", "uptimeSeconds", "load", "memory", "disk", "agentVersion")
    return {k: facts.get(k) for k in keys if isinstance(facts, dict) and k in facts}



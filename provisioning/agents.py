"""Agent registration and heartbeats."""

import secrets
from datetime import timedelta

from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from devpilot import audit
from devpilot.errors import Unauthenticated
from devpilot.models import hash_token
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
    if server.status in GONE:
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


@sensitive_variables("credential")
def heartbeat(credential, facts):
    server = Server.objects.filter(agent_credential_hash=hash_token(credential)).first() if credential else None
    if server is None:
        raise AgentError("Unknown agent credential.")
    if server.status in GONE:
        raise AgentError("This server was destroyed; its agent is no longer accepted.")
    Server.objects.filter(pk=server.pk).update(agent_last_seen_at=timezone.now(), agent_info=_clean(facts))
    return server.heartbeat_interval


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



"""The agent's command channel: the fixed set of things Devpilot may ask a server's agent to do.

A command is a row (AgentCommand) of a registered kind with a payload checked by the kind's strict
schema. The agent fetches pending commands with its heartbeat (they become `sent`), runs each with
its own code for that kind (provisioning/agent/devpilot-agent.py, never a shell), and acknowledges
it with its result (`done` or `failed` with the agent's message). A command not acknowledged within
its kind's bound ends `failed` with the reason (expire_overdue, scheduled every minute).

Adding a kind is one `register(CommandKind(...))` here and one handler in the agent's HANDLERS:

    register(CommandKind("write_env_file", WriteEnvFile, FileWritten, on_result=record_hash,
                         deliver=lambda command: with_secret_values(command.payload)))

A kind whose payload must not be stored (secrets) stores a reference and expands it in `deliver`,
at the moment the agent fetches it. After running commands the agent asks again at once (up to 10
rounds), so work queued meanwhile does not wait for the next heartbeat interval.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from pydantic import BaseModel, Field

from devpilot.errors import Conflict, Invalid, NotFound
from devpilot.schemas import Strict, parse
from provisioning.models import AgentCommand, CommandState, Server

OPEN = (CommandState.PENDING, CommandState.SENT)
DEFAULT_BOUND = timedelta(minutes=5)  # five heartbeats at the default 60-second interval
MAX_PER_HEARTBEAT = 20
KEY_ID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
# What an authorized_keys line may hold for a managed key: a type and a base64 body, nothing else
# (no options, no newline: a payload can never smuggle `command="..."` onto a server).
KEY_TYPES = ("ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521")
KEY_LINE = re.compile(r"^(" + "|".join(re.escape(t) for t in KEY_TYPES) + r") [A-Za-z0-9+/]+={0,3}$")


class NoResult(Strict):
    """A kind whose agent reports nothing beyond ok / error."""


@dataclass(frozen=True)
class CommandKind:
    name: str
    payload: type[BaseModel]  # a Strict schema: what Devpilot may send
    result: type[BaseModel] = NoResult  # a Strict schema: what the agent reports when it succeeds
    bound: timedelta = DEFAULT_BOUND
    describe: Callable[[dict], str] = lambda payload: ""
    # Called in the acknowledging transaction with the command and its parsed result.
    on_result: Callable[[AgentCommand, Any], None] | None = None
    # What the agent receives: the stored payload, or something built from it when fetched.
    deliver: Callable[[AgentCommand], dict] = lambda command: command.payload
    # An idempotent kind is sent again when the agent has not acknowledged it this long after fetching it
    # (the heartbeat's answer was lost: the agent timed out while Devpilot answered). None: sent once.
    resend_after: timedelta | None = None


KINDS: dict[str, CommandKind] = {}


def register(kind: CommandKind) -> CommandKind:
    KINDS[kind.name] = kind
    return kind


# --- SSH keys ------------------------------------------------------------------------------------


class ManagedKey(Strict):
    id: str = Field(pattern=KEY_ID)
    publicKey: str = Field(pattern=KEY_LINE.pattern, max_length=16384)


class InstallSshKeys(Strict):
    keys: list[ManagedKey] = Field(min_length=1, max_length=200)


class RemoveSshKeys(Strict):
    ids: list[str] = Field(min_length=1, max_length=200)


class SshKeysResult(Strict):
    """The ids of the managed keys in authorized_keys after the command ran."""

    sshKeys: list[str] = Field(max_length=1000)


def _record_keys(command: AgentCommand, result: SshKeysResult) -> None:
    from provisioning import access

    access.record_reported_keys(command.server, result.sshKeys)


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


INSTALL_SSH_KEYS = register(CommandKind(
    "install_ssh_keys", InstallSshKeys, SshKeysResult,
    describe=lambda p: f"Add {_count(len(p.get('keys', [])), 'SSH key')} to root's authorized_keys",
    on_result=_record_keys))
REMOVE_SSH_KEYS = register(CommandKind(
    "remove_ssh_keys", RemoveSshKeys, SshKeysResult,
    describe=lambda p: f"Remove {_count(len(p.get('ids', [])), 'SSH key')} from root's authorized_keys",
    on_result=_record_keys))


# --- The channel ---------------------------------------------------------------------------------


def enqueue(server: Server, kind_name: str, payload: dict) -> AgentCommand:
    """A pending command for the server's agent; the payload must fit the kind's schema."""
    kind = KINDS.get(kind_name)
    if kind is None:
        raise Invalid(f"{kind_name!r} is not a command the Devpilot agent knows.")
    checked = parse(kind.payload, payload).model_dump()
    now = timezone.now()
    return AgentCommand.objects.create(server=server, kind=kind.name, payload=checked, created_at=now,
                                       due_at=now + kind.bound)


def describe(command: AgentCommand) -> str:
    kind = KINDS.get(command.kind)
    return (kind.describe(command.payload) if kind else "") or command.kind.replace("_", " ")


@transaction.atomic
def take(server: Server) -> list[dict]:
    """The server's pending commands, oldest first, as the agent receives them; they become `sent`."""
    now = timezone.now()
    unanswered = Q()
    for kind in KINDS.values():
        if kind.resend_after is not None:
            unanswered |= Q(state=CommandState.SENT, kind=kind.name, sent_at__lt=now - kind.resend_after)
    rows = list(AgentCommand.objects.select_for_update().filter(Q(state=CommandState.PENDING) | unanswered,
                                                                server=server)
                .order_by("created_at")[:MAX_PER_HEARTBEAT])
    AgentCommand.objects.filter(pk__in=[c.pk for c in rows]).update(state=CommandState.SENT, sent_at=now)
    return [{"id": str(c.pk), "kind": c.kind, "payload": KINDS[c.kind].deliver(c)} for c in rows if c.kind in KINDS]


class Acknowledgement(Strict):
    id: str = Field(pattern=KEY_ID)  # the command's
    ok: bool
    error: str = Field(default="", max_length=2000)
    result: dict = Field(default_factory=dict)


@transaction.atomic
def acknowledge(server: Server, body: dict) -> AgentCommand:
    """The agent's report on a command it was sent: done with its result, or failed with its message."""
    ack = parse(Acknowledgement, body)
    command = AgentCommand.objects.select_for_update().filter(server=server, pk=ack.id).first()
    if command is None:
        raise NotFound("This server has no such command.")
    if command.state != CommandState.SENT:
        raise Conflict(f"This command is {command.get_state_display().lower()}; only a command sent to the agent "
                       "can be acknowledged.")
    kind = KINDS[command.kind]
    command.finished_at = timezone.now()
    if ack.ok:
        result = parse(kind.result, ack.result)
        command.state, command.result = CommandState.DONE, result.model_dump()
        if kind.on_result:
            kind.on_result(command, result)
    else:
        command.state = CommandState.FAILED
        command.error = "The agent reported: " + (ack.error.strip() or "an error without a message.")
    command.save(update_fields=["state", "result", "error", "finished_at"])
    return command


def overdue_reason(command: AgentCommand) -> str:
    minutes = round((command.due_at - command.created_at).total_seconds() / 60)
    if command.state == CommandState.PENDING:
        return (f"The agent did not fetch this command within {minutes} minutes (is the server's agent offline?); "
                "Devpilot sends what is still needed when the agent is back.")
    return f"The agent fetched this command but reported no result within {minutes} minutes."


def expire_overdue() -> int:
    """Every open command past its bound ends failed with the reason. Scheduled every minute.

    A destroyed (or archived) server's open commands end at once: its agent is refused.
    """
    from provisioning.agents import REFUSED  # agents imports this module

    now = timezone.now()
    gone = Server.objects.filter(Q(status__in=REFUSED) | Q(archived_at__isnull=False),
                                 agent_commands__state__in=OPEN).distinct()
    expired = sum(fail_open(server, "The server was destroyed before its agent carried this out.") for server in gone)
    for command in AgentCommand.objects.filter(state__in=OPEN, due_at__lt=now):
        expired += AgentCommand.objects.filter(pk=command.pk, state=command.state).update(
            state=CommandState.FAILED, error=overdue_reason(command), finished_at=now)
    return expired


def fail_open(server: Server, reason: str) -> int:
    """A server gone for good takes no more commands: its open ones end failed now."""
    return AgentCommand.objects.filter(server=server, state__in=OPEN).update(
        state=CommandState.FAILED, error=reason, finished_at=timezone.now())


def fail_one(command: AgentCommand, reason: str) -> bool:
    """Call off one command the agent has not fetched yet; False if it was fetched meanwhile."""
    return bool(AgentCommand.objects.filter(pk=command.pk, state=CommandState.PENDING).update(
        state=CommandState.FAILED, error=reason, finished_at=timezone.now()))

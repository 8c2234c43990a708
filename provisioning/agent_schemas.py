"""What the agent's channel answers (its inputs are checked in provisioning/agents.py and commands.py)."""

from __future__ import annotations

from typing import Literal

from devpilot.schemas import Out


class AgentCommandSent(Out):
    """A command as the agent receives it: one of the kinds in provisioning/commands.py."""

    id: str
    kind: str
    payload: dict


class AgentChannelOut(Out):
    interval: int
    commands: list[AgentCommandSent]


class AgentCommandOut(Out):
    id: str
    state: Literal["pending", "sent", "done", "failed"]

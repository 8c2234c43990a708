"""What valid input to a server is: one definition for the New server wizard, the API and the tasks.

Everything DigitalOcean would refuse after the Droplet is bought (a firewall source that is
not an address, a key that is not a key) is refused here, before any row or call.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import Field

from devpilot.errors import Invalid
from devpilot.schemas import Id, Out, QueryBool, Strict, parse, rule
from provisioning import sshkeys
from provisioning.rules import validate_name, validate_ports

ANYWHERE = ["0.0.0.0/0", "::/0"]


def validate_source(text: str) -> str:
    """An IPv4/IPv6 address or CIDR block, as DigitalOcean's firewalls take them (no %zone suffix)."""
    try:
        if "%" in text:
            raise ValueError(text)
        return str(ipaddress.ip_network(text.strip(), strict=False)) if "/" in text else str(
            ipaddress.ip_address(text.strip()))
    except ValueError:
        raise Invalid(f"{text!r} is not an IP address or CIDR block (e.g. 203.0.113.7, 10.0.0.0/8, ::/0).") from None


def validate_public_key(text: str) -> str:
    text = text.strip()
    if not sshkeys.valid_public_key(text):
        raise Invalid(f"Not an SSH public key: {text[:40]}… (paste the whole line, e.g. ssh-ed25519 AAAA… you@host).")
    return text


Hostname = Annotated[str, rule(validate_name)]
Slug = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$")]
ImageRef = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^([a-z0-9][a-z0-9.-]*|[0-9]+)$")]
Ports = Annotated[str, rule(validate_ports)]
Source = Annotated[str, Field(max_length=64), rule(validate_source)]
PublicKey = Annotated[str, Field(max_length=16_384), rule(validate_public_key)]


class InboundRule(Strict):
    protocol: Literal["tcp", "udp"] = "tcp"
    ports: Ports
    sources: Annotated[list[Source], Field(min_length=1, max_length=100)] = Field(
        default_factory=lambda: list(ANYWHERE))


def default_rules() -> list[InboundRule]:
    return [InboundRule(ports=port) for port in ("22", "80", "443")]


class ServerDetails(Strict):
    """The Details step of the wizard; also part of the API's create body."""

    name: Hostname
    inboundRules: Annotated[list[InboundRule], Field(min_length=1, max_length=50)] = Field(
        default_factory=default_rules)
    sshPublicKeys: Annotated[list[PublicKey], Field(max_length=20)] = Field(default_factory=list)
    monitoring: bool = True
    backups: bool = False
    ipv6: bool = False


class ServerCreate(ServerDetails):
    connectionId: Id
    region: Slug
    size: Slug
    image: ImageRef


SnapshotName = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._:-]*$")]


class ServerAction(Strict):
    """An action on a server. resize takes `size` (a size of the server's region, checked against DigitalOcean's
    list), rename takes `name` (a hostname), snapshot may take `name` (else one is made from the date)."""

    type: Literal["power_on", "power_off", "reboot", "resize", "refresh", "retry", "rename", "enable_backups",
                  "disable_backups", "snapshot"]
    size: Slug = None  # type: ignore[assignment]
    name: Annotated[str, Field(min_length=1, max_length=100)] = None  # type: ignore[assignment]

    def checked(self) -> ServerAction:
        """The fields each type needs, and only those."""
        if self.type == "resize" and not self.size:
            raise Invalid.for_field("size", "Choose the new size.")
        if self.size and self.type != "resize":
            raise Invalid.for_field("size", "Only a resize takes a size.")
        if self.type == "rename":
            if not self.name:
                raise Invalid.for_field("name", "Give the new name.")
            validate_field("name", validate_name, self.name)
        elif self.type == "snapshot":
            if self.name:
                validate_field("name", lambda v: parse(SnapshotCreate, {"name": v}), self.name)
        elif self.name:
            raise Invalid.for_field("name", "Only rename and snapshot take a name.")
        return self


def validate_field(field: str, check, value):
    try:
        return check(value)
    except Invalid as e:
        raise Invalid.for_field(field, e.message if not e.details else e.details[0]["message"]) from None


class FirewallUpdate(Strict):
    """The cloud firewall's inbound rules, all of them (what is left out is removed)."""

    inboundRules: Annotated[list[InboundRule], Field(min_length=1, max_length=50)]


class SnapshotCreate(Strict):
    name: SnapshotName = None  # type: ignore[assignment]


class ServersQuery(Strict):
    archived: QueryBool = False


class ServerDeleteQuery(Strict):
    keepDroplet: QueryBool = False


class StepOut(Out):
    number: int
    name: str
    status: str
    message: str | None
    startedAt: str | None
    finishedAt: str | None


class AgentOut(Out):
    status: str
    lastSeenAt: str | None
    info: dict


class InboundRuleOut(Out):
    protocol: str
    ports: str
    sources: list[str]


class ServerOut(Out):
    id: str
    name: str
    status: str
    statusMessage: str | None
    statusMessageIsError: bool
    powerState: str | None
    pendingEvent: bool
    archivedAt: str | None
    diskGb: int | None
    memoryMb: int | None
    vcpus: int | None
    monthlyCost: float | None
    connectionId: str | None
    dropletId: int | None
    region: str
    size: str
    image: str
    priceMonthly: float | None
    ipv4: str | None
    ipv4Private: str | None
    ipv6: str | None
    tags: list[str]
    firewallId: str | None
    inboundRules: list[InboundRuleOut]
    monitoring: bool
    backups: bool
    steps: list[StepOut]
    agent: AgentOut
    actionInProgress: str | None
    createdAt: str | None
    updatedAt: str | None


class SizeOut(Out):
    slug: str
    description: str
    vcpus: int
    memoryMb: int
    diskGb: int
    priceMonthly: float
    priceHourly: float
    monthlyCost: float  # with backups, when the server has them


class SizesEnvelope(Out):
    sizes: list[SizeOut]


class SnapshotOut(Out):
    id: str
    name: str
    createdAt: str | None
    regions: list[str]
    minDiskSize: int | None
    sizeGigabytes: float | None


class SnapshotsEnvelope(Out):
    snapshots: list[SnapshotOut]


class ServerEnvelope(Out):
    server: ServerOut


class ServersEnvelope(Out):
    servers: list[ServerOut]


class AgentRegistered(Out):
    credential: str
    serverId: str
    interval: int

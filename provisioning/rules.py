"""Field rules for servers, shared by the schemas and the services."""

import re

from devpilot.errors import Invalid

# DigitalOcean's pattern (^[a-zA-Z0-9]?[a-z0-9A-Z.\-]*[a-z0-9A-Z]$), minus a leading dot or hyphen,
# which no hostname may have.
NAME_RE = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9.\-]*[a-zA-Z0-9])?$")
PORTS_RE = re.compile(r"^(\d{1,5})(-(\d{1,5}))?$")


class ServerError(Invalid):
    pass


def validate_name(name: str) -> str:
    if not name or len(name) > 63 or not NAME_RE.match(name):
        raise ServerError("Use letters, digits, dots and hyphens, starting and ending with a letter or digit "
                          "(DigitalOcean's hostname rule), at most 63 characters.")
    return name


def validate_ports(ports: str) -> str:
    match = PORTS_RE.match(ports.strip())
    if not match or not all(1 <= int(p) <= 65535 for p in (match.group(1), match.group(3)) if p):
        raise ServerError(f"{ports!r} is not a port (22) or a range (8000-9000).")
    if match.group(3) and int(match.group(3)) < int(match.group(1)):
        raise ServerError(f"{ports!r}: a range goes from low to high.")
    return ports.strip()

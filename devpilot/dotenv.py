""".env files in and out, parsed exactly as python-dotenv parses them (without interpolation)."""

import io
from dataclasses import dataclass, field

from dotenv.parser import parse_stream

from devpilot.secrets import KEY_RE, MAX_VALUE_BYTES


@dataclass
class ParsedEnv:
    entries: dict = field(default_factory=dict)  # key -> value, in file order
    problems: list = field(default_factory=list)  # (line number, message)

    @property
    def ok(self):
        return not self.problems


def parse(text: str) -> ParsedEnv:
    """Parse .env text; every line that cannot be imported is listed with the reason."""
    result = ParsedEnv()
    first_line = {}
    for binding in parse_stream(io.StringIO(text)):
        line = binding.original.line
        if binding.error:
            result.problems.append((line, f"cannot be parsed: {binding.original.string.strip()[:60]!r}"))
        elif binding.key is None:
            continue  # blank line or comment
        elif not KEY_RE.match(binding.key):
            result.problems.append((line, f"{binding.key!r} is not a valid key (letters, digits and _, not starting with a digit)"))
        elif binding.value is None:
            result.problems.append((line, f"{binding.key} has no value (write {binding.key}= for an empty one)"))
        elif len(binding.value.encode()) > MAX_VALUE_BYTES:
            result.problems.append((line, f"{binding.key} is longer than 64 KiB"))
        elif binding.key in first_line:
            result.problems.append((line, f"{binding.key} is a duplicate of line {first_line[binding.key]}"))
        else:
            first_line[binding.key] = line
            result.entries[binding.key] = binding.value
    return result


def _quote(value: str) -> str:
    if value and all(c.isalnum() or c in "_-.,:/@+=%" for c in value):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def render(secrets: dict[str, str]) -> str:
    """A .env file that parse() reads back to the same values, multi-line ones included."""
    return "".join(f"{key}={_quote(value)}\n" for key, value in secrets.items())

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


# Characters a double-quoted value may hold and still mean the same to every reader: bash expands
# $ ` and \ inside double quotes, python-dotenv decodes \ escapes, Docker Compose interpolates $.
_DOUBLE_QUOTE_UNSAFE = set('$`"\\\n')


def quote(value: str) -> str | None:
    """`value` quoted so python-dotenv (interpolating), Docker Compose and `bash source` read it back
    exactly, or None when no spelling does."""
    if value and all(c.isalnum() or c in "_-.,:/@+=%" for c in value):
        return value
    if "${" in value:
        return None  # python-dotenv interpolates ${...} inside any quotes and has no escape for it
    # Single quotes are literal to all three (no interpolation, no escapes) except that
    # python-dotenv decodes \\ and \' in them: a value free of ', of \\ and of a final \ is safe.
    if "'" not in value and "\\\\" not in value and not value.endswith("\\"):
        return f"'{value}'"
    if not _DOUBLE_QUOTE_UNSAFE & set(value):
        return f'"{value}"'
    return None


def render(secrets: dict[str, str]) -> str:
    """A .env file every common reader reads back to the stored values, multi-line ones included.

    A value no spelling carries for every reader (${...}, or a ' beside $ ` " \\ or a newline) is
    written double-quoted with escapes, as python-dotenv without interpolation reads it, under a
    comment that says so."""
    lines = []
    for key, value in secrets.items():
        quoted = quote(value)
        if quoted is None:
            lines.append(f"# {key}: no quoting reads this value back the same in python-dotenv, Docker Compose "
                         "and bash; check it where it is used.\n")
            quoted = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        lines.append(f"{key}={quoted}\n")
    return "".join(lines)

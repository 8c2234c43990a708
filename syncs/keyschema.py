"""Key schemas: `{{secretKey}}` (required) and `{{environment}}` in a template like
`APP_{{environment}}_{{secretKey}}`. Other characters: letters, digits, _, - and /.

A destination key is managed by a sync when it starts with what the schema renders
before `{{secretKey}}` and ends with what it renders after (Infisical's rule).
"""

import re

from devpilot.errors import Invalid

SECRET_KEY = "{{secretKey}}"
ENVIRONMENT = "{{environment}}"
ALLOWED = re.compile(r"^[A-Za-z0-9_\-/]*$")


class KeySchemaError(Invalid):
    pass


def validate(schema: str) -> str:
    schema = (schema or "").strip()
    if not schema:
        return ""
    if schema.count(SECRET_KEY) != 1:
        raise KeySchemaError("A key schema must contain {{secretKey}} exactly once.")
    rest = schema.replace(SECRET_KEY, "").replace(ENVIRONMENT, "")
    if "{{" in rest or "}}" in rest:
        raise KeySchemaError("Only {{secretKey}} and {{environment}} can be used in a key schema.")
    if not ALLOWED.match(rest):
        raise KeySchemaError("Key schemas may only contain letters, digits, _, - and / besides the placeholders.")
    return schema


def render(schema: str, key: str, environment: str) -> str:
    if not schema:
        return key
    return schema.replace(ENVIRONMENT, environment).replace(SECRET_KEY, key)


def affixes(schema: str, environment: str) -> tuple[str, str]:
    prefix, _, suffix = schema.partition(SECRET_KEY)
    return prefix.replace(ENVIRONMENT, environment), suffix.replace(ENVIRONMENT, environment)


def manages(schema: str, destination_key: str, environment: str) -> bool:
    """Whether a sync with this schema owns a destination key. No schema: it owns every key."""
    if not schema:
        return True
    prefix, suffix = affixes(schema, environment)
    return (
        len(destination_key) > len(prefix) + len(suffix)
        and destination_key.startswith(prefix)
        and destination_key.endswith(suffix)
    )

"""Validate requests and answers against DigitalOcean's OpenAPI description (the subset here).

`request_problem` says what is wrong with a request body (naming the field) or None: the fake
DigitalOcean refuses with it. `check_request` and `check_answer` raise AssertionError instead,
for tests that hold Devpilot's traffic and the fake's answers to the published contract.
"""

import json
import re
from collections import defaultdict
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

SUBSET = Path(__file__).with_name("digitalocean-subset.json")


def _openapi_to_json_schema(node: Any) -> Any:
    """OpenAPI 3.0 schemas are JSON Schema but for `nullable`, which becomes a union with null."""
    if isinstance(node, list):
        return [_openapi_to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    node = {k: _openapi_to_json_schema(v) for k, v in node.items()}
    if node.pop("nullable", False):
        return {"anyOf": [node, {"type": "null"}]}
    return node


@cache
def spec() -> dict:
    return _openapi_to_json_schema(json.loads(SUBSET.read_text()))


@cache
def _path_patterns() -> list[tuple[str, re.Pattern]]:
    return [(t, re.compile("^" + re.sub(r"\{[^}]+\}", r"[^/]+", t) + "$")) for t in spec()["paths"]]


def _operation(method: str, path: str) -> tuple[str, dict]:
    for template, pattern in _path_patterns():
        if pattern.match(path):
            operation = spec()["paths"][template].get(method.lower())
            if operation is None:
                raise AssertionError(f"{method} {template} is not an operation of DigitalOcean's API")
            return template, operation
    raise AssertionError(f"{method} {path} matches no path of DigitalOcean's API (subset)")


def operation_template(method: str, path: str) -> str:
    """The spec's path template for a request, e.g. /v2/droplets/{droplet_id}; AssertionError if none."""
    return _operation(method, path)[0]


def _resolve(node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node and len(node) == 1:
        _, _, kind, name = node["$ref"].split("/", 3)
        node = spec()["components"][kind][name]
    return node


@cache
def _validator(method: str, template: str, status: str | None = None) -> jsonschema.Draft7Validator | None:
    """One compiled validator per request body (status None) or answer body: the fake checks every call."""
    operation = spec()["paths"][template][method.lower()]
    if status is None:
        content = (_resolve(operation.get("requestBody")) or {}).get("content") or {}
    else:
        responses = operation["responses"]
        content = (_resolve(responses.get(status) or responses.get("default")) or {}).get("content") or {}
    schema = (content.get("application/json") or {}).get("schema")
    if schema is None:
        return None
    return jsonschema.Draft7Validator({**schema, "components": spec()["components"]})


def field_name(path: Iterable[str | int]) -> str:
    """JSON path parts as DigitalOcean-ish field names: inbound_rules[0].sources.addresses[1]."""
    name = ""
    for part in path:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name


def _closest(error: jsonschema.ValidationError) -> jsonschema.ValidationError:
    """Inside oneOf/anyOf, the alternative that failed least is what the client meant: report its error."""
    while error.context:
        by_alternative: dict[Any, list] = defaultdict(list)
        for sub in error.context:
            by_alternative[sub.schema_path[0]].append(sub)
        closest = min(by_alternative.values(), key=len)
        error = max(closest, key=lambda e: len(e.absolute_path))  # the deepest names the field best
    return error


def _problem(validator: jsonschema.Draft7Validator, instance: Any) -> str | None:
    errors = sorted(validator.iter_errors(instance), key=jsonschema.exceptions.relevance, reverse=True)
    if not errors:
        return None
    error = _closest(errors[0])
    where = field_name(error.absolute_path)
    return f"{where}: {error.message}" if where else error.message


def request_problem(method: str, path: str, body: Any) -> str | None:
    """What is wrong with a request body by DigitalOcean's schema, naming the field; None if it is valid.

    AssertionError if the operation is not in the subset: that is a bug in the caller, not in the body.
    """
    template, _ = _operation(method, path)
    validator = _validator(method.upper(), template)
    if validator is None:
        return None if body in (None, {}) else f"{method} {template} takes no body"
    return _problem(validator, body)


def check_request(method: str, path: str, body: Any) -> None:
    problem = request_problem(method, path, body)
    if problem:
        raise AssertionError(f"request {method} {operation_template(method, path)}: {problem}")


def check_answer(method: str, path: str, status: int, body: Any) -> None:
    template, operation = _operation(method, path)
    responses = operation["responses"]
    response = _resolve(responses.get(str(status)) or responses.get("default"))
    assert response is not None, f"{method} {template} documents no {status} answer"
    validator = _validator(method.upper(), template, str(status))
    if validator is None:
        assert body is None, f"{method} {template} {status} has no body in the spec"
        return
    problem = _problem(validator, body)
    if problem:
        raise AssertionError(f"answer {status} to {method} {template}: {problem}")

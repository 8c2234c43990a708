"""Validate requests and answers against DigitalOcean's OpenAPI description (the subset here)."""

import copy
import json
import re
from functools import cache
from pathlib import Path

import jsonschema

SUBSET = Path(__file__).with_name("digitalocean-subset.json")


def _openapi_to_json_schema(node):
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
def spec():
    return _openapi_to_json_schema(json.loads(SUBSET.read_text()))


def _operation(method, path):
    for template, operations in spec()["paths"].items():
        pattern = "^" + re.sub(r"\{[^}]+\}", r"[^/]+", template) + "$"
        if re.match(pattern, path):
            operation = operations.get(method.lower())
            if operation is None:
                raise AssertionError(f"{method} {template} is not an operation of DigitalOcean's API")
            return template, operation
    raise AssertionError(f"{method} {path} matches no path of DigitalOcean's API (subset)")


def _resolve(node):
    while isinstance(node, dict) and "$ref" in node and len(node) == 1:
        _, _, kind, name = node["$ref"].split("/", 3)
        node = spec()["components"][kind][name]
    return node


def _validate(schema, instance, where):
    root = {**copy.deepcopy(schema), "components": spec()["components"]}
    try:
        jsonschema.Draft7Validator(root).validate(instance)
    except jsonschema.ValidationError as e:
        location = "/".join(str(p) for p in e.absolute_path)
        raise AssertionError(f"{where}: {e.message} at {location or '(root)'}") from None


def check_request(method, path, body):
    template, operation = _operation(method, path)
    request_body = _resolve(operation.get("requestBody"))
    if request_body is None:
        assert body in (None, {}), f"{method} {template} takes no body"
        return
    schema = request_body["content"]["application/json"]["schema"]
    _validate(schema, body, f"request {method} {template}")


def check_answer(method, path, status, body):
    template, operation = _operation(method, path)
    responses = operation["responses"]
    response = _resolve(responses.get(str(status)) or responses.get("default"))
    assert response is not None, f"{method} {template} documents no {status} answer"
    content = (response.get("content") or {}).get("application/json")
    if content is None:
        assert body is None, f"{method} {template} {status} has no body in the spec"
        return
    _validate(content["schema"], body, f"answer {status} to {method} {template}")

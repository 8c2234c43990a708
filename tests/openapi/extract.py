"""Cut the part of DigitalOcean's OpenAPI description that Devpilot uses.

    python tests/openapi/extract.py ../shared/digitalocean-openapi/DigitalOcean-public.v2.json

writes tests/openapi/digitalocean-subset.json: the operations below and every component
they reference, unchanged, except one documented addition: app_spec gets the app-level
`envs` property, which the real API and the official Go client use but the published
schema omits (see the spec's own PUT /v2/apps/{id} example).
"""

import json
import sys
from pathlib import Path

OPERATIONS = {
    "/v2/account": ["get"],
    "/v2/regions": ["get"],
    "/v2/sizes": ["get"],
    "/v2/images": ["get"],
    "/v2/droplets": ["get", "post", "delete"],
    "/v2/droplets/{droplet_id}": ["get", "delete"],
    "/v2/droplets/{droplet_id}/actions": ["get", "post"],
    "/v2/droplets/{droplet_id}/snapshots": ["get"],
    "/v2/snapshots": ["get"],
    "/v2/snapshots/{snapshot_id}": ["get", "delete"],
    "/v2/actions/{action_id}": ["get"],
    "/v2/account/keys": ["get", "post"],
    "/v2/account/keys/{ssh_key_identifier}": ["get"],
    "/v2/firewalls": ["get", "post"],
    "/v2/firewalls/{firewall_id}": ["get", "put", "delete"],
    "/v2/firewalls/{firewall_id}/droplets": ["post"],
    "/v2/tags": ["post"],
    "/v2/apps": ["get"],
    "/v2/apps/{id}": ["get", "put"],
    "/v2/apps/{app_id}/deployments/{deployment_id}": ["get"],
}
OUT = Path(__file__).with_name("digitalocean-subset.json")


def refs(node):
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def main(source):
    spec = json.loads(Path(source).read_text())
    paths = {}
    for path, methods in OPERATIONS.items():
        paths[path] = {m: spec["paths"][path][m] for m in methods}
        if "parameters" in spec["paths"][path]:
            paths[path]["parameters"] = spec["paths"][path]["parameters"]
    components, pending, seen = {}, list(refs(paths)), set()
    while pending:
        ref = pending.pop()
        if ref in seen or not ref.startswith("#/components/"):
            continue
        seen.add(ref)
        _, _, kind, name = ref.split("/", 3)
        node = spec["components"][kind][name]
        components.setdefault(kind, {})[name] = node
        pending.extend(refs(node))
    components.pop("examples", None)  # examples are documentation; keep the file small
    for kind in components.values():
        for node in kind.values():
            _drop_examples(node)
    components["schemas"]["app_spec"]["properties"]["envs"] = {
        "type": "array", "items": {"$ref": "#/components/schemas/app_variable_definition"},
        "description": "Added by Devpilot: app-level variables (real, but missing from the published schema).",
    }
    pending = ["#/components/schemas/app_variable_definition"]
    while pending:
        ref = pending.pop()
        _, _, kind, name = ref.split("/", 3)
        if name not in components.setdefault(kind, {}):
            components[kind][name] = spec["components"][kind][name]
            pending.extend(refs(components[kind][name]))
    subset = {"openapi": spec["openapi"], "info": spec["info"], "paths": paths, "components": components}
    OUT.write_text(json.dumps(subset, indent=1, sort_keys=True) + "\n")
    print(f"{OUT}: {len(paths)} paths, {sum(len(v) for v in components.values())} components")


def _drop_examples(node, in_properties=False):
    """Examples are documentation; a property that happens to be named "example" stays."""
    if isinstance(node, dict):
        if not in_properties:
            node.pop("example", None)
            node.pop("examples", None)
        for key, value in node.items():
            _drop_examples(value, in_properties=key == "properties")
    elif isinstance(node, list):
        for value in node:
            _drop_examples(value)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/digitalocean-openapi/DigitalOcean-public.v2.json")

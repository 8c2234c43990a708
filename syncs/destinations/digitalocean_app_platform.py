"""DigitalOcean App Platform: app-level or component-level environment variables.

The app spec is read once and written back whole, as the raw dict it was read: keys
Devpilot does not know (alerts, ingress, databases, other components...) and the other
variables' EV[...] values go back untouched. Only managed variables change.
"""

import copy
import re

from connections import digitalocean

from syncs import keyschema
from syncs.destinations import (
    CREATE, DELETE, DRIFT, KEEP, UNCHANGED, UPDATE, Applied, Change, DestinationError, Plan, value_hash,
)

name = "digital-ocean-app-platform"
label = "DigitalOcean App Platform"
KEY_RE = re.compile(r"^[_A-Za-z][_A-Za-z0-9]*$")
COMPONENT_KINDS = ("services", "workers", "jobs", "static_sites", "functions")
DEFAULT_TYPE, DEFAULT_SCOPE = "GENERAL", "RUN_AND_BUILD_TIME"


def components(spec):
    return [(kind, c.get("name")) for kind in COMPONENT_KINDS for c in spec.get(kind) or []]


def target_envs(spec, component):
    """The list of variables the sync writes to, inside `spec` (created when missing)."""
    if not component:
        return spec.setdefault("envs", [])
    for kind in COMPONENT_KINDS:
        for item in spec.get(kind) or []:
            if item.get("name") == component:
                return item.setdefault("envs", [])
    names = ", ".join(n for _, n in components(spec)) or "none"
    raise DestinationError(f"The app has no component named {component!r} (its components: {names}).")


def invalid_keys(keys):
    return [
        (key, "App Platform variable names use letters, digits and _, and do not start with a digit")
        for key in keys if not KEY_RE.match(key)
    ]


def fingerprint(value):
    """What we remember of a stored value: DigitalOcean's EV[...] ciphertext, or a hash of plain text
    (plaintext secret values are never stored outside the encrypted secrets table)."""
    value = value or ""
    return value if value.startswith("EV[") else "sha256:" + value_hash(value)


def _is_unchanged(sync, existing, value, record):
    if existing.get("type", DEFAULT_TYPE) != sync.env_type or existing.get("scope", DEFAULT_SCOPE) != sync.env_scope:
        return False
    if sync.env_type == "GENERAL":
        return existing.get("value") == value
    return (
        record is not None and record.value_hash == value_hash(value)
        and fingerprint(existing.get("value")) == record.remote_value
    )


def _drifted(existing, record):
    """DigitalOcean holds something else than what this sync last sent there."""
    return record is not None and fingerprint(existing.get("value")) != record.remote_value


def read(client, app_id):
    """The app as DigitalOcean holds it now: one GET, shared by every sync planned against it."""
    return client.get_app(app_id)


def plan(sync, client, desired, records):
    return plan_against(sync, read(client, sync.app_id), desired, records)


def plan_against(sync, app, desired, records):
    """What the sync would change in `app` (as read), changing nothing."""
    spec = app.get("spec") or {}
    current = {e.get("key"): e for e in target_envs(copy.deepcopy(spec), sync.component)}
    environment = sync.environment.slug
    result = Plan(invalid_keys=invalid_keys(desired), state=app)
    for key, value in desired.items():
        existing = current.get(key)
        record = records.get(key)
        if existing is not None:
            result.remote[key] = fingerprint(existing.get("value"))
            result.previous[key] = existing
        if existing is None:
            result.changes.append(Change(key, CREATE))
        elif _is_unchanged(sync, existing, value, record):
            result.changes.append(Change(key, UNCHANGED))
        elif _drifted(existing, record):
            result.changes.append(Change(key, UPDATE, DRIFT))
        else:
            result.changes.append(Change(key, UPDATE, "value, type or scope changed" if record else "first sync"))
    for key in current:
        # Managed: what the key schema matches, and what this sync wrote before (e.g. under an old schema).
        if key in desired or not key or not (keyschema.manages(sync.key_schema, key, environment) or key in records):
            continue
        if sync.disable_secret_deletion:
            result.changes.append(Change(key, KEEP, "not in Devpilot; kept (secret deletion is disabled)"))
        else:
            result.changes.append(Change(key, DELETE, "not in Devpilot"))
            result.previous[key] = current[key]
    return result


def removal_plan(sync, client, records):
    """Delete what this sync put there: recorded keys the schema still manages."""
    app = client.get_app(sync.app_id)
    current = {e.get("key"): e for e in target_envs(copy.deepcopy(app.get("spec") or {}), sync.component)}
    environment = sync.environment.slug
    changes = [
        Change(key, DELETE, "removed by Devpilot") for key in sorted(records)
        if key in current and keyschema.manages(sync.key_schema, key, environment)
    ]
    return Plan(changes=changes, state=app, previous={c.key: current[c.key] for c in changes})


def _variable(sync, key, value):
    return {"key": key, "value": value, "scope": sync.env_scope, "type": sync.env_type}


def write_into(spec, sync, plan, desired):
    """Change `spec` (a copy being prepared for the PUT) as the plan says; nothing else in it moves."""
    envs = target_envs(spec, sync.component)
    updates, deletes = set(plan.keys(UPDATE)), set(plan.keys(DELETE))
    rewritten = []
    for variable in envs:
        key = variable.get("key")
        if key in deletes:
            continue
        rewritten.append(_variable(sync, key, desired[key]) if key in updates else variable)
    rewritten += [_variable(sync, key, desired[key]) for key in plan.keys(CREATE)]
    envs[:] = rewritten


def put(client, app_id, spec):
    return client.update_app(app_id, spec)


def applied(sync, app, plan):
    """What DigitalOcean stored for this sync's writes, read from the app the PUT (or the read-back) returned."""
    stored = {e.get("key"): e.get("value") for e in target_envs(copy.deepcopy(app.get("spec") or {}), sync.component)}
    written = plan.keys(CREATE) + plan.keys(UPDATE)
    deployment_id, phase = deployment_of(app)
    return Applied(remote_values={key: fingerprint(stored.get(key)) for key in written},
                   deployment_started=plan.has_writes, deployment_id=deployment_id, deployment_phase=phase)


def deployment_of(app):
    """(id, phase) of the deployment a write of `app` started: the PUT's answer names it pending; an app read
    back after a lost answer may show it in progress already. ("", "") when DigitalOcean names none."""
    deployment = app.get("pending_deployment") or app.get("in_progress_deployment") or {}
    deployment_id = deployment.get("id") or ""
    return deployment_id, (deployment.get("phase") or "PENDING_BUILD") if deployment_id else ""


def apply(sync, client, plan, desired):
    """One PUT with the whole spec as read, only the planned variables changed."""
    if not plan.has_writes:
        return Applied(remote_values={}, deployment_started=False)
    spec = copy.deepcopy(plan.state.get("spec") or {})
    write_into(spec, sync, plan, desired)
    try:
        app = put(client, sync.app_id, spec)
    except digitalocean.Unavailable as error:
        if not error.request_sent:
            raise
        app = _read_back(sync, client, plan, desired, error)
    return applied(sync, app, plan)


def _read_back(sync, client, plan, desired, error):
    """The PUT's answer was lost: read the app and decide whether it took effect (then it is not sent again,
    which would start a second deployment, and what it stored is recorded as ours). Otherwise raise `error`."""
    try:
        app = client.get_app(sync.app_id)
    except digitalocean.DigitalOceanError:
        raise error from None
    took_effect(sync, app, plan, desired, error)
    return app


def took_effect(sync, app, plan, desired, error):
    """Raise `error` unless `app` holds what this sync's plan wrote."""
    current = {e.get("key"): e for e in target_envs(copy.deepcopy(app.get("spec") or {}), sync.component)}
    for key in plan.keys(CREATE) + plan.keys(UPDATE):
        stored = current.get(key)
        if stored is None or stored.get("type", DEFAULT_TYPE) != sync.env_type or \
                stored.get("scope", DEFAULT_SCOPE) != sync.env_scope:
            raise error
        value = stored.get("value") or ""
        if sync.env_type == "GENERAL" and value != desired[key]:
            raise error
        if sync.env_type == "SECRET" and (not value.startswith("EV[") or plan.remote.get(key) == value):
            raise error  # a secret we wrote comes back as a new EV[...]
    if any(key in current for key in plan.keys(DELETE)):
        raise error

"""Where syncs write. Each destination is one module with the same small interface:

    plan(sync, client, desired, records) -> Plan     reads the destination once, changes nothing
    apply(sync, client, plan, desired) -> Applied    writes the plan (at most one write), or nothing
    removal_plan(sync, client, records) -> Plan      the variables this sync manages, to delete

and, for several syncs into one app planned and written together (syncs/engine.py `run_batch`):

    read(client, app_id) -> app                      one read, shared by the batch
    plan_against(sync, app, desired, records) -> Plan
    write_into(spec, sync, plan, desired)            each member's changes into the one spec
    put(client, app_id, spec) -> app                 the one write
    took_effect(sync, app, plan, desired, error)     after a lost answer: raise `error` unless `app` holds it
    applied(sync, app, plan) -> Applied

`desired` maps destination keys to plaintext values; `records` maps keys to the
SyncedKey rows of what was last sent.
"""

import hashlib
from dataclasses import dataclass, field

CREATE, UPDATE, DELETE, UNCHANGED, KEEP = "create", "update", "delete", "unchanged", "keep"


class DestinationError(Exception):
    """The destination cannot be synced as configured; the message says why (no retry helps)."""


@dataclass
class Change:
    key: str
    action: str
    reason: str = ""


@dataclass
class Plan:
    changes: list = field(default_factory=list)
    invalid_keys: list = field(default_factory=list)  # (key, reason)
    state: object = None  # what the destination read, for apply()
    remote: dict = field(default_factory=dict)  # key -> fingerprint of what the destination holds now
    previous: dict = field(default_factory=dict)  # key -> the variable as read, for keys the plan may change

    def keys(self, action):
        return [c.key for c in self.changes if c.action == action]

    @property
    def drift(self):
        return [c.key for c in self.changes if c.reason == DRIFT]

    @property
    def has_writes(self):
        return any(c.action in (CREATE, UPDATE, DELETE) for c in self.changes)


@dataclass
class Applied:
    remote_values: dict  # key -> what the destination stores now (EV[...] for secrets)
    deployment_started: bool
    deployment_id: str = ""  # the deployment the write started, when the destination says
    deployment_phase: str = ""


DRIFT = "changed outside Devpilot"


def value_hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def get_destination(name):
    from syncs.destinations import devpilot_server, digitalocean_app_platform

    return {module.name: module for module in (digitalocean_app_platform, devpilot_server)}[name]

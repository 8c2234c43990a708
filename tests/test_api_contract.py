"""The API's input contract: a bad value is refused with a 400 naming it, before anything happens.

Two groups of tests:

1. A walk of every write operation. Each starts from a valid body (checked to succeed on its
   own), swaps one field for a bad value (a wrong type, null where a value is needed, an unknown
   enum value, a string that breaks the field's rule) and proves that the answer is a 400 whose
   details name that field as the API spells it (`secrets[0].secretValue`,
   `inboundRules[0].sources[0]`), that no row was written or changed (every row of the secret,
   connection, sync, server, audit and task tables is compared, not only counted), that no task
   was queued and that DigitalOcean was not called. Unknown fields, bodies that are not JSON and
   bodies that are JSON lists are refused the same way.
2. The cases of the issue that moved the API to strict schemas, each of which used to go wrong
   (a Droplet bought for a firewall source "banana", null stored as "None", "false" read as
   true, 500s on wrong types, DigitalOcean called inside a DELETE request...).

Last, inputs this file found getting past the contract (a 500 or a Droplet bought), now refused.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Callable
from urllib.parse import urlencode

import pytest
from django_q.models import OrmQ, Schedule

from connections import services as connections
from connections.models import Connection, Provider
from devpilot import secrets
from devpilot.models import AuditEvent, Environment, Folder, Secret, SecretVersion
from provisioning import sshkeys
from provisioning.models import Server, ServerStep
from syncs.models import Sync, SyncedKey, SyncRun
from tests.conftest import GOOD_DO_TOKEN, error_fields

SSH_KEY = sshkeys.generate("dev@laptop")[0]
SECRETS = "/api/v3/secrets/raw"
BATCH = "/api/v3/secrets/batch/raw"
CONNECTIONS = "/api/v1/app-connections/digital-ocean"
SYNCS = "/api/v1/secret-syncs/digital-ocean-app-platform"
SERVERS = "/api/v1/servers"

# Every table an API write could touch (ApiToken is left out: using a token stamps last_used_at).
WATCHED = (Environment, Folder, Secret, SecretVersion, AuditEvent, Connection, Sync, SyncedKey, SyncRun, Server,
           ServerStep, Schedule, OrmQ)


# --- The workspace every test writes into -----------------------------------------------------


@pytest.fixture
def world(workspace, fake_do):
    """A folder with two secrets, a connection, an app, a sync to it and a running server."""
    env = workspace.environments.get(slug="dev")
    folder = secrets.create_folder(env, "/", "app-secrets")
    secrets.create_secret(env, "/app-secrets", "DB_PASSWORD", "s3cr3t", "the database")
    secrets.create_secret(env, "/app-secrets", "API_KEY", "k3y")
    connection = connections.connect(workspace, Provider.DIGITALOCEAN, "main", GOOD_DO_TOKEN)
    app = fake_do.add_app("web-app", envs=[])
    sync = Sync.objects.create(workspace=workspace, name="to-web-app", connection=connection, environment=env,
                               folder=folder, app_id=app["id"], app_name="web-app", auto_sync_enabled=False)
    server = Server.objects.create(workspace=workspace, connection=connection, name="web", region="nyc3",
                                   size="s-1vcpu-1gb", image="ubuntu-24-04-x64", droplet_id=7, status="ready")
    return SimpleNamespace(workspace=workspace, env=env, connection=connection, app_id=app["id"], sync=sync,
                           server=server)


def snapshot() -> dict[str, list[dict]]:
    """Every row of every watched table, to compare before and after a request."""
    return {model.__name__: list(model.objects.order_by("pk").values()) for model in WATCHED}


def send(api, method: str, url: str, body: Any = None, *, raw: str | None = None):
    """Send `body` as JSON (or `raw` text as is) with any method, DELETE included."""
    data = raw if raw is not None else ("" if body is None else json.dumps(body))
    return api.client.generic(method, url, data, content_type="application/json")


# --- Field paths: "inboundRules[0].sources[0]" -----------------------------------------------


def _steps(path: str) -> list[str | int]:
    return [int(part[1:-1]) if part.startswith("[") else part for part in re.findall(r"\[\d+\]|[^.\[\]]+", path)]


def with_value(body: dict, path: str, value: Any) -> dict:
    """A copy of `body` with the field at `path` set to `value` (added when absent)."""
    body = copy.deepcopy(body)
    *parents, last = _steps(path)
    target = body
    for step in parents:
        target = target[step]
    target[last] = value
    return body


def objects_in(body: Any, path: str = "") -> list[str]:
    """The path of every JSON object in `body` ("" for the body itself)."""
    if isinstance(body, list):
        return [p for i, item in enumerate(body) for p in objects_in(item, f"{path}[{i}]")]
    if not isinstance(body, dict):
        return []
    return [path] + [p for key, value in body.items() for p in objects_in(value, f"{path}.{key}" if path else key)]


# --- The table: every write operation, a valid input, and bad values per field ---------------

NOT_STR = [123, None]  # a wrong type, and null
NOT_BOOL = ["false", 1, None]
NOT_UUID = [123, None, "not-a-uuid"]
LONG = "x" * 2001


@dataclass(frozen=True)
class Operation:
    name: str
    method: str
    url: Callable[[Any], str]
    valid: Callable[[Any], dict]  # a valid body, or the valid query of a query operation
    bad: dict[str, list] = field(default_factory=dict)
    in_query: bool = False


def scope(w) -> dict:
    return {"workspaceId": str(w.workspace.pk), "environment": "dev", "secretPath": "/app-secrets"}


SCOPE_BAD = {
    "workspaceId": NOT_UUID,  # null: workspaceId (or projectId) is required
    "projectId": [123, "not-a-uuid"],
    "environment": [*NOT_STR, "", "e" * 65],
    "secretPath": [5, None, "../account", "/a b"],
}
WRITE_BAD = {**SCOPE_BAD, "type": ["personal", None], "skipMultilineEncoding": NOT_BOOL,
             "tagIds": ["tag", ["tag"], None], "secretReminderNote": ["remind me"], "secretReminderRepeatDays": [7]}
SERVER_BODY_RULE = {"protocol": "tcp", "ports": "22", "sources": ["203.0.113.7", "10.0.0.0/8"]}
SYNC_BAD = {
    "name": [*NOT_STR, "", "has space", "../x", "s" * 65],
    "description": [123, LONG],  # null is allowed: no description
    "connectionId": NOT_UUID,
    "environment": [*NOT_STR, ""],
    "secretPath": [5, None, "../account"],
    "isAutoSyncEnabled": NOT_BOOL,
    "isEnabled": NOT_BOOL,
    "syncOptions": [None, "overwrite-destination", []],
    "syncOptions.initialSyncBehavior": ["import-prioritize-source", None],
    "syncOptions.keySchema": [123, "NO_PLACEHOLDER", "{{secretKey}}_{{secretKey}}", "{{secretKey}} x", "K" * 256],
    "syncOptions.autoSyncEnabled": NOT_BOOL,
    "syncOptions.disableSecretDeletion": NOT_BOOL,
    "destinationConfig": [None, "app"],
    "destinationConfig.appId": [*NOT_STR, "", "../account", "not-a-uuid"],
    "destinationConfig.appName": [*NOT_STR, "a" * 256],
    "destinationConfig.component": [123, "Web", "../x"],
    "destinationConfig.variableType": ["PLAIN", None],
    "destinationConfig.scope": ["ALWAYS", None],
}


def sync_body(w) -> dict:
    return {
        "name": "second-sync", "projectId": str(w.workspace.pk), "description": "to the app",
        "connectionId": str(w.connection.pk), "environment": "dev", "secretPath": "/app-secrets",
        "isAutoSyncEnabled": False, "isEnabled": False,
        "syncOptions": {"initialSyncBehavior": "overwrite-destination", "keySchema": "APP_{{secretKey}}",
                        "autoSyncEnabled": False, "disableSecretDeletion": False},
        "destinationConfig": {"appId": w.app_id, "appName": "web-app", "component": "web", "variableType": "SECRET",
                              "scope": "RUN_TIME"},
    }


def server_body(w) -> dict:
    return {"name": "web-2", "connectionId": str(w.connection.pk), "region": "nyc3", "size": "s-1vcpu-1gb",
            "image": "ubuntu-24-04-x64", "inboundRules": [dict(SERVER_BODY_RULE)], "sshPublicKeys": [SSH_KEY],
            "monitoring": True, "backups": False, "ipv6": False}


OPERATIONS = [
    Operation("create-secret", "POST", lambda w: f"{SECRETS}/NEW_KEY",
              lambda w: {**scope(w), "secretValue": "v", "secretComment": "c", "type": "shared",
                         "skipMultilineEncoding": False, "tagIds": []},
              {**WRITE_BAD, "secretValue": [*NOT_STR, ["v"], "v" * (64 * 1024 + 1)],
               "secretComment": [*NOT_STR, "c" * 10_001]}),
    Operation("update-secret", "PATCH", lambda w: f"{SECRETS}/DB_PASSWORD",
              lambda w: {**scope(w), "secretValue": "new", "secretComment": "rotated", "newSecretName": "DB_PASS",
                         "version": 1, "type": "shared", "skipMultilineEncoding": False},
              {**WRITE_BAD, "secretValue": [*NOT_STR, ["v"]], "secretComment": NOT_STR,
               "newSecretName": [*NOT_STR, "1BAD", "HAS SPACE", ""],
               "version": ["abc", "2", None, 0, 1.5, True]}),
    Operation("delete-secret", "DELETE", lambda w: f"{SECRETS}/DB_PASSWORD",
              lambda w: {**scope(w), "type": "shared"},
              {**SCOPE_BAD, "type": ["personal", None]}),
    Operation("create-secrets", "POST", lambda w: BATCH,
              lambda w: {**scope(w), "secrets": [{"secretKey": "NEW_ONE", "secretValue": "1", "secretComment": "",
                                                  "skipMultilineEncoding": False}]},
              {**SCOPE_BAD, "secrets": [None, "NEW_ONE", [], [{"secretKey": "A", "secretValue": "1"}] * 2],
               "secrets[0]": ["NEW_ONE", None],
               "secrets[0].secretKey": [*NOT_STR, "1BAD", "a-b"], "secrets[0].secretValue": [*NOT_STR, True],
               "secrets[0].secretComment": NOT_STR, "secrets[0].skipMultilineEncoding": NOT_BOOL}),
    Operation("update-secrets", "PATCH", lambda w: BATCH,
              lambda w: {**scope(w), "secrets": [{"secretKey": "DB_PASSWORD", "secretValue": "2",
                                                  "secretComment": "c2", "skipMultilineEncoding": False}]},
              {**SCOPE_BAD, "secrets": [None, [], [{"secretKey": "DB_PASSWORD"}] * 2],
               "secrets[0]": ["DB_PASSWORD", None],
               "secrets[0].secretKey": [*NOT_STR, "1BAD"], "secrets[0].secretValue": [*NOT_STR, 2.5],
               "secrets[0].secretComment": NOT_STR, "secrets[0].skipMultilineEncoding": NOT_BOOL}),
    Operation("delete-secrets", "DELETE", lambda w: BATCH,
              lambda w: {**scope(w), "secrets": [{"secretKey": "DB_PASSWORD", "type": "shared"}]},
              {**SCOPE_BAD, "secrets": [None, [], "DB_PASSWORD"], "secrets[0]": ["DB_PASSWORD"],
               "secrets[0].secretKey": [*NOT_STR, "1BAD"], "secrets[0].type": ["personal", None]}),
    Operation("create-connection", "POST", lambda w: CONNECTIONS,
              lambda w: {"name": "second", "projectId": str(w.workspace.pk), "method": "api-token",
                         "credentials": {"apiToken": GOOD_DO_TOKEN}, "description": "prod"},
              {"name": [*NOT_STR, "", "   ", "n" * 65], "projectId": NOT_UUID, "method": ["oauth", None, 1],
               "credentials": [None, GOOD_DO_TOKEN, []], "credentials.apiToken": [*NOT_STR, "", "has space"],
               "description": [*NOT_STR, LONG]}),
    Operation("update-connection", "PATCH", lambda w: f"{CONNECTIONS}/{w.connection.pk}",
              lambda w: {"name": "renamed", "description": "prod", "method": "api-token",
                         "credentials": {"apiToken": GOOD_DO_TOKEN}, "confirmAccountChange": False},
              {"name": [*NOT_STR, "", "n" * 65], "description": [*NOT_STR, LONG], "method": ["oauth", None],
               "credentials": [None, GOOD_DO_TOKEN], "credentials.apiToken": [*NOT_STR, "", "has space"],
               "confirmAccountChange": ["true", 1, None]}),
    Operation("create-sync", "POST", lambda w: SYNCS, sync_body, {**SYNC_BAD, "projectId": NOT_UUID}),
    Operation("update-sync", "PATCH", lambda w: f"{SYNCS}/{w.sync.pk}",
              lambda w: {k: v for k, v in sync_body(w).items() if k != "projectId"}, SYNC_BAD),
    Operation("delete-sync", "DELETE", lambda w: f"{SYNCS}/{w.sync.pk}", lambda w: {"removeSecrets": "false"},
              {"removeSecrets": ["banana", "1", "yes", ""]}, in_query=True),
    Operation("create-server", "POST", lambda w: SERVERS, server_body, {
        "name": [*NOT_STR, "web_1", "-web", "w" * 64],
        "connectionId": NOT_UUID,
        "region": [*NOT_STR, "", "NYC3"],
        "size": [*NOT_STR, "s 1"],
        "image": [5, None, "../x"],
        "inboundRules": [None, "22", [], {"ports": "22"}],
        "inboundRules[0]": ["22", None],
        "inboundRules[0].protocol": ["icmp", None, 6],
        "inboundRules[0].ports": [22, None, "99999", "22-", "80-22", "all"],
        "inboundRules[0].sources": [7, None, [], "0.0.0.0/0"],
        "inboundRules[0].sources[0]": ["banana", 7, None, "10.0.0.0/33", "300.1.1.1"],
        "sshPublicKeys": [None, SSH_KEY],
        "sshPublicKeys[0]": ["not-a-key", 123, None, "ssh-ed25519 not-base64 me@host"],
        "monitoring": NOT_BOOL,
        "backups": NOT_BOOL,
        "ipv6": ["true", 0, None],
    }),
    Operation("server-action", "POST", lambda w: f"{SERVERS}/{w.server.pk}/actions",
              lambda w: {"type": "resize", "size": "s-2vcpu-2gb"},
              {"type": ["explode", None, 1], "size": [*NOT_STR, "S-2VCPU"]}),
    Operation("delete-server", "DELETE", lambda w: f"{SERVERS}/{w.server.pk}", lambda w: {"keepDroplet": "true"},
              {"keepDroplet": ["banana", "1", "no", ""]}, in_query=True),
]
BODY_OPERATIONS = [op for op in OPERATIONS if not op.in_query]
# Ids only shape the bodies; a stand-in world lets the table be read when tests are collected.
_STAND_IN = SimpleNamespace(workspace=SimpleNamespace(pk=uuid.uuid4()), connection=SimpleNamespace(pk=uuid.uuid4()),
                            sync=SimpleNamespace(pk=uuid.uuid4()), server=SimpleNamespace(pk=uuid.uuid4()),
                            app_id=str(uuid.uuid4()))


def shown(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 24 else f"{text[:12]}...({len(text)} chars)"


def request(api, op: Operation, w, path: str | None = None, value: Any = None):
    """Send `op`'s valid input, with the field at `path` (if any) set to `value`."""
    data = op.valid(w) if path is None else with_value(op.valid(w), path, value)
    if op.in_query:
        return api.client.delete(f"{op.url(w)}?{urlencode(data)}")
    return send(api, op.method, op.url(w), data)


def assert_refused_before_anything_happened(make_request, fake_do, capture, *, naming: str | None):
    before, calls = snapshot(), len(fake_do.requests)
    with capture() as queued:
        response = make_request()
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert (body["statusCode"], body["error"]) == (400, "Bad Request")
    if naming is not None:
        assert naming in error_fields(response), body
    assert snapshot() == before, "a refused request wrote to the database"
    assert queued == [], "a refused request queued a task"
    assert len(fake_do.requests) == calls, f"a refused request called DigitalOcean: {fake_do.requests[calls:]}"
    return response


# --- 1. The walk -----------------------------------------------------------------------------


@pytest.mark.parametrize("op", OPERATIONS, ids=lambda op: op.name)
def test_the_valid_input_of_each_operation_succeeds(op, api, world, django_capture_on_commit_callbacks):
    """The walk below is only meaningful if the input it starts from is accepted and visibly writes."""
    before = snapshot()
    with django_capture_on_commit_callbacks():
        response = request(api, op, world)
    assert response.status_code in (200, 201, 202), response.json()
    assert snapshot() != before, "the snapshot does not see this operation's writes"


@pytest.mark.parametrize(("op", "path", "value"), [
    pytest.param(op, path, value, id=f"{op.name}:{path}={shown(value)}")
    for op in OPERATIONS for path, values in op.bad.items() for value in values
])
def test_a_bad_value_is_refused_naming_its_field_before_anything_happens(
        op, path, value, api, world, fake_do, django_capture_on_commit_callbacks):
    assert_refused_before_anything_happened(lambda: request(api, op, world, path, value), fake_do,
                                            django_capture_on_commit_callbacks, naming=path)


@pytest.mark.parametrize(("op", "path"), [
    pytest.param(op, f"{where}.bogus" if where else "bogus", id=f"{op.name}:{where or 'body'}")
    for op in BODY_OPERATIONS for where in objects_in(op.valid(_STAND_IN))
])
def test_an_unknown_field_is_refused_naming_it(op, path, api, world, fake_do, django_capture_on_commit_callbacks):
    response = assert_refused_before_anything_happened(lambda: request(api, op, world, path, "x"), fake_do,
                                                       django_capture_on_commit_callbacks, naming=path)
    assert response.json()["details"] == [{"field": path, "message": "Unknown field; it is not part of this operation."}]


@pytest.mark.parametrize("op", BODY_OPERATIONS, ids=lambda op: op.name)
@pytest.mark.parametrize(("raw", "naming"), [
    pytest.param("{not json", None, id="not-json"),
    pytest.param("", "body", id="empty"),
    pytest.param("[]", "body", id="json-list"),
    pytest.param('[{"secretKey": "A"}]', "body", id="json-list-of-objects"),
    pytest.param('"text"', "body", id="json-string"),
    pytest.param("null", "body", id="json-null"),
])
def test_a_body_that_is_not_a_json_object_is_refused(op, raw, naming, api, world, fake_do,
                                                     django_capture_on_commit_callbacks):
    response = assert_refused_before_anything_happened(lambda: send(api, op.method, op.url(world), raw=raw), fake_do,
                                                       django_capture_on_commit_callbacks, naming=naming)
    assert response.json()["message"]


# --- 2. The cases of the issue ---------------------------------------------------------------


def test_a_firewall_source_that_is_not_an_address_buys_no_droplet(api, world, fake_do,
                                                                  django_capture_on_commit_callbacks):
    body = {**server_body(world), "inboundRules": [{"protocol": "tcp", "ports": "22", "sources": ["banana"]}]}
    calls = len(fake_do.requests)
    with django_capture_on_commit_callbacks(execute=True) as queued:
        response = api.post(SERVERS, body)
    assert response.status_code == 400, response.json()
    assert "inboundRules[0].sources[0]" in error_fields(response)
    assert "banana" in response.json()["message"]
    assert Server.objects.filter(name="web-2").count() == 0 and queued == []
    assert len(fake_do.requests) == calls and fake_do.count("POST", "/v2/droplets") == 0


def test_a_public_key_that_is_not_a_key_creates_nothing(api, world, fake_do, django_capture_on_commit_callbacks):
    calls, servers = len(fake_do.requests), Server.objects.count()
    with django_capture_on_commit_callbacks(execute=True) as queued:
        response = api.post(SERVERS, {**server_body(world), "sshPublicKeys": ["not-a-key"]})
    assert response.status_code == 400 and error_fields(response) == {"sshPublicKeys[0]"}
    assert Server.objects.count() == servers and queued == [] and len(fake_do.requests) == calls


def _db_password():
    return Secret.objects.get(key="DB_PASSWORD")


def test_a_batch_update_without_secret_value_keeps_the_stored_value(api, world):
    versions = SecretVersion.objects.count()
    response = api.patch(BATCH, {**scope(world), "secrets": [{"secretKey": "DB_PASSWORD"}]})
    assert response.status_code == 200, response.json()
    assert response.json()["secrets"][0]["secretValue"] == "s3cr3t"
    assert _db_password().value == "s3cr3t" and SecretVersion.objects.count() == versions
    assert not [v for v in SecretVersion.objects.all() if v.value == ""]


def test_a_batch_update_of_only_the_comment_keeps_the_value(api, world):
    response = api.patch(BATCH, {**scope(world), "secrets": [{"secretKey": "DB_PASSWORD",
                                                              "secretComment": "rotated monthly"}]})
    assert response.status_code == 200, response.json()
    secret = _db_password()
    assert (secret.value, secret.comment, secret.version) == ("s3cr3t", "rotated monthly", 2)
    assert response.json()["secrets"][0]["secretComment"] == "rotated monthly"
    assert {v.value for v in secret.versions.all()} == {"s3cr3t"}


def test_a_batch_update_with_a_null_secret_value_is_refused(api, world):
    versions = SecretVersion.objects.count()
    response = api.patch(BATCH, {**scope(world), "secrets": [{"secretKey": "DB_PASSWORD", "secretValue": None}]})
    assert response.status_code == 400
    assert "secrets[0].secretValue" in error_fields(response)
    assert _db_password().value == "s3cr3t" and _db_password().version == 1
    assert SecretVersion.objects.count() == versions


@pytest.mark.parametrize("op_name, path", [
    ("create-sync", "isAutoSyncEnabled"),
    ("update-sync", "isAutoSyncEnabled"),
    ("create-sync", "syncOptions.disableSecretDeletion"),
    ("update-sync", "syncOptions.disableSecretDeletion"),
    ("create-server", "monitoring"),
    ("create-server", "backups"),
])
def test_the_string_false_is_not_a_boolean(op_name, path, api, world, fake_do, django_capture_on_commit_callbacks):
    op = next(op for op in OPERATIONS if op.name == op_name)
    assert_refused_before_anything_happened(lambda: request(api, op, world, path, "false"), fake_do,
                                            django_capture_on_commit_callbacks, naming=path)


@pytest.mark.parametrize("op_name, path, value", [
    ("update-secret", "version", "abc"),
    ("create-secret", "secretPath", 5),
    ("update-secret", "secretPath", 5),
    ("create-secrets", "secretPath", 5),
    ("create-sync", "secretPath", 5),
    ("create-connection", "name", 123),
    ("update-connection", "name", 123),
    ("create-server", "inboundRules[0].sources", 7),
])
def test_a_wrong_type_is_a_400_not_a_500(op_name, path, value, api, world, fake_do,
                                         django_capture_on_commit_callbacks):
    op = next(op for op in OPERATIONS if op.name == op_name)
    assert_refused_before_anything_happened(lambda: request(api, op, world, path, value), fake_do,
                                            django_capture_on_commit_callbacks, naming=path)


def test_deleting_a_sync_with_remove_secrets_calls_digitalocean_only_from_the_queued_task(
        api, world, fake_do, django_capture_on_commit_callbacks):
    Sync.objects.filter(app_id=world.app_id).delete()  # this sync manages every app-level variable of the app
    with django_capture_on_commit_callbacks(execute=True):
        created = api.post(SYNCS, {**sync_body(world), "isAutoSyncEnabled": True, "isEnabled": True,
                                   "syncOptions": {"autoSyncEnabled": True}, "destinationConfig": {"appId": world.app_id}})
    assert created.status_code == 200, created.json()
    assert set(fake_do.app_envs(world.app_id)) == {"DB_PASSWORD", "API_KEY"}
    sync_id = created.json()["secretSync"]["id"]

    calls = len(fake_do.requests)
    with django_capture_on_commit_callbacks() as queued:  # captured, not run
        response = api.delete(f"{SYNCS}/{sync_id}?removeSecrets=true")
    assert response.status_code == 200, response.json()
    assert response.json()["secretSync"]["deleteAfterRemoval"] is True
    assert len(fake_do.requests) == calls, f"DigitalOcean was called inside the request: {fake_do.requests[calls:]}"
    assert Sync.objects.filter(pk=sync_id).exists() and len(queued) == 1

    for callback in queued:  # the queued task (tasks run inline in tests)
        callback()
    assert fake_do.app_envs(world.app_id) == {}
    assert not Sync.objects.filter(pk=sync_id).exists()


def test_remove_secrets_must_be_true_or_false(api, world, fake_do, django_capture_on_commit_callbacks):
    response = assert_refused_before_anything_happened(
        lambda: api.delete(f"{SYNCS}/{world.sync.pk}?removeSecrets=banana"), fake_do,
        django_capture_on_commit_callbacks, naming="removeSecrets")
    assert Sync.objects.filter(pk=world.sync.pk).exists() and response.json()["details"][0]["field"] == "removeSecrets"


def test_an_unsupported_method_answers_json_405(api, world):
    response = send(api, "PUT", SERVERS, server_body(world))
    assert response.status_code == 405
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["statusCode"] == 405 and response.json()["error"] == "Method Not Allowed"
    assert "POST" in response["Allow"]
    assert not Server.objects.filter(name="web-2").exists()


@pytest.mark.parametrize("path", ["/api/v1/nothing-here", "/api/v3/secrets/raw/A/B/C", f"{SERVERS}/not-a-uuid"])
def test_an_unknown_api_path_answers_json_404(api, path):
    response = api.get(path)
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["statusCode"] == 404 and response.json()["error"] == "Not Found"


# --- Inputs that got past the contract until they were found by this file -------------------


def test_a_public_key_of_an_unknown_type_is_a_400_not_a_500(api, world, fake_do, django_capture_on_commit_callbacks):
    api.client.raise_request_exception = False
    assert_refused_before_anything_happened(
        lambda: api.post(SERVERS, {**server_body(world), "sshPublicKeys": ["banana banana"]}), fake_do,
        django_capture_on_commit_callbacks, naming="sshPublicKeys[0]")


def test_a_scoped_ipv6_firewall_source_is_refused(api, world, fake_do, django_capture_on_commit_callbacks):
    rules = [{"protocol": "tcp", "ports": "22", "sources": ["fe80::1%eth0"]}]
    assert_refused_before_anything_happened(
        lambda: api.post(SERVERS, {**server_body(world), "inboundRules": rules}), fake_do,
        django_capture_on_commit_callbacks, naming="inboundRules[0].sources[0]")


def test_an_unknown_query_parameter_is_refused(api, world, fake_do, django_capture_on_commit_callbacks):
    assert_refused_before_anything_happened(
        lambda: api.delete(f"{SERVERS}/{world.server.pk}?keep_droplet=true"), fake_do,
        django_capture_on_commit_callbacks, naming="keep_droplet")
    assert_refused_before_anything_happened(
        lambda: api.delete(f"{SERVERS}/{world.server.pk}?keepDroplet=banana&keepDroplet=true"), fake_do,
        django_capture_on_commit_callbacks, naming="keepDroplet")


def test_a_nul_character_in_text_is_a_400(api, world, fake_do, django_capture_on_commit_callbacks):
    api.client.raise_request_exception = False
    op = next(op for op in OPERATIONS if op.name == "create-secret")
    assert_refused_before_anything_happened(
        lambda: request(api, op, world, "secretComment", "a\x00b"), fake_do,
        django_capture_on_commit_callbacks, naming="secretComment")

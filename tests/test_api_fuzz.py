"""Schemathesis against the live app's own OpenAPI document (/api/openapi.json).

Every operation is called with generated valid and invalid input, authenticated with the
token `manage.py bootstrap` prints, DigitalOcean faked at the HTTP boundary. The run must
find no 5xx and no answer outside the document (status, content type, body schema).
Generation is derandomized with a fixed seed, so a failure reproduces exactly.
"""

import io
import json
import uuid

import pytest
import schemathesis
from django.core.management import call_command
from hypothesis import HealthCheck, Phase, given, seed, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)

from devpilot import secrets
from devpilot.models import Workspace
from tests.conftest import GOOD_DO_TOKEN

SEED = 20261124
EXAMPLES = 25
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def installed(live_server, fake_do):
    """A bootstrapped install with a connection and secrets, as a new user would have."""
    from connections import services as connections

    out = io.StringIO()
    call_command("bootstrap", "--email", "fuzz@example.com", "--password", "fuzz-password-1234",
                 "--workspace", "Fuzz", stdout=out)
    printed = json.loads(out.getvalue())
    workspace = Workspace.objects.get(pk=printed["workspace"]["id"])
    connection = connections.connect(workspace, "digital-ocean", "do", GOOD_DO_TOKEN)
    dev = workspace.environments.get(slug="dev")
    secrets.create_folder(dev, "/", "app")
    secrets.create_secret(dev, "/app", "DB_PASSWORD", "s3cr3t")
    return {"token": printed["token"], "workspace": str(workspace.pk), "connection": str(connection.pk)}


def _is_uuid(value):
    try:
        uuid.UUID(str(value))
        return isinstance(value, str)
    except ValueError:
        return False


def _point_at_the_install(case, installed):
    """Most generated ids name nothing; aim well-formed workspace (and sync connection) ids at real ones."""
    for container in (case.query, case.body):
        if not isinstance(container, dict):
            continue
        for field in ("workspaceId", "projectId"):
            if _is_uuid(container.get(field)):
                container[field] = installed["workspace"]
        if "secret-syncs" in case.path and _is_uuid(container.get("connectionId")):
            container["connectionId"] = installed["connection"]


def fuzz(operation, mode, installed, report):
    """Run one operation's generated cases; return the first failure's text, if any."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @seed(SEED)
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
    def run(case):
        _point_at_the_install(case, installed)
        report["cases"] += 1
        case.call_and_validate(headers={"Authorization": f"Bearer {installed['token']}"}, checks=CHECKS)

    try:
        run()
    except Exception as failure:  # noqa: BLE001 - every kind of check failure is reported together below
        return f"{mode} {operation.label}: {failure}"
    return None


def test_no_server_error_and_every_answer_is_documented(live_server, installed):
    schema = schemathesis.openapi.from_url(live_server.url + "/api/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    report = {"cases": 0}
    failures = [failure for operation in operations for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
                if (failure := fuzz(operation, mode, installed, report))]
    print(f"schemathesis: {len(operations)} operations, {report['cases']} cases, {len(failures)} failing")
    assert not failures, "\n\n".join(failures)

"""Infisical's own clients against a live Devpilot: the Python SDK (infisicalsdk, pinned in requirements.txt)
in-process and the Node SDK (@infisical/sdk, pinned in tests/sdk/package.json) as a `node` subprocess.

Both log in with universal auth as a machine identity and run a scripted session: folder create and list,
secret create / list / list recursive / get by version / update / rename / delete, environment list (and
create, with the Node SDK). Each operation's result is asserted, not only the absence of an exception.

The Node SDK is installed by `npm install --prefix tests/sdk` the first time (tests/sdk/node_modules is
ignored by git). Without npm the Node session is skipped with the reason, except in CI (CI=true), where
that is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from devpilot import identities
from devpilot.models import AuditEvent, Role

SDK_DIR = Path(__file__).parent / "sdk"
pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def identity_login(workspace, owner):
    """An admin machine identity of the workspace (created by its owner) and a client secret."""
    identity = identities.create_identity(workspace, "ci-deployer", Role.ADMIN, created_by=owner, ttl=3600,
                                          max_ttl=86400)
    _, client_secret = identities.add_client_secret(identity, description="sdk tests")
    return {"identity": identity, "client_id": str(identity.client_id), "client_secret": client_secret,
            "project_id": str(workspace.pk)}


@pytest.fixture(scope="session")
def node_sdk():
    """`node` with @infisical/sdk installed in tests/sdk/node_modules (npm install the first time)."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        reason = "npm and node are needed for Infisical's Node SDK test (apt-get install -y nodejs npm)."
        if os.environ.get("CI"):
            pytest.fail(reason + " CI must install them.")
        pytest.skip(reason)
    if not (SDK_DIR / "node_modules" / "@infisical" / "sdk").exists():
        result = subprocess.run([npm, "install", "--prefix", str(SDK_DIR), "--no-audit", "--no-fund"],
                                capture_output=True, text=True, timeout=300)
        if result.returncode != 0:
            pytest.fail(f"npm install of @infisical/sdk failed:\n{result.stdout}\n{result.stderr}")
    return node


def test_python_sdk_session(live_server, identity_login, workspace):
    from infisical_sdk import InfisicalSDKClient
    from infisical_sdk.infisical_requests import APIError

    project = identity_login["project_id"]
    client = InfisicalSDKClient(host=live_server.url, cache_ttl=None)
    try:
        login = client.auth.universal_auth.login(identity_login["client_id"], identity_login["client_secret"])
        assert login.tokenType == "Bearer" and login.accessToken.startswith("dvpat_")
        assert 3590 <= login.expiresIn <= 3600 and login.accessTokenMaxTTL == 86400

        folder = client.folders.create_folder(name="py-app", environment_slug="dev", project_id=project, path="/")
        assert (folder.name, folder.path) == ("py-app", "/py-app") and folder.envId
        listed_folders = client.folders.list_folders(project_id=project, environment_slug="dev", path="/")
        assert [f.name for f in listed_folders.folders] == ["py-app"]
        assert client.folders.get_folder_by_id(folder.id).environment.envSlug == "dev"

        created = client.secrets.create_secret_by_name(
            secret_name="PY_ROOT", project_id=project, secret_path="/", environment_slug="dev",
            secret_value="root-1", secret_comment="made by python")
        assert (created.secretKey, created.secretValue, created.version, created.secretComment) == (
            "PY_ROOT", "root-1", 1, "made by python")
        assert created.id == created._id and created.workspace == project and created.environment == "dev"
        nested = client.secrets.create_secret_by_name(
            secret_name="PY_NESTED", project_id=project, secret_path="/py-app", environment_slug="dev",
            secret_value="nested-1")
        assert nested.secretPath == "/py-app"

        flat = client.secrets.list_secrets(project_id=project, environment_slug="dev", secret_path="/")
        assert [s.secretKey for s in flat.secrets] == ["PY_ROOT"]
        deep = client.secrets.list_secrets(project_id=project, environment_slug="dev", secret_path="/",
                                           recursive=True)
        assert {(s.secretKey, s.secretPath, s.secretValue) for s in deep.secrets} == {
            ("PY_ROOT", "/", "root-1"), ("PY_NESTED", "/py-app", "nested-1")}
        by_slug = client.secrets.list_secrets(project_slug=workspace.slug, environment_slug="dev", secret_path="/")
        assert [s.secretKey for s in by_slug.secrets] == ["PY_ROOT"]

        updated = client.secrets.update_secret_by_name(
            current_secret_name="PY_ROOT", project_id=project, secret_path="/", environment_slug="dev",
            secret_value="root-2")
        assert (updated.secretValue, updated.version) == ("root-2", 2)
        first = client.secrets.get_secret_by_name(secret_name="PY_ROOT", project_id=project, environment_slug="dev",
                                                  secret_path="/", version="1")
        assert (first.secretValue, first.version) == ("root-1", 1)
        current = client.secrets.get_secret_by_name(secret_name="PY_ROOT", project_id=project,
                                                    environment_slug="dev", secret_path="/")
        assert (current.secretValue, current.version) == ("root-2", 2)

        renamed = client.secrets.update_secret_by_name(
            current_secret_name="PY_ROOT", project_id=project, secret_path="/", environment_slug="dev",
            new_secret_name="PY_RENAMED", secret_comment="renamed")
        assert (renamed.secretKey, renamed.secretValue, renamed.secretComment) == ("PY_RENAMED", "root-2", "renamed")

        deleted = client.secrets.delete_secret_by_name(secret_name="PY_RENAMED", project_id=project,
                                                       environment_slug="dev", secret_path="/")
        assert deleted.secretKey == "PY_RENAMED"
        after = client.secrets.list_secrets(project_id=project, environment_slug="dev", secret_path="/")
        assert after.secrets == []
        with pytest.raises(APIError) as missing:
            client.secrets.get_secret_by_name(secret_name="PY_RENAMED", project_id=project, environment_slug="dev",
                                              secret_path="/")
        assert missing.value.status_code == 404

        # The Python SDK has no environment methods: its own HTTP client, with the session's token.
        environments = client.api.get(f"/api/v1/workspace/{project}/environments", model=dict).data
        assert [e["slug"] for e in environments["environments"]] == ["dev", "staging", "prod"]

        renamed_folder = client.folders.update_folder(folder_id=folder.id, name="py-service", environment_slug="dev",
                                                      project_id=project, path="/")
        assert (renamed_folder.name, renamed_folder.path) == ("py-service", "/py-service")
        gone = client.folders.delete_folder(folder_id_or_name="py-service", environment_slug="dev",
                                            project_id=project, path="/")
        assert gone.name == "py-service"
        assert client.folders.list_folders(project_id=project, environment_slug="dev", path="/").folders == []
    finally:
        client.close()
    # Everything the session did is in the audit log under the identity's name.
    labels = set(AuditEvent.objects.filter(workspace=workspace, action__startswith="secret").values_list(
        "actor_label", flat=True))
    assert labels == {"Machine identity ci-deployer"}


def test_node_sdk_session(live_server, identity_login, node_sdk, workspace):
    env = {**os.environ, "SITE_URL": live_server.url, "CLIENT_ID": identity_login["client_id"],
           "CLIENT_SECRET": identity_login["client_secret"], "PROJECT_ID": identity_login["project_id"]}
    result = subprocess.run([node_sdk, "node_session.mjs"], cwd=SDK_DIR, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, f"Node SDK session failed:\n{result.stdout}\n{result.stderr}"
    done = json.loads(result.stdout.strip().splitlines()[-1])
    assert done["login"] and done["renew"] and done["create"] and done["delete"] and done["errors"]
    assert done["folders"] == ["node-app"]
    assert (done["list"], done["listRecursive"]) == (1, 2)
    assert (done["update"], done["getByVersion"], done["rename"]) == (2, "root-1", "NODE_RENAMED")
    assert done["environments"] == ["dev", "staging", "prod", "qa"]
    assert set(workspace.secrets.values_list("key", flat=True)) == {"NODE_NESTED"}
    assert workspace.environments.filter(slug="qa").exists()

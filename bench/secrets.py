"""Secrets at scale: 10,000 secrets in 100 folders and 3 environments.

Measures the secrets page of a folder holding 1,000 secrets, and the API list of it:
median time and SQL queries, next to a folder of 10 to show the count does not grow.
"""

import time

from bench.common import count_queries, median_time, report, setup_django


def fill():
    from devpilot import secrets
    from devpilot.models import User
    from devpilot.workspaces import create_workspace

    user = User.objects.create_user("bench-secrets@example.com", "bench-password-1")
    workspace = create_workspace(user, "Bench secrets")
    envs = list(workspace.environments.all())
    start = time.perf_counter()
    folders = []
    for i in range(99):
        env = envs[i % 3]
        folders.append((env, secrets.create_folder(env, "/", f"folder-{i:02d}").path))
    big_env = envs[0]
    big = secrets.create_folder(big_env, "/", "big").path
    secrets.bulk_import(big_env, big, {f"BIG_{i:04d}": f"value-{i}" for i in range(1000)}, overwrite=True)
    per_folder = 9000 // 99
    for n, (env, path) in enumerate(folders):
        count = per_folder + (1 if n < 9000 - per_folder * 99 else 0)
        secrets.bulk_import(env, path, {f"KEY_{n:02d}_{i:03d}": f"v{i}" for i in range(count)}, overwrite=True)
    fill_seconds = time.perf_counter() - start
    return user, workspace, big_env, fill_seconds


def main():
    setup_django()
    from django.test import Client

    from devpilot.models import Secret
    from devpilot.tokens import create_api_token

    user, workspace, env, fill_seconds = fill()
    client = Client()
    client.force_login(user)
    _, token = create_api_token(workspace, "bench")
    api = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    rows = [("secrets in the workspace", Secret.objects.filter(workspace=workspace).count()),
            ("time to fill (bulk imports)", f"{fill_seconds:.1f} s")]
    for label, path in (("1,000", "/big"), ("10", "/folder-00")):
        page_url = f"/w/{workspace.slug}/secrets/{env.slug}/?path={path}"
        api_url = f"/api/v3/secrets/raw?workspaceId={workspace.pk}&environment={env.slug}&secretPath={path}"
        client.get(page_url)  # warm up (session, template cache, token last-used time)
        api.get(api_url)
        with count_queries() as page_queries:
            assert client.get(page_url).status_code == 200
        with count_queries() as api_queries:
            assert api.get(api_url).status_code == 200
        rows += [
            (f"secrets page, folder of {label}: median", f"{median_time(lambda: client.get(page_url)):.0f} ms"),
            (f"secrets page, folder of {label}: SQL queries", len(page_queries)),
            (f"API list, folder of {label}: median", f"{median_time(lambda: api.get(api_url)):.0f} ms"),
            (f"API list, folder of {label}: SQL queries", len(api_queries)),
        ]
    report("Secrets (10,000 secrets, 100 folders, 3 environments)", rows)

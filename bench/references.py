"""Resolving references: a folder of 1,000 secrets, 200 of whose values refer into 3 other folders.

Measures devpilot.references.resolve_folder (what syncs, the API, the .env download read) and the
secrets page of that folder: SQL queries and median time, next to the same folder with 20 references
to show the query count does not grow with the number of references.
"""

from bench.common import count_queries, median_time, report, setup_django

TARGETS = ("db", "cache", "mail")


def fill(references_count):
    from devpilot import secrets
    from devpilot.models import User
    from devpilot.workspaces import create_workspace

    user = User.objects.create_user(f"bench-references-{references_count}@example.com", "bench-password-1")
    workspace = create_workspace(user, f"Bench references {references_count}")
    dev = workspace.environments.get(slug="dev")
    prod = workspace.environments.get(slug="prod")
    for n, name in enumerate(TARGETS):
        env = dev if n < 2 else prod  # references into another environment too
        secrets.create_folder(env, "/", name)
        secrets.bulk_import(env, f"/{name}", {f"{name.upper()}_{i:03d}": f"{name}-value-{i}" for i in range(100)},
                            overwrite=True)
    secrets.create_folder(dev, "/", "app")
    values = {}
    for i in range(1000):
        if i < references_count:
            name = TARGETS[i % 3]
            env = "dev" if name != "mail" else "prod"
            values[f"KEY_{i:04d}"] = f"postgres://u:${{{env}.{name}.{name.upper()}_{i % 100:03d}}}@host/${{APP_ID}}"
        else:
            values[f"KEY_{i:04d}"] = f"plain-value-{i}"
    secrets.bulk_import(dev, "/app", values, overwrite=True)
    return user, workspace, dev


def measure(references_count):
    from django.test import Client

    from devpilot import references

    user, workspace, dev = fill(references_count)
    resolved = references.resolve_folder(dev, "/app")
    assert len(resolved.values) == 1000 and not resolved.unresolved
    assert resolved.values["KEY_0001"] == "postgres://u:cache-value-1@host/${APP_ID}"
    with count_queries() as resolve_queries:
        references.resolve_folder(dev, "/app")
    client = Client()
    client.force_login(user)
    page_url = f"/w/{workspace.slug}/secrets/dev/?path=/app"
    client.get(page_url)  # warm up (session, template cache)
    with count_queries() as page_queries:
        assert client.get(page_url).status_code == 200
    label = f"1,000 secrets, {references_count} references into 3 folders"
    return [
        (f"{label}: resolve, SQL queries", len(resolve_queries)),
        (f"{label}: resolve, median", f"{median_time(lambda: references.resolve_folder(dev, '/app')):.0f} ms"),
        (f"{label}: secrets page, SQL queries", len(page_queries)),
        (f"{label}: secrets page, median", f"{median_time(lambda: client.get(page_url)):.0f} ms"),
    ]


def main():
    setup_django()
    rows = measure(200) + measure(20)
    report("References (resolution of one folder: imports merged, references expanded)", rows)


if __name__ == "__main__":
    main()

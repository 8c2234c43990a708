"""Lists whose size and time do not grow with the data: the secrets page (keyset, by key), members,
audit log, servers and syncs."""

import re

import pytest
from django.db import connection, reset_queries
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from devpilot import secrets
from devpilot.models import AuditEvent, Membership, Role, Secret, User
from devpilot.secret_views import PAGE_SIZE

BIG = 10_000


@pytest.fixture
def member(workspace, make_member):
    return make_member(workspace, Role.MEMBER)


def fill(environment, path, count, prefix="KEY_"):
    """`count` secrets in one folder, written in bulk (the page never decrypts them)."""
    folder = secrets.get_folder(environment, path)
    Secret.objects.bulk_create(
        [Secret(workspace=environment.workspace, environment=environment, folder=folder, key=f"{prefix}{i:05d}",
                value=f"value-{i}") for i in range(count)],
        batch_size=1000,
    )


def counted(client, url, params=None):
    """(response, number of SQL queries it made). The test client empties the query log as each request starts,
    so the log is emptied first here too: the count is then this request's own."""
    reset_queries()
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, params)
    return response, len(queries)


def keys_on(html):
    return re.findall(r'<tr id="secret-[^"]+">\s*<td><code>([^<]+)</code>', html)


def link(html, rel):
    match = re.search(rf'<a href="([^"]+)" rel="{rel}">', html)
    return match and match.group(1).replace("&amp;", "&")


def test_a_folder_of_10000_secrets_is_one_small_page_for_the_same_queries(client_for, member, dev, workspace):
    client = client_for(member)
    url = f"/w/{workspace.slug}/secrets/dev/"
    fill(dev, "/", 3)
    client.get(url)  # the first visit also saves the session
    small, few = counted(client, url)
    small = small.content.decode()
    Secret.objects.all().delete()
    fill(dev, "/", BIG)
    response, many = counted(client, url)
    html = response.content.decode()
    assert keys_on(small) == ["KEY_00000", "KEY_00001", "KEY_00002"]
    assert keys_on(html) == [f"KEY_{i:05d}" for i in range(PAGE_SIZE)]
    assert many == few == 6  # session, user, memberships, environments, the folder and its subfolders, rows
    assert len(response.content) < 100_000
    # A later page costs what the first does.
    later = link(html, "next")
    _, deep = counted(client, later)
    assert deep == many + 1  # + whether there is a page before it


def test_next_and_previous_walk_the_folder_by_key(client_for, member, dev, workspace):
    client = client_for(member)
    fill(dev, "/", PAGE_SIZE * 2 + 7)
    url = f"/w/{workspace.slug}/secrets/dev/"
    first = client.get(url).content.decode()
    assert link(first, "prev") is None
    second = client.get(link(first, "next")).content.decode()
    assert keys_on(second) == [f"KEY_{i:05d}" for i in range(PAGE_SIZE, PAGE_SIZE * 2)]
    third = client.get(link(second, "next")).content.decode()
    assert keys_on(third) == [f"KEY_{i:05d}" for i in range(PAGE_SIZE * 2, PAGE_SIZE * 2 + 7)]
    assert link(third, "next") is None
    back = client.get(link(third, "prev")).content.decode()
    assert keys_on(back) == keys_on(second)
    assert keys_on(client.get(link(back, "prev")).content.decode()) == keys_on(first)


def test_keyset_pages_keep_the_folder_path(client_for, member, dev, workspace):
    secrets.create_folder(dev, "/", "api")
    fill(dev, "/api", PAGE_SIZE + 1)
    fill(dev, "/", 5, prefix="ROOT_")
    first = client_for(member).get(f"/w/{workspace.slug}/secrets/dev/", {"path": "/api"}).content.decode()
    second = client_for(member).get(link(first, "next")).content.decode()
    assert keys_on(second) == [f"KEY_{PAGE_SIZE:05d}"]


def test_filtering_searches_the_whole_folder_not_only_the_page(client_for, member, dev, workspace):
    fill(dev, "/", 250)
    secrets.create_secret(dev, "/", "ZZ_STRIPE_KEY", "x")  # sorts after every other key: far from page one
    secrets.create_folder(dev, "/", "api")
    secrets.create_secret(dev, "/api", "OTHER_STRIPE_KEY", "y")  # another folder: not in this folder's filter
    client = client_for(member)
    html = client.get(f"/w/{workspace.slug}/secrets/dev/", {"q": "stripe"}).content.decode()
    assert keys_on(html) == ["ZZ_STRIPE_KEY"]
    assert link(html, "next") is None
    many = client.get(f"/w/{workspace.slug}/secrets/dev/", {"q": "KEY_001"}).content.decode()
    assert keys_on(many) == [f"KEY_{i:05d}" for i in range(100, 100 + PAGE_SIZE)]
    following = client.get(link(many, "next")).content.decode()
    assert "q=KEY_001" in link(many, "next")
    assert keys_on(following) == [f"KEY_{i:05d}" for i in range(100 + PAGE_SIZE, 200)]
    assert link(following, "next") is None


def test_adding_a_secret_beyond_the_first_page_shows_it(client_for, member, dev, workspace):
    fill(dev, "/", PAGE_SIZE * 2)
    response = client_for(member).post(f"/w/{workspace.slug}/secrets/dev/add/",
                                       {"key": "ZZ_NEW", "value": "v", "path": "/"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert keys_on(html)[0] == "ZZ_NEW"
    assert link(html, "prev")


def test_row_links_are_the_reversed_urls(client_for, member, dev, workspace):
    secret = secrets.create_secret(dev, "/", "TOKEN", "v")
    html = client_for(member).get(f"/w/{workspace.slug}/secrets/dev/").content.decode()
    for name in ("secret_reveal", "secret_edit", "secret_delete", "secret_history"):
        assert f'"{reverse(name, kwargs={"ws": workspace.slug, "secret_id": secret.pk})}"' in html
    client = client_for(member)  # the rows swapped in alone (reveal, edit) link the same way
    revealed = client.post(reverse("secret_reveal", kwargs={"ws": workspace.slug, "secret_id": secret.pk}),
                           HTTP_HX_REQUEST="true").content.decode()
    assert f'hx-get="{reverse("secret_row", kwargs={"ws": workspace.slug, "secret_id": secret.pk})}"' in revealed
    editing = client.get(reverse("secret_edit", kwargs={"ws": workspace.slug, "secret_id": secret.pk}),
                         HTTP_HX_REQUEST="true").content.decode()
    assert f'hx-post="{reverse("secret_edit", kwargs={"ws": workspace.slug, "secret_id": secret.pk})}"' in editing


def test_members_are_paginated(client_for, owner, workspace):
    User.objects.bulk_create([User(email=f"person{i:04d}@example.com") for i in range(250)])
    Membership.objects.bulk_create([Membership(workspace=workspace, user=u, role=Role.VIEWER)
                                    for u in User.objects.filter(email__startswith="person")])
    client = client_for(owner)
    url = f"/w/{workspace.slug}/settings/members/"
    client.get(url)  # the first visit also saves the session
    first, queries = counted(client, url)
    first = first.content.decode()
    assert "person0000@example.com" in first and "person0150@example.com" not in first
    assert len(first) < 150_000
    last = client.get(url, {"page": 3}).content.decode()
    assert "person0249@example.com" in last and "person0000@example.com" not in last
    assert counted(client, url, {"page": 2})[1] == queries


def test_the_audit_log_pages_by_keyset_newest_first(client_for, owner, workspace):
    from datetime import timedelta

    from django.utils import timezone

    AuditEvent.objects.all().delete()
    now = timezone.now()
    AuditEvent.objects.bulk_create([  # 130 events, some sharing a timestamp: (created_at, id) orders them
        AuditEvent(workspace=workspace, action="secret.created", actor_label="alice@example.com",
                   target_label=f"K{i:03d}", created_at=now - timedelta(seconds=(130 - i) // 2))
        for i in range(130)])
    client = client_for(owner)
    url = f"/w/{workspace.slug}/settings/audit-log/"

    def labels(html):
        return re.findall(r"\bK(\d{3})\b", html)

    first = client.get(url).content.decode()
    assert labels(first) == [f"{i:03d}" for i in range(129, 79, -1)] and link(first, "prev") is None
    page_one = counted(client, url)[1]
    second, page_two = counted(client, url + link(first, "next"))
    second = second.content.decode()
    assert labels(second) == [f"{i:03d}" for i in range(79, 29, -1)]
    assert page_two == page_one
    third = client.get(url + link(second, "next")).content.decode()
    assert labels(third) == [f"{i:03d}" for i in range(29, -1, -1)] and link(third, "next") is None
    back = client.get(url + link(third, "prev")).content.decode()
    assert labels(back) == labels(second)
    assert labels(client.get(url + link(back, "prev")).content.decode()) == labels(first)
    filtered = client.get(url, {"action": "secret."}).content.decode()
    assert "action=secret." in link(filtered, "next")
    assert client.get(url, {"older": "not-a-cursor"}).status_code == 200


def test_the_api_list_answers_as_before_reading_the_keys_once(api_client_for, workspace, dev):
    """The raw list builds rows from .values() with one key ring: the same JSON secret_json gives for each secret."""
    from unittest import mock

    from devpilot import crypto
    from devpilot.secret_api import secret_json

    secrets.create_folder(dev, "/", "api")
    for key in ("B", "A", "C"):
        secrets.create_secret(dev, "/", key, f"value of {key}", comment=f"about {key}")
    secrets.create_secret(dev, "/api", "NESTED", "multi\nline")
    secrets.update_secret(Secret.objects.get(key="A"), value="second")
    client = api_client_for(workspace, Role.MEMBER)
    query = {"workspaceId": str(workspace.pk), "environment": "dev", "secretPath": "/", "recursive": "true"}
    expected = [secret_json(s, with_value=True) for s in
                Secret.objects.select_related("environment", "folder").order_by("folder__path", "key")]
    with mock.patch.object(crypto, "load_keys", wraps=crypto.load_keys) as loads:
        listed = client.get("/api/v3/secrets/raw", query)
    assert listed.status_code == 200 and listed["Content-Type"] == "application/json"
    assert listed.json() == {"secrets": expected}
    assert loads.call_count == 1
    hidden = client.get("/api/v3/secrets/raw", {**query, "viewSecretValue": "false"}).json()
    assert hidden == {"secrets": [secret_json(s, with_value=False) for s in
                                  Secret.objects.select_related("environment", "folder").order_by("folder__path", "key")]}
    reads = AuditEvent.objects.filter(action=secrets.VALUES_READ, data__how="api")
    assert [e.data["keys"] for e in reads] == [["A", "B", "C", "NESTED"]]


@pytest.mark.parametrize("count", [3, 120])
def test_one_folder_through_the_api_is_three_queries_whatever_its_size(api_client_for, workspace, dev, count):
    """The token with its creator's role, the folder's rows (found by environment and path), the audit record."""
    from devpilot.secret_api import secret_json

    secrets.create_folder(dev, "/", "api")
    fill(dev, "/api", count)
    secrets.create_secret(dev, "/", "ROOT_ONLY", "x")  # another folder: not listed
    client = api_client_for(workspace, Role.MEMBER)
    query = {"workspaceId": str(workspace.pk), "environment": "dev", "secretPath": "/api"}
    client.get("/api/v3/secrets/raw", query)  # the token's last-used time is written once a minute, not counted
    with CaptureQueriesContext(connection) as queries:
        listed = client.get("/api/v3/secrets/raw", query)
    assert listed.status_code == 200 and len(queries) == 3, [q["sql"][:80] for q in queries]
    expected = [secret_json(s, with_value=True) for s in
                Secret.objects.select_related("environment", "folder").filter(folder__path="/api").order_by("key")]
    assert listed.json() == {"secrets": expected}
    secrets.create_folder(dev, "/", "empty")
    assert client.get("/api/v3/secrets/raw", {**query, "secretPath": "/empty"}).json() == {"secrets": []}


def test_the_api_list_still_says_what_is_missing(api_client_for, workspace, dev):
    client = api_client_for(workspace, Role.MEMBER)
    base = {"workspaceId": str(workspace.pk)}
    missing_env = client.get("/api/v3/secrets/raw", {**base, "environment": "nope", "secretPath": "/"})
    assert missing_env.status_code == 404 and "Environment nope" in missing_env.json()["message"]
    missing_folder = client.get("/api/v3/secrets/raw", {**base, "environment": "dev", "secretPath": "/nope"})
    assert missing_folder.status_code == 404 and "/nope" in missing_folder.json()["message"]


def test_servers_and_syncs_lists_are_paginated(client_for, member, dev, workspace):
    from provisioning.models import Server
    from provisioning.views import LIST_PAGE_SIZE as SERVERS_PAGE
    from syncs.models import Sync
    from syncs.views import LIST_PAGE_SIZE as SYNCS_PAGE

    Server.objects.bulk_create([Server(workspace=workspace, name=f"web-{i:03d}", region="nyc3", size="s-1vcpu-1gb",
                                       image="ubuntu-24-04-x64") for i in range(SERVERS_PAGE + 5)])
    root = secrets.get_folder(dev, "/")
    Sync.objects.bulk_create([Sync(workspace=workspace, name=f"sync-{i:03d}", environment=dev, folder=root,
                                   app_id=f"app-{i}") for i in range(SYNCS_PAGE + 5)])
    client = client_for(member)
    client.get(f"/w/{workspace.slug}/")  # the first visit also saves the session
    for path, prefix, size in (("servers", "web-", SERVERS_PAGE), ("syncs", "sync-", SYNCS_PAGE)):
        url = f"/w/{workspace.slug}/{path}/"
        first, first_queries = counted(client, url)
        first = first.content.decode()
        assert f"{prefix}000" in first and f"{prefix}{size - 1:03d}" in first and f"{prefix}{size:03d}" not in first
        second = client.get(url + link(first, "next")).content.decode()
        assert f"{prefix}{size + 4:03d}" in second and f"{prefix}000<" not in second
        assert counted(client, url, {"page": 2})[1] == first_queries

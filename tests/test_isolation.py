"""Nobody sees another workspace's data.

Generated from the URL conf: every workspace page and every API endpoint, with the ids of
objects in workspace A, requested by a member of workspace B, by B's API token, and
anonymously. New URLs are covered automatically; a new id kwarg needs a factory in
tests/isolation.py.
"""

import re
import uuid

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from devpilot.models import Role
from devpilot.tokens import create_api_token
from devpilot.workspaces import create_workspace
from tests.conftest import ApiClient
from tests.isolation import FACTORIES

KWARG = re.compile(r"<(?:(?P<converter>\w+):)?(?P<name>\w+)>")


def routes(resolver=None, prefix=""):
    for entry in (resolver or get_resolver()).url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from routes(entry, route)
        elif isinstance(entry, URLPattern):
            yield route


def workspace_routes():
    return sorted({r for r in routes() if r.startswith("w/<slug:ws>/")})


def api_routes():
    """Every versioned API route (the OpenAPI document and its reference page are public by design)."""
    return sorted({r for r in routes() if r.startswith("api/v")})


def declared_query(route, method, values):
    """The query parameters the operation declares (as the API's middleware reads them from its OpenAPI
    document, built once), filled with workspace A's names."""
    from devpilot.middleware import declared_query_parameters

    template = "/" + KWARG.sub(lambda m: "{" + m.group("name") + "}", route)
    names = declared_query_parameters().get((template, method.upper()), frozenset())
    return "&".join(f"{name}={values[name]}" for name in sorted(names & values.keys()))


def build(route, values):
    return "/" + KWARG.sub(lambda m: str(values[m.group("name")]), route)


@pytest.fixture
def two_workspaces(owner, workspace, make_user):
    stranger = make_user("stranger@example.com")
    other = create_workspace(stranger, "Other")
    return workspace, owner, other, stranger


def object_ids(route, workspace, owner):
    """Values for the route's kwargs; model objects of `workspace` are given by pk."""
    ids = {}
    for match in KWARG.finditer(route):
        name = match.group("name")
        if name == "ws":
            continue
        assert name in FACTORIES, f"{route}: register a factory for <{name}> in tests/isolation.py"
        made = FACTORIES[name](workspace, owner)
        ids[name] = getattr(made, "pk", made)
    return ids


def test_the_walk_covers_the_project():
    assert "w/<slug:ws>/settings/members/" in workspace_routes()
    assert "api/v1/workspaces" in api_routes()


@pytest.mark.parametrize("route", workspace_routes())
def test_workspace_pages_are_hidden_from_other_workspaces(route, two_workspaces, client_for, client):
    workspace, owner, other, stranger = two_workspaces
    ids = object_ids(route, workspace, owner)
    own_url = build(route, {"ws": workspace.slug, **ids})
    as_stranger = client_for(stranger)
    assert as_stranger.get(own_url).status_code in (404, 405), own_url
    assert as_stranger.post(own_url).status_code == 404, own_url
    if any(isinstance(v, uuid.UUID | int) for v in ids.values()):
        # The stranger's own workspace in the URL, with A's object ids.
        crossed = build(route, {"ws": other.slug, **ids})
        assert as_stranger.get(crossed).status_code in (404, 405), crossed
        assert as_stranger.post(crossed).status_code in (404, 403), crossed
    anonymous_get = client.get(own_url)
    assert anonymous_get.status_code in (302, 405) and "/accounts/login/" in anonymous_get.get("Location", "/accounts/login/")
    anonymous_post = client.post(own_url)
    assert anonymous_post.status_code == 302 and "/accounts/login/" in anonymous_post["Location"]


@pytest.mark.parametrize("route", api_routes())
def test_api_endpoints_are_hidden_from_other_workspaces(route, two_workspaces, client):
    workspace, owner, other, _ = two_workspaces
    ids = object_ids(route, workspace, owner)
    # Name workspace A explicitly too, as Infisical-style endpoints take it as a parameter.
    names = {"workspaceId": workspace.pk, "projectId": workspace.pk, "environment": "dev"}
    _, token = create_api_token(other, "other", role=Role.OWNER)
    foreign = ApiClient(token)
    statuses = {}
    for method in ("get", "post", "patch", "delete"):
        url = build(route, ids) + "?" + declared_query(route, method, names)
        response = getattr(foreign, method)(url)
        statuses[method] = response.status_code
        assert response["Content-Type"] == "application/json"
        body = response.content.decode()
        assert "isolated-value" not in body, (method, url)
        assert client.generic(method.upper(), url).status_code in (401, 405)
    if ids and statuses["get"] != 405:
        assert statuses["get"] == 404, (route, statuses)
    # Bodies are checked before objects are looked up: a 400 names a field, never another workspace's data.
    assert set(statuses.values()) <= {400, 403, 404, 405} or not ids, (route, statuses)

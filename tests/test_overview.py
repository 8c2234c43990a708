"""The Overview: a first-run checklist (ticked as the workspace is set up, dismissible per member),
environments in the same order as everywhere else, activity in sentences."""

import re

import pytest

from devpilot import audit, secrets
from devpilot import overview as overview_queries
from devpilot.models import Membership, Role
from devpilot.workspaces import create_workspace
from tests.isolation import a_connection, a_server, a_sync


def overview(client, workspace):
    response = client.get(f"/w/{workspace.slug}/")
    assert response.status_code == 200
    return response.content.decode()


def checklist(html):
    """[(label, done)] of the checklist, or None when it is not shown."""
    section = re.search(r'<section class="card checklist".*?</section>', html, re.S)
    if section is None:
        return None
    items = re.findall(r'<li class="(done|todo)">(.*?)</li>', section.group(0), re.S)
    return [(re.sub(r"<[^>]+>|Done:|To do:|\(an admin does this\)", "", text).strip(), state == "done")
            for state, text in items]


def test_the_checklist_ticks_each_step_as_it_is_done(client_for, owner, workspace):
    client = client_for(owner)
    assert checklist(overview(client, workspace)) == [
        ("Connect DigitalOcean", False), ("Add secrets", False), ("Create a secret sync", False),
        ("Create a server", False)]
    html = overview(client, workspace)
    assert f'href="/w/{workspace.slug}/settings/integrations/digital-ocean/connect/"' in html

    a_connection(workspace, owner)
    secrets.create_secret(workspace.environments.get(slug="dev"), "/", "API_KEY", "v")
    assert [done for _, done in checklist(overview(client, workspace))] == [True, True, False, False]
    a_sync(workspace, owner)
    assert [done for _, done in checklist(overview(client, workspace))] == [True, True, True, False]
    a_server(workspace, owner)
    assert checklist(overview(client, workspace)) is None  # all done: it goes away


def test_the_checklist_is_dismissed_per_member_and_workspace(client_for, owner, workspace, make_member):
    from devpilot.workspaces import create_workspace

    other = create_workspace(owner, "Second")
    colleague = make_member(workspace, Role.MEMBER)
    client = client_for(owner)
    response = client.post(f"/w/{workspace.slug}/", {"action": "dismiss_checklist"})
    assert response.status_code == 302 and response.url == f"/w/{workspace.slug}/"
    assert checklist(overview(client, workspace)) is None
    assert Membership.objects.get(workspace=workspace, user=owner).checklist_dismissed_at is not None
    assert checklist(overview(client, other)) is not None  # another workspace: still there
    assert checklist(overview(client_for(colleague), workspace)) is not None  # another member: still there


def test_members_see_the_steps_only_admins_can_do_without_links(client_for, workspace, make_member):
    html = overview(client_for(make_member(workspace, Role.MEMBER)), workspace)
    assert "Connect DigitalOcean <span class=\"small muted\">(an admin does this)</span>" in html
    assert f'href="/w/{workspace.slug}/secrets/"' in html


def test_the_integrations_card_links_to_connect(client_for, owner, workspace):
    html = overview(client_for(owner), workspace)
    card = re.search(r"<h2><a[^>]*>Integrations</a></h2>.*?</section>", html, re.S).group(0)
    assert "No DigitalOcean account connected." in card and ">Connect</a>" in card


def test_environments_are_in_the_same_order_on_tabs_overview_and_settings(client_for, owner, workspace):
    dev = workspace.environments.get(slug="dev")
    secrets.create_secret(dev, "/", "A", "1")
    prod = workspace.environments.get(slug="prod")
    prod.position, dev.position = 0, 5  # reordered: Production first, Development last
    prod.save(), dev.save()
    secrets.create_secret(prod, "/", "B", "2")
    client = client_for(owner)

    def order(html, pattern):
        return [slug for slug in re.findall(pattern, html)]

    expected = list(workspace.environments.values_list("slug", flat=True))
    assert expected[0] == "prod" and expected[-1] == "dev"
    assert order(overview(client, workspace), rf'href="/w/{workspace.slug}/secrets/(\w+)/"') == expected
    tabs = client.get(f"/w/{workspace.slug}/secrets/dev/").content.decode()
    tabs = re.search(r'<nav class="tabs".*?</nav>', tabs, re.S).group(0)
    assert order(tabs, rf'href="/w/{workspace.slug}/secrets/(\w+)/"') == expected
    settings = client.get(f"/w/{workspace.slug}/settings/environments/").content.decode()
    assert order(settings, r'aria-label="Name of (\w+)"') == expected


def test_recent_activity_reads_as_sentences(client_for, owner, workspace):
    audit.record(workspace, "workspace.created", actor=owner, target=workspace)
    html = overview(client_for(owner), workspace)
    assert "owner@example.com created the workspace Acme" in html
    assert "just now" in html and "0 minutes" not in html
    assert "<code>workspace.created</code>" not in html


@pytest.mark.parametrize("role", [Role.VIEWER])
def test_a_viewer_sees_the_checklist_without_any_step_link_it_cannot_use(client_for, workspace, make_member, role):
    html = overview(client_for(make_member(workspace, role)), workspace)
    assert checklist(html) is not None
    assert f"/w/{workspace.slug}/syncs/new/" not in html and f"/w/{workspace.slug}/servers/new/" not in html


def test_secret_counts_are_each_environments_own(client_for, owner, workspace, make_user):
    dev = workspace.environments.get(slug="dev")
    secrets.create_folder(dev, "/", "app")
    for key in ("A", "B"):
        secrets.create_secret(dev, "/app", key, "v")
    secrets.create_secret(dev, "/", "C", "v")
    secrets.create_secret(workspace.environments.get(slug="prod"), "/", "D", "v")
    other = create_workspace(make_user("other@example.com"), "Other")
    secrets.create_secret(other.environments.get(slug="staging"), "/", "E", "v")  # another workspace's: not counted
    counted = overview_queries.ENVIRONMENTS_WITH_SECRET_COUNTS(workspace_id=workspace.pk)
    assert {e.slug: e.secret_count for e in counted} == {
        "dev": 3, "staging": 0, "prod": 1}
    html = overview(client_for(owner), workspace)
    assert re.findall(r">(\w+)</a> <span class=\"muted small\">(\d+) secrets?<", html) == [
        ("Development", "3"), ("Staging", "0"), ("Production", "1")]


import pytest

from devpilot import secrets
from devpilot.models import AuditEvent, Role, Secret


@pytest.fixture
def dev(workspace):
    return workspace.environments.get(slug="dev")


@pytest.fixture
def member(workspace, make_member):
    return make_member(workspace, Role.MEMBER)


def test_the_page_lists_keys_with_masked_values(client_for, member, dev, workspace):
    secrets.create_secret(dev, "/", "DATABASE_URL", "postgres://secret-value")
    page = client_for(member).get(f"/w/{workspace.slug}/secrets/dev/").content.decode()
    assert "DATABASE_URL" in page
    assert "secret-value" not in page


def test_reveal_is_audited_and_viewers_cannot_reveal(client_for, member, make_member, dev, workspace):
    secret = secrets.create_secret(dev, "/", "TOKEN", "the-value")
    url = f"/w/{workspace.slug}/secret/{secret.pk}/reveal/"
    assert "the-value" in client_for(member).post(url, HTTP_HX_REQUEST="true").content.decode()
    assert AuditEvent.objects.filter(action="secret.revealed", actor=member).exists()
    viewer = make_member(workspace, Role.VIEWER)
    assert client_for(viewer).post(url).status_code == 403
    page = client_for(viewer).get(f"/w/{workspace.slug}/secrets/dev/").content.decode()
    assert "Reveal" not in page and "Add a secret" not in page


def test_adding_with_htmx_shows_errors_inline_and_keeps_input(client_for, member, dev, workspace):
    client = client_for(member)
    url = f"/w/{workspace.slug}/secrets/dev/add/"
    bad = client.post(url, {"key": "1BAD", "value": "kept", "path": "/"}, HTTP_HX_REQUEST="true")
    assert bad.status_code == 200
    assert "not a valid key" in bad.content.decode() and "kept" in bad.content.decode()
    good = client.post(url, {"key": "GOOD", "value": "v", "path": "/"}, HTTP_HX_REQUEST="true")
    assert "GOOD" in good.content.decode()
    assert secrets.read_folder(dev, "/") == {"GOOD": "v"}


def test_a_stale_edit_in_the_page_says_what_happened(client_for, member, owner, dev, workspace):
    secret = secrets.create_secret(dev, "/", "A", "v1")
    secrets.update_secret(secret, value="by someone else", user=owner)
    response = client_for(member).post(f"/w/{workspace.slug}/secret/{secret.pk}/edit/",
                                       {"key": "A", "value": "mine", "version": 1}, HTTP_HX_REQUEST="true")
    assert "changed by owner@example.com" in response.content.decode()
    assert Secret.objects.get(pk=secret.pk).value == "by someone else"


def test_import_lists_problems_before_writing_anything(client_for, member, dev, workspace):
    client = client_for(member)
    url = f"/w/{workspace.slug}/secrets/dev/import/"
    page = client.post(url, {"text": "A=1\n2BAD=x\nA=3\n", "overwrite": "skip", "path": "/", "confirm": "yes"})
    content = page.content.decode()
    assert "Line 2" in content and "Line 3" in content and "Nothing was imported" in content
    assert not Secret.objects.exists()
    client.post(url, {"text": "A=1\nB='two'\n", "overwrite": "skip", "path": "/", "confirm": "yes"})
    assert secrets.read_folder(dev, "/") == {"A": "1", "B": "two"}


def test_download_as_env_round_trips(client_for, member, dev, workspace):
    secrets.create_secret(dev, "/", "MULTI", "a\nb")
    response = client_for(member).get(f"/w/{workspace.slug}/secrets/dev/download/")
    assert response["Content-Disposition"] == 'attachment; filename="dev.env"'
    assert response.content.decode() == 'MULTI="a\nb"\n'
    assert AuditEvent.objects.filter(action="secrets.downloaded").exists()


def test_search_finds_keys_across_folders(client_for, member, dev, workspace):
    secrets.create_folder(dev, "/", "api")
    secrets.create_secret(dev, "/api", "STRIPE_KEY", "x")
    secrets.create_secret(dev, "/", "OTHER", "y")
    page = client_for(member).get(f"/w/{workspace.slug}/secrets/dev/search/", {"q": "stripe"}).content.decode()
    assert "STRIPE_KEY" in page and "OTHER" not in page


def test_members_cannot_manage_environments(client_for, member, workspace):
    response = client_for(member).post(f"/w/{workspace.slug}/settings/environments/", {"name": "QA", "slug": "qa"})
    assert response.status_code == 403


def test_the_secrets_page_makes_a_constant_number_of_queries(client_for, member, dev, workspace):
    client = client_for(member)
    secrets.bulk_import(dev, "/", {f"K{i}": "v" for i in range(3)}, overwrite=True)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(f"/w/{workspace.slug}/secrets/dev/")  # the first visit also saves the session
    with CaptureQueriesContext(connection) as few:
        client.get(f"/w/{workspace.slug}/secrets/dev/")
    secrets.bulk_import(dev, "/", {f"K{i}": "w" for i in range(60)}, overwrite=True)
    for secret in Secret.objects.all()[:20]:
        secrets.update_secret(secret, value="again")
    with CaptureQueriesContext(connection) as many:
        response = client.get(f"/w/{workspace.slug}/secrets/dev/")
    assert response.content.decode().count('<tr id="secret-') == 60
    assert len(many) == len(few)

import pytest

from devpilot import secrets
from devpilot.models import AuditEvent, Role, Secret
from devpilot.secret_views import PAGE_SIZE


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
    assert AuditEvent.objects.filter(action=secrets.VALUES_READ, actor=member, data__how="reveal").exists()
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
                                       {"key": "A", "value": "mine", "change_value": "on", "version": 1},
                                       HTTP_HX_REQUEST="true")
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
    assert response.content.decode() == "MULTI='a\nb'\n"
    assert "no-store" in response["Cache-Control"]
    read = AuditEvent.objects.get(action=secrets.VALUES_READ)
    assert (read.actor, read.data["how"], read.data["keys"]) == (member, "download", ["MULTI"])


def test_the_edit_form_never_shows_the_value_and_keeps_it_unless_replaced(client_for, member, dev, workspace):
    secret = secrets.create_secret(dev, "/", "A", "current-value")
    client = client_for(member)
    url = f"/w/{workspace.slug}/secret/{secret.pk}/edit/"
    form = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "current-value" not in form and 'name="change_value"' in form
    client.post(url, {"key": "A", "value": "", "comment": "only the comment", "version": 1}, HTTP_HX_REQUEST="true")
    assert Secret.objects.get(pk=secret.pk).value == "current-value"
    client.post(url, {"key": "A", "value": "replaced", "change_value": "on", "version": 2}, HTTP_HX_REQUEST="true")
    assert Secret.objects.get(pk=secret.pk).value == "replaced"
    assert not AuditEvent.objects.filter(action=secrets.VALUES_READ).exists()  # nothing was read


def test_every_value_read_on_the_pages_is_one_audit_event(client_for, member, dev, workspace):
    secret = secrets.create_secret(dev, "/", "A", "v1")
    secrets.update_secret(secret, value="v2")
    client = client_for(member)
    reveal = client.post(f"/w/{workspace.slug}/secret/{secret.pk}/reveal/", HTTP_HX_REQUEST="true")
    version = secret.versions.get(version=1)
    old = client.post(f"/w/{workspace.slug}/secret/{secret.pk}/versions/{version.pk}/reveal/", HTTP_HX_REQUEST="true")
    client.get(f"/w/{workspace.slug}/secrets/dev/download/")
    assert "v2" in reveal.content.decode() and "v1" in old.content.decode()
    assert all("no-store" in r["Cache-Control"] for r in (reveal, old))
    reads = AuditEvent.objects.filter(action=secrets.VALUES_READ).order_by("created_at")
    assert [(e.actor, e.data["how"], e.data["keys"]) for e in reads] == [
        (member, "reveal", ["A"]), (member, "history (version 1)", ["A"]), (member, "download", ["A"])]


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
    assert response.content.decode().count('<tr id="secret-') == PAGE_SIZE  # 60 secrets: the first page of them
    assert len(many) == len(few)


def test_the_import_preview_says_exactly_what_skip_and_overwrite_write(client_for, member, dev, workspace):
    secrets.create_secret(dev, "/", "SAME", "1")
    secrets.create_secret(dev, "/", "OTHER", "old")
    client = client_for(member)
    url = f"/w/{workspace.slug}/secrets/dev/import/"
    text = "SAME=1\nOTHER=new\nNEW_A=a\nNEW_B=b\n"
    skip = client.post(url, {"text": text, "overwrite": "skip", "path": "/"}).content.decode()
    assert "<strong>Skip</strong> writes 2 secrets: NEW_A, NEW_B." in skip
    assert "<strong>Overwrite</strong> writes 3 secrets: NEW_A, NEW_B, OTHER (overwritten)." in skip
    assert "Import 2 secrets" in skip and 'name="checked_mode" value="skip"' in skip
    overwrite = client.post(url, {"text": text, "overwrite": "overwrite", "path": "/"}).content.decode()
    assert "Import 3 secrets" in overwrite

    # Switching the choice after Check shows the preview again instead of writing something else.
    switched = client.post(url, {"text": text, "overwrite": "overwrite", "path": "/", "confirm": "yes",
                                 "checked_mode": "skip"})
    assert switched.status_code == 200 and "Import 3 secrets" in switched.content.decode()
    assert secrets.read_folder(dev, "/") == {"SAME": "1", "OTHER": "old"}

    done = client.post(url, {"text": text, "overwrite": "skip", "path": "/", "confirm": "yes", "checked_mode": "skip"})
    assert done.status_code == 302
    assert secrets.read_folder(dev, "/") == {"SAME": "1", "OTHER": "old", "NEW_A": "a", "NEW_B": "b"}
    nothing = client.post(url, {"text": "SAME=1\n", "overwrite": "skip", "path": "/"}).content.decode()
    assert "Nothing to write" in nothing and "Import 0" not in nothing

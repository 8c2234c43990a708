import re

from allauth.account.models import EmailAddress
from django.core import mail

from devpilot.models import AuditEvent, Membership, Role, User, Workspace
from tests.conftest import PASSWORD


def test_signing_up_creates_the_first_workspace_and_lands_on_it(client, db):
    response = client.post("/accounts/signup/", {
        "email": "Ada@Example.com", "password1": PASSWORD, "password2": PASSWORD, "workspace_name": "Analytical",
    })
    workspace = Workspace.objects.get(name="Analytical")
    assert response.status_code == 302
    assert response.url == f"/w/{workspace.slug}/"
    user = User.objects.get()
    assert user.email == "ada@example.com"
    assert Membership.objects.get(user=user).role == Role.OWNER
    assert [e.slug for e in workspace.environments.all()] == ["dev", "staging", "prod"]
    assert all(e.folders.filter(path="/").exists() for e in workspace.environments.all())
    assert AuditEvent.objects.filter(workspace=workspace, action="workspace.created").exists()


def test_sign_up_rejects_weak_passwords_and_taken_emails(client, owner):
    weak = client.post("/accounts/signup/", {"email": "new@example.com", "password1": "123", "password2": "123"})
    assert "too short" in weak.content.decode()
    taken = client.post("/accounts/signup/", {
        "email": "OWNER@example.com", "password1": PASSWORD, "password2": PASSWORD,
    })
    assert "already exists" in taken.content.decode()
    assert User.objects.count() == 1


def test_sign_up_sends_a_verification_link(client, db):
    client.post("/accounts/signup/", {"email": "ada@example.com", "password1": PASSWORD, "password2": PASSWORD})
    user = User.objects.get()
    assert not EmailAddress.objects.get(user=user).verified
    link = re.search(r"http://\S+/accounts/confirm-email/\S+/", mail.outbox[0].body).group(0)
    client.post(link.removeprefix("http://testserver"))
    assert EmailAddress.objects.get(user=user).verified


def test_sign_up_from_the_login_page_keeps_the_workspace_field(client, db):
    page = client.get("/accounts/login/?next=/w/x/").content.decode()
    assert 'href="/accounts/signup/?next=%2Fw%2Fx%2F"' in page
    signup = client.get("/accounts/signup/?next=/w/x/").content.decode()
    assert 'name="workspace_name"' in signup
    client.post("/accounts/signup/", {"email": "ada@example.com", "password1": PASSWORD, "password2": PASSWORD,
                                      "workspace_name": "Engines", "next": "/"})
    assert Workspace.objects.filter(name="Engines").exists()


def test_log_in_and_out(client, owner, workspace):
    response = client.post("/accounts/login/", {"login": owner.email, "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/", follow=True).redirect_chain[-1][0] == f"/w/{workspace.slug}/"
    client.post("/accounts/logout/")
    assert client.get(f"/w/{workspace.slug}/").status_code == 302


def test_wrong_password_is_refused(client, owner):
    response = client.post("/accounts/login/", {"login": owner.email, "password": "nope"})
    assert response.status_code == 200
    assert "not correct" in response.content.decode().lower()
    assert "_auth_user_id" not in client.session


def test_password_reset_by_email(client, owner):
    response = client.post("/accounts/password/reset/", {"email": owner.email})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    link = re.search(r"http://\S+/accounts/password/reset/key/\S+/", mail.outbox[0].body).group(0)
    form_url = client.get(link.removeprefix("http://testserver")).url  # allauth swaps the key for a session marker
    response = client.post(form_url, {"password1": "a-brand-new-passphrase", "password2": "a-brand-new-passphrase"})
    assert response.status_code == 302
    owner.refresh_from_db()
    assert owner.check_password("a-brand-new-passphrase")


def test_the_old_account_addresses_still_lead_somewhere(client, db):
    assert client.get("/accounts/password-reset/").url == "/accounts/password/reset/"
    assert client.get("/accounts/reset/MQ/abc-def/").url == "/accounts/password/reset/"
    for url in ["/accounts/login/", "/accounts/signup/", "/accounts/password/reset/"]:
        assert client.get(url).status_code == 200


def test_account_pages_hide_posted_passwords_from_error_reports(rf):
    from django.views.debug import SafeExceptionReporterFilter

    from devpilot.accounts import SensitiveAccountFormsMiddleware

    request = rf.post("/accounts/login/", {"login": "a@example.com", "password": "hunter2"})
    SensitiveAccountFormsMiddleware(lambda r: None)(request)
    cleaned = SafeExceptionReporterFilter().get_post_parameters(request)
    assert "hunter2" not in str(cleaned)


def test_creating_and_switching_workspaces(client_for, owner, workspace):
    client = client_for(owner)
    response = client.post("/workspaces/new/", {"name": "Second"})
    second = Workspace.objects.get(name="Second")
    assert response.url == f"/w/{second.slug}/"
    page = client.get(f"/w/{workspace.slug}/").content.decode()
    assert f'href="/w/{second.slug}/"' in page  # the switcher lists both
    assert client.get("/").url == f"/w/{workspace.slug}/"  # the last one visited is current


def test_only_owners_delete_a_workspace_after_typing_its_name(client_for, owner, workspace, make_member):
    admin = make_member(workspace, Role.ADMIN)
    assert client_for(admin).post(f"/w/{workspace.slug}/settings/", {"action": "delete", "confirm": "Acme"}).status_code == 403
    wrong = client_for(owner).post(f"/w/{workspace.slug}/settings/", {"action": "delete", "confirm": "acme"})
    assert "does not match" in wrong.content.decode()
    client_for(owner).post(f"/w/{workspace.slug}/settings/", {"action": "delete", "confirm": "Acme"})
    assert not Workspace.objects.filter(pk=workspace.pk).exists()


def test_the_audit_log_says_who_what_when_and_from_where(client_for, owner, workspace):
    client = client_for(owner)
    client.post(f"/w/{workspace.slug}/settings/", {"action": "rename", "name": "Acme Corp"}, REMOTE_ADDR="203.0.113.9")
    page = client.get(f"/w/{workspace.slug}/settings/audit-log/").content.decode()
    assert "workspace.renamed" in page and "owner@example.com" in page and "203.0.113.9" in page


def test_the_overview_shows_every_area_with_a_constant_number_of_queries(client_for, owner, workspace):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from connections.models import Connection
    from syncs.models import Sync

    client = client_for(owner)
    client.get(f"/w/{workspace.slug}/")
    with CaptureQueriesContext(connection) as empty:
        client.get(f"/w/{workspace.slug}/")
    dev = workspace.environments.get(slug="dev")
    conn = Connection.objects.create(workspace=workspace, name="do", token="t")
    for i in range(5):
        Sync.objects.create(workspace=workspace, name=f"s{i}", connection=conn, environment=dev,
                            folder=dev.folders.get(path="/"), app_id="a", sync_status="failed")
    with CaptureQueriesContext(connection) as full:
        page = client.get(f"/w/{workspace.slug}/").content.decode()
    assert "Failing secret syncs" in page and "s4" in page
    assert len(full) == len(empty)

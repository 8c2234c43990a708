import re

import pytest
from django.core import mail

from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


def sign_up(page, email, workspace_name=None):
    page.goto("/accounts/signup/")
    page.fill("input[name=email]", email)
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    if workspace_name:
        page.fill("input[name=workspace_name]", workspace_name)
    page.click("button[type=submit]")


def test_a_team_forms_around_a_workspace(new_page):
    owner = new_page()
    sign_up(owner, "ada@example.com", "Analytical Engines")
    owner.wait_for_url("**/w/analytical-engines/")
    assert owner.locator("h1").inner_text() == "Analytical Engines"

    owner.click("text=Settings")
    owner.click("nav.tabs >> text=Members")
    owner.fill("input[name=email]", "charles@example.com")
    owner.select_option("select[name=role]", "viewer")
    owner.click("text=Send invitation")
    link = owner.input_value("#invitation-link")
    assert re.match(r"http://testserver/invitations/\S+/$", link) or "/invitations/" in link
    path = link[link.index("/invitations/"):]

    invitee = new_page()
    invitee.goto(path)
    invitee.click("text=Sign up to join")
    # The invited address is filled in and locked; no workspace of their own.
    assert invitee.input_value("input[name=email]") == "charles@example.com"
    assert invitee.locator("input[name=email]").is_disabled()
    assert invitee.locator("input[name=workspace_name]").count() == 0
    invitee.fill("input[name=password1]", PASSWORD)
    invitee.fill("input[name=password2]", PASSWORD)
    invitee.click("button[type=submit]")
    invitee.wait_for_url("**/accounts/confirm-email/")
    # The address is verified by the link sent to it; opening it joins (no second click on Join).
    (message,) = [m for m in mail.outbox if m.to == ["charles@example.com"] and "confirm-email" in m.body]
    confirm = re.search(r"http://[^/\s]+(/accounts/confirm-email/\S+/)", message.body).group(1)
    invitee.goto(confirm)
    invitee.click("button[type=submit]")
    invitee.wait_for_url("**/w/analytical-engines/")
    assert "Viewer" in invitee.locator(".switcher summary").inner_text()

    # A viewer sees no editing controls and cannot open an editing page.
    invitee.goto("/w/analytical-engines/settings/members/")
    assert invitee.locator("select[name=role]").count() == 0
    assert invitee.locator("text=Send invitation").count() == 0
    assert invitee.locator("nav.tabs >> text=API tokens").count() == 0
    # (Fetched, not navigated to: the browser logs a navigation's 403 as a console error.)
    response = invitee.request.get("/w/analytical-engines/settings/api-tokens/")
    assert response.status == 403
    assert "Not allowed" in response.text()

    owner.goto("/w/analytical-engines/settings/members/")
    assert owner.locator("td", has_text="charles@example.com").count() == 1


def test_sign_up_from_the_login_page_keeps_the_workspace_field(page):
    page.goto("/workspaces/new/")
    page.wait_for_url("**/accounts/login/?next=**")
    page.click("text=Sign up")
    page.wait_for_url("**/accounts/signup/?next=**")
    page.fill("input[name=email]", "lin@example.com")
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    page.fill("input[name=workspace_name]", "Looms")
    page.click("button[type=submit]")
    page.wait_for_url("**/workspaces/new/")  # back where they were going, with their first workspace
    page.goto("/")
    page.wait_for_url("**/w/looms/")


def test_switching_workspaces(new_page):
    page = new_page()
    sign_up(page, "grace@example.com", "Compilers")
    page.wait_for_url("**/w/compilers/")
    page.click(".switcher summary")
    page.click("text=+ New workspace")
    page.fill("input[name=name]", "Navy")
    page.click("text=Create workspace")
    page.wait_for_url("**/w/navy/")
    page.click(".switcher summary")
    page.click(".switcher >> text=Compilers")
    page.wait_for_url("**/w/compilers/")
    page.goto("/")
    page.wait_for_url("**/w/compilers/")

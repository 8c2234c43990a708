import pytest

from tests.conftest import log_in


def test_workspace_home_is_for_members_only(workspace, owner, make_user, client_for):
    assert client_for(owner).get(f"/w/{workspace.slug}/").status_code == 200
    assert client_for(make_user("stranger@example.com")).get(f"/w/{workspace.slug}/").status_code == 404


@pytest.mark.browser
def test_log_in_in_the_browser(page, owner, workspace):
    log_in(page, owner.email)
    page.wait_for_url(f"**/w/{workspace.slug}/")
    assert page.locator("h1").inner_text() == "Acme"

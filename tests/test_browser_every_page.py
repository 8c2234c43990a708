"""Every page a member can open renders under the strict CSP with no console error, passes axe-core
with no violation, and keeps every row action reachable on a 390-px phone."""

import pytest

from tests.conftest import axe_violations, describe_violations, log_in
from tests.test_isolation import build, object_ids, workspace_routes

pytestmark = pytest.mark.browser

PUBLIC_PAGES = ["/accounts/login/", "/accounts/signup/", "/accounts/password-reset/"]
PHONE = {"width": 390, "height": 844}

# Row actions: every link, button or disclosure in a table cell that is shown. Each must lie inside the
# viewport and be the element a tap at its centre lands on, with nothing (page or table) scrolled sideways.
_UNREACHABLE_ROW_ACTIONS = """() => {
  const width = document.documentElement.clientWidth;
  const problems = [];
  if (document.documentElement.scrollWidth > width) problems.push(`page scrolls sideways (${document.documentElement.scrollWidth}px > ${width}px)`);
  for (const el of document.querySelectorAll("td a, td button, td summary, td input:not([type=hidden]), td select")) {
    if (!el.checkVisibility()) continue;
    // Scroll the page down to it, never sideways (nor any table container: a hidden-right action is not reachable).
    window.scrollTo(0, el.getBoundingClientRect().top + window.scrollY - window.innerHeight / 2);
    const box = el.getBoundingClientRect();
    const label = (el.textContent || el.getAttribute("aria-label") || el.name || el.tagName).trim().slice(0, 40);
    if (box.left < 0 || box.right > width + 0.5) { problems.push(`"${label}" is off-screen (${Math.round(box.left)}..${Math.round(box.right)}px)`); continue; }
    const hit = document.elementFromPoint(box.left + box.width / 2, box.top + box.height / 2);
    if (!hit || !(hit === el || el.contains(hit) || hit.contains(el) && hit.tagName === "LABEL")) problems.push(`"${label}" is covered or clipped`);
  }
  return problems;
}"""


def workspace_pages(client, workspace, owner):
    """(url, is_document) for every workspace page a GET renders (not POST-only actions, downloads or
    wizard steps needing another slug); HTMX fragments (a table row, say) are not documents."""
    for route in workspace_routes():
        url = build(route, {"ws": workspace.slug, **object_ids(route, workspace, owner)})
        probe = client.get(url, follow=True)
        if probe.status_code != 200 or probe.get("Content-Disposition", "").startswith("attachment"):
            continue
        yield url, probe.content.lstrip()[:15].lower() == b"<!doctype html>"


def test_the_api_reference_renders_offline_under_the_csp(new_page):
    """/api/docs: Swagger UI from vendored static files, every operation listed, no console error."""
    page = new_page()
    requested = []
    page.on("request", lambda request: requested.append(request.url))
    assert page.goto("/api/docs").status == 200
    page.get_by_text("/api/v1/servers/{server_id}/actions").first.wait_for()
    assert page.locator(".opblock").count() >= 29
    assert all(url.startswith(page.url.split("/api/")[0]) or url.startswith("data:") for url in requested), requested


def test_every_page_renders_cleanly_and_passes_axe(page, new_page, owner, workspace, client_for, fake_do):
    seen = []
    page.on("console", lambda msg: msg.type == "error" and seen.append((page.url, msg.text)))
    violations = []
    anonymous = new_page()
    for url in PUBLIC_PAGES:
        assert anonymous.goto(url).status == 200, url
        violations += describe_violations(url, axe_violations(anonymous))
    log_in(page, owner.email)
    page.wait_for_url(f"**/w/{workspace.slug}/")
    visited = []
    for url, is_document in workspace_pages(client_for(owner), workspace, owner):
        response = page.goto(url)
        assert response.status == 200, url
        if is_document:
            violations += describe_violations(url, axe_violations(page))
        visited.append(url)
    assert len(visited) >= 25
    # Folder history, a snapshot, its rollback preview and the environment comparison are in the walk.
    assert all(any(part in url for url in visited) for part in ("/history/", "/snapshots/", "/rollback/", "/compare/"))
    assert not seen, seen
    assert not violations, "\n".join(violations)


def test_every_row_action_is_reachable_on_a_phone(browser, live_server, owner, workspace, client_for, fake_do):
    from devpilot import secrets

    # Realistic rows: a long key and a comment make the secrets table wider than a phone.
    secrets.create_secret(workspace.environments.get(slug="dev"), "/", "PRIMARY_DATABASE_CONNECTION_URL_READ_WRITE",
                          "postgres://db", comment="the primary database, read-write, used by web and worker")
    context = browser.new_context(base_url=live_server.url, viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        log_in(page, owner.email)
        page.wait_for_url(f"**/w/{workspace.slug}/")
        problems, with_rows = [], []
        for url, is_document in workspace_pages(client_for(owner), workspace, owner):
            if not is_document:
                continue
            assert page.goto(url).status == 200, url
            problems += [f"{url}: {p}" for p in page.evaluate(_UNREACHABLE_ROW_ACTIONS)]
            if page.locator("td a:visible, td button:visible").count():
                with_rows.append(url)
        assert any("/secrets/" in url for url in with_rows), with_rows  # the secrets page's rows were checked
        assert not problems, "\n".join(problems)
    finally:
        context.close()

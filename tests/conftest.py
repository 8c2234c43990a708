"""Fixtures shared by every test: people, workspaces, API clients and a browser."""

import os

import pytest
from django.test import Client

from devpilot.models import Membership, Role, User
from devpilot.tokens import create_api_token
from devpilot.workspaces import create_workspace

PASSWORD = "correct-horse-battery-staple"


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Rate limits (failed logins, API) live in the cache: every test starts with none."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture
def make_user(db):
    def make(email="owner@example.com", password=PASSWORD, **extra):
        return User.objects.create_user(email=email, password=password, **extra)

    return make


@pytest.fixture
def owner(make_user):
    return make_user("owner@example.com")


@pytest.fixture
def workspace(owner):
    return create_workspace(owner, "Acme")


@pytest.fixture
def make_member(make_user):
    """make_member(workspace, role) -> a user holding `role` in `workspace`."""

    def make(workspace, role=Role.MEMBER, email=None):
        user = make_user(email or f"{role}-{workspace.slug}@example.com")
        Membership.objects.create(workspace=workspace, user=user, role=role)
        return user

    return make


@pytest.fixture
def client_for():
    """client_for(user) -> a Django test client logged in as `user`."""

    def make(user):
        client = Client()
        client.force_login(user)
        return client

    return make


def error_fields(response) -> set[str]:
    """The fields a 400 names, from the API's details list."""
    return {detail["field"] for detail in response.json().get("details", [])}


class ApiClient:
    """A test client that sends a workspace API token and JSON bodies."""

    def __init__(self, token):
        self.token = token
        self.client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")

    def _send(self, method, path, data=None, **extra):
        kwargs = {"content_type": "application/json"} if data is not None else {}
        return getattr(self.client, method)(path, data, **kwargs, **extra) if data is not None else getattr(
            self.client, method
        )(path, **extra)

    def get(self, path, params=None, **extra):
        return self.client.get(path, params or {}, **extra)

    def post(self, path, data=None, **extra):
        return self._send("post", path, data if data is not None else {}, **extra)

    def patch(self, path, data=None, **extra):
        return self._send("patch", path, data if data is not None else {}, **extra)

    def delete(self, path, **extra):
        return self.client.delete(path, **extra)


@pytest.fixture
def api_client_for():
    """api_client_for(workspace, role=admin) -> ApiClient holding a fresh token."""

    def make(workspace, role=Role.ADMIN):
        _, plaintext = create_api_token(workspace, f"{role} token", role=role)
        return ApiClient(plaintext)

    return make


@pytest.fixture
def api(workspace, api_client_for):
    return api_client_for(workspace)


# --- Browser -----------------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run must apt-get install chromium.")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium).")
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        yield browser
        browser.close()


class ConsoleErrors(list):
    def check(self):
        assert not self, f"Browser console errors: {list(self)}"


@pytest.fixture
def new_page(browser, live_server):
    """new_page() -> a fresh browser context's page; any console error fails the test."""
    contexts = []
    errors = ConsoleErrors()

    def make():
        context = browser.new_context(base_url=live_server.url)
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        return page

    yield make
    for context in contexts:
        context.close()
    errors.check()


@pytest.fixture
def page(new_page):
    return new_page()


def log_in(page, email, password=PASSWORD):
    page.goto("/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


# --- PostgreSQL-only tests ------------------------------------------------------------------


@pytest.fixture
def requires_postgres(django_db_blocker):
    """Use in tests that only mean something on PostgreSQL (row locks, real concurrency).

    In CI (CI=true) a missing PostgreSQL fails loudly; elsewhere the test is skipped.
    """
    from django.db import connection

    if connection.vendor != "postgresql":
        message = "needs PostgreSQL: set DATABASE_URL=postgres://postgres@127.0.0.1:5432/test"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


# --- The fake DigitalOcean ------------------------------------------------------------------

GOOD_DO_TOKEN = "dop_v1_good"


@pytest.fixture
def fake_do(settings):
    """The fake DigitalOcean, in-process through `responses`; token "dop_v1_good" has every scope."""
    import responses

    from tests.fake_digitalocean import FakeDigitalOcean

    fake = FakeDigitalOcean()
    fake.add_token(GOOD_DO_TOKEN, account={"uuid": "acct-1", "email": "ops@acme.test"})
    settings.DIGITALOCEAN_API_URL = fake.base_url
    with responses.RequestsMock(assert_all_requests_are_fired=False,
                                passthru_prefixes=("http://localhost", "http://127.0.0.1")) as rsps:
        fake.install(rsps)
        yield fake


@pytest.fixture
def dev(workspace):
    """The workspace's dev environment."""
    return workspace.environments.get(slug="dev")


@pytest.fixture
def prod(workspace):
    """The workspace's prod environment."""
    return workspace.environments.get(slug="prod")


@pytest.fixture
def connection(workspace, fake_do):
    """A DigitalOcean connection whose token the fake knows (every scope)."""
    from connections.models import Connection

    return Connection.objects.create(workspace=workspace, name="do", token=GOOD_DO_TOKEN, account_uuid="acct-1")


@pytest.fixture
def fake_do_server(settings):
    """The fake DigitalOcean as a live HTTP server (for workers in other processes and the browser)."""
    from tests.fake_digitalocean import FakeDigitalOcean

    fake = FakeDigitalOcean()
    fake.add_token(GOOD_DO_TOKEN, account={"uuid": "acct-1", "email": "ops@acme.test"})
    settings.DIGITALOCEAN_API_URL = fake.serve()
    yield fake
    fake.stop()


# --- Accessibility (axe-core, vendored in static/vendor/axe/) --------------------------------

AXE_SRC = "/static/vendor/axe/axe.min.js"
_INJECT_AXE = """(src) => new Promise((resolve, reject) => {
  if (window.axe) return resolve();
  const script = document.createElement("script");
  script.src = src;
  script.nonce = document.querySelector("script[nonce]").nonce;  // the page's CSP nonce
  script.onload = () => resolve();
  script.onerror = () => reject(new Error("axe-core could not be loaded under the page's CSP"));
  document.head.appendChild(script);
})"""
_RUN_AXE = """() => axe.run(document, {resultTypes: ["violations"]}).then(r => r.violations.map(v => ({
  id: v.id, impact: v.impact, help: v.help,
  nodes: v.nodes.slice(0, 5).map(n => ({target: n.target.join(" "), summary: n.failureSummary})),
})))"""


def axe_violations(page) -> list[dict]:
    """Run axe-core on the page as it is now (injected with the page's CSP nonce); its violations."""
    page.evaluate(_INJECT_AXE, AXE_SRC)
    return page.evaluate(_RUN_AXE)


def describe_violations(url, violations) -> list[str]:
    return [f"{url}: {v['id']} ({v['impact']}) {v['help']}: " + "; ".join(n["target"] for n in v["nodes"])
            for v in violations]


# --- Real workers (qcluster processes on PostgreSQL) -------------------------------------------


def worker_database_url() -> str:
    """The test database, as a URL for worker processes started by a test."""
    from django.conf import settings

    config = settings.DATABASES["default"]
    return (f"postgres://{config['USER'] or 'postgres'}@{config['HOST'] or '127.0.0.1'}:{config['PORT'] or 5432}/"
            f"{config['NAME']}")


# The ORM broker without REDIS_URL, Redis with it: CI runs the worker tests once each way (.ci/run).
# BROKERS=redis,orm runs both in one go.
WORKER_BROKERS = os.environ.get("BROKERS", "redis" if os.environ.get("REDIS_URL") else "orm").split(",")


@pytest.fixture(params=WORKER_BROKERS)
def broker(request, requires_postgres, monkeypatch):
    """The broker the workers use (a Redis URL, or None for the ORM broker); this process enqueues into it."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", False)
    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/5"
    if request.param == "redis":
        import redis

        try:
            redis.Redis.from_url(url).flushdb()
        except redis.ConnectionError:
            pytest.skip(f"no Redis at {url}")
        monkeypatch.setattr(Conf, "ORM", None)
        monkeypatch.setattr(Conf, "REDIS", url)
        return url
    monkeypatch.setattr(Conf, "ORM", "default")
    return None

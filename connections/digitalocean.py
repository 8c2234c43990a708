"""The DigitalOcean API client: the only code in Devpilot that speaks HTTP to DigitalOcean.

Every error becomes a typed exception whose message is ready for the user and never
contains the token. Reads and idempotent writes are retried on 5xx and connection
errors; a POST is never retried after a 5xx or a timeout (a Droplet could be created
twice): callers reconcile instead.

Rate limits: every request, retries included, first takes one call from its token's budget
(connections/budget.py, shared through the database by every worker and machine; its docstring
holds the policy). When the budget or DigitalOcean's own limit is spent until a moment at most
MAX_RATE_WAIT away, the client sleeps until then (in a web request only within its time budget,
WEB_REQUEST_BUDGET); further away it raises RateLimited with reset_at, so a task reschedules
instead of sleeping. A 429 makes every process hold off until DigitalOcean's reset.
"""

import logging
import random
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.utils import timezone

from connections.budget import CallBudget, Refusal, rate_key_for
from devpilot.errors import DevpilotError, Forbidden, Invalid, UpstreamError
from devpilot.errors import NotFound as DevpilotNotFound
from devpilot.errors import RateLimited as DevpilotRateLimited

logger = logging.getLogger("devpilot.digitalocean")

CONNECT_TIMEOUT = 5
READ_TIMEOUT = 30
MAX_ATTEMPTS = 4
BACKOFF_BASE = 0.5
BACKOFF_CAP = 8.0
MAX_PAGES = 100
PER_PAGE = 200
# Wait for a rate-limit reset this close; further away, raise so a task can reschedule.
MAX_RATE_WAIT = 5.0

# Scope DigitalOcean requires per operation, for 403 messages.
SCOPES = {
    ("GET", "account"): ("read the account", "account:read"),
    ("GET", "apps"): ("read apps", "app:read"),
    ("PUT", "apps"): ("update apps", "app:update"),
    ("POST", "apps"): ("update apps", "app:update"),
    ("GET", "droplets"): ("read Droplets", "droplet:read"),
    ("POST", "droplets"): ("create Droplets", "droplet:create"),
    ("DELETE", "droplets"): ("delete Droplets", "droplet:delete"),
    ("GET", "regions"): ("read regions", "regions:read"),
    ("GET", "sizes"): ("read sizes", "sizes:read"),
    ("GET", "images"): ("read images", "image:read"),
    ("GET", "firewalls"): ("read firewalls", "firewall:read"),
    ("POST", "firewalls"): ("create firewalls", "firewall:create"),
    ("PUT", "firewalls"): ("update firewalls", "firewall:update"),
    ("DELETE", "firewalls"): ("delete firewalls", "firewall:delete"),
    ("GET", "keys"): ("read SSH keys", "ssh_key:read"),
    ("POST", "keys"): ("add SSH keys", "ssh_key:create"),
    ("POST", "tags"): ("create tags", "tag:create"),
    ("GET", "actions"): ("read actions", "actions:read"),
    ("GET", "snapshots"): ("read snapshots", "snapshot:read"),
    ("DELETE", "snapshots"): ("delete snapshots", "snapshot:delete"),
}


class DigitalOceanError(Exception):
    """Base of every client error. `message` is safe to show to the user."""

    def __init__(self, message, *, status=None, request_id=None, error_id=None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.request_id = request_id
        self.error_id = error_id

    def __str__(self):
        return self.message + (f" (request id {self.request_id})" if self.request_id else "")


class InvalidToken(DigitalOceanError):
    """401: the token is wrong, expired or revoked."""


class MissingScope(DigitalOceanError):
    """403: the token works but lacks the scope this operation needs."""


class NotFound(DigitalOceanError):
    """404."""


class Rejected(DigitalOceanError):
    """400/409/422: DigitalOcean refused the request; its own message says why."""


class RateLimited(DigitalOceanError):
    """429, or the shared budget is exhausted: try again at reset_at."""

    def __init__(self, message, *, reset_at=None, **kwargs):
        super().__init__(message, **kwargs)
        self.reset_at = reset_at or timezone.now() + timedelta(seconds=60)

    @property
    def retry_after(self):
        return max(0.0, (self.reset_at - timezone.now()).total_seconds())


class Unavailable(DigitalOceanError):
    """5xx, timeout or connection error. `request_sent`: a write may have been applied."""

    def __init__(self, message, *, request_sent=False, **kwargs):
        super().__init__(message, **kwargs)
        self.request_sent = request_sent


def as_devpilot_error(error: DigitalOceanError) -> DevpilotError:
    """DigitalOcean's refusal as Devpilot's error family: the one place its errors get an HTTP status."""
    family = {InvalidToken: Invalid, MissingScope: Forbidden, NotFound: DevpilotNotFound, Rejected: Invalid,
              RateLimited: DevpilotRateLimited}
    kind = next((ours for theirs, ours in family.items() if isinstance(error, theirs)), UpstreamError)
    return kind(str(error))


# A web request waits at most this long for DigitalOcean, retries and rate-limit waits included;
# past it the page says DigitalOcean is slow instead of hanging (tasks get the full policy above).
WEB_REQUEST_BUDGET = 8.0
_budget: ContextVar[tuple[float, float] | None] = ContextVar("digitalocean_budget", default=None)  # (deadline, seconds)


@contextmanager
def web_request_budget(seconds: float = WEB_REQUEST_BUDGET) -> Iterator[None]:
    token = _budget.set((time.monotonic() + seconds, seconds))
    try:
        yield
    finally:
        _budget.reset(token)


def _time_left() -> float | None:
    budget = _budget.get()
    return None if budget is None else budget[0] - time.monotonic()


# Every id that goes into a path is checked against DigitalOcean's own id formats first, so no
# stored or typed value ("../account", "1?tag_name=x") can make Devpilot call another endpoint.
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_UUID = re.compile(UUID_PATTERN)
_FINGERPRINT = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){15}$")


def _uuid(value: object) -> str:
    if not _UUID.match(str(value)):
        raise Rejected(f"{str(value)[:60]!r} is not a DigitalOcean id (a UUID); nothing was sent.")
    return str(value)


def _number(value: object) -> int:
    if isinstance(value, bool) or not re.fullmatch(r"[0-9]{1,19}", str(value)):
        raise Rejected(f"{str(value)[:60]!r} is not a DigitalOcean id (a number); nothing was sent.")
    return int(str(value))


def _key_ref(value: object) -> str:
    return value if isinstance(value, str) and _FINGERPRINT.match(value) else str(_number(value))


def _timeouts() -> tuple[float, float]:
    left = _time_left()
    if left is None:
        return CONNECT_TIMEOUT, READ_TIMEOUT
    if left <= 0.5:
        raise Unavailable(f"DigitalOcean did not answer within {_budget.get()[1]:.0f} seconds. Nothing more was "  # type: ignore[index]
                          "sent; try again in a moment.")
    return min(CONNECT_TIMEOUT, left), min(READ_TIMEOUT, left)


def _may_wait(seconds: float) -> bool:
    """Whether a retry's wait still fits the web request's budget (always, in a task)."""
    left = _time_left()
    return left is None or seconds < left - 1


def _resource(path):
    parts = [p for p in path.split("/") if p and p != "v2"]
    if parts[:2] == ["account", "keys"]:
        return "keys"
    if "actions" in parts:
        return "actions" if parts[0] == "actions" else "droplets"
    return parts[0] if parts else ""


def _operation(method, path):
    return SCOPES.get((method, _resource(path)), (f"{method} {path}", None))


def _error_body(response):
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _reset_time(response):
    retry_after = response.headers.get("retry-after")
    if retry_after and retry_after.strip().isdigit():
        return timezone.now() + timedelta(seconds=int(retry_after))
    reset = response.headers.get("ratelimit-reset")
    if reset and reset.strip().isdigit():
        return datetime.fromtimestamp(int(reset), tz=UTC)
    return None


def _sleep(seconds):
    time.sleep(seconds)


class DigitalOceanClient:
    def __init__(self, token, *, rate_key=None, base_url=None):
        """`rate_key` names the call budget; by default the token's hash, shared by every client of the token."""
        self._token = token
        self._base_url = base_url
        self.budget = CallBudget(rate_key or rate_key_for(token))
        self.session = requests.Session()
        self.session.headers.update({
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": f"Devpilot/{settings.VERSION} (+{settings.DEVPILOT_PUBLIC_URL})",
        })
        self.calls = []
        self.request_ids = []

    def __repr__(self):
        return f"<DigitalOceanClient {self.base_url}>"  # never the token

    @classmethod
    def for_connection(cls, connection):
        return cls(connection.token)  # connections holding the same token share its budget

    @property
    def base_url(self):
        return (self._base_url or settings.DIGITALOCEAN_API_URL).rstrip("/")

    # --- The one HTTP choke point --------------------------------------------------------

    def request(self, method, path, *, params=None, json=None, retry=None):
        url = path if path.startswith("http") else self.base_url + path
        retriable = method in ("GET", "PUT", "DELETE", "HEAD") if retry is None else retry
        attempt = 0
        waited_out_429 = False
        while True:
            attempt += 1
            self._take_turn(heed_hold=not waited_out_429)
            started = time.monotonic()
            try:
                response = self.session.request(method, url, params=params, json=json, timeout=_timeouts(),
                                                allow_redirects=False)
            except (requests.ConnectionError, requests.Timeout) as e:
                sent = not isinstance(e, requests.ConnectTimeout)
                self._log(method, url, "error", started, None)
                self.calls.append((method, urlsplit(url).path, None))
                error = Unavailable(
                    "DigitalOcean did not answer in time." if isinstance(e, requests.Timeout)
                    else "DigitalOcean could not be reached.",
                    request_sent=sent and method not in ("GET", "HEAD"),
                )
                if retriable and attempt < MAX_ATTEMPTS and _may_wait(backoff := self._backoff(attempt)):
                    _sleep(backoff)
                    continue
                raise error from None
            request_id = response.headers.get("x-request-id")
            if request_id:
                self.request_ids.append(request_id)
            self._log(method, url, response.status_code, started, request_id)
            self.calls.append((method, urlsplit(url).path, response.status_code))
            if response.status_code != 429:  # a 429 holds everyone off below, with its own reset
                self.budget.observe(response.headers)
            if 300 <= response.status_code < 400:
                # Never followed: the token would go with it to wherever the redirect points.
                raise Unavailable(f"DigitalOcean answered with a redirect ({response.status_code}), which Devpilot "
                                  "does not follow. Check DIGITALOCEAN_API_URL.", status=response.status_code,
                                  request_id=request_id)
            if response.status_code < 400:
                return response.json() if response.content else None
            error = self._error(method, urlsplit(url).path, response)
            if isinstance(error, RateLimited):
                self.budget.exhaust(error.reset_at)
                if error.retry_after <= MAX_RATE_WAIT and attempt < MAX_ATTEMPTS and _may_wait(error.retry_after):
                    _sleep(error.retry_after + random.uniform(0, 0.25))
                    waited_out_429 = True
                    continue
                raise error
            if isinstance(error, Unavailable) and retriable and attempt < MAX_ATTEMPTS and _may_wait(
                    backoff := self._backoff(attempt)):
                _sleep(backoff)
                continue
            raise error

    def _take_turn(self, *, heed_hold=True):
        """One call from the token's budget before each request: wait a little for it, or raise RateLimited."""
        refusal: Refusal | None = None
        for _ in range(MAX_ATTEMPTS):
            refusal = self.budget.take(heed_hold=heed_hold)
            if refusal is None:
                return
            wait = refusal.wait
            if refusal.held and refusal.spare and wait <= 2 * MAX_RATE_WAIT:
                # DigitalOcean says a few calls are left: spread them over the rest of its window.
                pause = wait / (refusal.spare + 1)
                if _may_wait(pause):
                    _sleep(pause)
                heed_hold = False
                continue
            if wait > MAX_RATE_WAIT or not _may_wait(wait):
                break
            _sleep(wait + random.uniform(0, 0.25))  # others wake at the same reset: don't all ask at once
            heed_hold = heed_hold and not refusal.held  # DigitalOcean's reset is waited out
        assert refusal is not None
        raise RateLimited(refusal.message, reset_at=refusal.reset_at, status=429)

    def _backoff(self, attempt):
        return random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1)))

    def _log(self, method, url, status, started, request_id):
        logger.info(
            "digitalocean %s %s %s %.0fms request_id=%s",
            method, urlsplit(url).path, status, (time.monotonic() - started) * 1000, request_id or "-",
        )

    def _error(self, method, path, response):
        body = _error_body(response)
        request_id = body.get("request_id") or response.headers.get("x-request-id")
        status = response.status_code
        do_message = body.get("message") or "; ".join(body.get("messages") or []) or ""
        kwargs = {"status": status, "request_id": request_id, "error_id": body.get("id") or body.get("error")}
        if status == 401:
            return InvalidToken(
                "DigitalOcean rejected the token: it is wrong, expired or revoked. "
                "Check it under API > Personal access tokens in DigitalOcean.", **kwargs)
        if status == 403:
            operation, scope = _operation(method, path)
            needs = f" It needs the {scope} scope." if scope else ""
            return MissingScope(f"This token is not allowed to {operation}.{needs}", **kwargs)
        if status == 404:
            return NotFound(do_message or f"DigitalOcean has no such resource ({path}).", **kwargs)
        if status == 429:
            reset_at = _reset_time(response)
            when = f" until {reset_at:%H:%M:%S} UTC" if reset_at else ""
            return RateLimited(f"DigitalOcean's rate limit for this token is exceeded{when}.", reset_at=reset_at, **kwargs)
        if status >= 500:
            return Unavailable(f"DigitalOcean had an error ({status}). Try again shortly.",
                               request_sent=method not in ("GET", "HEAD"), **kwargs)
        return Rejected(f"DigitalOcean refused the request: {do_message or response.reason}", **kwargs)

    # --- Generic helpers -------------------------------------------------------------------

    def get(self, path, params=None):
        return self.request("GET", path, params=params)

    def post(self, path, json=None):
        return self.request("POST", path, json=json or {})

    def put(self, path, json=None):
        return self.request("PUT", path, json=json or {})

    def delete(self, path, params=None):
        return self.request("DELETE", path, params=params)

    def paginate(self, path, key, params=None, max_pages=MAX_PAGES):
        """Every item of a list endpoint: per_page=200, following next links on our origin only."""
        items = []
        origin = urlsplit(self.base_url)[:2]
        url, query = path, {**(params or {}), "per_page": PER_PAGE}
        for _ in range(max_pages):
            page = self.get(url, params=query) or {}
            items.extend(page.get(key) or [])
            next_url = ((page.get("links") or {}).get("pages") or {}).get("next")
            if not next_url:
                return items
            if urlsplit(next_url)[:2] != origin:
                logger.warning("digitalocean ignored a next link to another origin: %s", urlsplit(next_url).netloc)
                return items
            url, query = next_url, None
        raise Rejected(f"DigitalOcean returned more than {max_pages} pages of {key}; stopped there.")

    # --- Typed operations --------------------------------------------------------------------

    def get_account(self):
        return self.get("/v2/account")["account"]

    def list_apps(self):
        return self.paginate("/v2/apps", "apps")

    def get_app(self, app_id):
        return self.get(f"/v2/apps/{_uuid(app_id)}")["app"]

    def update_app(self, app_id, spec):
        # Never resent on its own: each PUT that took effect starts a deployment. After an unknown outcome the
        # caller reads the app back (syncs/destinations/digitalocean_app_platform.py).
        return self.request("PUT", f"/v2/apps/{_uuid(app_id)}", json={"spec": spec}, retry=False)["app"]

    def get_deployment(self, app_id, deployment_id):
        return self.get(f"/v2/apps/{_uuid(app_id)}/deployments/{_uuid(deployment_id)}")["deployment"]

    def list_regions(self):
        return self.paginate("/v2/regions", "regions")

    def list_sizes(self):
        return self.paginate("/v2/sizes", "sizes")

    def list_images(self, type="distribution"):
        return self.paginate("/v2/images", "images", {"type": type})

    def list_ssh_keys(self):
        return self.paginate("/v2/account/keys", "ssh_keys")

    def get_ssh_key(self, id_or_fingerprint):
        return self.get(f"/v2/account/keys/{_key_ref(id_or_fingerprint)}")["ssh_key"]

    def create_ssh_key(self, name, public_key):
        return self.post("/v2/account/keys", {"name": name, "public_key": public_key})["ssh_key"]

    def list_droplets(self, tag_name=None):
        return self.paginate("/v2/droplets", "droplets", {"tag_name": tag_name} if tag_name else None)

    def get_droplet(self, droplet_id):
        return self.get(f"/v2/droplets/{_number(droplet_id)}")["droplet"]

    def create_droplet(self, **body):
        return self.post("/v2/droplets", body)["droplet"]

    def delete_droplet(self, droplet_id):
        self.delete(f"/v2/droplets/{_number(droplet_id)}")

    def droplet_action(self, droplet_id, type, **params):
        return self.post(f"/v2/droplets/{_number(droplet_id)}/actions", {"type": type, **params})["action"]

    def pending_droplet_actions(self, droplet_id):
        """The Droplet's actions still in progress (newest first: one page is enough to see them)."""
        page = self.get(f"/v2/droplets/{_number(droplet_id)}/actions", params={"per_page": 50}) or {}
        return [a for a in page.get("actions") or [] if a.get("status") == "in-progress"]

    def list_droplet_snapshots(self, droplet_id):
        return self.paginate(f"/v2/droplets/{_number(droplet_id)}/snapshots", "snapshots")

    def list_snapshots(self):
        """The account's Droplet snapshots (images a new Droplet can be created from)."""
        return self.paginate("/v2/snapshots", "snapshots", {"resource_type": "droplet"})

    def get_snapshot(self, snapshot_id):
        return self.get(f"/v2/snapshots/{_number(snapshot_id)}")["snapshot"]

    def delete_snapshot(self, snapshot_id):
        self.delete(f"/v2/snapshots/{_number(snapshot_id)}")

    def get_action(self, action_id):
        return self.get(f"/v2/actions/{_number(action_id)}")["action"]

    def list_firewalls(self):
        return self.paginate("/v2/firewalls", "firewalls")

    def get_firewall(self, firewall_id):
        return self.get(f"/v2/firewalls/{_uuid(firewall_id)}")["firewall"]

    def create_firewall(self, **body):
        return self.post("/v2/firewalls", body)["firewall"]

    def update_firewall(self, firewall_id, body):
        """PUT replaces the whole firewall: `body` must carry every attribute to keep (name, rules, droplets, tags)."""
        return self.put(f"/v2/firewalls/{_uuid(firewall_id)}", body)["firewall"]

    def delete_firewall(self, firewall_id):
        self.delete(f"/v2/firewalls/{_uuid(firewall_id)}")

    def add_droplets_to_firewall(self, firewall_id, droplet_ids):
        self.post(f"/v2/firewalls/{_uuid(firewall_id)}/droplets", {"droplet_ids": list(droplet_ids)})

    def create_tag(self, name):
        return self.post("/v2/tags", {"name": name})["tag"]

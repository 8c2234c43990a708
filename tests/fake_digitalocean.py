"""A stateful fake of the DigitalOcean API endpoints Devpilot uses.

It answers as the real API does (see ../shared/digitalocean-openapi and REFERENCE.md):
error bodies {id, message, request_id} with an x-request-id header, rate-limit headers
on every response and 429s past a per-minute budget, 401 for unknown or revoked tokens,
403 for a token without the operation's scope, pages with absolute next links, SECRET
app variables encrypted to EV[...] and accepted back unchanged, one deployment per app
update. Faults can be injected per request.

Deployments: each app update starts one, PENDING_BUILD → BUILDING → PENDING_DEPLOY → DEPLOYING →
ACTIVE, each phase answered to `phase_after_gets` reads of it (or lasting `phase_seconds`); set
`deployment_outcome[app_id] = "ERROR"` (with `deployment_reason[app_id] = {code, message}`) or
"CANCELED" before an update to make its deployment end so. A newer update supersedes an unfinished
one (SUPERSEDED). The app's pending/in-progress/active deployment fields follow.

Every request body is checked before its route runs, so a refused call changes nothing: first
against DigitalOcean's published schema (tests/openapi), then against the rules the real API
enforces beyond it (firewall addresses and ports, SSH public keys, tag names, action fields).
A refusal answers as DigitalOcean does for that operation: 422 unprocessable_entity for most,
400 invalid_argument for App Platform, 400 {error, messages, root_causes} for tags.

Two ways to use it:
    fake.install(responses_mock)      in-process, through `responses`
    fake.serve()                      a live HTTP server thread; returns its base URL
    python -m tests.fake_digitalocean --port 8111   (token dop_v1_demo, two demo apps)
"""

import argparse
import base64
import copy
import hashlib
import ipaddress
import json
import re
import secrets
import struct
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from tests import openapi

COMPONENT_KINDS = ("services", "workers", "jobs", "static_sites", "functions")
HOURLY_LIMIT = 5000

REGIONS = [
    {"slug": "nyc3", "name": "New York 3", "available": True, "features": ["monitoring"],
     "sizes": ["s-1vcpu-1gb", "s-2vcpu-2gb", "s-4vcpu-8gb"]},
    {"slug": "fra1", "name": "Frankfurt 1", "available": True, "features": ["monitoring"],
     "sizes": ["s-1vcpu-1gb", "s-2vcpu-2gb"]},
    {"slug": "sfo1", "name": "San Francisco 1", "available": False, "features": [], "sizes": []},
]
SIZES = [
    {"slug": "s-1vcpu-1gb", "memory": 1024, "vcpus": 1, "disk": 25, "transfer": 1.0, "price_monthly": 6.0,
     "price_hourly": 0.00893, "regions": ["nyc3", "fra1"], "available": True, "description": "Basic"},
    {"slug": "s-2vcpu-2gb", "memory": 2048, "vcpus": 2, "disk": 60, "transfer": 3.0, "price_monthly": 18.0,
     "price_hourly": 0.02679, "regions": ["nyc3", "fra1"], "available": True, "description": "Basic"},
    {"slug": "s-4vcpu-8gb", "memory": 8192, "vcpus": 4, "disk": 160, "transfer": 5.0, "price_monthly": 48.0,
     "price_hourly": 0.07143, "regions": ["nyc3"], "available": True, "description": "Basic"},
]
IMAGES = [
    {"id": 1001, "slug": "ubuntu-24-04-x64", "name": "24.04 (LTS) x64", "distribution": "Ubuntu",
     "type": "base", "public": True, "regions": ["nyc3", "fra1"], "min_disk_size": 7, "status": "available"},
    {"id": 1002, "slug": "ubuntu-22-04-x64", "name": "22.04 (LTS) x64", "distribution": "Ubuntu",
     "type": "base", "public": True, "regions": ["nyc3", "fra1"], "min_disk_size": 7, "status": "available"},
    {"id": 1003, "slug": "debian-12-x64", "name": "12 x64", "distribution": "Debian",
     "type": "base", "public": True, "regions": ["nyc3", "fra1"], "min_disk_size": 7, "status": "available"},
]


class FakeError(Exception):
    def __init__(self, status, error_id, message, body: dict | None = None):
        super().__init__(message)
        self.status, self.error_id, self.message = status, error_id, message
        self.body = body  # an answer body other than {id, message, request_id}, for the endpoints that have one


@dataclass
class Fault:
    method: str
    pattern: re.Pattern
    status: object  # an HTTP status, or "timeout"
    times: int
    after_applying: bool


def unprocessable(message: str) -> FakeError:
    return FakeError(422, "unprocessable_entity", message)


def invalid_argument(message: str) -> FakeError:
    """App Platform refuses an invalid spec with 400 invalid_argument, not the droplet API's 422."""
    return FakeError(400, "invalid_argument", message)


def tag_refusal(message: str) -> FakeError:
    """POST /v2/tags answers 400 with its own body (components/responses/tags_bad_request)."""
    error = f"Error validating resource tag: {message}"
    return FakeError(400, "bad_request", error, body={
        "error": error, "messages": None, "root_causes": [f"rpc error: code = InvalidArgument desc = {error}"]})


@dataclass
class Route:
    method: str
    pattern: re.Pattern
    handler: object
    scope: str
    rules: Callable[[dict], str | None] | None = None  # what the real API refuses beyond its published schema
    refuse: Callable[[str], FakeError] = field(default=unprocessable)


class FakeDigitalOcean:
    def __init__(self, base_url="https://api.digitalocean.test", per_minute=250):
        self.base_url = base_url.rstrip("/")
        self.per_minute = per_minute
        self.lock = threading.RLock()
        self.tokens = {}
        self.apps = {}
        self.deployment_counts = defaultdict(int)
        self.deploying = set()  # app ids with a deployment in progress that refuses updates
        self.requests = []  # (method, path, JSON body) as received
        self.answers = []  # (method, path, status, JSON body) as sent back
        self.faults = []
        self.recent = defaultdict(deque)  # token -> request times in the last minute
        self.hourly = defaultdict(int)
        self.secret_values = {}  # EV[...] -> plaintext, as App Platform keeps them
        self.droplets = {}
        self.firewalls = {}
        self.ssh_keys = {}
        self.actions = {}
        self.snapshots = {}  # id -> snapshot (with the private _droplet_id)
        self.tags = set()
        self.regions = copy.deepcopy(REGIONS)
        self.sizes = copy.deepcopy(SIZES)
        self.images = copy.deepcopy(IMAGES)
        self._server = None
        self.routes = []
        self._register_core_routes()
        self._register_droplet_routes()
        self.action_started = {}
        self.latency = []  # (method, path regex, seconds) added before answering, e.g. a slow App Platform PUT
        self.action_seconds = 2.0  # an action nobody asks about ends on its own after this long
        self.boot_after_gets = 2  # a new Droplet answers "new" to this many GETs, then "active"
        self._next_id = 100000
        self.app_deployments = defaultdict(dict)  # app id -> deployment id -> deployment (with private _ fields)
        self.deployment_outcome = {}  # app id -> "ERROR" or "CANCELED": how its next deployments end (else ACTIVE)
        self.deployment_reason = {}  # app id -> {"code", "message"}: the failing step's reason for an ERROR
        self.phase_after_gets = 1  # a deployment answers each phase to this many reads of it, then moves on...
        self.phase_seconds = None  # ...or, when set, one phase every this many seconds, read or not

    # --- Set-up --------------------------------------------------------------------------------

    def add_token(self, token, scopes=None, account=None):
        """scopes=None grants everything; otherwise a set like {"account:read", "app:read"}."""
        account = {
            "uuid": str(uuid.uuid4()), "email": "ops@example.test", "email_verified": True, "status": "active",
            "status_message": "", "droplet_limit": 25, "floating_ip_limit": 3, "volume_limit": 100,
            "team": {"uuid": "team-1", "name": "Example Team"}, **(account or {}),
        }
        with self.lock:
            self.tokens[token] = {"scopes": scopes, "account": account, "revoked": False}
        return account

    def revoke_token(self, token):
        with self.lock:
            self.tokens[token]["revoked"] = True

    def add_app(self, name, envs=None, services=None, **spec_extra):
        spec = {"name": name, "region": "nyc", **spec_extra}
        if envs is not None:
            spec["envs"] = copy.deepcopy(envs)
        if services is not None:
            spec["services"] = copy.deepcopy(services)
        app_id = str(uuid.uuid4())
        with self.lock:
            for envs in _all_envs(spec):  # seeded EV[...] values count as already stored
                self.secret_values.update({v["value"]: "(set elsewhere)" for v in envs if str(v.get("value", "")).startswith("EV[")})
            self._encrypt_secrets(spec)
            self.apps[app_id] = {
                "id": app_id, "owner_uuid": "owner-1", "spec": spec, "default_ingress": f"https://{name}.ondigitalocean.app",
                "created_at": _now(), "updated_at": _now(), "region": {"slug": "nyc"},
            }
            self._start_deployment(app_id, "initial deployment", outcome="ACTIVE", done=True)
        return copy.deepcopy(self.apps[app_id])

    def deployments(self, app_id):
        return self.deployment_counts[app_id]

    def deployment(self, app_id, deployment_id):
        """A deployment as the API shows it (without advancing it)."""
        with self.lock:
            return copy.deepcopy(self._public(self.app_deployments[app_id][deployment_id]))

    def latest_deployment(self, app_id):
        with self.lock:
            return copy.deepcopy(self._public(list(self.app_deployments[app_id].values())[-1]))

    def app_envs(self, app_id, component=None):
        spec = self.apps[app_id]["spec"]
        if component is None:
            return {e["key"]: e for e in spec.get("envs", [])}
        for kind in COMPONENT_KINDS:
            for item in spec.get(kind) or []:
                if item["name"] == component:
                    return {e["key"]: e for e in item.get("envs", [])}
        raise KeyError(component)

    def plaintext(self, value):
        """What App Platform would give the app at run time for a stored value."""
        return self.secret_values.get(value, value)

    def fail_next(self, method, path_regex, status=500, times=1, after_applying=False):
        with self.lock:
            self.faults.append(Fault(method.upper(), re.compile(path_regex), status, times, after_applying))

    def count(self, method, path_regex):
        return sum(1 for m, p, _ in self.requests if m == method and re.fullmatch(path_regex, p))

    # --- Core -------------------------------------------------------------------------------------

    def route(self, method, path_regex, scope, *, rules: Callable[[dict], str | None] | None = None,
              refuse: Callable[[str], FakeError] = unprocessable):
        # Every route is an operation of the OpenAPI subset, or its bodies could not be checked: fail at start-up.
        openapi.operation_template(method, re.sub(r"\(\?P<\w+>[^)]*\)", "1", path_regex))

        def register(handler):
            self.routes.append(Route(method, re.compile(f"^{path_regex}$"), handler, scope, rules, refuse))
            return handler

        return register

    def handle(self, method, url, headers, body):
        """Answer one request: (status, headers, body text); `timeout` as status means no answer."""
        path = urlsplit(url).path
        delay = next((seconds for m, pattern, seconds in self.latency if m == method and re.search(pattern, path)), 0)
        if delay:
            time.sleep(delay)  # outside the lock: other requests are answered meanwhile
        status, answer_headers, text = self._answer(method, url, headers, body)
        with self.lock:
            self.answers.append((method, urlsplit(url).path, status, json.loads(text) if text else None))
        return status, answer_headers, text

    def _answer(self, method, url, headers, body):
        parts = urlsplit(url)
        path, query = parts.path, {k: v[-1] for k, v in parse_qs(parts.query).items()}
        request_id = str(uuid.uuid4())
        with self.lock:
            payload, unparsable = _parse(body)
            self.requests.append((method, path, payload))
            token = (headers.get("Authorization") or headers.get("authorization") or "").removeprefix("Bearer ")
            info = self.tokens.get(token)
            base_headers = {"x-request-id": request_id, "content-type": "application/json"}
            if info is None or info["revoked"]:
                return self._error(401, "unauthorized", "Unable to authenticate you.", request_id, base_headers)
            limited = self._rate(token, base_headers)
            if limited:
                return self._error(429, "too_many_requests", "API Rate limit exceeded.", request_id, base_headers)
            fault = self._take_fault(method, path)
            if fault and not fault.after_applying:
                return self._fault_answer(fault, request_id, base_headers)
            for route in self.routes:
                match = route.pattern.match(path)
                if match and route.method == method:
                    if info["scopes"] is not None and route.scope not in info["scopes"]:
                        return self._error(403, "forbidden", "You are not authorized to perform this operation.",
                                           request_id, base_headers)
                    try:
                        self._check_body(route, method, path, payload, unparsable)
                        status, answer = route.handler(self, token=token, query=query, body=payload or {},
                                                       path=path, **match.groupdict())
                    except FakeError as e:
                        return self._error(e.status, e.error_id, e.message, request_id, base_headers, e.body)
                    if fault:
                        return self._fault_answer(fault, request_id, base_headers)
                    return status, base_headers, json.dumps(answer) if answer is not None else ""
            return self._error(404, "not_found", "The resource you were accessing could not be found.", request_id,
                               base_headers)

    @staticmethod
    def _check_body(route: Route, method: str, path: str, body: Any, unparsable: bool) -> None:
        """Refuse a body as DigitalOcean would, before the route runs, so a refused call changes nothing.

        Stricter than the real API in one way: a body on a GET or DELETE is refused, not ignored.
        """
        if unparsable:
            raise FakeError(400, "bad_request", "error parsing request body")
        problem = openapi.request_problem(method, path, body)
        if problem is None and route.rules is not None:
            problem = route.rules(body)  # the schema passed, so the rules may trust the fields' types
        if problem:
            raise route.refuse(problem)

    def _rate(self, token, headers):
        now = time.time()
        window = self.recent[token]
        while window and window[0] < now - 60:
            window.popleft()
        reset = int(window[0] + 60) if window else int(now + 60)
        if len(window) >= self.per_minute:
            headers.update({"ratelimit-limit": str(HOURLY_LIMIT), "ratelimit-remaining": "0",
                            "ratelimit-reset": str(reset), "retry-after": str(max(1, int(reset - now)))})
            return True
        window.append(now)
        self.hourly[token] += 1
        headers.update({"ratelimit-limit": str(HOURLY_LIMIT),
                        "ratelimit-remaining": str(max(0, HOURLY_LIMIT - self.hourly[token])),
                        "ratelimit-reset": str(reset)})
        return False

    def _take_fault(self, method, path):
        for fault in self.faults:
            if fault.method == method and fault.pattern.search(path):
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    def _fault_answer(self, fault, request_id, headers):
        if fault.status == "timeout":
            return "timeout", headers, ""
        if fault.status == 429:
            headers.update({"ratelimit-remaining": "0", "retry-after": "1"})
            return self._error(429, "too_many_requests", "API Rate limit exceeded.", request_id, headers)
        return self._error(fault.status, "server_error", "Server was unable to give you a response.", request_id, headers)

    @staticmethod
    def _error(status, error_id, message, request_id, headers, body: dict | None = None):
        return status, headers, json.dumps(body or {"id": error_id, "message": message, "request_id": request_id})

    def page(self, path, query, key, items):
        """A page of `items` with DigitalOcean's links and meta; next links are absolute."""
        try:
            number = max(1, int(query.get("page", 1)))
            per_page = min(200, max(1, int(query.get("per_page", 20))))
        except ValueError:
            raise FakeError(400, "bad_request", "page and per_page must be integers.") from None
        last = max(1, -(-len(items) // per_page))
        extra = "".join(f"&{k}={v}" for k, v in query.items() if k not in ("page", "per_page"))

        def link(n):
            return f"{self.base_url}{path}?page={n}&per_page={per_page}{extra}"

        pages = {}
        if number > 1:
            pages.update(first=link(1), prev=link(number - 1))
        if number < last:
            pages.update(next=link(number + 1), last=link(last))
        chunk = items[(number - 1) * per_page: number * per_page]
        return {key: copy.deepcopy(chunk), "links": {"pages": pages}, "meta": {"total": len(items)}}

    # --- Endpoints ----------------------------------------------------------------------------------

    def _register_core_routes(self):
        route = self.route

        @route("GET", r"/v2/account", "account:read")
        def account(fake, token, **_):
            return 200, {"account": fake.tokens[token]["account"]}

        @route("GET", r"/v2/regions", "regions:read")
        def regions(fake, query, path, **_):
            return 200, fake.page(path, query, "regions", fake.regions)

        @route("GET", r"/v2/sizes", "sizes:read")
        def sizes(fake, query, path, **_):
            return 200, fake.page(path, query, "sizes", fake.sizes)

        @route("GET", r"/v2/images", "image:read")
        def images(fake, query, path, **_):
            images = [i for i in fake.images if query.get("type") in (None, "distribution")]
            return 200, fake.page(path, query, "images", images)

        @route("GET", r"/v2/droplets", "droplet:read")
        def droplets(fake, query, path, **_):
            found = [fake._public(d) for d in fake.droplets.values() if not query.get("tag_name") or query["tag_name"] in d["tags"]]
            return 200, fake.page(path, query, "droplets", sorted(found, key=lambda d: d["id"]))

        @route("GET", r"/v2/apps", "app:read")
        def apps(fake, query, path, **_):
            return 200, fake.page(path, query, "apps", list(fake.apps.values()))

        @route("GET", r"/v2/apps/(?P<app_id>[^/]+)", "app:read")
        def app(fake, app_id, **_):
            fake._app(app_id)
            fake._advance_by_time(app_id)
            return 200, {"app": copy.deepcopy(fake._app(app_id))}

        # Ids are looked up, not parsed: an unknown or malformed one, or one of another app, is a 404.
        @route("GET", r"/v2/apps/(?P<app_id>[^/]+)/deployments/(?P<deployment_id>[^/]+)", "app:read")
        def deployment(fake, app_id, deployment_id, **_):
            fake._app(app_id)
            item = fake.app_deployments[app_id].get(deployment_id)
            if item is None:
                raise FakeError(404, "not_found", "The resource you were accessing could not be found.")
            fake._advance_by_time(app_id)
            item["_gets"] += 1
            if item["_gets"] > fake.phase_after_gets and fake.phase_seconds is None:
                item["_gets"] = 1
                fake._move(app_id, item, item["_step"] + 1)
            return 200, {"deployment": copy.deepcopy(fake._public(item))}

        # The schema checks the spec (name, variable keys ^[_A-Za-z][_A-Za-z0-9]*$, scopes, types).
        @route("PUT", r"/v2/apps/(?P<app_id>[^/]+)", "app:update", refuse=invalid_argument)
        def update_app(fake, app_id, body, **_):
            current = fake._app(app_id)
            spec = copy.deepcopy(body["spec"])
            if app_id in fake.deploying:
                raise FakeError(409, "conflict", "A deployment is already in progress for this app.")
            fake._check_databases(current["spec"], spec)
            fake._encrypt_secrets(spec)
            current["spec"] = spec
            current["updated_at"] = _now()
            fake.deployment_counts[app_id] += 1
            fake._advance_by_time(app_id)
            fake._start_deployment(app_id, "app spec updated", outcome=fake.deployment_outcome.get(app_id, "ACTIVE"))
            return 200, {"app": copy.deepcopy(current)}

    def _register_droplet_routes(self):
        route = self.route

        @route("GET", r"/v2/account/keys", "ssh_key:read")
        def keys(fake, query, path, **_):
            return 200, fake.page(path, query, "ssh_keys", list(fake.ssh_keys.values()))

        @route("GET", r"/v2/account/keys/(?P<key>[^/]+)", "ssh_key:read")
        def key(fake, key, **_):
            for item in fake.ssh_keys.values():
                if str(item["id"]) == key or item["fingerprint"] == key:
                    return 200, {"ssh_key": item}
            raise FakeError(404, "not_found", "The resource you were accessing could not be found.")

        @route("POST", r"/v2/account/keys", "ssh_key:create", rules=ssh_key_problem)
        def add_key(fake, body, **_):
            public_key = body["public_key"]
            digest = hashlib.md5(base64.b64decode(public_key.split()[1])).hexdigest()  # noqa: S324 - the format
            fingerprint = ":".join(digest[i:i + 2] for i in range(0, 32, 2))
            if any(k["fingerprint"] == fingerprint for k in fake.ssh_keys.values()):
                raise FakeError(422, "unprocessable_entity", "SSH Key is already in use on your account")
            item = {"id": fake._id(), "fingerprint": fingerprint, "public_key": public_key, "name": body.get("name", "")}
            fake.ssh_keys[item["id"]] = item
            return 201, {"ssh_key": item}

        @route("POST", r"/v2/droplets", "droplet:create", rules=droplet_problem)
        def create_droplet(fake, token, body, **_):
            account = fake.tokens[token]["account"]
            if len(fake.droplets) >= account["droplet_limit"]:
                raise FakeError(422, "unprocessable_entity", "creating this/these droplet(s) will exceed your droplet limit")
            region = next((r for r in fake.regions if r["slug"] == body.get("region")), None)
            if region is None or not region["available"]:
                raise FakeError(422, "unprocessable_entity", "Region is not available")
            if body.get("size") not in region["sizes"]:
                raise FakeError(422, "unprocessable_entity", "Size is not available in this region.")
            image = fake._image(body["image"])
            if image is None or body["region"] not in image["regions"]:
                raise FakeError(422, "unprocessable_entity", "You specified an invalid image for Droplet creation.")
            size_disk = next((s["disk"] for s in fake.sizes if s["slug"] == body.get("size")), 0)
            if image["min_disk_size"] > size_disk:
                raise FakeError(422, "unprocessable_entity",
                                "The image's minimum disk size is larger than the size's disk; choose a bigger size.")
            # Ids (integers) or fingerprints of keys on the account; a string id is refused, which may be stricter.
            known = set(fake.ssh_keys) | {v["fingerprint"] for v in fake.ssh_keys.values()}
            unknown = [str(k) for k in body.get("ssh_keys") or [] if k not in known]
            if unknown:
                raise FakeError(422, "unprocessable_entity",
                                f"{', '.join(unknown)} are invalid key identifiers for Droplet creation.")
            droplet_id = fake._id()
            size = next(s for s in fake.sizes if s["slug"] == body["size"])
            droplet = {
                "id": droplet_id, "name": body.get("name"), "memory": size["memory"], "vcpus": size["vcpus"],
                "disk": size["disk"], "locked": False, "status": "new", "created_at": _now(),
                "features": ["backups"] if body.get("backups") else [],
                "backup_ids": [], "snapshot_ids": [], "volume_ids": [], "tags": list(body.get("tags") or []),
                "size": size, "size_slug": size["slug"], "region": {k: region[k] for k in ("slug", "name", "available", "features", "sizes")},
                "image": copy.deepcopy(fake._image(body["image"])),
                "networks": {"v4": [], "v6": []}, "next_backup_window": None, "kernel": None, "vpc_uuid": "vpc-1",
                "_gets": 0, "_ipv6": bool(body.get("ipv6")), "_user_data": body.get("user_data", ""),
            }
            fake.droplets[droplet_id] = droplet
            fake.tags.update(droplet["tags"])
            action = fake._action(droplet_id, "create", "completed")
            return 202, {"droplet": fake._public(droplet), "links": {"actions": [{"id": action["id"], "rel": "create", "href": f"{fake.base_url}/v2/actions/{action['id']}"}]}}

        @route("GET", r"/v2/droplets/(?P<droplet_id>\d+)", "droplet:read")
        def droplet(fake, droplet_id, **_):
            item = fake._droplet(droplet_id)
            item["_gets"] += 1
            if item["status"] == "new" and item["_gets"] > fake.boot_after_gets:
                n = item["id"] % 250
                item["status"] = "active"
                item["networks"] = {"v4": [{"ip_address": f"203.0.113.{n}", "type": "public", "netmask": "255.255.255.0", "gateway": "203.0.113.1"},
                                           {"ip_address": f"10.10.0.{n}", "type": "private", "netmask": "255.255.0.0", "gateway": "10.10.0.1"}],
                                    "v6": [{"ip_address": f"2001:db8::{n:x}", "type": "public", "netmask": 64, "gateway": "2001:db8::1"}] if item["_ipv6"] else []}
            return 200, {"droplet": fake._public(item)}

        @route("DELETE", r"/v2/droplets/(?P<droplet_id>\d+)", "droplet:delete")
        def delete_droplet(fake, droplet_id, **_):
            fake._droplet(droplet_id)
            del fake.droplets[int(droplet_id)]
            for firewall in fake.firewalls.values():
                firewall["droplet_ids"] = [d for d in firewall["droplet_ids"] if d != int(droplet_id)]
            return 204, None

        @route("POST", r"/v2/droplets/(?P<droplet_id>\d+)/actions", "droplet:update", rules=action_problem)
        def droplet_action(fake, droplet_id, body, **_):
            item = fake._droplet(droplet_id)
            if any(a["resource_id"] == item["id"] and fake._running(a) for a in fake.actions.values()):
                raise FakeError(422, "unprocessable_entity", "Droplet already has a pending event.")
            kind = body.get("type")
            if kind == "resize":
                if item["status"] != "off":
                    raise FakeError(422, "unprocessable_entity", "Droplet must be powered off to resize.")
                size = next((s for s in fake.sizes if s["slug"] == body.get("size")), None)
                if size is None or item["region"]["slug"] not in size["regions"] or not size["available"]:
                    raise FakeError(422, "unprocessable_entity", "You specified an invalid size for Droplet resize.")
                if size["disk"] < item["disk"]:  # a disk never shrinks, resized or not
                    raise FakeError(422, "unprocessable_entity",
                                    "This size is not available because it has a smaller disk.")
                item.update(size=size, size_slug=size["slug"], memory=size["memory"], vcpus=size["vcpus"])
                if body.get("disk"):
                    item["disk"] = size["disk"]
            elif kind in ("enable_backups", "disable_backups"):
                features = [f for f in item["features"] if f != "backups"]
                item["features"] = features + (["backups"] if kind == "enable_backups" else [])
                item["next_backup_window"] = None
            elif kind == "snapshot":
                fake._take_snapshot(item, body.get("name") or f"{item['name']}-{int(time.time())}")
            elif kind in ("power_off", "shutdown"):
                item["status"] = "off"
            elif kind in ("power_on", "reboot", "power_cycle"):
                item["status"] = "active"
            elif kind == "rename":
                item["name"] = body["name"]
            # The other types the schema allows (rebuild, restore...) are answered; the fake models no more.
            return 201, {"action": fake._action(item["id"], kind, "in-progress")}

        @route("GET", r"/v2/actions/(?P<action_id>\d+)", "actions:read")
        def action(fake, action_id, **_):
            if int(action_id) not in fake.actions:
                raise FakeError(404, "not_found", "The resource you were accessing could not be found.")
            action = fake.actions[int(action_id)]
            if action["status"] == "in-progress":  # an action finishes by the time anyone asks (or on its own)
                action.update(status="completed", completed_at=_now())
            return 200, {"action": action}

        @route("GET", r"/v2/droplets/(?P<droplet_id>\d+)/actions", "droplet:read")
        def droplet_actions(fake, droplet_id, query, path, **_):
            item = fake._droplet(droplet_id)
            mine = [a for a in fake.actions.values() if a["resource_id"] == item["id"]]
            for action in mine:
                fake._running(action)
            return 200, fake.page(path, query, "actions", sorted(mine, key=lambda a: -a["id"]))

        @route("GET", r"/v2/droplets/(?P<droplet_id>\d+)/snapshots", "droplet:read")
        def droplet_snapshots(fake, droplet_id, query, path, **_):
            item = fake._droplet(droplet_id)
            mine = [fake._snapshot_of_droplet(v) for v in fake.snapshots.values() if v["_droplet_id"] == item["id"]]
            return 200, fake.page(path, query, "snapshots", mine)

        @route("GET", r"/v2/snapshots", "snapshot:read")
        def snapshots(fake, query, path, **_):
            if query.get("resource_type") not in (None, "droplet", "volume"):
                raise FakeError(400, "bad_request", "resource_type must be droplet or volume.")
            every = [fake._snapshot_public(v) for v in fake.snapshots.values()]
            return 200, fake.page(path, query, "snapshots", [v for v in every if query.get("resource_type") in (None, "droplet")])

        @route("GET", r"/v2/snapshots/(?P<snapshot_id>[^/]+)", "snapshot:read")
        def snapshot(fake, snapshot_id, **_):
            return 200, {"snapshot": fake._snapshot_public(fake._snapshot(snapshot_id))}

        @route("DELETE", r"/v2/snapshots/(?P<snapshot_id>[^/]+)", "snapshot:delete")
        def delete_snapshot(fake, snapshot_id, **_):
            item = fake._snapshot(snapshot_id)
            del fake.snapshots[item["id"]]
            droplet = fake.droplets.get(item["_droplet_id"])
            if droplet:
                droplet["snapshot_ids"] = [i for i in droplet["snapshot_ids"] if i != item["id"]]
            return 204, None

        @route("GET", r"/v2/firewalls", "firewall:read")
        def firewalls(fake, query, path, **_):
            return 200, fake.page(path, query, "firewalls", list(fake.firewalls.values()))

        # The schema checks the name (^[a-zA-Z0-9][a-zA-Z0-9\.-]+$) and the protocols.
        @route("POST", r"/v2/firewalls", "firewall:create", rules=firewall_problem)
        def create_firewall(fake, body, **_):
            firewall = {"id": str(uuid.uuid4()), "name": body["name"], "status": "succeeded", "created_at": _now(),
                        "pending_changes": [], "inbound_rules": body.get("inbound_rules") or [],
                        "outbound_rules": body.get("outbound_rules") or [], "droplet_ids": list(body.get("droplet_ids") or []),
                        "tags": list(body.get("tags") or [])}
            fake.firewalls[firewall["id"]] = firewall
            return 202, {"firewall": firewall}

        @route("GET", r"/v2/firewalls/(?P<firewall_id>[^/]+)", "firewall:read")
        def firewall(fake, firewall_id, **_):
            return 200, {"firewall": fake._firewall(firewall_id)}

        # PUT replaces the whole firewall: what the body leaves out (tags, droplets, rules) is gone afterwards.
        @route("PUT", r"/v2/firewalls/(?P<firewall_id>[^/]+)", "firewall:update", rules=firewall_update_problem)
        def update_firewall(fake, firewall_id, body, **_):
            firewall = fake._firewall(firewall_id)
            firewall.update(name=body["name"], inbound_rules=body.get("inbound_rules") or [],
                            outbound_rules=body.get("outbound_rules") or [],
                            droplet_ids=list(body.get("droplet_ids") or []), tags=list(body.get("tags") or []))
            return 200, {"firewall": firewall}

        @route("DELETE", r"/v2/firewalls/(?P<firewall_id>[^/]+)", "firewall:delete")
        def delete_firewall(fake, firewall_id, **_):
            fake._firewall(firewall_id)
            del fake.firewalls[firewall_id]
            return 204, None

        @route("POST", r"/v2/firewalls/(?P<firewall_id>[^/]+)/droplets", "firewall:update")
        def attach(fake, firewall_id, body, **_):
            firewall = fake._firewall(firewall_id)
            for droplet_id in body.get("droplet_ids") or []:
                if droplet_id not in firewall["droplet_ids"]:
                    firewall["droplet_ids"].append(droplet_id)
            return 204, None

        @route("POST", r"/v2/tags", "tag:create", rules=tag_problem, refuse=tag_refusal)
        def tag(fake, body, **_):
            fake.tags.add(body["name"])
            return 201, {"tag": {"name": body["name"], "resources": {"count": 0}}}

    def _id(self):
        self._next_id += 1
        return self._next_id

    def _running(self, action):
        """In progress until someone asks about it or `action_seconds` have passed, as real actions end by themselves."""
        if action["status"] == "in-progress" and time.monotonic() - self.action_started[action["id"]] >= self.action_seconds:
            action.update(status="completed", completed_at=_now())
        return action["status"] == "in-progress"

    def _action(self, droplet_id, kind, status):
        action = {"id": self._id(), "status": status, "type": kind, "started_at": _now(),
                  "completed_at": _now() if status == "completed" else None,
                  "resource_id": droplet_id, "resource_type": "droplet", "region_slug": "nyc3"}
        self.actions[action["id"]] = action
        self.action_started[action["id"]] = time.monotonic()
        return action

    def _image(self, image: str | int) -> dict | None:
        """An image by slug or id, as Droplet create takes it; a snapshot id is an image id too."""
        found = next((i for i in self.images if image in (i["slug"], i["id"])), None)
        snapshot = self.snapshots.get(image) if isinstance(image, int) else None
        if found is None and snapshot is not None:
            found = {"id": snapshot["id"], "name": snapshot["name"], "distribution": "Unknown", "slug": None,
                     "type": "snapshot", "public": False, "regions": list(snapshot["regions"]),
                     "min_disk_size": snapshot["min_disk_size"], "status": "available"}
        return found

    def _take_snapshot(self, droplet, name):
        snapshot = {"id": self._id(), "name": name, "created_at": _now(), "regions": [droplet["region"]["slug"]],
                    "min_disk_size": droplet["disk"], "size_gigabytes": 1.42, "_droplet_id": droplet["id"]}
        self.snapshots[snapshot["id"]] = snapshot
        droplet["snapshot_ids"].append(snapshot["id"])
        return snapshot

    def _snapshot(self, snapshot_id):
        item = self.snapshots.get(int(snapshot_id)) if str(snapshot_id).isdigit() else None
        if item is None:
            raise FakeError(404, "not_found", "The resource you were accessing could not be found.")
        return item

    def _snapshot_of_droplet(self, item):
        """As GET /v2/droplets/{id}/snapshots shows it: a numeric id and type snapshot."""
        return {**self._public(item), "type": "snapshot"}

    def _snapshot_public(self, item):
        """As /v2/snapshots shows it: string ids, the Droplet it came from, tags."""
        return {**self._public(item), "id": str(item["id"]), "resource_id": str(item["_droplet_id"]),
                "resource_type": "droplet", "tags": []}

    def _droplet(self, droplet_id):
        if int(droplet_id) not in self.droplets:
            raise FakeError(404, "not_found", "The resource you were accessing could not be found.")
        return self.droplets[int(droplet_id)]

    def _firewall(self, firewall_id):
        if firewall_id not in self.firewalls:
            raise FakeError(404, "not_found", "The resource you were accessing could not be found.")
        return self.firewalls[firewall_id]

    @staticmethod
    def _public(droplet):
        return {k: v for k, v in droplet.items() if not k.startswith("_")}

    def _app(self, app_id):
        if app_id not in self.apps:
            raise FakeError(404, "not_found", "The resource you were accessing could not be found.")
        return self.apps[app_id]

    # --- App Platform deployments -------------------------------------------------------------------

    def _start_deployment(self, app_id, cause, *, outcome, done=False):
        """A new deployment of the app's spec; an unfinished older one is superseded."""
        for item in self.app_deployments[app_id].values():
            if item["phase"] not in ENDED_PHASES:
                self._set_phase(item, "SUPERSEDED")
        path = {"ACTIVE": ["PENDING_BUILD", "BUILDING", "PENDING_DEPLOY", "DEPLOYING", "ACTIVE"],
                "ERROR": ["PENDING_BUILD", "BUILDING", "ERROR"],
                "CANCELED": ["PENDING_BUILD", "BUILDING", "CANCELED"]}[outcome]
        components = [c.get("name") for kind in COMPONENT_KINDS for c in self.apps[app_id]["spec"].get(kind) or []]
        item = {"id": str(uuid.uuid4()), "cause": cause, "created_at": _now(), "updated_at": _now(),
                "phase": path[0], "phase_last_updated_at": _now(), "progress": {},
                "_path": path, "_step": 0, "_gets": 0, "_since": time.monotonic(), "_components": components,
                "_reason": self.deployment_reason.get(app_id) or {
                    "code": "BuildJobExitNonZero", "message": "Your build job failed because it returned a non-zero exit code."}}
        self.app_deployments[app_id][item["id"]] = item
        self._move(app_id, item, len(path) - 1 if done else 0)
        return item

    def _advance_by_time(self, app_id):
        if self.phase_seconds is None:
            return
        for item in self.app_deployments[app_id].values():
            if item["phase"] not in ENDED_PHASES:
                self._move(app_id, item, int((time.monotonic() - item["_since"]) / self.phase_seconds))

    def _move(self, app_id, item, step):
        """Forward to `step` of the deployment's path (never back, never past its end; an ended one stays)."""
        if item["phase"] not in ENDED_PHASES:
            item["_step"] = min(max(step, item["_step"]), len(item["_path"]) - 1)
            self._set_phase(item, item["_path"][item["_step"]])
        self._refs(app_id)

    @staticmethod
    def _set_phase(item, phase):
        if item["phase"] != phase:
            item.update(phase=phase, phase_last_updated_at=_now(), updated_at=_now())
        item["progress"] = _progress(item)

    def _refs(self, app_id):
        """The app's deployment fields, as the API keeps them: pending, in progress, and the one serving."""
        app = self.apps[app_id]
        app.pop("pending_deployment", None)
        app.pop("in_progress_deployment", None)
        for item in self.app_deployments[app_id].values():
            public = copy.deepcopy(self._public(item))
            if item["phase"] == "PENDING_BUILD":
                app["pending_deployment"] = public
            elif item["phase"] in ("BUILDING", "PENDING_DEPLOY", "DEPLOYING"):
                app["in_progress_deployment"] = public
            elif item["phase"] == "ACTIVE":
                app["active_deployment"] = public

    def _encrypt_secrets(self, spec):
        """SECRET values are stored encrypted: a new value becomes EV[...]; a known EV[...] stays."""
        for envs in _all_envs(spec):
            for variable in envs:
                value = variable.get("value", "")
                if variable.get("type") == "SECRET" and value not in self.secret_values:
                    sealed = f"EV[1:{secrets.token_urlsafe(12)}:{secrets.token_urlsafe(24)}]"
                    self.secret_values[sealed] = value
                    variable["value"] = sealed

    @staticmethod
    def _check_databases(old, new):
        # Managed database credentials are not returned; a PUT that changes them fails as users report.
        if (old.get("databases") or []) != (new.get("databases") or []):
            raise FakeError(400, "invalid_argument", "database user password is not accessible")

    # --- Ways in ------------------------------------------------------------------------------------

    def install(self, rsps):
        """Answer requests to base_url through a `responses` mock (also in live-server threads)."""
        import responses

        def callback(request):
            status, headers, body = self.handle(request.method, request.url, request.headers, request.body)
            if status == "timeout":
                return 200, {}, requests.exceptions.ReadTimeout("The fake DigitalOcean timed out.")
            return status, headers, body

        pattern = re.compile(re.escape(self.base_url) + r"/v2/.*")
        for method in (responses.GET, responses.POST, responses.PUT, responses.DELETE, responses.PATCH):
            rsps.add_callback(method, pattern, callback=callback)
        return self

    def serve(self, port=0):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                status, headers, text = fake.handle(self.command, fake.base_url + self.path, dict(self.headers), body)
                if status == "timeout":
                    self.close_connection = True  # no answer at all
                    return
                data = text.encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _answer

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self.base_url

    def stop(self):
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


# --- What the real API refuses beyond its published schema ---------------------------------------
# Each takes a body that already passed the schema and says what is wrong, naming the field, or None.

TAG_RE = re.compile(r"^[a-zA-Z0-9_\-\:]+$")
DROPLET_NAME_RE = re.compile(r"^[a-zA-Z0-9]?[a-z0-9A-Z.\-]*[a-z0-9A-Z]$")
PORTS_RE = re.compile(r"^(\d{1,5})(?:-(\d{1,5}))?$")
USER_DATA_LIMIT = 64 * 1024
SSH_KEY_TYPES = ("ssh-rsa", "ssh-dss", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
                 "ssh-ed25519")
# The real API's own words (seen in client libraries' issue trackers).
SSH_KEY_FORMAT = "Key invalid, key should be of the format `type key [comment]`"
SSH_KEY_TYPE = ("Key invalid type, we support 'ssh-rsa', 'ssh-dss', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', "
                "'ecdsa-sha2-nistp521', or 'ssh-ed25519'")


def firewall_problem(body: dict) -> str | None:
    for direction, targets in (("inbound_rules", "sources"), ("outbound_rules", "destinations")):
        for number, rule in enumerate(body.get(direction) or []):
            where = f"{direction}[{number}]"
            problem = ports_problem(rule["ports"])
            if problem:
                return f"{where}.ports: {problem}"
            for index, address in enumerate(rule[targets].get("addresses") or []):
                if not is_address(address):
                    return f"{where}.{targets}.addresses[{index}]: {address!r} is not a valid IP address or CIDR"
    return None


def ports_problem(ports: str) -> str | None:
    """A port ("22"), a range ("8000-9000") or "0" for every port. "all" was refused with this same
    message in 2021 (doorkeeper#17) though older docs offered it, so the fake refuses it too."""
    if ports == "0":
        return None
    match = PORTS_RE.match(ports)
    low, high = (int(match[1]), int(match[2] or match[1])) if match else (0, 0)
    if not 1 <= low <= high <= 65535:
        return (f"{ports!r}: you must specify a valid range for ports (a port 1-65535, a range low-high like "
                "8000-9000, or 0 for all ports)")
    return None


def is_address(text: str) -> bool:
    """An IPv4/IPv6 address or CIDR; Python's netmask and zone-index forms are not what the API takes."""
    address, slash, prefix = text.partition("/")
    if "%" in address or (slash and not prefix.isdigit()):
        return False
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


FIREWALL_READ_ONLY = ("id", "status", "created_at", "pending_changes")


def firewall_update_problem(body: dict) -> str | None:
    """The published schema marks these readOnly without refusing them; the fake refuses them (stricter)."""
    sent = [name for name in FIREWALL_READ_ONLY if name in body]
    if sent:
        return f"{sent[0]}: is read-only and cannot be sent"
    return firewall_problem(body)


def droplet_problem(body: dict) -> str | None:
    # The published pattern lets a name start with - or .; no hostname may, so the fake is stricter here.
    names = [("name", body["name"])] if "name" in body else [(f"names[{i}]", n) for i, n in enumerate(body["names"])]
    for where, name in names:
        if name[:1] in ("-", "."):
            return f"{where}: {name!r} is not a valid hostname"
    for index, tag in enumerate(body.get("tags") or []):
        if len(tag) > 255 or not TAG_RE.match(tag):
            return f"tags[{index}]: {tag!r} must match {TAG_RE.pattern} and be at most 255 characters"
    if len(body.get("user_data", "").encode()) > USER_DATA_LIMIT:
        return "user_data: may not exceed 64 KiB in size"
    return None


def tag_problem(body: dict) -> str | None:
    return None if body.get("name") else "name: is required"  # the schema checks its pattern, not its presence


def ssh_key_problem(body: dict) -> str | None:
    parts = body["public_key"].split()
    if len(parts) < 2:
        return SSH_KEY_FORMAT
    if parts[0] not in SSH_KEY_TYPES:
        return SSH_KEY_TYPE
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except ValueError:
        return SSH_KEY_FORMAT
    # The blob starts with its own type as an SSH string (uint32 length, then the bytes): it must agree.
    length = struct.unpack(">I", blob[:4])[0] if len(blob) >= 4 else -1
    if blob[4:4 + length] != parts[0].encode():
        return SSH_KEY_FORMAT
    return None


# The schema makes these optional (its anyOf lets any action pass as a bare {type}); the API needs them.
ACTION_NEEDS = {"resize": "size", "rename": "name", "rebuild": "image", "restore": "image", "change_kernel": "kernel"}


def action_problem(body: dict) -> str | None:
    kind = body["type"]
    needed = ACTION_NEEDS.get(kind)
    if needed and body.get(needed) in (None, ""):
        return f"{needed}: is required for a {kind} action"
    if kind == "resize" and not isinstance(body["size"], str):
        return f"size: {body['size']!r} is not a size slug"
    if kind == "rename" and not (isinstance(body["name"], str) and DROPLET_NAME_RE.match(body["name"])):
        return f"name: {body['name']!r} does not match {DROPLET_NAME_RE.pattern}"
    return None


def _parse(body: str | bytes | None) -> tuple[Any, bool]:
    """(JSON body or None, whether a body was sent that is not JSON)."""
    if not body:
        return None, False
    try:
        return json.loads(body), False
    except ValueError:
        return None, True


ENDED_PHASES = ("ACTIVE", "SUPERSEDED", "ERROR", "CANCELED")
STEP_STATUS = {  # phase -> (build step, deploy step)
    "PENDING_BUILD": ("PENDING", "PENDING"), "BUILDING": ("RUNNING", "PENDING"),
    "PENDING_DEPLOY": ("SUCCESS", "PENDING"), "DEPLOYING": ("SUCCESS", "RUNNING"), "ACTIVE": ("SUCCESS", "SUCCESS"),
}


def _progress(item):
    """Steps as App Platform reports them: build, then deploy, one child per component; a failure names its reason."""
    phase = item["phase"]
    # SUPERSEDED keeps the steps of the phase it was in; ERROR and CANCELED end in the build here.
    build, deploy = STEP_STATUS.get(item["_path"][item["_step"]] if phase == "SUPERSEDED" else phase,
                                    ("ERROR", "PENDING"))
    names = item["_components"] or ["app"]
    children = [{"name": n, "component_name": n, "message_base": "Building service", "status": build} for n in names]
    if phase == "ERROR":
        children[0]["reason"] = dict(item["_reason"])
    steps = [
        {"name": "build", "status": build, "steps": [{"name": "initialize", "status": "SUCCESS"},
                                                     {"name": "components", "status": build, "steps": children}]},
        {"name": "deploy", "status": deploy, "steps": [
            {"name": n, "component_name": n, "message_base": "Deploying service", "status": deploy} for n in names]},
    ]
    count = {status: sum(1 for step in steps if step["status"] == status) for status in ("SUCCESS", "RUNNING",
                                                                                          "PENDING", "ERROR")}
    return {"steps": steps, "total_steps": len(steps), "success_steps": count["SUCCESS"],
            "running_steps": count["RUNNING"], "pending_steps": count["PENDING"], "error_steps": count["ERROR"]}


def _all_envs(spec):
    lists = [spec.get("envs") or []]
    for kind in COMPONENT_KINDS:
        lists += [item.get("envs") or [] for item in spec.get(kind) or []]
    return lists


def _now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def main():
    parser = argparse.ArgumentParser(description="Run the fake DigitalOcean API.")
    parser.add_argument("--port", type=int, default=8111)
    args = parser.parse_args()
    fake = FakeDigitalOcean()
    fake.add_token("dop_v1_demo", account={"email": "demo@example.test"})
    fake.add_app("do-todo-app", envs=[{"key": "EXISTING", "value": "kept", "type": "GENERAL", "scope": "RUN_AND_BUILD_TIME"}],
                 services=[{"name": "web", "envs": []}])
    fake.add_app("marketing-site")
    url = fake.serve(args.port)
    print(f"Fake DigitalOcean at {url} (token dop_v1_demo). Ctrl-C stops it.", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()

"""A stateful fake of the DigitalOcean API endpoints Devpilot uses.

It answers as the real API does (see ../shared/digitalocean-openapi and REFERENCE.md):
error bodies {id, message, request_id} with an x-request-id header, rate-limit headers
on every response and 429s past a per-minute budget, 401 for unknown or revoked tokens,
403 for a token without the operation's scope, pages with absolute next links, SECRET
app variables encrypted to EV[...] and accepted back unchanged, one deployment per app
update. Faults can be injected per request.

Two ways to use it:
    fake.install(responses_mock)      in-process, through `responses`
    fake.serve()                      a live HTTP server thread; returns its base URL
    python -m tests.fake_digitalocean --port 8111   (token dop_v1_demo, two demo apps)
"""

import argparse
import copy
import json
import re
import secrets
import threading
import time
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import requests

KEY_RE = re.compile(r"^[_A-Za-z][_A-Za-z0-9]*$")
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
    def __init__(self, status, error_id, message):
        super().__init__(message)
        self.status, self.error_id, self.message = status, error_id, message


@dataclass
class Fault:
    method: str
    pattern: re.Pattern
    status: object  # an HTTP status, or "timeout"
    times: int
    after_applying: bool


@dataclass
class Route:
    method: str
    pattern: re.Pattern
    handler: object
    scope: str


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
        self.tags = set()
        self.regions = copy.deepcopy(REGIONS)
        self.sizes = copy.deepcopy(SIZES)
        self.images = copy.deepcopy(IMAGES)
        self._server = None
        self.routes = []
        self._register_core_routes()

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
                "active_deployment": {"id": str(uuid.uuid4()), "phase": "ACTIVE"},
            }
        return copy.deepcopy(self.apps[app_id])

    def deployments(self, app_id):
        return self.deployment_counts[app_id]

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

    def route(self, method, path_regex, scope):
        def register(handler):
            self.routes.append(Route(method, re.compile(f"^{path_regex}$"), handler, scope))
            return handler

        return register

    def handle(self, method, url, headers, body):
        """Answer one request: (status, headers, body text); `timeout` as status means no answer."""
        status, answer_headers, text = self._answer(method, url, headers, body)
        with self.lock:
            self.answers.append((method, urlsplit(url).path, status, json.loads(text) if text else None))
        return status, answer_headers, text

    def _answer(self, method, url, headers, body):
        parts = urlsplit(url)
        path, query = parts.path, {k: v[-1] for k, v in parse_qs(parts.query).items()}
        request_id = str(uuid.uuid4())
        with self.lock:
            try:
                payload = json.loads(body) if body else None
            except ValueError:
                payload = None
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
                        status, answer = route.handler(self, token=token, query=query, body=payload or {},
                                                       path=path, **match.groupdict())
                    except FakeError as e:
                        return self._error(e.status, e.error_id, e.message, request_id, base_headers)
                    if fault:
                        return self._fault_answer(fault, request_id, base_headers)
                    return status, base_headers, json.dumps(answer) if answer is not None else ""
            return self._error(404, "not_found", "The resource you were accessing could not be found.", request_id,
                               base_headers)

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
    def _error(status, error_id, message, request_id, headers):
        return status, headers, json.dumps({"id": error_id, "message": message, "request_id": request_id})

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
            found = [d for d in fake.droplets.values() if not query.get("tag_name") or query["tag_name"] in d["tags"]]
            return 200, fake.page(path, query, "droplets", sorted(found, key=lambda d: d["id"]))

        @route("GET", r"/v2/apps", "app:read")
        def apps(fake, query, path, **_):
            return 200, fake.page(path, query, "apps", list(fake.apps.values()))

        @route("GET", r"/v2/apps/(?P<app_id>[^/]+)", "app:read")
        def app(fake, app_id, **_):
            return 200, {"app": copy.deepcopy(fake._app(app_id))}

        @route("PUT", r"/v2/apps/(?P<app_id>[^/]+)", "app:update")
        def update_app(fake, app_id, body, **_):
            current = fake._app(app_id)
            spec = copy.deepcopy(body.get("spec"))
            if not isinstance(spec, dict) or not spec.get("name"):
                raise FakeError(400, "invalid_argument", "spec.name is required")
            if app_id in fake.deploying:
                raise FakeError(409, "conflict", "A deployment is already in progress for this app.")
            fake._check_databases(current["spec"], spec)
            for envs in _all_envs(spec):
                for variable in envs:
                    if not KEY_RE.match(str(variable.get("key", ""))):
                        raise FakeError(400, "invalid_argument",
                                        f"error validating app spec field \"envs.key\": {variable.get('key')!r} must match "
                                        "^[_A-Za-z][_A-Za-z0-9]*$")
            fake._encrypt_secrets(spec)
            current["spec"] = spec
            current["updated_at"] = _now()
            fake.deployment_counts[app_id] += 1
            current["pending_deployment"] = {"id": str(uuid.uuid4()), "phase": "PENDING_BUILD"}
            return 200, {"app": copy.deepcopy(current)}

    def _app(self, app_id):
        if app_id not in self.apps:
            raise FakeError(404, "not_found", "The resource you were accessing could not be found.")
        return self.apps[app_id]

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

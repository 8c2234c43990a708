#!/usr/bin/env python3
"""The Devpilot agent: registers this server with Devpilot once, then sends a heartbeat.

Standard library only (Python 3 ships with Ubuntu and Debian). The one-time registration
token is exchanged on first contact for a long-lived credential kept in --state (mode
0600). Nothing secret is ever logged.

    python3 devpilot-agent.py --server https://devpilot.example.com --token TOKEN --once
"""

import argparse
import json
import os
import platform
import shutil
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

VERSION = "1.0.0"


def log(message):
    print(f"devpilot-agent: {message}", file=sys.stderr, flush=True)


def origin(url):
    parts = urllib.parse.urlsplit(url)
    return parts.scheme, parts.hostname, parts.port or {"http": 80, "https": 443}.get(parts.scheme)


class SameOriginRedirects(urllib.request.HTTPRedirectHandler):
    """urllib sends every header again after a redirect, the credential included: never to another origin."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if origin(newurl) != origin(req.full_url):
            raise urllib.error.HTTPError(req.full_url, code, f"refused a redirect to another origin "
                                         f"({urllib.parse.urlsplit(newurl).netloc})", headers, fp)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


OPENER = urllib.request.build_opener(SameOriginRedirects)


def post(server, path, credential, payload, timeout=15):
    request = urllib.request.Request(
        server.rstrip("/") + path, data=json.dumps(payload).encode(), method="POST",
        headers={"Authorization": f"Bearer {credential}", "Content-Type": "application/json",
                 "User-Agent": f"devpilot-agent/{VERSION}"})
    with OPENER.open(request, timeout=timeout) as response:
        return json.loads(response.read() or b"{}")


def read_os():
    try:
        with open("/etc/os-release") as f:
            fields = dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)
        return fields.get("PRETTY_NAME", "").strip('"') or platform.platform()
    except OSError:
        return platform.platform()


def read_memory():
    try:
        with open("/proc/meminfo") as f:
            info = {line.split(":")[0]: int(line.split()[1]) for line in f if line.split()[1:2]}
        return {"totalMb": info.get("MemTotal", 0) // 1024, "availableMb": info.get("MemAvailable", 0) // 1024}
    except (OSError, ValueError):
        return {}


def read_uptime():
    try:
        with open("/proc/uptime") as f:
            return int(float(f.read().split()[0]))
    except (OSError, ValueError):
        return None


def facts():
    disk = shutil.disk_usage("/")
    return {
        "hostname": socket.gethostname(), "os": read_os(), "uptimeSeconds": read_uptime(),
        "load": list(os.getloadavg()) if hasattr(os, "getloadavg") else [],
        "memory": read_memory(),
        "disk": {"totalGb": round(disk.total / 1e9, 1), "freeGb": round(disk.free / 1e9, 1)},
        "agentVersion": VERSION,
    }


def load_credential(state):
    try:
        with open(state) as f:
            return json.load(f).get("credential")
    except (OSError, ValueError):
        return None


def save_credential(state, credential):
    os.makedirs(os.path.dirname(os.path.abspath(state)), exist_ok=True)
    fd = os.open(state, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"credential": credential}, f)


def with_retries(action, attempts, what):
    delay = 2
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except urllib.error.HTTPError as e:
            if 400 <= e.code < 500 and e.code != 429:
                raise
            log(f"{what} failed (HTTP {e.code}: {e.reason}), attempt {attempt}")
        except (urllib.error.URLError, OSError) as e:
            log(f"{what} failed ({getattr(e, 'reason', e)}), attempt {attempt}")
        if attempt < attempts:
            time.sleep(delay)
            delay = min(delay * 2, 300)
    raise SystemExit(f"devpilot-agent: {what} failed {attempts} times; giving up for now")


def main(argv=None):
    parser = argparse.ArgumentParser(description="Devpilot agent")
    parser.add_argument("--server", required=True, help="Devpilot's public URL")
    parser.add_argument("--token", help="one-time registration token")
    parser.add_argument("--token-file", help="file holding the registration token")
    parser.add_argument("--state", default="/var/lib/devpilot/agent.json", help="where the credential is kept")
    parser.add_argument("--once", action="store_true", help="register if needed, send one heartbeat, exit")
    parser.add_argument("--attempts", type=int, default=8, help="tries per contact before giving up")
    parser.add_argument("--allow-http", action="store_true",
                        help="talk to Devpilot over plain HTTP (only on a private network you trust)")
    args = parser.parse_args(argv)
    if urllib.parse.urlsplit(args.server).scheme != "https" and not args.allow_http:
        raise SystemExit("devpilot-agent: --server must be an https:// URL (the credential would travel in clear); "
                         "pass --allow-http only on a private network")

    credential = load_credential(args.state)
    if not credential:
        token = args.token
        if not token and args.token_file:
            with open(args.token_file) as f:
                token = f.read().strip()
        if not token:
            raise SystemExit("devpilot-agent: no credential yet and no registration token given")
        answer = with_retries(lambda: post(args.server, "/api/v1/agent/register", token, facts()),
                              args.attempts, "registration")
        credential = answer["credential"]
        save_credential(args.state, credential)
        log("registered")
    while True:
        answer = with_retries(lambda: post(args.server, "/api/v1/agent/heartbeat", credential, facts()),
                              args.attempts, "heartbeat")
        log("heartbeat sent")
        if args.once:
            return 0
        time.sleep(max(10, int(answer.get("interval", 60))))


if __name__ == "__main__":
    sys.exit(main())

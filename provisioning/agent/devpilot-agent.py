#!/usr/bin/env python3
"""The Devpilot agent: registers this server with Devpilot once, then keeps one channel open.

Standard library only (Python 3 ships with Ubuntu and Debian). The one-time registration
token is exchanged on first contact for a long-lived credential kept in --state (mode
0600). Nothing secret is ever logged.

Each heartbeat carries facts and metrics (CPU, memory, disk of /, load, uptime), the ids of
the SSH keys Devpilot manages in root's authorized_keys and the host key; the answer holds
the commands waiting for this server. Only the kinds in HANDLERS exist, each run by this
file's own code (never a shell), and each is acknowledged with its result.

    python3 devpilot-agent.py --server https://devpilot.example.com --token TOKEN --once
"""

import argparse
import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
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


# --- Metrics: /proc and statvfs, nothing else ----------------------------------------------------

_last_cpu = None  # (busy, total) jiffies at the previous heartbeat: CPU % is the average since then


def read_cpu_times():
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:9]]  # user nice system idle iowait irq softirq steal
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def cpu_percent():
    global _last_cpu
    try:
        if _last_cpu is None:
            _last_cpu = read_cpu_times()
            time.sleep(0.5)
        busy, total = read_cpu_times()
    except (OSError, ValueError, IndexError):
        return 0.0
    previous, _last_cpu = _last_cpu, (busy, total)
    elapsed = total - previous[1]
    return round(min(100.0, max(0.0, 100.0 * (busy - previous[0]) / elapsed)), 1) if elapsed > 0 else 0.0


def read_metrics():
    try:
        with open("/proc/meminfo") as f:
            info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f if line.split()[1:2]}
        disk = os.statvfs("/")
        load = os.getloadavg()
    except (OSError, ValueError):
        return None
    memory_total = info.get("MemTotal", 0)
    if not memory_total or not disk.f_blocks:
        return None
    return {
        "cpuPercent": cpu_percent(),
        "memoryTotalBytes": memory_total,
        "memoryUsedBytes": max(0, memory_total - info.get("MemAvailable", info.get("MemFree", 0))),
        "diskTotalBytes": disk.f_blocks * disk.f_frsize,
        "diskUsedBytes": (disk.f_blocks - disk.f_bfree) * disk.f_frsize,
        "load1": round(load[0], 2), "load5": round(load[1], 2), "load15": round(load[2], 2),
        "uptimeSeconds": read_uptime() or 0,
    }


# --- SSH keys: root's authorized_keys, managed lines marked "# devpilot:<key id>" -----------------

MARKER = " # devpilot:"
KEY_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# A type and a base64 body, nothing else: no options (command="..."), no second line.
KEY_LINE = re.compile(r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp256|ecdsa-sha2-nistp384|ecdsa-sha2-nistp521) "
                      r"[A-Za-z0-9+/]+={0,3}$")


class CommandError(Exception):
    """A command this agent refuses or cannot carry out; the message goes back to Devpilot."""


def managed_id(line):
    head, marker, key_id = line.rpartition(MARKER)
    return key_id if marker and head and KEY_ID.match(key_id) else None


def read_lines(path):
    try:
        with open(path) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def managed_ids(path):
    """The ids of the managed lines; None when the file cannot be read (then nothing is reported)."""
    try:
        return sorted({i for i in map(managed_id, read_lines(path)) if i})
    except OSError:
        return None


def write_atomically(path, lines):
    """authorized_keys replaced whole (write_file: sshd never reads half a file), keeping its owner: the agent,
    as root, may write another user's keys."""
    path = os.path.abspath(path)
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    try:
        owner = os.stat(path)
    except FileNotFoundError:
        owner = os.stat(directory)
    uid, gid = (owner.st_uid, owner.st_gid) if os.geteuid() == 0 else (-1, -1)
    write_file(path, "".join(line + "\n" for line in lines), 0o600, uid, gid)


def _fields(payload, expected):
    if not isinstance(payload, dict) or set(payload) != set(expected):
        raise CommandError(f"the payload must have exactly the fields {', '.join(sorted(expected))}")
    return [payload[name] for name in expected]


def _ids(values):
    if not isinstance(values, list) or not values or not all(isinstance(v, str) and KEY_ID.match(v) for v in values):
        raise CommandError("key ids must be a non-empty list of UUIDs")
    return set(values)


def install_ssh_keys(payload, config):
    (keys,) = _fields(payload, ["keys"])
    if not isinstance(keys, list) or not keys:
        raise CommandError("keys must be a non-empty list")
    wanted = {}
    for key in keys:
        key_id, public_key = _fields(key, ["id", "publicKey"])
        _ids([key_id])
        if not isinstance(public_key, str) or not KEY_LINE.match(public_key):
            raise CommandError(f"the key {key_id} is not an ed25519, RSA or ECDSA public key line")
        wanted[key_id] = public_key
    path = config["authorized_keys"]
    kept = [line for line in read_lines(path) if managed_id(line) not in wanted]
    write_atomically(path, kept + [f"{public_key}{MARKER}{key_id}" for key_id, public_key in wanted.items()])
    return {"sshKeys": managed_ids(path) or []}


def remove_ssh_keys(payload, config):
    (ids,) = _fields(payload, ["ids"])
    unwanted = _ids(ids)
    path = config["authorized_keys"]
    lines = read_lines(path)
    kept = [line for line in lines if managed_id(line) not in unwanted]
    if kept != lines:
        write_atomically(path, kept)
    return {"sshKeys": managed_ids(path) or []}


# --- Secrets files: a sync's keys written into a .env, JSON or YAML file, other lines kept ---------------

ENV_KEY = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(.*)$")
YAML_KEY = re.compile(r'^(?:"((?:[^"\\]|\\.)*)"|([A-Za-z_][A-Za-z0-9_.-]*))\s*:')
RELOAD_TIMEOUT = 120


def _closing_quote(text, quote):
    """The index of the quote closing a value that opened with `quote` (backslash escapes skipped), or -1."""
    escaped = False
    for index, char in enumerate(text):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == quote:
            return index
    return -1


def env_blocks(lines):
    """[(key or None, [lines])]: a quoted value spanning lines stays one block with its key."""
    blocks, index = [], 0
    while index < len(lines):
        match = ENV_KEY.match(lines[index])
        block = [lines[index]]
        index += 1
        if match:
            rest = match.group(2)
            if rest[:1] in ("'", '"') and _closing_quote(rest[1:], rest[0]) < 0:
                tail = rest[1:] + "\n"
                while index < len(lines):
                    block.append(lines[index])
                    tail += lines[index] + "\n"
                    index += 1
                    if _closing_quote(tail, rest[0]) >= 0:
                        break
        blocks.append((match.group(1) if match else None, block))
    return blocks


def yaml_blocks(lines):
    blocks = []
    for line in lines:
        match = YAML_KEY.match(line)
        key = None
        if match:
            key = json.loads('"' + match.group(1) + '"') if match.group(1) is not None else match.group(2)
        blocks.append((key, [line]))
    return blocks


def merged_text(fmt, current, entries, remove):
    """The file with the managed keys replaced in place, removed ones gone, new ones appended; the rest kept."""
    if fmt == "json":
        try:
            data = json.loads(current) if current.strip() else {}
        except ValueError:
            raise CommandError("the file exists and is not JSON; not overwritten") from None
        if not isinstance(data, dict):
            raise CommandError("the file holds JSON that is not an object; not overwritten")
        for key in remove:
            data.pop(key, None)
        data.update({key: json.loads(text) for key, text in entries.items()})
        return json.dumps(data, indent=2) + "\n"
    blocks = (env_blocks if fmt == "dotenv" else yaml_blocks)(current.splitlines())
    written, lines = set(), []
    for key, block in blocks:
        if key in remove and key not in entries:
            continue
        if key in entries:
            if key not in written:
                lines.append(entries[key])
                written.add(key)
            continue
        lines.extend(block)
    lines += [text for key, text in entries.items() if key not in written]
    return "".join(line + "\n" for line in lines)


def write_file(path, text, mode, uid, gid):
    """A temporary file in the same directory, owner and mode set, fsynced, renamed over: no reader ever sees
    half a file."""
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o755, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".")
    try:
        with os.fdopen(fd, "w") as f:
            os.fchmod(f.fileno(), mode)
            if uid != -1 or gid != -1:
                os.fchown(f.fileno(), uid, gid)
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    directory_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(directory_fd)
    finally:
        os.close(directory_fd)


def _owner_ids(owner, group):
    import grp
    import pwd

    try:
        uid = pwd.getpwnam(owner).pw_uid if owner else -1
    except KeyError:
        raise CommandError(f"there is no user {owner!r} on this server") from None
    try:
        gid = grp.getgrnam(group).gr_gid if group else -1
    except KeyError:
        raise CommandError(f"there is no group {group!r} on this server") from None
    return uid, gid


def reload_status(command):
    """The reload command's exit status: argv split as a shell would, but never run by a shell."""
    if not command:
        return None
    try:
        return subprocess.run(shlex.split(command), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=RELOAD_TIMEOUT).returncode
    except FileNotFoundError:
        return 127
    except PermissionError:
        return 126
    except subprocess.TimeoutExpired:
        return 124
    except ValueError:
        raise CommandError("the reload command cannot be split into arguments") from None


def write_env_file(payload, config):
    path, fmt, owner, group, mode, command, entries, remove = _fields(
        payload, ["path", "format", "owner", "group", "mode", "reloadCommand", "entries", "remove"])
    if not isinstance(path, str) or not os.path.isabs(path) or ".." in path.split("/") or path.endswith("/"):
        raise CommandError("the path must be an absolute file path without ..")
    if os.path.isdir(path):
        raise CommandError(f"{path} is a directory")
    if fmt not in ("dotenv", "json", "yaml"):
        raise CommandError("the format must be dotenv, json or yaml")
    if not isinstance(mode, str) or not re.match(r"^0?[0-7]{3}$", mode):
        raise CommandError("the mode must be octal, such as 0600")
    if not isinstance(entries, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in entries.items()):
        raise CommandError("entries must map keys to text")
    if not isinstance(remove, list) or not all(isinstance(k, str) for k in remove):
        raise CommandError("remove must be a list of keys")
    if not isinstance(command, str):
        raise CommandError("the reload command must be text")
    uid, gid = _owner_ids(owner, group)
    try:
        with open(path) as f:
            current = f.read()
    except FileNotFoundError:
        if not entries:  # keys to take out of a file that is not there: nothing to do, no empty file made
            return {"sha256": hashlib.sha256(b"").hexdigest(), "keys": [], "reloadExitStatus": None}
        current = ""
    text = merged_text(fmt, current, entries, set(remove))
    write_file(path, text, int(mode, 8), uid, gid)
    managed = sorted(key for key in entries)
    return {"sha256": hashlib.sha256(text.encode()).hexdigest(), "keys": managed,
            "reloadExitStatus": reload_status(command)}


# The only things Devpilot can ask of this agent (provisioning/commands.py lists the same kinds).
HANDLERS = {"install_ssh_keys": install_ssh_keys, "remove_ssh_keys": remove_ssh_keys,
            "write_env_file": write_env_file}


def run_command(command, config):
    """{"ok": true, "result": ...} or {"ok": false, "error": "..."}: never raises, never logs the payload."""
    handler = HANDLERS.get(command.get("kind"))
    if handler is None:
        return {"ok": False, "error": f"this agent ({VERSION}) does not know the command {command.get('kind')!r}"}
    try:
        return {"ok": True, "result": handler(command.get("payload"), config)}
    except CommandError as e:
        return {"ok": False, "error": str(e)}
    except OSError as e:
        return {"ok": False, "error": f"{e.strerror or e} ({getattr(e, 'filename', '') or ''})".replace(" ()", "")}


def read_host_key(path):
    try:
        with open(path) as f:
            return " ".join(f.read().split()[:2])
    except OSError:
        return None


def report(config):
    body = facts()
    body["metrics"] = read_metrics()
    if body["metrics"] is None:
        del body["metrics"]
    present = managed_ids(config["authorized_keys"])
    if present is not None:  # unreadable: Devpilot sends no key commands rather than ones bound to fail
        body["sshKeys"] = present
    host_key = read_host_key(config["host_key"])
    if host_key:
        body["hostKey"] = host_key
    return body


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


def refusal(error):
    """Devpilot's own words for a refusal ({"message": ...}), else the HTTP reason."""
    try:
        return str(json.loads(error.read() or b"{}").get("message") or error.reason)[:300]
    except (ValueError, AttributeError, OSError):
        return str(error.reason)


def with_retries(action, attempts, what):
    delay = 2
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except urllib.error.HTTPError as e:
            if 400 <= e.code < 500 and e.code != 429:
                raise SystemExit(f"devpilot-agent: {what} refused by Devpilot (HTTP {e.code}: {refusal(e)})") from None
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
    parser.add_argument("--authorized-keys", default=os.path.expanduser("~root/.ssh/authorized_keys"),
                        help="the authorized_keys file whose Devpilot-managed lines this agent keeps")
    parser.add_argument("--host-key", default="/etc/ssh/ssh_host_ed25519_key.pub",
                        help="the host public key reported to Devpilot (shown to people who connect)")
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
    config = {"authorized_keys": args.authorized_keys, "host_key": args.host_key}
    while True:
        rounds = 0
        while True:  # commands waiting: answer them and ask again at once, the next ones may be queued
            answer = with_retries(lambda: post(args.server, "/api/v1/agent/heartbeat", credential, report(config)),
                                  args.attempts, "heartbeat")
            log("heartbeat sent")
            waiting = [c for c in answer.get("commands") or [] if isinstance(c, dict)]
            for command in waiting:
                acknowledge(args.server, credential, command, run_command(command, config))
            rounds += 1
            if not waiting or rounds >= 10:
                break
        if args.once:
            return 0
        # 1 s is Devpilot's "work pending" hint (a sync may send this server a file any moment).
        time.sleep(max(1, int(answer.get("interval", 60))))


def acknowledge(server, credential, command, outcome):
    command_id = str(command.get("id", ""))
    if not KEY_ID.match(command_id):
        log("ignored a command without a valid id")
        return
    log(f"command {command.get('kind')} {'done' if outcome['ok'] else 'failed: ' + outcome['error']}")
    try:
        post(server, "/api/v1/agent/command-results", credential, {"id": command_id, **outcome})
    except urllib.error.HTTPError as e:
        log(f"Devpilot did not take the result of command {command_id} (HTTP {e.code}: {e.reason})")
    except (urllib.error.URLError, OSError) as e:
        log(f"could not report the result of command {command_id} ({getattr(e, 'reason', e)})")

if __name__ == "__main__":
    sys.exit(main())

"""Devpilot servers: a file (.env, JSON or YAML) written on one server, or on every live server with a Devpilot
tag, by the server's own agent over its authenticated command channel (provisioning/commands.py).

A run stores one `write_env_file` command per target server holding only where and how to write: the values
are filled in when the agent fetches the command (`deliver`), from the source as resolved then, so a command
waiting for an offline server carries the latest values when the server is back, and Devpilot keeps no copy
of a value outside the encrypted secrets table. What Devpilot remembers of a delivery is the key names and an
HMAC of each value (keyed by a server-side secret): enough for the dry run, useless to a reader of the table.
"""

from __future__ import annotations

import json
import posixpath
import re
from datetime import timedelta
from typing import Literal

from django.db import transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac
from pydantic import Field

from devpilot import audit, dotenv, references
from devpilot.errors import Invalid
from devpilot.schemas import Strict
from provisioning import commands
from provisioning.models import AgentCommand, CommandState, Server
from syncs import keyschema
from syncs.destinations import CREATE, DELETE, KEEP, UNCHANGED, UPDATE, Change
from syncs.models import ServerDelivery, Sync, SyncStatus

name = "devpilot-server"
label = "Devpilot servers"
KIND = "write_env_file"
# A command waits this long for an offline server's agent before it ends failed (the next run sends again).
BOUND = timedelta(days=7)
NAME_RE = r"^[a-z_][a-z0-9_.-]{0,31}$"  # a POSIX user or group name
TAG_RE = re.compile(r"^[a-z0-9][a-z0-9:._-]{0,63}$")
FORMATS = ("dotenv", "json", "yaml")


def default_path(sync_name: str) -> str:
    return f"/etc/devpilot/{sync_name}.env"


# --- Validation: one definition for pages, API and runs ------------------------------------------------


def path_problem(path: str) -> str:
    if not path.startswith("/"):
        return "The file path must be absolute (start with /)."
    if ".." in path.split("/"):
        return "The file path may not contain .. (name the file directly)."
    if path.endswith("/") or posixpath.basename(path) in ("", ".", ".."):
        return "The file path names a directory; add the file's name (e.g. /etc/devpilot/app.env)."
    if any(c in path for c in "\x00\n\r") or len(path) > 512:
        return "The file path holds a character a path cannot hold, or is longer than 512 characters."
    return ""


def mode_problem(mode: str) -> str:
    if not re.fullmatch(r"0?[0-7]{3}", mode or ""):
        return "The mode is octal permissions such as 0600 or 0640."
    return ""


def validate(sync: Sync) -> None:
    """Refuse a destination or file option that cannot work, naming the field."""
    if (sync.server_id is None) == (not sync.server_tag):
        raise Invalid.for_field("destinationConfig.serverId", "Choose one server or one tag (not both).")
    if sync.server_id is not None:
        server = Server.objects.live().filter(pk=sync.server_id, workspace=sync.workspace_id).first()
        if server is None:
            raise Invalid.for_field("destinationConfig.serverId", "No server of this workspace has that id.")
        if sync.reload_command and sync.reload_command not in server.reload_commands:
            raise Invalid.for_field("destinationConfig.reloadCommand",
                                    f"{sync.reload_command!r} is not one of the reload commands an admin allowed on "
                                    f"{server.name}.")
    elif not TAG_RE.match(sync.server_tag):
        raise Invalid.for_field("destinationConfig.tag", "A tag uses lowercase letters, digits and : . _ -.")
    elif sync.reload_command and not all(sync.reload_command in s.reload_commands for s in targets(sync)):
        raise Invalid.for_field("destinationConfig.reloadCommand",
                                f"{sync.reload_command!r} is not an allowed reload command on every server tagged "
                                f"{sync.server_tag}.")
    for field, problem in (("filePath", path_problem(sync.file_path)), ("mode", mode_problem(sync.file_mode))):
        if problem:
            raise Invalid.for_field(f"destinationConfig.{field}", problem)
    if sync.file_format not in FORMATS:
        raise Invalid.for_field("destinationConfig.format", "The format is dotenv, json or yaml.")
    for field, value in (("owner", sync.file_owner), ("group", sync.file_group)):
        if value and not re.match(NAME_RE, value):
            raise Invalid.for_field(f"destinationConfig.{field}", f"{value!r} is not a user or group name.")


def targets(sync: Sync) -> list[Server]:
    """The live servers of the sync's workspace it writes to; a server tagged later is a target from then on."""
    servers = Server.objects.live().filter(workspace=sync.workspace_id)
    if sync.server_id is not None:
        return list(servers.filter(pk=sync.server_id))
    return [server for server in servers.order_by("name") if sync.server_tag in (server.devpilot_tags or [])]


# --- The command ---------------------------------------------------------------------------------------


class WriteEnvFile(Strict):
    """What is stored: where and how to write, never a value."""

    syncId: str = Field(pattern=commands.KEY_ID)
    path: str = Field(min_length=2, max_length=512)
    format: Literal["dotenv", "json", "yaml"]
    owner: str = Field(default="", pattern=r"^$|" + NAME_RE)
    group: str = Field(default="", pattern=r"^$|" + NAME_RE)
    mode: str = Field(pattern=r"^0?[0-7]{3}$")
    reloadCommand: str = Field(default="", max_length=255)
    removeAll: bool = False  # "Remove secrets": take every key this sync wrote out of the file
    # A file the sync no longer writes (its server left the targets, or the sync writes another path now):
    # these keys, named when it was retired, come out of it; no values, no reload (see retire).
    retiring: bool = False
    remove: list[str] = Field(default_factory=list, max_length=10000)


class FileWritten(Strict):
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    keys: list[str] = Field(max_length=10000)  # the managed keys in the file now
    reloadExitStatus: int | None = None


def key_hash(key: str, value: str) -> str:
    return salted_hmac("devpilot.server-sync", f"{key}\x00{value}", algorithm="sha256").hexdigest()


def entry(fmt: str, key: str, value: str) -> str:
    """How one key is written in the file: the agent replaces or appends it, keeping every other line."""
    if fmt == "json":
        return json.dumps(value)
    if fmt == "yaml":
        return f"{json.dumps(key)}: {json.dumps(value)}"  # a JSON string is a YAML double-quoted scalar
    quoted = dotenv.quote(value)
    if quoted is None:  # as devpilot.dotenv.render writes what no spelling carries for every reader
        quoted = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{key}={quoted}"


def desired(sync: Sync) -> tuple[dict[str, str], set[str]]:
    """Source values under their file names, and the names whose reference does not resolve. Those are left
    out of the file as it is: never written as a literal ${...}, never removed for it (the dry run names them)."""
    source = references.resolve_folder(sync.environment, sync.folder.path)
    names = {key: keyschema.render(sync.key_schema, key, sync.environment.slug) for key in source.values}
    unresolved = source.unresolved
    return ({names[key]: value for key, value in source.values.items() if key not in unresolved},
            {names[key] for key in unresolved if key in names})


def _deliver(command: AgentCommand) -> dict:
    """The payload the agent receives: the stored one, with the values and the keys to remove filled in now."""
    payload = dict(command.payload)
    if payload.pop("retiring", False):
        return _deliver_retirement(command, payload)
    sync = Sync.objects.select_related("environment", "folder").filter(pk=payload.pop("syncId")).first()
    delivery = ServerDelivery.objects.filter(sync=sync, server=command.server_id).first() if sync else None
    if sync is None or delivery is None or sync.workspace_id != command.server.workspace_id:
        payload.pop("removeAll", None)
        return {**payload, "entries": {}, "remove": [], "reloadCommand": ""}
    values, unresolved = ({}, set()) if payload.pop("removeAll", False) else desired(sync)
    # Deletion applies to the keys this sync wrote in this file before, never to a line it did not write.
    previous = delivery.applied_key_hashes if delivery.path in ("", payload["path"]) else {}
    absent = set(previous) - set(values)
    gone = [] if sync.disable_secret_deletion and values else sorted(absent - unresolved)
    reload = payload["reloadCommand"]
    if reload and reload not in command.server.reload_commands:
        reload = ""  # taken off the server's allowed list since: not run
    kept = {key: previous[key] for key in absent if key not in gone}
    ServerDelivery.objects.filter(pk=delivery.pk).update(
        sent_command_id=command.pk, sent_key_hashes={**kept, **{k: key_hash(k, v) for k, v in values.items()}})
    _audit_delivery(sync, command, sorted(values), gone)
    return {**payload, "reloadCommand": reload, "remove": gone,
            "entries": {key: entry(sync.file_format, key, value) for key, value in values.items()}}


def _deliver_retirement(command: AgentCommand, payload: dict) -> dict:
    """Keys out of a file the sync no longer writes: named in the stored command, so it needs no sync (one deleted
    meanwhile still has its keys taken out) and leaves the delivery's own record alone."""
    sync = Sync.objects.filter(pk=payload.pop("syncId"), workspace=command.server.workspace_id).first()
    payload.pop("removeAll", None)
    audit.record(command.server.workspace, "sync.retired", target=sync, server=command.server.name,
                 path=payload["path"], keys=payload["remove"][:500])
    return {**payload, "entries": {}, "reloadCommand": ""}


def _audit_delivery(sync: Sync, command: AgentCommand, keys: list[str], removed: list[str]) -> None:
    """Each delivery of values to a server is recorded: which server, which keys (never a value)."""
    audit.record(sync.workspace, "sync.delivered", target=sync, server=command.server.name, keys=keys[:500],
                 removed=removed[:500], path=command.payload.get("path", ""))


def _record(command: AgentCommand, result: FileWritten) -> None:
    """The agent wrote the file: remember its hash, the keys and their value HMACs, and the reload's status."""
    delivery = ServerDelivery.objects.select_for_update().filter(
        sync=command.payload.get("syncId"), server=command.server_id).select_related("sync").first()
    if delivery is None:
        return
    if command.payload.get("retiring"):
        if delivery.command_id == command.pk:  # the server left the sync's targets: its keys are out, forget it
            delivery.delete()
            transaction.on_commit(lambda: refresh_status(delivery.sync_id))
        return
    # The keys written and, with deletion disabled, those kept from before (all with the HMACs sent).
    delivery.applied_key_hashes = delivery.sent_key_hashes if delivery.sent_command_id == command.pk else {}
    delivery.applied_sha256, delivery.applied_at = result.sha256, timezone.now()
    delivery.path = command.payload["path"]
    delivery.applied_version = delivery.sync.version
    delivery.reload_command = command.payload.get("reloadCommand", "")
    delivery.reload_exit_status = result.reloadExitStatus
    delivery.save()
    transaction.on_commit(lambda: refresh_status(delivery.sync_id))


def _describe(payload: dict) -> str:
    return f"Write the secrets file {payload.get('path', '')}"


# Writing the file again is harmless (the agent merges the same entries): a command whose heartbeat answer was
# lost is sent again after RESEND rather than waiting out its bound.
RESEND = timedelta(seconds=30)
commands.register(commands.CommandKind(KIND, WriteEnvFile, FileWritten, bound=BOUND, describe=_describe,
                                       on_result=_record, deliver=_deliver, resend_after=RESEND))


# --- Runs ----------------------------------------------------------------------------------------------


def payload(sync: Sync, removing: bool = False) -> dict:
    return {"syncId": str(sync.pk), "path": sync.file_path, "format": sync.file_format, "owner": sync.file_owner,
            "group": sync.file_group, "mode": sync.file_mode, "reloadCommand": sync.reload_command,
            "removeAll": removing}


def retire(sync: Sync, servers: list[Server]) -> None:
    """What a run does first: a file the sync no longer writes loses the keys the sync wrote there (other lines
    stay; no reload: the server is no longer this sync's to restart). Two cases: a server that left the targets
    (untagged, another server chosen), whose delivery then shows the removal until it is done and is forgotten;
    and a file the sync moved away from, on a server it still writes to. With secret deletion disabled the old
    file is left as it is. A server destroyed meanwhile has nothing left to clean."""
    current = {server.pk for server in servers}
    for delivery in sync.deliveries.select_related("server", "command"):
        leaving = delivery.server_id not in current
        moved = not leaving and delivery.path not in ("", sync.file_path)
        if not (leaving or moved) or (leaving and _is_retiring(delivery.command)):
            continue
        if leaving and delivery.command and delivery.command.state == CommandState.PENDING:
            commands.fail_one(delivery.command, "The server is no longer a target of this sync.")
        keys = sorted(delivery.applied_key_hashes)
        if sync.disable_secret_deletion or not keys or delivery.server.is_archived:
            if leaving:
                delivery.delete()
            else:
                ServerDelivery.objects.filter(pk=delivery.pk).update(applied_key_hashes={}, path=sync.file_path)
            continue
        removal = commands.enqueue(delivery.server, KIND, {**payload(sync), "path": delivery.path or sync.file_path,
                                                           "reloadCommand": "", "retiring": True, "remove": keys})
        if leaving:
            ServerDelivery.objects.filter(pk=delivery.pk).update(command=removal)
        else:  # the delivery is the new file's now, where nothing is written yet
            ServerDelivery.objects.filter(pk=delivery.pk).update(applied_key_hashes={}, path=sync.file_path)


def _is_retiring(command: AgentCommand | None) -> bool:
    return command is not None and bool(command.payload.get("retiring"))


@transaction.atomic
def queue(sync: Sync, removing: bool = False) -> int:
    """One pending command per target server (in the caller's transaction): a command not fetched yet is
    brought up to date rather than doubled (values are filled in when fetched anyway). Returns the count.
    Files the sync no longer writes are retired first.

    `removing`: "Remove secrets", the keys this sync wrote are taken out of the file (other lines stay)."""
    servers = targets(sync)
    retire(sync, servers)
    body = payload(sync, removing)
    for server in servers:
        delivery, _ = ServerDelivery.objects.select_for_update().get_or_create(sync=sync, server=server)
        command = delivery.command
        if command is not None and command.state == CommandState.PENDING:
            AgentCommand.objects.filter(pk=command.pk, state=CommandState.PENDING).update(payload=body)
            continue
        delivery.command = commands.enqueue(server, KIND, body)
        delivery.save(update_fields=["command"])
    if removing:
        Sync.objects.filter(pk=sync.pk).update(remove_status=SyncStatus.PENDING if servers else SyncStatus.SUCCEEDED,
                                               last_remove_message=_waiting(len(servers)))
        return len(servers)
    status, message = (SyncStatus.PENDING, _waiting(len(servers))) if servers else _without_targets(sync)
    Sync.objects.filter(pk=sync.pk).update(sync_status=status, last_sync_message=message, queued_run=None,
                                           queued_run_at=None, pending_run_at=None)
    return len(servers)


def _without_targets(sync: Sync) -> tuple[str, str]:
    if sync.server_tag:
        return SyncStatus.SUCCEEDED, (f"No live server is tagged {sync.server_tag} yet; a server tagged later gets "
                                      "the file.")
    return SyncStatus.FAILED, "The server was destroyed; choose another destination."


def _waiting(n: int) -> str:
    return f"Waiting for the agent of {n} server{'' if n == 1 else 's'} to write the file."


def refresh_status(sync_id) -> None:
    """The sync's status from its deliveries to its current targets: succeeded when every one is written."""
    sync = Sync.objects.filter(pk=sync_id).first()
    if sync is None:
        return
    rows = [delivery_state(d) for d in deliveries(sync)]
    current = [r for r in rows if not r["leaving"]]
    if current and all(r["removing"] for r in current) or not current and sync.delete_after_removal:
        return _refresh_removal(sync_id, rows)
    failed = [r for r in rows if r["state"] == "failed"]
    waiting = [r for r in rows if r["state"] in ("pending", "sent")]
    if failed:
        status, message = SyncStatus.FAILED, "; ".join(f"{r['server']}: {r['message']}" for r in failed)
    elif waiting:
        status, message = SyncStatus.PENDING, _waiting(len(waiting))
    elif not current:
        status, message = _without_targets(sync)
    else:
        status, message = SyncStatus.SUCCEEDED, f"Written on {len(current)} server{'' if len(current) == 1 else 's'}."
    update = {"sync_status": status, "last_sync_message": message}
    if status == SyncStatus.SUCCEEDED:
        update["last_synced_at"] = timezone.now()
    Sync.objects.filter(pk=sync_id).update(**update)


def follows_sources(server: Server) -> bool:
    """Whether an auto-sync writes to this server: its agent should stay quick to ask for work."""
    syncs = Sync.objects.filter(workspace=server.workspace_id, destination=name, auto_sync_enabled=True)
    return syncs.filter(server=server).exists() or any(
        tag in (server.devpilot_tags or []) for tag in syncs.exclude(server_tag="").values_list("server_tag", flat=True))


def _refresh_removal(sync_id, rows: list[dict]) -> None:
    failed = [r for r in rows if r["state"] == "failed"]
    done = len([r for r in rows if not r["leaving"]])
    if failed:
        update = {"remove_status": SyncStatus.FAILED,
                  "last_remove_message": "; ".join(f"{r['server']}: {r['message']}" for r in failed)}
    elif any(r["state"] in ("pending", "sent") for r in rows):
        update = {"remove_status": SyncStatus.PENDING, "last_remove_message": _waiting(len(rows))}
    else:
        update = {"remove_status": SyncStatus.SUCCEEDED, "last_removed_at": timezone.now(),
                  "last_remove_message": f"Removed from the file on {done} server{'' if done == 1 else 's'}."}
        sync = Sync.objects.filter(pk=sync_id, delete_after_removal=True).select_related("workspace").first()
        if sync is not None:  # deleting with "remove secrets first": the keys are out of every file
            audit.record(sync.workspace, "sync.deleted", target=sync, removed_secrets=True)
            sync.delete()
            return
    if failed:  # a deletion waiting for the removal is called off: the sync stays, with the reason
        update["delete_after_removal"] = False
    Sync.objects.filter(pk=sync_id).update(**update)


def deliveries(sync: Sync) -> list[ServerDelivery]:
    """The deliveries to the sync's current targets, and to live servers that left them and still hold the
    sync's keys (`leaving`: the next run takes the keys out, and the delivery is forgotten once they are out)."""
    ids = {s.pk for s in targets(sync)}
    rows = list(sync.deliveries.filter(server__in=Server.objects.live()).select_related("server", "command"))
    for row in rows:
        row.leaving = row.server_id not in ids
    return rows


def delivery_state(delivery: ServerDelivery) -> dict:
    """What the sync page and the API show for one server."""
    command = delivery.command
    leaving = getattr(delivery, "leaving", False)
    state = "applied" if command is None or command.state == CommandState.DONE else command.state
    if command is not None and command.state == CommandState.FAILED:
        message = command.error
    elif leaving and not _is_retiring(command):
        state, message = "leaving", "No longer a target: the sync's next run takes its keys out of the file here."
    elif leaving:
        message = "No longer a target: taking the sync's keys out of the file here."
    elif state in ("pending", "sent"):
        message = ("The server's agent is offline: the file is written when it is back."
                   if delivery.server.agent_status != "online" else "Waiting for the server's agent.")
    elif delivery.reload_command and delivery.reload_exit_status not in (None, 0):
        message = f"Written; the reload command {delivery.reload_command!r} exited with {delivery.reload_exit_status}."
    elif command is not None and command.payload.get("removeAll"):
        message = "The sync's keys were removed from the file."
    else:
        message = "Written."
    if state == "applied" and not delivery.applied_at:
        state = "pending"
    return {"server": delivery.server.name, "serverId": str(delivery.server_id), "state": state,
            "online": delivery.server.agent_status == "online", "leaving": leaving,
            "removing": bool(command and command.payload.get("removeAll")),
            "message": message, "version": delivery.applied_version, "appliedAt": delivery.applied_at,
            "sha256": delivery.applied_sha256, "reloadCommand": delivery.reload_command,
            "reloadExitStatus": delivery.reload_exit_status,
            "reloadSucceeded": None if not delivery.reload_command or delivery.reload_exit_status is None
            else delivery.reload_exit_status == 0}


def dry_run(sync: Sync) -> dict[str, list[Change]]:
    """Per target server: keys the next delivery would create, update, remove or keep, from the HMACs recorded
    at the last applied delivery (never from the file)."""
    values, unresolved = desired(sync)
    recorded = {d.server_id: d for d in sync.deliveries.select_related("server")} if sync.pk else {}
    plans = {}
    servers = targets(sync)
    target_ids = {server.pk for server in servers}
    for server in servers:
        row = recorded.get(server.pk)
        # A file the sync moves to holds none of its keys yet (the old file's come out of that one).
        hashes = row.applied_key_hashes if row and row.path in ("", sync.file_path) else {}
        changes = [Change(key, CREATE if key not in hashes else
                          UNCHANGED if hashes[key] == key_hash(key, value) else UPDATE)
                   for key, value in values.items()]
        changes += [Change(key, KEEP, "its reference does not resolve: left as it is") for key in sorted(unresolved)]
        for key in sorted(set(hashes) - set(values) - unresolved):
            changes.append(Change(key, KEEP, "not in Devpilot; kept (secret deletion is disabled)")
                           if sync.disable_secret_deletion else Change(key, DELETE, "not in Devpilot"))
        plans[server.name] = changes
    for row in recorded.values():
        if row.server_id not in target_ids and not row.server.is_archived and row.applied_key_hashes:
            plans[f"{row.server.name} (no longer a target)"] = [
                Change(key, KEEP, "left in its file (secret deletion is disabled)") if sync.disable_secret_deletion
                else Change(key, DELETE, "the server is no longer a target") for key in sorted(row.applied_key_hashes)]
    return plans



# --- A server's side: its Devpilot tags and the reload commands a sync may choose ------------------------

MAX_TAGS, MAX_RELOAD_COMMANDS = 20, 20


def parse_tags(text: str) -> list[str]:
    tags = sorted({tag for tag in re.split(r"[\s,]+", text.strip().lower()) if tag})
    bad = [tag for tag in tags if not TAG_RE.match(tag)]
    if bad:
        raise Invalid.for_field("tags", f"{bad[0]!r} is not a tag: use lowercase letters, digits and : . _ -.")
    if len(tags) > MAX_TAGS:
        raise Invalid.for_field("tags", f"A server has at most {MAX_TAGS} tags.")
    return tags


def parse_reload_commands(text: str) -> list[str]:
    import shlex

    commands_ = list(dict.fromkeys(line.strip() for line in text.splitlines() if line.strip()))
    for command in commands_:
        try:
            argv = shlex.split(command)
        except ValueError:
            argv = []
        if not argv or len(command) > 255 or "\x00" in command:
            raise Invalid.for_field("reload_commands", f"{command[:60]!r} is not a command line (quotes must close, "
                                    "at most 255 characters).")
    if len(commands_) > MAX_RELOAD_COMMANDS:
        raise Invalid.for_field("reload_commands", f"A server has at most {MAX_RELOAD_COMMANDS} reload commands.")
    return commands_


@transaction.atomic
def set_server_options(server: Server, tags_text: str, reload_text: str, *,
                       request=None) -> tuple[list[Sync], list[Sync]]:
    """An admin's tags and allowed reload commands for a server. Auto-syncs to a tag it just got write their
    file there now, and those to a tag it lost take their keys out of it; a reload command still chosen by a sync
    cannot be taken off the list. Returns those syncs: (now writing here, taking their keys out of here)."""
    tags, reload_commands = parse_tags(tags_text), parse_reload_commands(reload_text)
    chosen = Sync.objects.filter(destination=name, workspace=server.workspace_id).exclude(reload_command="")
    in_use = sorted({s.reload_command for s in chosen if s.server_id == server.pk or s.server_tag in tags}
                    - set(reload_commands))
    if in_use:
        raise Invalid.for_field("reload_commands", f"{in_use[0]!r} is the reload command of a sync writing to this "
                                "server; change that sync first.")
    before = set(server.devpilot_tags or [])
    added, removed = set(tags) - before, before - set(tags)
    changed = []
    if tags != sorted(server.devpilot_tags or []):
        changed.append("tags")
    if reload_commands != (server.reload_commands or []):
        changed.append("reload commands")
    server.devpilot_tags, server.reload_commands = tags, reload_commands
    server.save(update_fields=["devpilot_tags", "reload_commands"])
    if "tags" in changed:
        audit.record(server.workspace, "server.tags_changed", request=request, target=server, tags=", ".join(tags))
    if "reload commands" in changed:
        audit.record(server.workspace, "server.reload_commands_changed", request=request, target=server)
    # Auto-syncs to a tag it got write their file now; those to a tag it lost take their keys out of it.
    reached = list(Sync.objects.filter(destination=name, workspace=server.workspace_id,
                                       server_tag__in=added | removed, auto_sync_enabled=True))
    for sync in reached:
        queue(sync)
    return [s for s in reached if s.server_tag in added], [s for s in reached if s.server_tag in removed]


def server_deliveries(server: Server) -> list[tuple[Sync, dict]]:
    """The syncs writing a file on this server, with their delivery's state, for the server page."""
    rows = ServerDelivery.objects.filter(server=server).select_related("sync", "server", "command")
    return [(row.sync, delivery_state(row)) for row in rows
            if row.sync.server_id == server.pk or row.sync.server_tag in (server.devpilot_tags or [])]

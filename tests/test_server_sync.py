"""Secrets delivered to servers: a sync whose destination is Devpilot servers, written by the real agent script
(run as a subprocess against the live test server) into temporary directories."""

import json
import stat
import sys
import threading
import time

import pytest
from django.utils import timezone

from devpilot import secrets
from devpilot.errors import Invalid
from devpilot.templatetags.devpilot import audit_sentence_text
from provisioning.models import AgentCommand, CommandState, Server
from syncs import services, tasks
from syncs.destinations import devpilot_server
from syncs.models import ServerDelivery, Sync
from tests.test_agent_channel import HOST_KEY, Agent, agent  # noqa: F401 - the fixture
from tests.test_provisioning import manual_tasks, new_server, registration_token, settle  # noqa: F401


@pytest.fixture
def dev(workspace):
    env = workspace.environments.get(slug="dev")
    secrets.create_folder(env, "/", "app")
    return env


@pytest.fixture
def dispatches(monkeypatch):
    queued = []
    monkeypatch.setattr(tasks, "_check_folder_at", lambda environment_id, path, when: queued.append((environment_id, path)))
    return queued


def server_sync(workspace, dev, tmp_path, *, server=None, tag="", name="web-env", fmt="dotenv", **options):
    sync = Sync(workspace=workspace, name=name, environment=dev, folder=dev.folders.get(path="/app"),
                destination=devpilot_server.name, server=server, server_tag=tag,
                file_path=str(tmp_path / "etc" / f"{name}.env"), file_format=fmt, **options)
    return services.create(sync)


def deliver(running):
    """The agent asks once (and again at once while commands come)."""
    return running.run()


def parse_env(path):
    from devpilot import dotenv

    return dotenv.parse(path.read_text()).entries


def token_of(fake, name):
    import base64
    import re

    (droplet,) = [d for d in fake.droplets.values() if d.get("name") == name]
    encoded = re.search(r"path: /etc/devpilot/registration-token\n.*\n.*\n    content: (\S+)", droplet["_user_data"]).group(1)
    return base64.b64decode(encoded).decode()


def delivery(sync, server):
    return ServerDelivery.objects.select_related("command", "server").get(sync=sync, server=server)


def test_a_sync_writes_updates_and_deletes_keys_keeping_unmanaged_lines(agent, workspace, dev, tmp_path, dispatches,
                                                                         django_capture_on_commit_callbacks):
    server, running = agent
    target = tmp_path / "etc" / "web-env.env"
    target.parent.mkdir()
    target.write_text("# written by hand\nHAND=kept\n\nexport OTHER='x y'\n")
    secrets.create_secret(dev, "/app", "DATABASE_URL", "postgres://u:p@db/app")
    secrets.create_secret(dev, "/app", "GREETING", "hello world $HOME 'quoted'\nsecond line")
    with django_capture_on_commit_callbacks(execute=True):
        sync = server_sync(workspace, dev, tmp_path, server=server)
    (command,) = AgentCommand.objects.filter(kind="write_env_file")
    assert "postgres" not in json.dumps(command.payload)  # values are never stored in the command
    deliver(running)
    command.refresh_from_db()
    assert command.state == CommandState.DONE, command.error
    lines = target.read_text().splitlines()
    assert lines[:4] == ["# written by hand", "HAND=kept", "", "export OTHER='x y'"]
    assert parse_env(target) == {"HAND": "kept", "OTHER": "x y", "DATABASE_URL": "postgres://u:p@db/app",
                                 "GREETING": "hello world $HOME 'quoted'\nsecond line"}
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    row = delivery(sync, server)
    assert row.applied_sha256 == __import__("hashlib").sha256(target.read_bytes()).hexdigest()
    assert set(row.applied_key_hashes) == {"DATABASE_URL", "GREETING"}
    assert "postgres" not in json.dumps(row.applied_key_hashes)
    sync.refresh_from_db()
    assert sync.sync_status == "succeeded" and sync.last_sync_message == "Written on 1 server."
    assert "postgres" not in running.runs[-1].stderr and "hello" not in running.runs[-1].stderr

    # An update and a deletion, through auto-sync: the file follows, hand-written lines stay where they were.
    db_url = dev.secrets.get(key="DATABASE_URL")
    with django_capture_on_commit_callbacks(execute=True):
        secrets.update_secret(db_url, value="postgres://u:p@db2/app")
        secrets.delete_secret(dev.secrets.get(key="GREETING"))
    assert set(dispatches) == {(dev.pk, "/app")}
    Sync.objects.filter(pk=sync.pk).update(pending_run_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.dispatch_folder(dev.pk, "/app") == 1
    plan = devpilot_server.dry_run(Sync.objects.get(pk=sync.pk))
    assert {(c.key, c.action) for c in plan["web-1"]} == {("DATABASE_URL", "update"), ("GREETING", "delete")}
    deliver(running)
    assert parse_env(target) == {"HAND": "kept", "OTHER": "x y", "DATABASE_URL": "postgres://u:p@db2/app"}
    assert target.read_text().splitlines()[:4] == ["# written by hand", "HAND=kept", "", "export OTHER='x y'"]
    assert {(c.key, c.action) for c in devpilot_server.dry_run(Sync.objects.get(pk=sync.pk))["web-1"]} == {
        ("DATABASE_URL", "unchanged")}
    sentences = [audit_sentence_text(e) for e in workspace.audit_events.filter(action="sync.delivered")]
    assert f"Devpilot sent 2 secrets of the sync web-env to the server web-1 ({target})" in sentences
    assert all("postgres" not in json.dumps(e.data) for e in workspace.audit_events.all())


def test_disable_secret_deletion_keeps_keys_the_sync_wrote(agent, workspace, dev, tmp_path,
                                                           django_capture_on_commit_callbacks):
    server, running = agent
    secrets.create_secret(dev, "/app", "A", "1")
    secrets.create_secret(dev, "/app", "B", "2")
    with django_capture_on_commit_callbacks(execute=True):
        sync = server_sync(workspace, dev, tmp_path, server=server, disable_secret_deletion=True)
    deliver(running)
    secrets.delete_secret(dev.secrets.get(key="B"))
    with django_capture_on_commit_callbacks(execute=True):
        services.sync_now(Sync.objects.get(pk=sync.pk))
    assert {(c.key, c.action) for c in devpilot_server.dry_run(sync)["web-1"]} == {("A", "unchanged"), ("B", "keep")}
    deliver(running)
    assert parse_env(tmp_path / "etc" / "web-env.env") == {"A": "1", "B": "2"}


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_json_and_yaml_files(agent, workspace, dev, tmp_path, fmt, django_capture_on_commit_callbacks):
    server, running = agent
    tricky = 'a: "b" # c\n\\d \u00e9'
    secrets.create_secret(dev, "/app", "TRICKY", tricky)
    secrets.create_secret(dev, "/app", "PLAIN", "yes")
    with django_capture_on_commit_callbacks(execute=True):
        server_sync(workspace, dev, tmp_path, server=server, fmt=fmt)
    deliver(running)
    text = (tmp_path / "etc" / "web-env.env").read_text()
    if fmt == "json":
        assert json.loads(text) == {"TRICKY": tricky, "PLAIN": "yes"}
    else:
        yaml = pytest.importorskip("yaml")
        assert yaml.safe_load(text) == {"TRICKY": tricky, "PLAIN": "yes"}


def test_mode_owner_and_the_replace_is_atomic(agent, workspace, dev, tmp_path, django_capture_on_commit_callbacks):
    """A reader polling the file while the agent rewrites it many times only ever sees a whole file."""
    server, running = agent
    size = 60_000  # three values of 60 kB: one write of the file is far beyond a pipe's atomic size

    def whole(char):
        return "".join(f"BIG{n}={char * size}\n" for n in range(3))

    for n in range(3):
        secrets.create_secret(dev, "/app", f"BIG{n}", "x" * size)
    with django_capture_on_commit_callbacks(execute=True):
        sync = server_sync(workspace, dev, tmp_path, server=server, file_mode="0640")
    deliver(running)
    target = tmp_path / "etc" / "web-env.env"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640 and target.read_text() == whole("x")
    seen, stop = [], threading.Event()

    def watch():
        while not stop.is_set():
            seen.append(target.read_text())

    reader = threading.Thread(target=watch)
    reader.start()
    try:
        for char in "0123":
            for n in range(3):
                secrets.update_secret(dev.secrets.get(key=f"BIG{n}"), value=char * size)
            with django_capture_on_commit_callbacks(execute=True):
                services.sync_now(Sync.objects.get(pk=sync.pk))
            deliver(running)
    finally:
        stop.set()
        reader.join()
    assert target.read_text() == whole("3")
    assert len(seen) > 10 and all(text in {whole(c) for c in "x0123"} for text in seen)
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert [p.name for p in target.parent.iterdir()] == ["web-env.env"]  # no temporary file left behind


def test_reload_command_success_and_failure(agent, workspace, dev, tmp_path, django_capture_on_commit_callbacks):
    server, running = agent
    marker = tmp_path / "reloaded"
    ok = f"{sys.executable} -c \"open('{marker}', 'w').write('yes')\""
    failing = f"{sys.executable} -c \"raise SystemExit(3)\""
    Server.objects.filter(pk=server.pk).update(reload_commands=[ok, failing])
    server.refresh_from_db()
    secrets.create_secret(dev, "/app", "A", "1")
    with pytest.raises(Invalid, match="not one of the reload commands"):
        server_sync(workspace, dev, tmp_path, server=server, reload_command="systemctl reload anything")
    assert not Sync.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        sync = server_sync(workspace, dev, tmp_path, server=server, reload_command=ok)
    deliver(running)
    assert marker.read_text() == "yes"
    state = devpilot_server.delivery_state(delivery(sync, server))
    assert state["state"] == "applied" and state["reloadSucceeded"] is True and state["reloadExitStatus"] == 0

    with django_capture_on_commit_callbacks(execute=True):
        services.update(Sync.objects.get(pk=sync.pk), {"reload_command": failing})
        services.sync_now(Sync.objects.get(pk=sync.pk))
    deliver(running)
    state = devpilot_server.delivery_state(delivery(sync, server))
    assert state["reloadSucceeded"] is False and state["reloadExitStatus"] == 3
    assert "exited with 3" in state["message"]
    assert state["version"] == 2


def test_an_offline_server_gets_the_latest_values_when_it_is_back(agent, workspace, dev, tmp_path,
                                                                 django_capture_on_commit_callbacks):
    server, running = agent
    secrets.create_secret(dev, "/app", "A", "1")
    with django_capture_on_commit_callbacks(execute=True):
        sync = server_sync(workspace, dev, tmp_path, server=server)
    Server.objects.filter(pk=server.pk).update(agent_last_seen_at=timezone.now() - timezone.timedelta(hours=1))
    state = devpilot_server.delivery_state(delivery(sync, server))
    assert state["state"] == "pending" and "offline" in state["message"]
    # Edited twice while offline: still one command, which carries the newest value when fetched.
    for value in ("2", "3"):
        secrets.update_secret(dev.secrets.get(key="A"), value=value)
        with django_capture_on_commit_callbacks(execute=True):
            services.sync_now(Sync.objects.get(pk=sync.pk))
    assert AgentCommand.objects.filter(kind="write_env_file").count() == 1
    deliver(running)
    assert parse_env(tmp_path / "etc" / "web-env.env") == {"A": "3"}
    assert devpilot_server.delivery_state(delivery(sync, server))["state"] == "applied"


def test_a_tag_reaches_servers_tagged_later_and_leaves_untagged_ones(agent, workspace, connection, fake_do, dev,
                                                                    tmp_path, django_capture_on_commit_callbacks):
    server, running = agent
    Server.objects.filter(pk=server.pk).update(devpilot_tags=["web"])
    secrets.create_secret(dev, "/app", "A", "1")
    with django_capture_on_commit_callbacks(execute=True):
        sync = server_sync(workspace, dev, tmp_path, tag="web")
    second_root = tmp_path / "second"
    (second_root / "root" / ".ssh").mkdir(parents=True)
    (second_root / "ssh_host_ed25519_key.pub").write_text(HOST_KEY + "\n")
    other = settle(new_server(workspace, connection, name="web-2"))
    second = Agent(running.url, second_root, token_of(fake_do, "web-2"))
    second.run()
    deliver(running)
    assert parse_env(tmp_path / "etc" / "web-env.env") == {"A": "1"}
    assert [d.server.name for d in devpilot_server.deliveries(sync)] == ["web-1"]

    # web-2 is tagged: the next run reaches it too.
    Server.objects.filter(pk=other.pk).update(devpilot_tags=["web", "eu"])
    with django_capture_on_commit_callbacks(execute=True):
        services.sync_now(Sync.objects.get(pk=sync.pk))
    assert {d.server.name for d in devpilot_server.deliveries(sync)} == {"web-1", "web-2"}
    second.run()
    assert devpilot_server.delivery_state(delivery(sync, other))["state"] == "applied"

    # web-1 loses the tag on its page: the auto-sync's run takes the sync's keys out of web-1's file (its other
    # lines stay), shows web-1 as leaving until its agent did, then forgets it. (Both agents run on this machine
    # and write the same path; web-2's agent does not run again here.)
    env_file = tmp_path / "etc" / "web-env.env"
    env_file.write_text("KEEP=me\n" + env_file.read_text())
    with django_capture_on_commit_callbacks(execute=True):
        devpilot_server.set_server_options(Server.objects.get(pk=server.pk), "", "")
    shown = {d.server.name: devpilot_server.delivery_state(d) for d in devpilot_server.deliveries(sync)}
    assert shown["web-1"]["leaving"] and "No longer a target" in shown["web-1"]["message"]
    assert not shown["web-2"]["leaving"]
    plan = devpilot_server.dry_run(Sync.objects.get(pk=sync.pk))
    assert [(c.key, c.action) for c in plan["web-1 (no longer a target)"]] == [("A", "delete")]
    with django_capture_on_commit_callbacks(execute=True):
        deliver(running)
    assert parse_env(env_file) == {"KEEP": "me"}
    assert [d.server.name for d in devpilot_server.deliveries(sync)] == ["web-2"]
    event = workspace.audit_events.filter(action="sync.retired").get()
    assert audit_sentence_text(event) == (f"Devpilot took 1 secret of the sync web-env out of {env_file} on the server "
                                          "web-1, a file the sync no longer writes")
    assert "1" not in str(event.data.get("keys"))


def test_the_edit_page_moves_the_file_and_changes_the_servers(agent, workspace, owner, dev, tmp_path, client_for,
                                                              django_capture_on_commit_callbacks):
    """A file the sync stops writing loses its keys (other lines stay) and the new file gets them; a server that
    is no longer chosen loses them too; with secret deletion disabled the old file is left as it is."""
    server, running = agent
    secrets.create_secret(dev, "/app", "A", "1")
    with django_capture_on_commit_callbacks(execute=True):
        sync = server_sync(workspace, dev, tmp_path, server=server)
    deliver(running)
    old, new = tmp_path / "etc" / "web-env.env", tmp_path / "srv" / "app.env"
    old.write_text(old.read_text() + "MINE=kept\n")
    admin = client_for(owner)
    edit = f"/w/{workspace.slug}/syncs/{sync.pk}/edit/"
    page = admin.get(edit).content.decode()
    assert f'value="server:{server.pk}" selected' in page and str(old) in page and 'name="connection"' not in page
    form = {"details-name": "web-env", "details-description": "", "options-initial_sync_behavior": "overwrite-destination",
            "options-key_schema": "", "options-auto_sync_enabled": "on", "destination-target": f"server:{server.pk}",
            "destination-file_path": str(new), "destination-file_format": "dotenv", "destination-file_mode": "0640"}
    bad = admin.post(edit, {**form, "destination-file_path": "srv/app.env"})
    assert bad.status_code == 200 and "must be absolute" in bad.content.decode()
    assert Sync.objects.get(pk=sync.pk).file_path == str(old)
    with django_capture_on_commit_callbacks(execute=True):
        saved = admin.post(edit, form)
    assert saved.status_code == 302
    sync.refresh_from_db()
    assert (sync.file_path, sync.file_mode) == (str(new), "0640")
    assert [(c.key, c.action) for c in devpilot_server.dry_run(sync)["web-1"]] == [("A", "create")]
    deliver(running)
    assert parse_env(old) == {"MINE": "kept"} and parse_env(new) == {"A": "1"}
    assert stat.S_IMODE(new.stat().st_mode) == 0o640
    assert devpilot_server.delivery_state(delivery(sync, server))["state"] == "applied"

    # A tag no server has is not offered; to every server tagged api (web-1 now), back in the first file.
    with django_capture_on_commit_callbacks(execute=True):
        assert "Select a valid choice" in admin.post(edit, {**form, "destination-target": "tag:web"}).content.decode()
        Server.objects.filter(pk=server.pk).update(devpilot_tags=["api"])
        admin.post(edit, {**form, "destination-target": "tag:api", "destination-file_path": str(old)})
    deliver(running)
    assert parse_env(old) == {"MINE": "kept", "A": "1"} and parse_env(new) == {}

    # With secret deletion disabled, a move leaves the old file as it is; a file gone is not made again.
    Server.objects.filter(pk=server.pk).update(devpilot_tags=["api"])
    with django_capture_on_commit_callbacks(execute=True):
        admin.post(edit, {**form, "destination-target": "tag:api", "destination-file_path": str(new),
                          "options-disable_secret_deletion": "on"})
    deliver(running)
    assert parse_env(old) == {"MINE": "kept", "A": "1"} and parse_env(new) == {"A": "1"}


def test_another_workspaces_server_is_refused(agent, workspace, dev, tmp_path, make_user):
    from devpilot.models import Workspace

    server, running = agent
    other = Workspace.objects.create(name="Other", slug="other")
    stranger = Server.objects.create(workspace=other, name="theirs", region="nyc3", size="s-1vcpu-1gb",
                                     image="ubuntu-24-04-x64")
    with pytest.raises(Invalid, match="No server of this workspace"):
        server_sync(workspace, dev, tmp_path, server=stranger)
    assert not AgentCommand.objects.filter(server=stranger).exists()


@pytest.mark.parametrize("path, problem", [
    ("etc/app.env", "absolute"), ("/etc/../root/.ssh/authorized_keys", ".."), ("/etc/devpilot/", "directory"),
])
def test_bad_paths_and_modes_are_refused(agent, workspace, dev, tmp_path, path, problem):
    server, _ = agent
    with pytest.raises(Invalid, match=problem):
        services.create(Sync(workspace=workspace, name="bad", environment=dev, folder=dev.folders.get(path="/app"),
                             destination=devpilot_server.name, server=server, file_path=path))
    with pytest.raises(Invalid, match="octal"):
        server_sync(workspace, dev, tmp_path, server=server, file_mode="0999")


def test_the_work_pending_hint_shortens_the_interval(agent, workspace, dev, tmp_path):
    from provisioning import agents

    server, running = agent
    assert agents.exchange(running.credential, {})["interval"] == 60
    server_sync(workspace, dev, tmp_path, server=server, auto_sync_enabled=True)
    assert agents.exchange(running.credential, {})["interval"] == 1


def test_admins_set_tags_and_reload_commands_on_the_server_page(agent, workspace, owner, make_member, dev, tmp_path,
                                                                client_for, django_capture_on_commit_callbacks):
    from devpilot.models import Role

    server, running = agent
    secrets.create_secret(dev, "/app", "A", "1")
    with django_capture_on_commit_callbacks(execute=True):
        sync = server_sync(workspace, dev, tmp_path, tag="web")
    assert not AgentCommand.objects.filter(kind="write_env_file").exists()  # nobody tagged yet
    url = f"/w/{workspace.slug}/servers/{server.pk}/files/"
    admin = client_for(owner)
    bad = admin.post(url, {"tags": "web, Not A Tag!", "reload_commands": ""}, HTTP_HX_REQUEST="true")
    assert "is not a tag" in bad.content.decode()
    server.refresh_from_db()
    assert server.devpilot_tags == []
    with django_capture_on_commit_callbacks(execute=True):
        page = admin.post(url, {"tags": "web, eu", "reload_commands": "systemctl reload myapp\n'unclosed"},
                          HTTP_HX_REQUEST="true")
    assert "is not a command line" in page.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        page = admin.post(url, {"tags": "web, eu", "reload_commands": "systemctl reload myapp\n"}, HTTP_HX_REQUEST="true")
    assert "1 sync now writes to this server" in page.content.decode()
    server.refresh_from_db()
    assert server.devpilot_tags == ["eu", "web"] and server.reload_commands == ["systemctl reload myapp"]
    deliver(running)
    assert parse_env(tmp_path / "etc" / "web-env.env") == {"A": "1"}
    shown = admin.get(url).content.decode()
    assert "web-env" in shown and "Applied" in shown and "version 1" in shown
    member = make_member(workspace, Role.MEMBER, "m@example.com")
    assert client_for(member).post(url, {"tags": "", "reload_commands": ""}).status_code == 403
    sentences = [audit_sentence_text(e) for e in workspace.audit_events.all()]
    assert "owner@example.com changed the Devpilot tags of the server web-1" in sentences
    # The tag taken off again: the sync takes its keys out of the file.
    with django_capture_on_commit_callbacks(execute=True):
        page = admin.post(url, {"tags": "eu", "reload_commands": "systemctl reload myapp"}, HTTP_HX_REQUEST="true")
    assert "1 sync takes its keys out of this server&#x27;s file." in page.content.decode()
    deliver(running)
    assert parse_env(tmp_path / "etc" / "web-env.env") == {}


def test_remove_secrets_takes_only_the_syncs_keys_out_and_the_page_shows_each_server(
        agent, workspace, owner, dev, tmp_path, client_for, django_capture_on_commit_callbacks):
    server, running = agent
    target = tmp_path / "etc" / "web-env.env"
    target.parent.mkdir()
    target.write_text("HAND=kept\n")
    secrets.create_secret(dev, "/app", "A", "1")
    with django_capture_on_commit_callbacks(execute=True):
        sync = server_sync(workspace, dev, tmp_path, server=server)
    admin = client_for(owner)
    page = admin.get(f"/w/{workspace.slug}/syncs/{sync.pk}/").content.decode()
    assert 'id="sync-servers"' in page and "Waiting for the server" in page and "none yet" in page
    deliver(running)
    page = admin.get(f"/w/{workspace.slug}/syncs/{sync.pk}/").content.decode()
    row = delivery(sync, server)
    assert row.applied_sha256[:12] in page and "Applied" in page
    dry = admin.get(f"/w/{workspace.slug}/syncs/{sync.pk}/dry-run/", HTTP_HX_REQUEST="true").content.decode()
    assert "web-1" in dry and "UNCHANGED" in dry and "1" not in dry.split("<code>A</code>")[0][-40:]
    with django_capture_on_commit_callbacks(execute=True):
        services.remove_secrets(Sync.objects.get(pk=sync.pk))
    deliver(running)
    assert target.read_text() == "HAND=kept\n"
    sync.refresh_from_db()
    assert sync.remove_status == "succeeded" and sync.last_remove_message == "Removed from the file on 1 server."


def test_the_wizard_creates_a_server_sync_with_a_dry_run_per_server(agent, workspace, owner, dev, tmp_path, client_for,
                                                                    django_capture_on_commit_callbacks):
    server, running = agent
    Server.objects.filter(pk=server.pk).update(devpilot_tags=["web"], reload_commands=["true"])
    secrets.create_secret(dev, "/app", "A", "1")
    admin = client_for(owner)
    base = f"/w/{workspace.slug}/syncs/new/"
    admin.get(base)
    assert admin.post(base + "source/", {"environment": "dev", "secret_path": "/app"}).url.endswith("/destination/")
    page = admin.get(base + "destination/?kind=servers").content.decode()
    assert "Devpilot servers" in page and f"server:{server.pk}" in page and "tag:web" in page and "true" in page
    target = str(tmp_path / "etc" / "wizard.env")
    bad = admin.post(base + "destination/", {"destination_kind": "servers", "target": "tag:web", "file_path": "etc/x",
                                             "file_format": "dotenv", "file_mode": "0600"})
    assert bad.status_code == 200 and "must be absolute" in bad.content.decode()
    bad = admin.post(base + "destination/", {"destination_kind": "servers", "target": "tag:web", "file_path": target,
                                             "file_format": "dotenv", "file_mode": "644x"})
    assert "octal" in bad.content.decode()
    done = admin.post(base + "destination/", {"destination_kind": "servers", "target": "tag:web", "file_path": target,
                                              "file_format": "dotenv", "file_mode": "0640", "reload_command": "true"})
    assert done.status_code == 302 and done.url.endswith("/options/")
    admin.post(base + "options/", {"initial_sync_behavior": "overwrite-destination", "key_schema": "",
                                   "auto_sync_enabled": "on"})
    admin.post(base + "details/", {"name": "wizard", "description": ""})
    review = admin.get(base + "review/").content.decode()
    assert "Dry run on each server" in review and "web-1" in review and "CREATE" in review and target in review
    with django_capture_on_commit_callbacks(execute=True):
        created = admin.post(base + "review/", {"go": "create"})
    sync = Sync.objects.get(name="wizard")
    assert created.url.endswith(f"/syncs/{sync.pk}/")
    assert (sync.destination, sync.server_tag, sync.file_mode, sync.reload_command) == ("devpilot-server", "web", "0640", "true")
    deliver(running)
    assert parse_env(tmp_path / "etc" / "wizard.env") == {"A": "1"}
    page = admin.get(created.url).content.decode()
    assert "every server tagged" in page and "Succeeded" in page and "Applied" in page
    # Its Edit page offers no App Platform connection, and a posted one changes nothing.
    edit = admin.get(created.url + "edit/").content.decode()
    assert 'name="connection"' not in edit and target in edit


def test_the_api_creates_lists_gets_updates_syncs_removes_and_deletes(agent, workspace, dev, tmp_path, api,
                                                                      django_capture_on_commit_callbacks):
    server, running = agent
    Server.objects.filter(pk=server.pk).update(reload_commands=["true"])
    secrets.create_secret(dev, "/app", "A", "1")
    base = "/api/v1/secret-syncs/devpilot-server"
    path = str(tmp_path / "etc" / "api.env")
    body = {"name": "api-env", "environment": "dev", "secretPath": "/app",
            "destinationConfig": {"serverId": str(server.pk), "filePath": path, "mode": "0640", "reloadCommand": "true"}}
    refused = api.post(base, {**body, "destinationConfig": {**body["destinationConfig"], "reloadCommand": "rm -rf /"}})
    assert refused.status_code == 422 or refused.status_code == 400
    assert "reload commands" in refused.json()["message"]
    assert api.post(base, {**body, "destinationConfig": {"serverId": str(server.pk), "tag": "web"}}).status_code in (400, 422)
    assert api.post(base, {**body, "destinationConfig": {"serverId": str(server.pk), "shell": "x"}}).status_code in (400, 422)
    with django_capture_on_commit_callbacks(execute=True):
        created = api.post(base, body)
    assert created.status_code == 200, created.json()
    sync = created.json()["secretSync"]
    assert sync["destination"] == "devpilot-server" and sync["destinationConfig"]["mode"] == "0640"
    assert sync["servers"][0]["state"] == "pending" and sync["syncStatus"] == "pending"
    deliver(running)
    one = api.get(f"{base}/{sync['id']}").json()["secretSync"]
    assert one["servers"][0]["state"] == "applied" and one["servers"][0]["reloadExitStatus"] == 0
    assert one["servers"][0]["fileSha256"] and one["syncStatus"] == "succeeded"
    assert [s["name"] for s in api.get(base).json()["secretSyncs"]] == ["api-env"]
    assert api.get("/api/v1/secret-syncs/digital-ocean-app-platform").json()["secretSyncs"] == []
    assert api.get(f"/api/v1/secret-syncs/digital-ocean-app-platform/{sync['id']}").status_code == 404
    assert api.get(f"{base}/sync-name/api-env").json()["secretSync"]["id"] == sync["id"]
    with django_capture_on_commit_callbacks(execute=True):
        changed = api.patch(f"{base}/{sync['id']}", {"destinationConfig": {"serverId": str(server.pk), "filePath": path,
                                                                           "format": "json"}})
    assert changed.json()["secretSync"]["destinationConfig"]["format"] == "json"
    with django_capture_on_commit_callbacks(execute=True):
        assert api.post(f"{base}/{sync['id']}/sync-secrets").status_code == 200
    (tmp_path / "etc" / "api.env").unlink()
    deliver(running)
    assert json.loads((tmp_path / "etc" / "api.env").read_text()) == {"A": "1"}
    with django_capture_on_commit_callbacks(execute=True):
        removed = api.post(f"{base}/{sync['id']}/remove-secrets")
    assert removed.json()["secretSync"]["removeStatus"] == "pending"
    deliver(running)
    assert json.loads((tmp_path / "etc" / "api.env").read_text()) == {}
    with django_capture_on_commit_callbacks(execute=True):
        gone = api.delete(f"{base}/{sync['id']}?removeSecrets=true")
    assert gone.status_code == 200 and Sync.objects.filter(pk=sync["id"]).exists()
    deliver(running)
    assert not Sync.objects.filter(pk=sync["id"]).exists()


def test_an_edit_reaches_a_running_agent_within_the_debounce_plus_2_seconds(requires_postgres, agent, workspace, dev,
                                                                            tmp_path, dispatches,
                                                                            django_capture_on_commit_callbacks):
    """The agent running as on a server (its loop, not --once), told to ask every second while an auto-sync
    targets its server: once the debounce has passed, the file holds the edit within 2 s. The agent's requests
    and the test's edits meet in the database at once, which SQLite's one shared test connection cannot carry."""
    import subprocess

    from provisioning.cloudinit import AGENT_PATH

    server, running = agent
    secrets.create_secret(dev, "/app", "A", "0")
    with django_capture_on_commit_callbacks(execute=True):
        sync = server_sync(workspace, dev, tmp_path, server=server)
    target = tmp_path / "etc" / "web-env.env"
    loop = subprocess.Popen(
        [sys.executable, str(AGENT_PATH), "--allow-http", "--server", running.url, "--state", str(running.state),
         "--attempts", "3", "--authorized-keys", str(running.authorized_keys),
         "--host-key", str(running.root / "ssh_host_ed25519_key.pub")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 15
        while not (target.exists() and parse_env(target) == {"A": "0"}) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert parse_env(target) == {"A": "0"}
        latencies = []
        for value in ("1", "2", "3"):
            with django_capture_on_commit_callbacks(execute=True):
                secrets.update_secret(dev.secrets.get(key="A"), value=value)
            Sync.objects.filter(pk=sync.pk).update(pending_run_at=timezone.now())  # the debounce has passed
            started = time.monotonic()
            with django_capture_on_commit_callbacks(execute=True):
                tasks.dispatch_folder(dev.pk, "/app")
            while parse_env(target) != {"A": value} and time.monotonic() - started < 5:
                time.sleep(0.02)
            latencies.append(time.monotonic() - started)
            assert parse_env(target) == {"A": value}
        print(f"after the debounce, edit -> file: {', '.join(f'{s * 1000:.0f} ms' for s in latencies)}")
        assert max(latencies) < 2, latencies
    finally:
        loop.terminate()
        _, errors = loop.communicate(timeout=10)
        settle_other_connections()
    assert "command write_env_file done" in errors and "hello" not in errors


def settle_other_connections(seconds=10):
    """Wait until no other connection to the test database is in a query or a transaction. The live server
    may still be answering the stopped agent's last heartbeat; its row locks and the flush that ends this
    test, taking every table, would deadlock."""
    from django.db import connection

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                           "AND pid <> pg_backend_pid() AND state IN ('active', 'idle in transaction')")
            if cursor.fetchone()[0] == 0:
                return
        time.sleep(0.05)


def test_a_command_whose_answer_was_lost_is_sent_again(agent, workspace, dev, tmp_path,
                                                       django_capture_on_commit_callbacks):
    from provisioning import agents

    server, running = agent
    secrets.create_secret(dev, "/app", "A", "1")
    with django_capture_on_commit_callbacks(execute=True):
        server_sync(workspace, dev, tmp_path, server=server)
    (lost,) = agents.exchange(running.credential, {})["commands"]  # the agent timed out: it never saw this
    assert agents.exchange(running.credential, {})["commands"] == []
    AgentCommand.objects.filter(pk=lost["id"]).update(sent_at=timezone.now() - devpilot_server.RESEND)
    deliver(running)
    assert parse_env(tmp_path / "etc" / "web-env.env") == {"A": "1"}
    assert AgentCommand.objects.get(pk=lost["id"]).state == CommandState.DONE

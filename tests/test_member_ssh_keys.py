"""People's own SSH keys: registered in their profile, put on the servers an admin lets them reach and
taken off again (key deleted, access removed, member removed) by the real agent, through the command
channel, keeping every line of authorized_keys Devpilot does not manage."""

import subprocess
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from devpilot import members
from devpilot.errors import Conflict, Invalid
from devpilot.models import Membership, Role
from devpilot.templatetags.devpilot import audit_sentence_text
from provisioning import access
from provisioning.models import AgentCommand, MemberSshKey, ServerAccess
from tests.test_agent_channel import HOST_KEY, agent  # noqa: F401 - the fixture
from tests.test_provisioning import manual_tasks  # noqa: F401

UNMANAGED = ["# keys put here by hand", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOpsTeamKeyPutThereByHand00000000000000 ops@host", "",
             'from="10.0.0.0/8" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBackupRobotKey000000000000000000000 backup']


def public_key(private, comment="me@laptop") -> str:
    line = private.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return f"{line} {comment}"


def ed25519_key(comment="me@laptop") -> str:
    return public_key(ed25519.Ed25519PrivateKey.generate(), comment)


def ssh_keygen_fingerprint(tmp_path, key: str) -> str:
    path = tmp_path / "key.pub"
    path.write_text(key + "\n")
    return subprocess.run(["ssh-keygen", "-lf", str(path)], capture_output=True, text=True, check=True).stdout.split()[1]


@pytest.mark.parametrize("make", [lambda: ed25519_key(), lambda: public_key(rsa.generate_private_key(65537, 3072)),
                                  lambda: public_key(ec.generate_private_key(ec.SECP256R1())),
                                  lambda: public_key(ec.generate_private_key(ec.SECP384R1()))],
                         ids=["ed25519", "rsa", "ecdsa-p256", "ecdsa-p384"])
def test_keys_are_accepted_with_ssh_keygen_s_fingerprint(make, owner, tmp_path):
    text = make()
    key = access.add_key(owner, "", "  " + text + "\n")
    assert key.fingerprint == ssh_keygen_fingerprint(tmp_path, text) and key.fingerprint.startswith("SHA256:")
    assert key.public_key == " ".join(text.split()[:2]) and key.name == "me@laptop"


def test_bad_keys_are_refused_with_a_clear_message(owner):
    short_rsa = public_key(rsa.generate_private_key(65537, 1024))
    private = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()).decode()
    cases = {short_rsa: "has 1024 bits", private: "That is a private key", "ssh-ed25519 not-base64!": "not an SSH public key",
             "": "Paste your public key", "ssh-dss AAAAB3NzaC1kc3MAAACBAP": "not an SSH public key"}
    for text, message in cases.items():
        with pytest.raises(Invalid, match=message):
            access.add_key(owner, "x", text)
    key = ed25519_key()
    access.add_key(owner, "laptop", key)
    with pytest.raises(Conflict, match="already added"):
        access.add_key(owner, "again", key)
    assert MemberSshKey.objects.count() == 1


def test_the_profile_page_adds_lists_and_deletes_keys(client_for, owner, make_user):
    client = client_for(owner)
    key = ed25519_key("owner@desk")
    page = client.get("/accounts/ssh-keys/")
    assert page.status_code == 200 and "No key yet" in page.content.decode()
    response = client.post("/accounts/ssh-keys/", {"name": "", "public_key": key}, follow=True)
    fingerprint = MemberSshKey.objects.get().fingerprint
    assert fingerprint in response.content.decode() and "owner@desk" in response.content.decode()
    refused = client.post("/accounts/ssh-keys/", {"name": "bad", "public_key": "hello"})
    assert refused.status_code == 200 and "not an SSH public key" in refused.content.decode()
    assert MemberSshKey.objects.count() == 1
    assert 'value="bad"' in refused.content.decode()  # what was typed is kept
    # Someone else's key cannot be deleted, nor seen.
    stranger = client_for(make_user("eve@example.com"))
    assert fingerprint not in stranger.get("/accounts/ssh-keys/").content.decode()
    assert stranger.post(f"/accounts/ssh-keys/{MemberSshKey.objects.get().pk}/delete/").status_code == 404
    client.post(f"/accounts/ssh-keys/{MemberSshKey.objects.get().pk}/delete/")
    assert not MemberSshKey.objects.exists()
    assert client_for(owner).get("/accounts/ssh-keys/").status_code == 200
    assert stranger.get("/accounts/ssh-keys/").status_code == 200


def managed_lines(agent_):
    return [line for line in agent_.authorized_keys.read_text().splitlines() if " # devpilot:" in line]


def test_members_keys_reach_the_server_and_leave_it_through_the_agent(agent, workspace, owner, make_member,  # noqa: F811
                                                                       client_for):
    server, running = agent
    running.authorized_keys.write_text("\n".join(UNMANAGED) + "\n")
    bob = make_member(workspace, Role.MEMBER, "bob@example.com")
    carol = make_member(workspace, Role.MEMBER, "carol@example.com")
    laptop = access.add_key(bob, "laptop", ed25519_key("bob@laptop"))
    desk = access.add_key(bob, "desk", public_key(ec.generate_private_key(ec.SECP256R1()), "bob@desk"))
    access.add_key(carol, "carol", ed25519_key("carol@laptop"))
    assert not AgentCommand.objects.exists()  # nobody has access yet

    admin = client_for(owner)
    membership = Membership.objects.get(user=bob)
    url = f"/w/{workspace.slug}/servers/{server.pk}/access/change/"
    block = admin.post(url, {"membership": membership.pk, "action": "grant"}, HTTP_HX_REQUEST="true")
    assert block.status_code == 200 and "bob@example.com" in block.content.decode()
    assert laptop.fingerprint in block.content.decode()
    (install,) = AgentCommand.objects.all()
    assert install.kind == "install_ssh_keys" and {k["id"] for k in install.payload["keys"]} == {str(laptop.pk), str(desk.pk)}

    running.run()
    lines = running.authorized_keys.read_text().splitlines()
    assert lines[:4] == UNMANAGED  # every hand-made line, comment and blank line kept, in place
    assert sorted(lines[4:]) == sorted([f"{laptop.public_key} # devpilot:{laptop.pk}", f"{desk.public_key} # devpilot:{desk.pk}"])
    assert running.authorized_keys.stat().st_mode & 0o777 == 0o600
    install.refresh_from_db()
    assert install.state == "done"

    # Bob deletes a key from his profile: it leaves every server.
    client_for(bob).post(f"/accounts/ssh-keys/{desk.pk}/delete/")
    running.run()
    assert managed_lines(running) == [f"{laptop.public_key} # devpilot:{laptop.pk}"]

    # Carol gets access too; then Bob is removed from the workspace: his keys go, hers stay.
    access.grant(server, carol)
    running.run()
    assert len(managed_lines(running)) == 2
    members.remove_member(Membership.objects.get(user=owner), membership)
    assert not ServerAccess.objects.filter(user=bob).exists()
    running.run()
    carol_key = MemberSshKey.objects.get(user=carol)
    assert managed_lines(running) == [f"{carol_key.public_key} # devpilot:{carol_key.pk}"]
    assert running.authorized_keys.read_text().splitlines()[:4] == UNMANAGED

    # An admin takes Carol's access away from the server page.
    admin.post(url, {"membership": Membership.objects.get(user=carol).pk, "action": "revoke"})
    running.run()
    assert managed_lines(running) == [] and running.authorized_keys.read_text().splitlines() == UNMANAGED
    assert set(AgentCommand.objects.values_list("state", flat=True)) == {"done"}
    sentences = [audit_sentence_text(e) for e in workspace.audit_events.all()]
    assert "owner@example.com let bob@example.com SSH into the server web-1 with their own keys" in sentences
    assert "owner@example.com took away the SSH access of carol@example.com to the server web-1" in sentences
    assert (f"bob@example.com deleted the SSH key desk ({desk.fingerprint}) from their profile; it comes off the "
            "servers they could reach") in sentences


def test_the_server_page_shows_how_to_connect_and_who_has_access(agent, workspace, owner, make_member,  # noqa: F811
                                                                  make_user, client_for):
    server, running = agent
    viewer = make_member(workspace, Role.VIEWER, "vic@example.com")
    block = client_for(viewer).get(f"/w/{workspace.slug}/servers/{server.pk}/access/").content.decode()
    assert f"ssh root@{server.ipv4_public}" in block
    assert access.sha256_fingerprint(HOST_KEY) in block and "Give SSH access" not in block
    # Only admins choose who may reach a server.
    refused = client_for(viewer).post(f"/w/{workspace.slug}/servers/{server.pk}/access/change/",
                                      {"membership": Membership.objects.get(user=viewer).pk, "action": "grant"})
    assert refused.status_code == 403 and not ServerAccess.objects.exists()
    page = client_for(owner).get(f"/w/{workspace.slug}/servers/{server.pk}/access/").content.decode()
    assert "Give SSH access" in page and "vic@example.com" in page
    # Somebody from elsewhere cannot be given access.
    with pytest.raises(Invalid, match="Only members"):
        access.grant(server, make_user("eve@example.com"))


def test_an_agent_that_cannot_read_authorized_keys_is_sent_no_key_commands(agent, workspace, owner):  # noqa: F811
    server, running = agent
    blocker = running.root / "not-a-directory"
    blocker.write_text("")
    access.add_key(owner, "laptop", ed25519_key())
    access.grant(server, owner)  # enqueued: the agent reported its keys when it registered
    running.run("--authorized-keys", str(blocker / "authorized_keys"))  # the later flag wins
    server.refresh_from_db()
    assert "sshKeys" not in server.agent_info  # nothing reported, so nothing more is asked
    install = AgentCommand.objects.get()
    assert install.state == "failed" and "Not a directory" in install.error
    running.run("--authorized-keys", str(blocker / "authorized_keys"))
    assert AgentCommand.objects.count() == 1


def test_a_failed_change_is_retried_after_a_pause_not_on_every_heartbeat(agent, workspace, owner, monkeypatch):  # noqa: F811
    server, running = agent
    access.add_key(owner, "laptop", ed25519_key())
    access.grant(server, owner)
    (install,) = AgentCommand.objects.all()
    install.state, install.error, install.finished_at = "failed", "The agent reported: Read-only file system", install.created_at
    install.save()
    assert access.sync_server(server) == []
    from django.utils import timezone

    later = timezone.now() + access.RETRY_AFTER + timedelta(seconds=1)
    monkeypatch.setattr(timezone, "now", lambda: later)
    (retry,) = access.sync_server(server)
    assert retry.kind == "install_ssh_keys" and retry.state == "pending"


def test_access_and_commands_in_the_api(agent, workspace, owner, make_member, api, api_client_for):  # noqa: F811
    server, running = agent
    bob = make_member(workspace, Role.MEMBER, "bob@example.com")
    key = access.add_key(bob, "laptop", ed25519_key())
    url = f"/api/v1/servers/{server.pk}/access"
    assert api.post(url, {"email": "nobody@example.com"}).status_code == 400
    assert api_client_for(workspace, Role.MEMBER).post(url, {"email": "bob@example.com"}).status_code == 403
    granted = api.post(url, {"email": "BOB@example.com"})
    assert granted.status_code == 201
    body = granted.json()
    assert body["sshCommand"] == f"ssh root@{server.ipv4_public}" and body["hostKeyFingerprint"].startswith("SHA256:")
    assert body["access"] == [{"userId": bob.pk, "email": "bob@example.com",
                               "keys": [{"id": str(key.pk), "name": "laptop", "fingerprint": key.fingerprint}]}]
    running.run()
    (command,) = api.get(f"/api/v1/servers/{server.pk}/agent-commands").json()["commands"]
    assert command["state"] == "done" and command["description"] == "Add 1 SSH key to root's authorized_keys"
    assert api.delete(f"{url}/{bob.pk}").json()["access"] == []
    running.run()
    assert managed_lines(running) == []

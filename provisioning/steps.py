"""Provisioning as a state machine of numbered steps, each safe to run again.

A step either finishes, asks to be run again later (Wait), or fails with a message for
people (StepFailed). Every step can be repeated after a crash, a timeout or a duplicate
task: the Droplet is found by its devpilot:server:<id> tag before any create, the
firewall by its name, the SSH key by its fingerprint.
"""

import logging
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.utils import timezone

from connections import digitalocean
from devpilot import audit, locks
from provisioning import agents, cloudinit, sshkeys
from provisioning.models import PowerState, Server, ServerStatus, ServerStep, StepStatus

STEPS = [
    ("ssh_key", "Register the SSH key", ServerStatus.CREATING),
    ("droplet", "Create the Droplet", ServerStatus.CREATING),
    ("boot", "Wait for the Droplet to boot", ServerStatus.BOOTING),
    ("firewall", "Configure the cloud firewall", ServerStatus.CONFIGURING),
    ("agent", "Install the Devpilot agent", ServerStatus.INSTALLING_AGENT),
]
BOOT_TIMEOUT = timedelta(minutes=10)
NOT_YET_VISIBLE = timedelta(minutes=2)  # 404s right after create mean "not visible yet"
CREATE_SETTLE = timedelta(seconds=60)  # after an unanswered create, look again before creating again
AGENT_TIMEOUT = timedelta(minutes=15)
MAX_TRANSIENT_ATTEMPTS = 8
MAX_CREATE_CALLS = 4  # unconfirmed Droplet creates before the step fails (each one followed by a look-up by tag)

logger = logging.getLogger("devpilot.provisioning")


class Wait(Exception):
    def __init__(self, seconds, message=""):
        super().__init__(message)
        self.seconds, self.message = seconds, message


class StepFailed(Exception):
    pass


def create_steps(server):
    ServerStep.objects.bulk_create([
        ServerStep(server=server, number=n, key=key, label=label) for n, (key, label, _) in enumerate(STEPS, 1)
    ])


def set_status(server, status, message="", **fields):
    old = server.status
    Server.objects.filter(pk=server.pk).update(status=status, status_message=message, **fields)
    server.status, server.status_message = status, message
    for name, value in fields.items():
        setattr(server, name, value)
    if old != status:
        audit.record(server.workspace, "server.status_changed", target=server, old=old, new=status)


# --- The steps -----------------------------------------------------------------------------------


def ensure_ssh_keys(server, client):
    key = sshkeys.workspace_key(server.workspace)
    ids = []
    for number, public_key in enumerate([key.public_key, *server.extra_public_keys]):
        fingerprint = sshkeys.md5_fingerprint(public_key)
        try:
            ids.append(client.get_ssh_key(fingerprint)["id"])
            continue
        except digitalocean.NotFound:
            pass
        name = f"devpilot-{server.workspace.slug}" + (f"-{number}" if number else "")
        try:
            ids.append(client.create_ssh_key(name, public_key)["id"])
        except digitalocean.Rejected as e:
            if "already in use" not in e.message:
                raise
            ids.append(client.get_ssh_key(fingerprint)["id"])
    Server.objects.filter(pk=server.pk).update(ssh_key_ids=ids)
    server.ssh_key_ids = ids


def _explain_create(error):
    message = error.message.lower()
    if isinstance(error, digitalocean.MissingScope):
        return ("This token cannot create Droplets: it needs write scope. Generate a token with Read and Write "
                "scope and rotate the connection.")
    if "droplet limit" in message:
        return ("Your DigitalOcean account has reached its Droplet limit. Ask DigitalOcean for a higher limit "
                "(Account > Limits) or destroy a Droplet first.")
    if "size is not available" in message or "invalid size" in message:
        return ("This size is not available in this region right now (DigitalOcean sells out sizes at times). "
                "Choose another size or region.")
    if "region is not available" in message:
        return "This region is not available for new Droplets right now. Choose another region."
    return error.message


def ensure_droplet(server, client):
    if server.droplet_id:
        return
    existing = client.list_droplets(tag_name=server.tag)
    if existing:
        _adopt(server, existing[0])
        return
    if server.create_attempted_at and timezone.now() - server.create_attempted_at < CREATE_SETTLE:
        raise Wait(10, "Checking whether the last create call took effect…")
    if server.create_calls >= MAX_CREATE_CALLS:
        raise StepFailed(f"DigitalOcean did not confirm {server.create_calls} create calls, and no Droplet tagged "
                         f"{server.tag} exists. Check DigitalOcean's status page, then Retry.")
    token = server.registration_token or agents.new_registration_token(server)
    server.create_calls += 1
    Server.objects.filter(pk=server.pk).update(
        registration_token_hash=server.registration_token_hash, registration_token_ciphertext=server.registration_token_ciphertext,
        registration_expires_at=server.registration_expires_at, create_attempted_at=timezone.now(),
        create_calls=server.create_calls)
    body = {
        # A snapshot is an image named by its (numeric) id.
        "name": server.name, "region": server.region, "size": server.size,
        "image": int(server.image) if server.image.isdigit() else server.image,
        "ssh_keys": server.ssh_key_ids, "monitoring": server.monitoring, "backups": server.backups,
        "ipv6": server.ipv6, "tags": ["devpilot", f"devpilot:workspace:{server.workspace.slug}", server.tag],
        "user_data": cloudinit.user_data(settings.DEVPILOT_PUBLIC_URL, token),
    }
    try:
        droplet = client.create_droplet(**body)
    except (digitalocean.Rejected, digitalocean.MissingScope) as e:
        raise StepFailed(_explain_create(e)) from None
    except digitalocean.Unavailable as e:
        if e.request_sent:
            raise Wait(15, "DigitalOcean did not confirm the create; looking the Droplet up by its tag.") from None
        raise
    _adopt(server, droplet)


def _adopt(server, droplet):
    """Save the Droplet id the moment it is known."""
    Server.objects.filter(pk=server.pk).update(droplet_id=droplet["id"], droplet_created_at=timezone.now())
    server.droplet_id, server.droplet_created_at = droplet["id"], timezone.now()


def record_networks(server, droplet):
    networks = droplet.get("networks") or {}
    v4 = {n.get("type"): n.get("ip_address") for n in networks.get("v4") or []}
    v6 = [n.get("ip_address") for n in networks.get("v6") or []]
    fields = {"ipv4_public": v4.get("public"), "ipv4_private": v4.get("private"), "ipv6_address": v6[0] if v6 else None}
    Server.objects.filter(pk=server.pk).update(**fields)
    for name, value in fields.items():
        setattr(server, name, value)


def record_facts(server, droplet):
    """Power state, size, price, disk, backups and addresses as DigitalOcean reports them."""
    record_networks(server, droplet)
    size = droplet.get("size") or {}
    fields = {
        "size": size.get("slug") or droplet.get("size_slug") or server.size,
        "power_state": droplet.get("status") if droplet.get("status") in PowerState.values else "",
        "power_state_at": timezone.now(),
        "backups": "backups" in (droplet.get("features") or []),
        "disk_gb": droplet.get("disk") or server.disk_gb, "memory_mb": droplet.get("memory") or server.memory_mb,
        "vcpus": droplet.get("vcpus") or server.vcpus,
    }
    if size.get("price_monthly") is not None:
        fields["price_monthly"] = Decimal(str(size["price_monthly"])).quantize(Decimal("0.01"))
    Server.objects.filter(pk=server.pk).update(**fields)
    for name, value in fields.items():
        setattr(server, name, value)


def wait_for_boot(server, client, attempt):
    try:
        droplet = client.get_droplet(server.droplet_id)
    except digitalocean.NotFound:
        if timezone.now() - server.droplet_created_at < NOT_YET_VISIBLE:
            raise Wait(5, "The new Droplet is not visible yet.") from None
        raise StepFailed("The Droplet disappeared at DigitalOcean while it was booting.") from None
    record_facts(server, droplet)
    if droplet.get("status") == "active":
        return
    if timezone.now() - server.droplet_created_at > BOOT_TIMEOUT:
        raise StepFailed(f"The Droplet did not become active within {BOOT_TIMEOUT.seconds // 60} minutes "
                         f"(it is {droplet.get('status')}). Check it in DigitalOcean, then Retry.")
    raise Wait(5 if attempt <= 2 else min(30, 5 * attempt), f"The Droplet is {droplet.get('status')}…")


def inbound_rules(rules: list[dict]) -> list[dict]:
    """Our rules ({protocol, ports, sources: [addresses]}) as DigitalOcean's inbound_rules."""
    return [{"protocol": r["protocol"], "ports": r["ports"], "sources": {"addresses": list(r["sources"])}}
            for r in rules]


def describe_rules(rules: list[dict]) -> str:
    return "; ".join(f"{r['protocol'].upper()} {r['ports']} from {', '.join(r['sources'])}" for r in rules) or "none"


def firewall_rules(server):
    inbound = inbound_rules(server.inbound_rules)
    everywhere = {"addresses": ["0.0.0.0/0", "::/0"]}
    outbound = [{"protocol": "tcp", "ports": "0", "destinations": everywhere},
                {"protocol": "udp", "ports": "0", "destinations": everywhere},
                {"protocol": "icmp", "ports": "0", "destinations": everywhere}]
    return inbound, outbound


def ensure_firewall(server, client):
    firewall = next((f for f in client.list_firewalls() if f.get("name") == server.firewall_name), None)
    if firewall is None:
        inbound, outbound = firewall_rules(server)
        firewall = client.create_firewall(name=server.firewall_name, inbound_rules=inbound, outbound_rules=outbound,
                                          droplet_ids=[server.droplet_id])
    elif server.droplet_id not in (firewall.get("droplet_ids") or []):
        client.add_droplets_to_firewall(firewall["id"], [server.droplet_id])
    Server.objects.filter(pk=server.pk).update(firewall_id=firewall["id"])
    server.firewall_id = firewall["id"]


def wait_for_agent(server, client, step):
    if server.agent_registered_at:
        return
    if step.started_at and timezone.now() - step.started_at > AGENT_TIMEOUT:
        raise StepFailed(
            f"The agent has not registered after {AGENT_TIMEOUT.seconds // 60} minutes. Check that "
            f"{settings.DEVPILOT_PUBLIC_URL} (DEVPILOT_PUBLIC_URL) is reachable from the Droplet, and look at "
            "`journalctl -u devpilot-agent` on it.")
    raise Wait(15, "Waiting for the agent to register…")


# --- The machine ---------------------------------------------------------------------------------


def _run_step(server, step, client):
    if step.key == "ssh_key":
        ensure_ssh_keys(server, client)
    elif step.key == "droplet":
        ensure_droplet(server, client)
    elif step.key == "boot":
        wait_for_boot(server, client, step.attempts)
    elif step.key == "firewall":
        ensure_firewall(server, client)
    elif step.key == "agent":
        wait_for_agent(server, client, step)


def advance(server_id):
    """Run steps until one must wait (returns seconds), or the server is ready or failed (None).

    One runner per server at a time, even when a task is delivered twice."""
    try:
        with locks.held(f"server:{server_id}", wait=5):
            return _advance_or_fail(server_id)
    except locks.LockBusy:
        return 15  # another runner is on it; look again later


def _advance_or_fail(server_id) -> int | None:
    """_advance, where an error nobody expected ends the step: raised into the worker, it would stay `running`."""
    try:
        return _advance(server_id)
    except Exception as error:  # a bug or odd data (IndexError, KeyError, ValueError…), not a DigitalOcean error
        _fail_unexpectedly(server_id, error)
        return None


def _fail_unexpectedly(server_id, error: Exception) -> None:
    """Fail the step that was running (or due to run), so Retry resumes exactly there."""
    server = Server.objects.select_related("workspace").filter(pk=server_id).first()
    if server is None:
        return  # removed from Devpilot while a run was scheduled: nothing left to drive
    # Ids and the exception's type only in our words; the traceback is for the engineer reading the log.
    logger.exception("Provisioning server %s failed unexpectedly: %s", server_id, type(error).__name__)
    step = server.steps.exclude(status=StepStatus.SUCCEEDED).first()
    if step is not None:
        fail(server, step, f"{type(error).__name__}. The error was logged; Retry resumes here.", unexpected=True)


def _advance(server_id):
    server = Server.objects.select_related("workspace", "connection").get(pk=server_id)
    if server.status in (ServerStatus.FAILED, ServerStatus.READY, ServerStatus.AGENT_MISSING,
                         ServerStatus.DESTROYED, ServerStatus.DESTROYING):
        return None
    if server.connection is None:
        set_status(server, ServerStatus.NO_CONNECTION, "The connection was removed.")
        return None
    client = server.connection.client()
    for step in server.steps.exclude(status=StepStatus.SUCCEEDED):
        status = dict((k, s) for k, _, s in STEPS)[step.key]
        if server.status != status:
            set_status(server, status)
        now = timezone.now()
        step.status, step.attempts = StepStatus.RUNNING, step.attempts + 1
        step.started_at = step.started_at or now
        step.save()
        try:
            _run_step(server, step, client)
        except Wait as wait:
            step.message = wait.message
            step.save()
            return wait.seconds
        except StepFailed as failure:
            return fail(server, step, str(failure))
        except digitalocean.RateLimited as e:
            step.message = e.message
            step.save()
            return max(5, int(e.retry_after))
        except (digitalocean.Unavailable, digitalocean.Rejected) as e:
            if isinstance(e, digitalocean.Unavailable) and step.attempts < MAX_TRANSIENT_ATTEMPTS:
                step.message = e.message + " Retrying."
                step.save()
                return min(60, 5 * step.attempts)
            return fail(server, step, e.message)
        except digitalocean.DigitalOceanError as e:
            return fail(server, step, e.message)
        step.status, step.finished_at, step.message = StepStatus.SUCCEEDED, timezone.now(), ""
        step.save()
    set_status(server, ServerStatus.READY)
    return None


def fail(server: Server, step: ServerStep, message: str, *, unexpected: bool = False) -> None:
    verb = "failed unexpectedly" if unexpected else "failed"
    step.status, step.finished_at = StepStatus.FAILED, timezone.now()
    step.message = f"{verb.capitalize()}: {message}" if unexpected else message
    step.save()
    # A late agent is "agent missing" (it may still call in); a crash while waiting for it is a plain failure.
    if step.key == "agent" and not unexpected:
        set_status(server, ServerStatus.AGENT_MISSING, message)
    else:
        set_status(server, ServerStatus.FAILED, f"Step {step.number} ({step.label}) {verb}: {message}")
    return None


IN_PROGRESS = (ServerStatus.PENDING, ServerStatus.CREATING, ServerStatus.BOOTING, ServerStatus.CONFIGURING,
               ServerStatus.INSTALLING_AGENT)


def retry(server):
    """Resume from the failed step, or from the step a provisioning that is not final stands at."""
    step = server.steps.filter(status=StepStatus.FAILED).first()
    if step is None and server.status in IN_PROGRESS:
        step = server.steps.exclude(status=StepStatus.SUCCEEDED).first()
    if step is None:
        return False
    ServerStep.objects.filter(pk=step.pk).update(status=StepStatus.PENDING, message="", started_at=None,
                                                 finished_at=None, attempts=0)
    if step.key == "droplet":
        Server.objects.filter(pk=server.pk).update(create_calls=0)
        server.create_calls = 0
    set_status(server, dict((k, s) for k, _, s in STEPS)[step.key], "Retrying…")
    return True


def agent_registered(server):
    """The agent called in: finish the agent step (also after an 'agent missing' timeout)."""
    step = server.steps.filter(key="agent").first()
    if step is None:
        return
    if server.status in (ServerStatus.INSTALLING_AGENT, ServerStatus.AGENT_MISSING):
        ServerStep.objects.filter(pk=step.pk).update(status=StepStatus.SUCCEEDED, finished_at=timezone.now(),
                                                     message="")
        set_status(server, ServerStatus.READY)

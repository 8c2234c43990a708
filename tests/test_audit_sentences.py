"""The audit log speaks sentences ("alice created the sync web-dev"), and times under a minute read "just now"."""

import pathlib
import re
from datetime import timedelta

from django.utils import timezone
from django.utils.timesince import timesince

from devpilot import audit
from devpilot.models import AuditEvent
from devpilot.templatetags.devpilot import SENTENCES, ago, audit_sentence_text

ROOT = pathlib.Path(__file__).resolve().parent.parent
APPS = ["devpilot", "syncs", "connections", "provisioning"]
# The action argument of audit.record(workspace, <action>, ...): a literal, a conditional of literals or an f-string.
RECORD = re.compile(r"audit\.record\(\s*[^,]+,\s*(.+?),\s*(?:\w+=|\*\*)", re.S)


def action_codes_in_the_code():
    from devpilot.secrets import VALUES_READ
    from provisioning.lifecycle import ACTIONS

    codes = set()
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for argument in RECORD.findall(path.read_text()):
                literals = re.findall(r'f?"([^"]+)"', argument)
                assert literals or argument.strip() == "VALUES_READ", f"{path}: cannot read the action {argument!r}"
                for code in literals or [VALUES_READ]:
                    codes |= {code.format(action=a) for a in ACTIONS} if "{action}" in code else {code}
    return codes


def test_every_action_the_code_records_has_a_sentence():
    codes = action_codes_in_the_code()
    assert {"workspace.created", "sync.created", "member.left", "workspace.mfa_not_required", "server.reboot_requested",
            "secrets.values_read"} <= codes  # the scan sees literals, conditionals, f-strings and constants
    assert sorted(codes - SENTENCES.keys()) == []


def event(action, target_label="", actor_label="alice@example.com", **data):
    return AuditEvent(action=action, actor_label=actor_label, target_label=target_label, data=data)


def test_events_read_as_sentences():
    assert audit_sentence_text(event("sync.created", "web-dev")) == "alice@example.com created the sync web-dev"
    assert audit_sentence_text(event("workspace.created", "Acme")) == "alice@example.com created the workspace Acme"
    assert (audit_sentence_text(event("member.role_changed", "bob@example.com", old_role="member", new_role="admin"))
            == "alice@example.com changed the role of bob@example.com from member to admin")
    assert (audit_sentence_text(event("secrets.values_read", "dev:/", count=1, how="reveal", keys=["A"]))
            == "alice@example.com read the value of 1 secret in dev:/")
    assert (audit_sentence_text(event("secrets.deleted", "dev:/", keys=["A", "B"]))
            == "alice@example.com deleted 2 secrets in dev:/")
    assert (audit_sentence_text(event("server.power_off_requested", "web-1"))
            == "alice@example.com asked to power off the server web-1")
    assert (audit_sentence_text(event("server.status_changed", "web-1", actor_label="Devpilot", old="booting", new="active"))
            == "Devpilot moved the server web-1 from booting to active")
    # A field the event lacks, or a code without a sentence, still reads.
    assert audit_sentence_text(event("member.role_changed", "bob")) == "alice@example.com changed the role of bob from … to …"
    assert audit_sentence_text(event("backup.made", "db")) == "alice@example.com did backup: made on db"


def test_the_audit_log_page_shows_sentences(client_for, owner, workspace):
    audit.record(workspace, "workspace.renamed", actor=owner, target=workspace, old_name="Old")
    html = client_for(owner).get(f"/w/{workspace.slug}/settings/audit-log/").content.decode()
    assert "owner@example.com renamed the workspace Old to Acme" in html


def test_times_under_a_minute_read_just_now():
    now = timezone.now()
    assert ago(now - timedelta(seconds=59), now) == "just now"
    assert ago(now + timedelta(seconds=5), now) == "just now"  # a clock a little ahead
    assert ago(now - timedelta(minutes=1), now).replace("\xa0", " ") == "1 minute ago"
    assert ago(now - timedelta(hours=3, minutes=5), now).replace("\xa0", " ") == "3 hours, 5 minutes ago"
    assert ago(None) == ""


def test_ago_reads_as_djangos_timesince_at_every_span():
    now = timezone.now()
    spans = [timedelta(seconds=s, microseconds=s % 997 * 1000) for s in range(60, 40 * 86400, 599)]
    spans += [timedelta(weeks=1), timedelta(days=1, hours=1), timedelta(hours=1, seconds=1), timedelta(days=400)]
    assert [ago(now - span, now) for span in spans] == [f"{timesince(now - span, now)} ago" for span in spans]


def test_pages_say_just_now(client_for, owner, workspace):
    from devpilot import secrets

    secrets.create_secret(workspace.environments.get(slug="dev"), "/", "API_KEY", "v")
    html = client_for(owner).get(f"/w/{workspace.slug}/secrets/dev/").content.decode()
    assert "just now" in html and "0 minutes ago" not in html

from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.timesince import timesince

register = template.Library()


@register.filter
def get_item(mapping, key):
    """{{ mapping|get_item:key }}: a dict lookup with a variable key."""
    return (mapping or {}).get(key)


# --- Times ---------------------------------------------------------------------------------------


# Weeks to minutes, as django.utils.timesince counts them below a month.
_SHORT_UNITS = ((7 * 86400, "week"), (86400, "day"), (3600, "hour"), (60, "minute"))


@register.filter
def ago(value, now=None):
    """{{ when|ago }}: "just now" under a minute (or a moment in the future, as clocks drift), else "5 minutes ago".

    Under four weeks it is counted here, with Django's words ("3 hours, 5 minutes"): timesince's calendar
    arithmetic was a tenth of a 50-row secrets page. Longer spans are timesince's (months have lengths)."""
    if not isinstance(value, datetime):
        return ""
    now = now or timezone.now()
    seconds = int((now - value).total_seconds())
    if seconds < 60:
        return "just now"
    if seconds >= 28 * 86400:
        return f"{timesince(value, now)} ago"
    counts = []
    for size, unit in _SHORT_UNITS:
        count, seconds = divmod(seconds, size)
        counts.append((count, unit))
    first = next(i for i, (count, _) in enumerate(counts) if count)
    words = [f"{count}\xa0{unit}{'' if count == 1 else 's'}" for count, unit in counts[first:first + 2] if count]
    return f"{', '.join(words)} ago"


# --- Icons: inline SVG (no emoji font needed, no request, allowed by the CSP), always beside text ----

_ICON_PATHS = {
    "check": '<path d="M3.5 8.5l3 3 6-7"/>',
    "cross": '<path d="M4 4l8 8M12 4l-8 8"/>',
    "question": '<path d="M6 6a2 2 0 1 1 2.8 1.8C8.3 8 8 8.4 8 9v.5"/><path d="M8 12v.01"/>',
    "folder": '<path d="M1.5 4.5v8h13v-6.5h-7l-1.5-1.5z"/>',
    "circle": '<circle cx="8" cy="8" r="5.5"/>',
}


@register.simple_tag
def icon(name, css_class=""):
    """{% icon "check" %}: a 16-px inline SVG icon, hidden from screen readers (the text beside it speaks)."""
    classes = f"icon icon-{name} {css_class}".strip()
    return format_html(
        '<svg class="{}" width="16" height="16" viewBox="0 0 16 16" fill="none" stroke="currentColor" stroke-width="1.8" '
        'stroke-linecap="round" stroke-linejoin="round" aria-hidden="true" focusable="false">{}</svg>',
        classes, mark_safe(_ICON_PATHS[name]),  # noqa: S308 - constant markup above
    )


# --- The audit log in sentences ------------------------------------------------------------------

_SERVER_ACTIONS = {  # provisioning.lifecycle.ACTIONS: (done, asked for)
    "power_on": ("powered on", "power on"), "power_off": ("powered off", "power off"),
    "reboot": ("rebooted", "reboot"), "resize": ("resized", "resize"),
    "refresh": ("refreshed", "refresh"), "destroy": ("destroyed", "destroy"),
    "rename": ("renamed", "rename"), "enable_backups": ("enabled backups of", "enable backups of"),
    "disable_backups": ("disabled backups of", "disable backups of"), "snapshot": ("took a snapshot of", "snapshot"),
    "delete_snapshot": ("deleted a snapshot of", "delete a snapshot of"),
    "firewall": ("changed the firewall rules of", "change the firewall rules of"),
}

# Action code -> what the actor did, with {target} and the event's data fields ({old_role}, {count}...).
SENTENCES = {
    "workspace.created": "created the workspace {target}",
    "workspace.bootstrapped": "set up the workspace {target}",
    "workspace.renamed": "renamed the workspace {old_name} to {target}",
    "workspace.mfa_required": "required two-factor authentication of every member",
    "workspace.mfa_not_required": "stopped requiring two-factor authentication",
    "member.joined": "joined the workspace as {role}",
    "member.left": "left the workspace",
    "member.removed": "removed {target} from the workspace",
    "member.role_changed": "changed the role of {target} from {old_role} to {new_role}",
    "invitation.created": "invited {target} as {role}",
    "invitation.revoked": "revoked the invitation of {target}",
    "api_token.created": "created the API token {target}",
    "api_token.revoked": "revoked the API token {target}",
    "identity.created": "created the machine identity {target}",
    "identity.updated": "updated the machine identity {target}",
    "identity.deleted": "deleted the machine identity {target}",
    "identity.login": "logged in as {target}",
    "identity.client_secret.created": "created a client secret for {target}",
    "identity.client_secret.revoked": "revoked a client secret of {target}",
    "identity.token.renewed": "renewed an access token of {target}",
    "identity.token.revoked": "revoked an access token of {target}",
    "environment.created": "created the environment {target}",
    "environment.renamed": "renamed the environment {target}",
    "environment.deleted": "deleted the environment {target}",
    "folder.created": "created the folder {target}",
    "folder.renamed": "renamed the folder {target}",
    "folder.deleted": "deleted the folder {target}",
    "secret.created": "created the secret {target}",
    "secret.updated": "changed the secret {target}",
    "secret.restored": "restored an earlier version of the secret {target}",
    "secret.deleted": "deleted the secret {target}",
    "secrets.deleted": "deleted {keys_count} secret{keys_plural} in {target}",
    "secrets.imported": "imported a .env file into {target}: {created} created, {updated} overwritten, {skipped} skipped",
    "secrets.values_read": "read the value{count_plural} of {count} secret{count_plural} in {target}",
    "secrets.promoted": "promoted {keys_count} secret{keys_plural} from {source} to {target}",
    "folder.rolled_back": "rolled {target} back to snapshot #{snapshot}",
    "secret_import.created": "made the folder {target} import the secrets of {source}",
    "secret_import.moved": "moved the import of {source} in the folder {target} to position {position}",
    "secret_import.changed": "made the folder {target} import {source} instead of {previous}",
    "secret_import.deleted": "stopped the folder {target} importing the secrets of {source}",
    "connection.created": "connected the DigitalOcean account {target}",
    "connection.updated": "updated the connection {target}",
    "connection.rotated": "rotated the token of the connection {target}",
    "connection.tested": "tested the connection {target}",
    "connection.removed": "removed the connection {target}",
    "sync.created": "created the sync {target}",
    "sync.updated": "changed the sync {target}",
    "sync.run_requested": "started the sync {target}",
    "sync.remove_requested": "asked to remove the secrets of the sync {target} from its app",
    "sync.restore_requested": "asked to restore the variables of the sync {target} as they were before the run of {run_time}",
    "sync.delete_requested": "asked to delete the sync {target} after removing its secrets",
    "sync.deleted": "deleted the sync {target}",
    "sync.delivered": "sent {keys_count} secret{keys_plural} of the sync {target} to the server {server} ({path})",
    "sync.retired": "took {keys_count} secret{keys_plural} of the sync {target} out of {path} on the server {server}, "
                    "a file the sync no longer writes",
    "server.reload_commands_changed": "changed the allowed reload commands of the server {target}",
    "server.tags_changed": "changed the Devpilot tags of the server {target}",
    "server.created": "created the server {target}",
    "server.retried": "retried the server {target}",
    "server.status_changed": "moved the server {target} from {old} to {new}",
    "server.agent_registered": "registered the agent of the server {target}",
    "server.removed_from_devpilot": "removed the server {target} from Devpilot (the Droplet was kept)",
    "ssh_key.downloaded": "downloaded the workspace SSH private key",
    "server.access_granted": "let {member} SSH into the server {target} with their own keys",
    "server.access_revoked": "took away the SSH access of {member} to the server {target}",
    "member_ssh_key.added": "added the SSH key {target} to their profile; it goes on the servers they can reach",
    "member_ssh_key.deleted": "deleted the SSH key {target} from their profile; it comes off the servers they could reach",
    "alert_rule.created": "added the alert rule \u201c{target}\u201d",
    "alert_rule.enabled": "turned on the alert rule \u201c{target}\u201d",
    "alert_rule.disabled": "turned off the alert rule \u201c{target}\u201d",
    "alert_rule.deleted": "deleted the alert rule \u201c{target}\u201d",
    "alert.opened": "opened an alert on the server {target}: {rule}",
    "alert.resolved": "resolved the alert on the server {target}: {rule}",
    **{f"server.{code}": f"{done} the server {{target}}" for code, (done, _) in _SERVER_ACTIONS.items()},
    **{f"server.{code}_requested": f"asked to {verb} the server {{target}}" for code, (_, verb) in _SERVER_ACTIONS.items()},
    **{f"server.{code}_failed": f"could not {verb} the server {{target}}: {{result}}"
       for code, (_, verb) in _SERVER_ACTIONS.items()},
    "server.rename_requested": "asked to rename the server {target} to {name}",
    "server.snapshot_requested": "asked to take the snapshot {name} of the server {target}",
    "server.delete_snapshot_requested": "asked to delete the snapshot {snapshot_name} of the server {target}",
    "server.firewall_requested": "asked to set the inbound firewall rules of the server {target} to {ports}",
}


class _Fields(dict):
    def __missing__(self, key):
        return "…"


def _plural(n):
    return "" if n == 1 else "s"


def audit_sentence_text(event) -> str:
    """"alice@example.com created the sync web-dev": the actor, then the action's sentence."""
    data = event.data if isinstance(event.data, dict) else {}
    fields = _Fields({k: v for k, v in data.items() if isinstance(v, str | int | float)})
    fields["target"] = event.target_label or "…"
    if isinstance(data.get("keys"), list):
        fields["keys_count"] = len(data["keys"])
        fields["keys_plural"] = _plural(len(data["keys"]))
    if isinstance(data.get("count"), int):
        fields["count_plural"] = _plural(data["count"])
    pattern = SENTENCES.get(event.action)
    if pattern is None:  # a code without a sentence yet: still readable
        what = event.action.replace("_", " ").replace(".", ": ", 1)
        pattern = f"did {what}" + (" on {target}" if event.target_label else "")
    return f"{event.actor_label or 'Devpilot'} {pattern.format_map(fields)}"


@register.filter
def audit_sentence(event):
    """{{ event|audit_sentence }}: the audit event as a sentence."""
    return audit_sentence_text(event)

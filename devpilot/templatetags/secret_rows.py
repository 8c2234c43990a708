"""The secrets page's row, written in Python: the one loop that runs 50 times a page.

As a template partial it cost about 50 µs a row (a third of the page); the same markup built here costs
a fraction of that. It is still the only definition of the row: the page's loop and every HTMX swap of a
single row (`secrets/page.html#row`) call this tag. Every value is escaped (`html.escape`, as Django's
`escape`); the result is marked safe once.
"""

from html import escape

from django import template
from django.utils.safestring import SafeString, mark_safe

from devpilot.templatetags.devpilot import ago

register = template.Library()

_ROW_SWAP = 'hx-target="closest tr" hx-swap="outerHTML"'


def _button(label: str, attributes: str) -> str:
    return f'<button type="button" class="link" {attributes} {_ROW_SWAP}>{label}</button>'


@register.simple_tag(takes_context=True)
def secret_row(context, secret) -> SafeString:
    """`<tr>` of one secret. Context: `workspace_perms`; on a reveal `revealed` (the value, audited by the
    view), `revealed_resolved` and `unresolved`; after a refused action `row_error`."""
    perms = context.get("workspace_perms") or ()
    pk, key, url = str(secret.pk), escape(secret.key), secret.row_url
    links = getattr(secret, "links", None) or []
    revealed = context.get("revealed")
    resolved_view = context.get("revealed_resolved")
    reveal_resolved = f'hx-post="{url}reveal/" hx-vals=\'{{"resolved": "1"}}\''
    parts = [f'<tr id="secret-{pk}">\n  <td><code>{key}</code></td>\n  <td>']
    if revealed is not None:
        parts.append(f'<pre id="value-{pk}" class="secret-value">{escape(revealed)}</pre>')
        if resolved_view:
            unresolved = context.get("unresolved") or []
            parts.append('<span class="help">Resolved: references expanded, as syncs push it.'
                         + (f" Unresolved: {escape(' '.join(unresolved))}" if unresolved else "") + "</span>")
        parts.append(f'<button type="button" class="link" data-copy-target="value-{pk}">Copy</button>')
        if links and not resolved_view:
            parts.append(_button("Show resolved", reveal_resolved))
        parts.append(_button("Hide", f'hx-get="{url}"'))
    else:
        parts.append('<span class="muted" aria-label="hidden value">••••••••</span>')
        if "secrets.read_values" in perms:
            parts.append(_button("Reveal", f'hx-post="{url}reveal/"'))
            if links:
                parts.append(_button("Reveal resolved", reveal_resolved))
    if links:
        parts.append(f'<ul class="small references" aria-label="References in {key}">')
        for link in links:
            label = escape(link.label)
            if link.resolved:
                parts.append(f'<li><a href="{escape(link.href)}" title="Open the folder of {label}">{label}</a></li>')
            else:
                parts.append(f'<li><span class="badge failed">unresolved</span> <code>{label}</code> '
                             f'<span class="muted">{escape(link.reason)}</span></li>')
        parts.append("</ul>")
    author = escape(secret.updated_by.email) if secret.updated_by_id else "—"
    parts.append(f'</td>\n  <td>{escape(secret.comment)}</td>\n'
                 f'  <td class="small">{author}<br><span class="muted">{ago(secret.updated_at)} · v{secret.version}</span></td>\n'
                 f'  <td class="row row-actions">')
    if context.get("row_error"):
        parts.append(f'<div class="errorlist nonfield" role="alert">{escape(context["row_error"])}</div>')
    parts.append(f'<a href="{url}history/">History</a>')
    if "secrets.write" in perms:
        parts.append(_button("Edit", f'hx-get="{url}edit/"'))
        parts.append(_button("Delete", f'hx-post="{url}delete/" hx-confirm="Delete {key}?"'))
    parts.append("</td>\n</tr>")
    return mark_safe("".join(parts))

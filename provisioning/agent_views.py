"""Pages of the agent's work: a server's access and metrics (HTMX blocks of the server page), the
workspace's alert rules, and each person's own SSH keys (under the account pages)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from devpilot.access import has_permission, workspace_view
from devpilot.errors import DevpilotError
from provisioning import access, alerts, metrics
from provisioning.models import AlertKind, AlertRule, MemberSshKey, Server


def _server(request: HttpRequest, server_id) -> Server:
    return get_object_or_404(Server, workspace=request.workspace, pk=server_id)  # type: ignore[attr-defined]


def _after_change(request: HttpRequest, partial: HttpResponse, fallback: str, **kwargs) -> HttpResponse:
    """HTMX swaps the block in place; without JavaScript the page is reloaded."""
    return partial if request.htmx else redirect(fallback, **kwargs)  # type: ignore[attr-defined]


# --- A server: connect, who has access, the agent's commands -------------------------------------


def _access_context(request: HttpRequest, server: Server, error: str = "") -> dict:
    with_access = access.members_with_access(server)
    granted = {m.user_id for m in with_access}
    others = [m for m in request.workspace.memberships.select_related("user").order_by("user__email")  # type: ignore[attr-defined]
              if m.user_id not in granted]
    return {"server": server, "with_access": [(m, m.user.ssh_public_keys.all()) for m in with_access],
            "others": others, "host_key_fingerprint": access.host_key_fingerprint(server),
            "commands": access.recent_commands(server), "error": error}


@workspace_view()
def server_access(request: HttpRequest, server_id) -> HttpResponse:
    server = _server(request, server_id)
    return render(request, "provisioning/_access.html", _access_context(request, server))


@require_POST
@workspace_view("servers.manage")
def server_access_change(request: HttpRequest, server_id) -> HttpResponse:
    server = _server(request, server_id)
    chosen = request.POST.get("membership", "")
    member = request.workspace.memberships.select_related("user").filter(  # type: ignore[attr-defined]
        pk=int(chosen)).first() if chosen.isdigit() else None
    error = ""
    if member is None:
        error = "Choose a member of this workspace."
    else:
        try:
            if request.POST.get("action") == "revoke":
                access.revoke(server, member.user, request=request)
            else:
                access.grant(server, member.user, request=request)
        except DevpilotError as e:
            error = e.message
    if error and not request.htmx:  # type: ignore[attr-defined]
        messages.error(request, error)
    partial = render(request, "provisioning/_access.html", _access_context(request, server, error))
    return _after_change(request, partial, "server_detail", ws=request.workspace.slug, server_id=server.pk)  # type: ignore[attr-defined]


# --- A server: secrets files written by syncs, its Devpilot tags and allowed reload commands ---------------


@workspace_view()
def server_files(request: HttpRequest, server_id) -> HttpResponse:
    from syncs.destinations import devpilot_server

    server = _server(request, server_id)
    form = {"tags": ", ".join(server.devpilot_tags or []), "reload_commands": "\n".join(server.reload_commands or [])}
    errors: dict[str, str] = {}
    saved = ""
    if request.method == "POST":
        if not has_permission(request, "servers.manage"):
            raise PermissionDenied("Only admins can change a server's tags and reload commands.")
        form = {k: request.POST.get(k, "") for k in form}
        try:
            joined, left = devpilot_server.set_server_options(server, form["tags"], form["reload_commands"],
                                                              request=request)
            saved = "Saved."
            if joined:
                saved += (" 1 sync now writes to this server." if len(joined) == 1 else
                          f" {len(joined)} syncs now write to this server.")
            if left:
                saved += (" 1 sync takes its keys out of this server's file." if len(left) == 1 else
                          f" {len(left)} syncs take their keys out of this server's files.")
            form = {"tags": ", ".join(server.devpilot_tags), "reload_commands": "\n".join(server.reload_commands)}
        except DevpilotError as e:
            errors = {d["field"]: d["message"] for d in e.details or []} or {"tags": e.message}
        if not request.htmx:  # type: ignore[attr-defined]
            if errors:
                messages.error(request, next(iter(errors.values())))
            return redirect("server_detail", ws=request.workspace.slug, server_id=server.pk)  # type: ignore[attr-defined]
    return render(request, "provisioning/_files.html", {
        "server": server, "form": form, "errors": errors, "saved": saved,
        "deliveries": devpilot_server.server_deliveries(server)})


# --- A server: metrics ---------------------------------------------------------------------------


@workspace_view()
def server_metrics(request: HttpRequest, server_id) -> HttpResponse:
    server = _server(request, server_id)
    range_key = request.GET.get("range", "hour")
    if range_key not in metrics.RANGES:
        range_key = "hour"
    return render(request, "provisioning/_metrics.html", {
        "server": server, "charts": metrics.charts(server, range_key), "range": metrics.RANGES[range_key],
        "ranges": metrics.RANGES.values(), "open_alerts": server.alerts.filter(resolved_at__isnull=True),
        "width": metrics.WIDTH, "height": metrics.HEIGHT, "left": metrics.PAD_LEFT,
        "right": metrics.WIDTH - metrics.PAD_RIGHT, "middle": (metrics.WIDTH + metrics.PAD_LEFT) // 2})


# --- Alert rules (workspace settings) ------------------------------------------------------------


@workspace_view()
def alert_rules(request: HttpRequest) -> HttpResponse:
    form: dict = {"kind": AlertKind.CPU_HIGH, "threshold": "90", "minutes": "5"}
    errors: dict[str, str] = {}
    if request.method == "POST":
        if not has_permission(request, "servers.manage"):
            raise PermissionDenied("Only admins can change alert rules.")
        form = {k: request.POST.get(k, "").strip() for k in ("kind", "threshold", "minutes")}
        try:
            rule = alerts.create_rule(request.workspace, _rule_data(form), request=request)  # type: ignore[attr-defined]
            messages.success(request, f"Alert rule added: {rule}.")
            return redirect("alert_rules", ws=request.workspace.slug)  # type: ignore[attr-defined]
        except DevpilotError as e:
            errors = {d["field"]: d["message"] for d in e.details} or {"form": e.message}
    rules = request.workspace.alert_rules.all()  # type: ignore[attr-defined]
    return render(request, "provisioning/alert_rules.html", {
        "rules": rules, "open_alerts": alerts.open_alerts(request.workspace),  # type: ignore[attr-defined]
        "kinds": AlertKind.choices, "form": form, "errors": errors, "settings_tab": "alerts"})


def _rule_data(form: dict) -> dict:
    """The form's text as the schema's types: a number where one was typed, nothing where none was."""
    data: dict = {"kind": form["kind"]}
    for field in ("threshold", "minutes"):
        text = form[field]
        if text:
            data[field] = int(text) if text.isdigit() else text
    if data["kind"] == AlertKind.DISK_HIGH:
        data.pop("minutes", None)
    if data["kind"] == AlertKind.AGENT_OFFLINE:
        data.pop("threshold", None)
    return data


@require_POST
@workspace_view("servers.manage")
def alert_rule_change(request: HttpRequest, rule_id: int) -> HttpResponse:
    rule = get_object_or_404(AlertRule, workspace=request.workspace, pk=rule_id)  # type: ignore[attr-defined]
    action = request.POST.get("action")
    if action == "delete":
        alerts.delete_rule(rule, request=request)
        messages.success(request, f"Alert rule deleted: {rule}.")
    elif action in ("enable", "disable"):
        alerts.set_enabled(rule, action == "enable", request=request)
        messages.success(request, f"Alert rule turned {'on' if action == 'enable' else 'off'}: {rule}.")
    return redirect("alert_rules", ws=request.workspace.slug)  # type: ignore[attr-defined]


# --- A person's own SSH keys ---------------------------------------------------------------------


@login_required
def ssh_keys(request: HttpRequest) -> HttpResponse:
    form = {"name": "", "public_key": ""}
    errors: dict[str, str] = {}
    if request.method == "POST":
        form = {k: request.POST.get(k, "") for k in form}
        try:
            key = access.add_key(request.user, form["name"], form["public_key"])
            messages.success(request, f"Key {key.name} added ({key.fingerprint}). It is put on every server "
                                      "an admin lets you reach.")
            return redirect("account_ssh_keys")
        except DevpilotError as e:
            errors = {d["field"]: d["message"] for d in e.details} or {"public_key": e.message}
    keys = request.user.ssh_public_keys.all()  # type: ignore[union-attr]
    servers = access.servers_reached_by(request.user)
    return render(request, "account/ssh_keys.html", {"keys": keys, "servers": servers, "form": form,
                                                     "errors": errors})


@require_POST
@login_required
def ssh_key_delete(request: HttpRequest, key_id) -> HttpResponse:
    key = get_object_or_404(MemberSshKey, user=request.user, pk=key_id)
    changed = access.delete_key(key)
    messages.success(request, f"Key {key.name} deleted" + (f"; it is being removed from {changed} server"
                                                           f"{'' if changed == 1 else 's'}." if changed else "."))
    return redirect("account_ssh_keys")

"""Server pages: the list, the New server wizard, a server's live page and its actions."""

import json
import re
import uuid
from decimal import Decimal

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from connections import digitalocean
from devpilot import audit
from devpilot.access import workspace_view
from devpilot.drafts import Draft
from devpilot.errors import DevpilotError, Invalid
from devpilot.schemas import parse
from provisioning import lifecycle, pricing, services, sshkeys
from provisioning.models import Server
from provisioning.schemas import ANYWHERE, FirewallUpdate, ServerAction, ServerDetails

STEPS = [("connection", "Connection"), ("location", "Location"), ("size", "Size"), ("image", "Image"),
         ("details", "Details"), ("review", "Review")]
REQUIRED = {"connection": "connection", "location": "region", "size": "size", "image": "image", "details": "name"}
LIST_PAGE_SIZE = 50


def _server(request, server_id):
    return get_object_or_404(Server.objects.select_related("connection"), workspace=request.workspace, pk=server_id)


@workspace_view()
def server_list(request):
    servers = request.workspace.servers.live().select_related("connection").order_by("name", "pk")
    page = Paginator(servers, LIST_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "provisioning/list.html", {"servers": page,
                                                      "archived": request.workspace.servers.archived().count()})


@workspace_view()
def server_archive(request):
    """Destroyed servers, newest first, each with its page and history."""
    servers = request.workspace.servers.archived().order_by("-archived_at", "pk")
    page = Paginator(servers, LIST_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "provisioning/archive.html", {"servers": page})


# --- Wizard --------------------------------------------------------------------------------------


def _draft(request):
    return Draft(request, "server_draft")


@workspace_view("servers.manage")
def wizard_start(request):
    """A new draft; from a snapshot (?server=<id>&snapshot=<id>) its connection, region and image are chosen."""
    draft = _draft(request)
    draft.clear()
    source = request.workspace.servers.filter(pk=_uuid_or_none(request.GET.get("server"))).first()
    snapshot_id = request.GET.get("snapshot", "")
    if source is not None and source.connection_id and snapshot_id.isdigit():
        draft.update(connection=str(source.connection_id), region=source.region, image=snapshot_id,
                     image_label=request.GET.get("name", "")[:100] or f"snapshot {snapshot_id}")
        return redirect("server_wizard", ws=request.workspace.slug, step="size")
    return redirect("server_wizard", ws=request.workspace.slug, step="connection")


def _uuid_or_none(text):
    try:
        return uuid.UUID(str(text))
    except ValueError:
        return None


def _client(request, draft):
    connection = request.workspace.connections.filter(pk=draft.get("connection")).first()
    return connection, connection.client() if connection else None


def _catalog(client, draft):
    """Regions, sizes and images as the wizard shows them (only what can be ordered now)."""
    regions = [r for r in client.list_regions() if r.get("available")]
    region = next((r for r in regions if r["slug"] == draft.get("region")), None)
    sizes = [s for s in client.list_sizes() if s.get("available") and region and s["slug"] in region.get("sizes", [])]
    images = sorted((i for i in client.list_images() if i.get("status", "available") == "available"),
                    key=lambda i: (i.get("distribution", ""), i.get("name", "")), reverse=True)
    return regions, sizes, images


def default_image(images):
    ubuntu = [i for i in images if i.get("distribution") == "Ubuntu" and "LTS" in i.get("name", "")]
    return max(ubuntu, key=lambda i: i.get("slug", ""))["slug"] if ubuntu else (images[0]["slug"] if images else "")


@workspace_view("servers.manage")
def wizard(request, step):
    order = [s for s, _ in STEPS]
    if step not in order:
        raise Http404("No such step.")
    draft = _draft(request).data
    for earlier in order[: order.index(step)]:
        if earlier in REQUIRED and not draft.get(REQUIRED[earlier]):
            return redirect("server_wizard", ws=request.workspace.slug, step=earlier)
    context = {"steps": STEPS, "step": step, "step_index": order.index(step), "draft": draft, "errors": {}}
    previous = order[order.index(step) - 1] if order.index(step) else None
    if request.method == "POST" and request.POST.get("go") == "back" and previous:
        return redirect("server_wizard", ws=request.workspace.slug, step=previous)
    connection, client = _client(request, draft)
    try:
        result = _step(request, step, draft, connection, client, context)
    except digitalocean.DigitalOceanError as e:
        context["error"] = f"DigitalOcean answered: {e.message}"
        result = None
    if result is not None:
        return result
    return render(request, "provisioning/wizard.html", {**context, "previous": previous})


def _next(request, step):
    order = [s for s, _ in STEPS]
    return redirect("server_wizard", ws=request.workspace.slug, step=order[order.index(step) + 1])


def _step(request, step, draft, connection, client, context):
    post = request.POST if request.method == "POST" else None
    if step == "connection":
        context["connections"] = request.workspace.connections.all()
        if post and request.workspace.connections.filter(pk=post.get("connection")).exists():
            _draft(request).update(connection=post["connection"])
            return _next(request, step)
        if post:
            context["errors"]["connection"] = "Choose a connection."
        return None
    regions, sizes, images = _catalog(client, draft)
    context.update(regions=regions, sizes=sizes, images=images, connection=connection)
    if step == "location":
        if post and any(r["slug"] == post.get("region") for r in regions):
            _draft(request).update(region=post["region"], size="")
            return _next(request, step)
        if post:
            context["errors"]["region"] = "Choose an available region."
    elif step == "size":
        if post and any(s["slug"] == post.get("size") for s in sizes):
            size = next(s for s in sizes if s["slug"] == post["size"])
            _draft(request).update(size=size["slug"], price_monthly=str(size["price_monthly"]),
                  price_hourly=str(size["price_hourly"]))
            return _next(request, step)
        if post:
            context["errors"]["size"] = "Choose a size available in this region."
    elif step == "image":
        size_disk = next((s.get("disk", 0) for s in sizes if s["slug"] == draft.get("size")), 0)
        try:
            context["snapshots"] = services.snapshot_images(client, draft.get("region", ""), size_disk)
        except digitalocean.MissingScope as e:  # distributions still work; say why snapshots are not listed
            context["snapshots"], context["snapshots_note"] = [], e.message
        context["default_image"] = draft.get("image") or default_image(images)
        labels = {i["slug"]: f"{i.get('distribution', '')} {i.get('name', '')}".strip() for i in images}
        labels.update({s["id"]: f"snapshot {s['name']}" for s in context["snapshots"]})
        if post and post.get("image") in labels:
            _draft(request).update(image=post["image"], image_label=labels[post["image"]])
            return _next(request, step)
        if post:
            context["errors"]["image"] = "Choose an image, or a snapshot that fits this region and size."
    elif step == "details":
        return _details(request, draft, context, post)
    elif step == "review":
        return _review(request, draft, connection, client, context, post)
    return None


def _details(request, draft, context, post):
    context["defaults"] = {"ports": draft.get("ports", "22, 80, 443"), "sources": draft.get("sources", "0.0.0.0/0, ::/0")}
    if not post:
        return None
    data = {
        "name": post.get("name", "").strip(), "ports": post.get("ports", ""), "sources": post.get("sources", ""),
        "public_keys": post.get("public_keys", ""), "monitoring": post.get("monitoring") == "on",
        "backups": post.get("backups") == "on", "ipv6": post.get("ipv6") == "on",
    }
    _draft(request).update(**data)
    context["draft"] = _draft(request).data
    try:
        details = server_details(data)
    except Invalid as e:
        context["errors"].update(_form_errors(e))
        return None
    if request.workspace.servers.live().filter(name=details.name).exists():
        context["errors"]["name"] = f"A server named {details.name} already exists in this workspace."
        return None
    return _next(request, "details")


# Where the schema's fields are typed on the Details page.
FORM_FIELDS = {"name": "name", "inboundRules": "ports", "sshPublicKeys": "public_keys"}


def _form_errors(error: Invalid) -> dict[str, str]:
    errors: dict[str, str] = {}
    for detail in error.details:
        field = detail["field"]
        target = "sources" if ".sources" in field else FORM_FIELDS.get(field.split("[")[0].split(".")[0], "name")
        errors.setdefault(target, detail["message"])
    return errors


def server_details(draft) -> ServerDetails:
    """The Details step's text fields as the one server schema the API uses too."""
    sources = [a.strip() for a in draft.get("sources", "").split(",") if a.strip()] or list(ANYWHERE)
    ports = [p.strip() for p in draft.get("ports", "").split(",") if p.strip()]
    if not ports:
        raise Invalid.for_field("inboundRules", "Give at least one inbound port (22 keeps SSH reachable).")
    return parse(ServerDetails, {
        "name": draft.get("name", ""), "monitoring": draft.get("monitoring", True),
        "backups": draft.get("backups", False), "ipv6": draft.get("ipv6", False),
        "inboundRules": [{"protocol": "tcp", "ports": p, "sources": sources} for p in ports],
        "sshPublicKeys": [line.strip() for line in draft.get("public_keys", "").splitlines() if line.strip()],
    })


def _review(request, draft, connection, client, context, post):
    details = server_details(draft)
    price = Decimal(draft.get("price_monthly") or "0")
    context["monthly_cost"] = pricing.monthly_cost(price, bool(draft.get("backups")))
    context["unreachable"] = services.unreachable_public_url(settings.DEVPILOT_PUBLIC_URL)
    context["public_url"] = settings.DEVPILOT_PUBLIC_URL
    account = client.get_account()
    droplet_count = len(client.list_droplets())
    limit = account.get("droplet_limit")
    context.update(droplet_count=droplet_count, droplet_limit=limit,
                   at_limit=limit is not None and droplet_count >= limit,
                   rules=[rule.model_dump() for rule in details.inboundRules])
    if not post or context["at_limit"]:
        return None
    try:
        server = services.create(
            request.workspace, connection, details, region=draft["region"], size=draft["size"],
            image=draft["image"], price_monthly=price, user=request.user, request=request)
    except Invalid as e:
        context["error"] = e.message
        return None
    _draft(request).clear()
    messages.success(request, f"Provisioning {server.name}.")
    return redirect("server_detail", ws=request.workspace.slug, server_id=server.pk)


# --- A server ------------------------------------------------------------------------------------


def _detail_context(server):
    return {"server": server, "steps": server.steps.all(), "offered": lifecycle.offered(server),
            "backups_change": services.backups_change(server), "careful": CAREFUL}


@workspace_view()
def server_detail(request, server_id):
    server = _server(request, server_id)
    return render(request, "provisioning/detail.html", _detail_context(server))


@workspace_view()
def server_progress(request, server_id):
    server = _server(request, server_id)
    return render(request, "provisioning/detail.html#progress", _detail_context(server))


# Actions that ask first, saying what happens (resize has its own page: the size, its price, then the same).
CAREFUL = {
    "power_off": ("Power off", "Shuts the server down cleanly (the power is cut if the shutdown does not finish "
                  "within 3 minutes). Everything running on it stops until you power it on again. A Droplet that "
                  "is off is still billed."),
    "reboot": ("Reboot", "Restarts the server: everything running on it stops for a minute or two."),
    "disable_backups": ("Disable backups", "Stops the weekly backups of this Droplet; the backups taken so far "
                        "are kept (DigitalOcean does not delete them)."),
}


@require_POST
@workspace_view("servers.manage")
def server_action(request, server_id):
    server = _server(request, server_id)
    kind = request.POST.get("action", "")
    if (kind in CAREFUL and request.POST.get("confirmed") != "yes") or kind == "resize":
        target = "server_resize" if kind == "resize" else "server_confirm"
        kwargs = {} if kind == "resize" else {"action": kind}
        return redirect(target, ws=request.workspace.slug, server_id=server.pk, **kwargs)
    try:
        fields = {"type": kind, **({"name": request.POST["name"].strip()} if request.POST.get("name") else {})}
        services.act(server, parse(ServerAction, fields), user=request.user, request=request)
    except DevpilotError as e:
        messages.error(request, e.message)
    return redirect("server_detail", ws=request.workspace.slug, server_id=server.pk)


@workspace_view("servers.manage")
def server_confirm(request, server_id, action):
    """The question before a careful action: what it does, a Confirm button (the POST), Cancel."""
    server = _server(request, server_id)
    if action not in CAREFUL:
        raise Http404("No such action.")
    offered = lifecycle.offered(server)
    if not offered["enabled"] or not offered.get(action, True):
        messages.error(request, offered["waiting"] or f"{CAREFUL[action][0]} is not possible now: the Droplet is "
                                                      f"{server.get_power_state_display().lower()}.")
        return redirect("server_detail", ws=request.workspace.slug, server_id=server.pk)
    title, consequence = CAREFUL[action]
    return render(request, "provisioning/confirm.html", {"server": server, "action": action, "title": title,
                                                         "consequence": consequence})


@workspace_view("servers.manage")
def server_resize(request, server_id):
    """Choose a size of the server's region (prices and the new monthly cost), then confirm what a resize does."""
    server = _server(request, server_id)
    context = {"server": server, "offered": lifecycle.offered(server), "error": None}
    try:
        options = services.resize_options(server)
    except DevpilotError as e:
        options, context["error"] = [], e.message
    context["options"] = [{**s, "monthly_cost": pricing.monthly_cost(s.get("price_monthly", 0), server.backups)}
                          for s in options]
    chosen = next((s for s in context["options"] if s["slug"] == request.POST.get("size")), None)
    if request.method == "POST" and chosen is None and not context["error"]:
        context["error"] = "Choose one of the sizes below."
    elif request.method == "POST" and chosen is not None:
        if request.POST.get("confirmed") != "yes":
            return render(request, "provisioning/resize.html", {**context, "chosen": chosen, "confirming": True})
        try:
            services.act(server, parse(ServerAction, {"type": "resize", "size": chosen["slug"]}), user=request.user,
                         request=request)
            messages.success(request, f"Resizing {server.name} to {chosen['slug']}…")
            return redirect("server_detail", ws=request.workspace.slug, server_id=server.pk)
        except DevpilotError as e:
            context["error"] = e.message
    return render(request, "provisioning/resize.html", context)


# --- Firewall ------------------------------------------------------------------------------------

RULE_ROWS_TO_ADD = 2


MAX_RULE_ROWS = 60  # the schema allows 50 rules, plus the empty rows to add


def _posted_rules(post) -> list[dict]:
    """The firewall form's rows (kept unless "remove" is ticked; blank new rows ignored) as FirewallUpdate input."""
    count = int(post["rows"]) if post.get("rows", "").isdigit() else 0
    rows = []
    for index in range(min(count, MAX_RULE_ROWS)):
        ports = post.get(f"ports-{index}", "").strip()
        if post.get(f"remove-{index}") == "on" or not ports:
            continue
        sources = [a.strip() for a in post.get(f"sources-{index}", "").split(",") if a.strip()] or list(ANYWHERE)
        rows.append({"protocol": post.get(f"protocol-{index}", "tcp"), "ports": ports, "sources": sources})
    return rows


def _rule_rows(rules: list[dict]) -> list[dict]:
    rows = [{"protocol": r["protocol"], "ports": r["ports"], "sources": ", ".join(r["sources"]), "new": False}
            for r in rules]
    return rows + [{"protocol": "tcp", "ports": "", "sources": ", ".join(ANYWHERE), "new": True}
                   for _ in range(RULE_ROWS_TO_ADD)]


@workspace_view("servers.manage")
def server_firewall(request, server_id):
    """Edit the inbound rules, see a preview of what changes, apply it (one PUT in a worker)."""
    server = _server(request, server_id)
    context = {"server": server, "offered": lifecycle.offered(server), "rows": _rule_rows(server.inbound_rules),
               "error": None, "preview": None}
    if request.method == "POST":
        go = request.POST.get("go")
        try:
            if go == "apply":
                update = parse(FirewallUpdate, {"inboundRules": json.loads(request.POST.get("rules", "[]"))})
                services.update_firewall(server, update, user=request.user, request=request)
                messages.success(request, f"Updating the firewall of {server.name}…")
                return redirect("server_detail", ws=request.workspace.slug, server_id=server.pk)
            rules = _posted_rules(request.POST)
            context["rows"] = _rule_rows(rules)
            update = parse(FirewallUpdate, {"inboundRules": rules})
            new = [rule.model_dump() for rule in update.inboundRules]
            context.update(preview=services.firewall_preview(server.inbound_rules, new), rules_json=json.dumps(new),
                           new_rules=new)
        except ValueError:
            context["error"] = "The rules could not be read; edit them again."
        except DevpilotError as e:
            context["error"] = _rule_error(e)
    return render(request, "provisioning/firewall.html", context)


def _rule_error(error: DevpilotError) -> str:
    details = getattr(error, "details", None) or []
    if details:
        return "; ".join(f"{_rule_place(d['field'])}{d['message']}" for d in details[:3])
    return error.message


def _rule_place(field: str) -> str:
    match = re.match(r"inboundRules\[(\d+)\]", field)
    return f"Rule {int(match.group(1)) + 1}: " if match else ""


# --- Snapshots -----------------------------------------------------------------------------------


@workspace_view()
def server_snapshots(request, server_id):
    """The Droplet's snapshots (read from DigitalOcean), a form to take one, and a new server from one."""
    server = _server(request, server_id)
    return _snapshots_page(request, server)


def _snapshots_page(request, server, error=None):
    context = {"server": server, "offered": lifecycle.offered(server), "error": error, "snapshots": []}
    try:
        context["snapshots"] = services.snapshots(server)
    except DevpilotError as e:
        context["error"] = error or e.message
    return render(request, "provisioning/snapshots.html", context)


@require_POST
@workspace_view("servers.manage")
def snapshot_take(request, server_id):
    server = _server(request, server_id)
    name = request.POST.get("name", "").strip()
    try:
        services.act(server, parse(ServerAction, {"type": "snapshot", **({"name": name} if name else {})}),
                     user=request.user, request=request)
    except DevpilotError as e:
        return _snapshots_page(request, server, error=e.message)
    messages.success(request, "Taking the snapshot… it is listed here once DigitalOcean has made it.")
    return redirect("server_snapshots", ws=request.workspace.slug, server_id=server.pk)


@workspace_view("servers.manage")
def snapshot_delete(request, server_id, droplet_snapshot_id):
    """Ask, then delete a snapshot of this server's Droplet (in a worker)."""
    server = _server(request, server_id)
    error = None
    if request.method == "POST":
        try:
            services.delete_snapshot(server, droplet_snapshot_id, user=request.user, request=request)
            messages.success(request, "Deleting the snapshot…")
            return redirect("server_snapshots", ws=request.workspace.slug, server_id=server.pk)
        except DevpilotError as e:
            error = e.message
    return render(request, "provisioning/snapshot_delete.html", {
        "server": server, "snapshot_id": droplet_snapshot_id, "name": request.GET.get("name", "")[:100], "error": error})


@workspace_view("servers.manage")
def server_destroy(request, server_id):
    server = _server(request, server_id)
    error = None
    if request.method == "POST":
        if request.POST.get("confirm") != server.name:
            error = f"Type {server.name} to confirm."
        elif request.POST.get("mode") == "devpilot-only":
            services.remove_record(server, user=request.user, request=request)
            messages.success(request, f"{server.name} removed from Devpilot; the Droplet was left at DigitalOcean.")
            return redirect("servers", ws=request.workspace.slug)
        else:
            try:
                lifecycle.request(server, "destroy", user=request.user, request=request)
                messages.success(request, f"Destroying {server.name}…")
                return redirect("server_detail", ws=request.workspace.slug, server_id=server.pk)
            except lifecycle.ActionRefused as e:
                error = str(e)
    return render(request, "provisioning/destroy.html", {"server": server, "error": error})


def agent_script(request):
    """The agent, as embedded in every Droplet's cloud-init (public: it holds no secret)."""
    from provisioning.cloudinit import agent_source

    return HttpResponse(agent_source(), content_type="text/x-python; charset=utf-8")


@workspace_view()
def ssh_key(request):
    key = sshkeys.workspace_key(request.workspace)
    return render(request, "provisioning/ssh_key.html", {"key": key, "settings_tab": "ssh_key"})


@workspace_view("servers.manage")
def ssh_key_download(request):
    key = sshkeys.workspace_key(request.workspace)
    audit.record(request.workspace, "ssh_key.downloaded", request=request, target=key)
    response = HttpResponse(key.private_key, content_type="application/x-pem-file")
    response["Content-Disposition"] = f'attachment; filename="devpilot-{request.workspace.slug}"'
    return response

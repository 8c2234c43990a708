"""Server pages: the list, the New server wizard, a server's live page and its actions."""

from decimal import Decimal

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
from provisioning import lifecycle, services, sshkeys
from provisioning.models import Server
from provisioning.schemas import ANYWHERE, ServerAction, ServerDetails

STEPS = [("connection", "Connection"), ("location", "Location"), ("size", "Size"), ("image", "Image"),
         ("details", "Details"), ("review", "Review")]
REQUIRED = {"connection": "connection", "location": "region", "size": "size", "image": "image", "details": "name"}
LIST_PAGE_SIZE = 50
BACKUPS_SHARE = Decimal("0.20")  # weekly backups cost 20% of the Droplet's price


def _server(request, server_id):
    return get_object_or_404(Server.objects.select_related("connection"), workspace=request.workspace, pk=server_id)


@workspace_view()
def server_list(request):
    servers = request.workspace.servers.select_related("connection").order_by("name", "pk")
    page = Paginator(servers, LIST_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "provisioning/list.html", {"servers": page})


# --- Wizard --------------------------------------------------------------------------------------


def _draft(request):
    return Draft(request, "server_draft")


@workspace_view("servers.manage")
def wizard_start(request):
    _draft(request).clear()
    return redirect("server_wizard", ws=request.workspace.slug, step="connection")


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
        context["default_image"] = draft.get("image") or default_image(images)
        if post and any(i["slug"] == post.get("image") for i in images):
            _draft(request).update(image=post["image"])
            return _next(request, step)
        if post:
            context["errors"]["image"] = "Choose an image."
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
    if request.workspace.servers.filter(name=details.name).exists():
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
    context["monthly_cost"] = (price * (1 + BACKUPS_SHARE) if draft.get("backups") else price).quantize(Decimal("0.01"))
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
            image=draft["image"], price_monthly=context["monthly_cost"], user=request.user, request=request)
    except Invalid as e:
        context["error"] = e.message
        return None
    _draft(request).clear()
    messages.success(request, f"Provisioning {server.name}.")
    return redirect("server_detail", ws=request.workspace.slug, server_id=server.pk)


# --- A server ------------------------------------------------------------------------------------


@workspace_view()
def server_detail(request, server_id):
    server = _server(request, server_id)
    return render(request, "provisioning/detail.html", {"server": server, "steps": server.steps.all()})


@workspace_view()
def server_progress(request, server_id):
    server = _server(request, server_id)
    return render(request, "provisioning/detail.html#progress", {"server": server, "steps": server.steps.all()})


@require_POST
@workspace_view("servers.manage")
def server_action(request, server_id):
    server = _server(request, server_id)
    try:
        action = parse(ServerAction, {"type": request.POST.get("action", ""),
                                      **({"size": request.POST["size"]} if request.POST.get("size") else {})})
        if action.type == "retry":
            services.retry(server, user=request.user, request=request)
        else:
            lifecycle.request(server, action.type, size=action.size, user=request.user, request=request)
    except DevpilotError as e:
        messages.error(request, e.message)
    return redirect("server_detail", ws=request.workspace.slug, server_id=server.pk)


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

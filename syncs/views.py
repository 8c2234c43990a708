"""Secret sync pages: the list, the creation wizard, a sync's page and its actions."""

import copy
import uuid

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django_htmx.http import HttpResponseClientRedirect
from django.views.decorators.http import require_POST

from connections import digitalocean
from devpilot import references
from devpilot.access import workspace_view
from devpilot.drafts import Draft
from devpilot.errors import DevpilotError
from syncs import deployments, engine, keyschema, ownership, services
from syncs.destinations import DELETE, Plan, devpilot_server
from syncs.destinations import digitalocean_app_platform as app_platform
from syncs.forms import DestinationForm, DetailsForm, OptionsForm, ServerDestinationForm, SourceForm, suggest_name
from syncs.models import RunKind, Sync, SyncStatus

LIST_PAGE_SIZE = 50
STEPS = [("source", "Source"), ("destination", "Destination"), ("options", "Options"), ("details", "Details"),
         ("review", "Review")]
STEP_FIELDS = {
    "source": ["environment", "secret_path"],
    "destination": ["connection", "app_id", "component", "env_type", "env_scope", "app_name"],
    "options": ["initial_sync_behavior", "key_schema", "auto_sync_enabled", "disable_secret_deletion"],
    "details": ["name", "description"],
}


def _sync(request, sync_id):
    return get_object_or_404(
        Sync.objects.select_related("connection", "environment", "folder"), workspace=request.workspace, pk=sync_id)


@workspace_view()
def sync_list(request):
    syncs = request.workspace.syncs.select_related("connection", "environment", "folder").order_by("name", "pk")
    page = Paginator(syncs, LIST_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "syncs/list.html", {"syncs": page})


# --- The wizard: a draft in the session, one form per step ---------------------------------------


def _draft(request):
    return Draft(request, "sync_draft")


SERVER_FIELDS = ["target", "file_format", "file_mode"]


def _first_missing_step(draft):
    for step, fields in STEP_FIELDS.items():
        if step == "destination" and draft.get("destination") == devpilot_server.name:
            fields = SERVER_FIELDS
        if any(field not in draft for field in fields if field not in ("component", "description", "app_name")):
            return step
    return None


def server_destination_fields(workspace, data, sync_name):
    """The Sync fields the server destination form (wizard step or edit page) stands for."""
    kind, _, target = data["target"].partition(":")
    return {"server": workspace.servers.filter(pk=target).first() if kind == "server" else None,
            "server_tag": target if kind == "tag" else "",
            "file_path": data.get("file_path") or devpilot_server.default_path(sync_name or "sync"),
            "file_format": data["file_format"], "file_owner": data.get("file_owner", ""),
            "file_group": data.get("file_group", ""), "file_mode": data["file_mode"],
            "reload_command": data.get("reload_command", "")}


def server_destination_initial(sync):
    return {"target": f"server:{sync.server_id}" if sync.server_id else f"tag:{sync.server_tag}",
            **{field: getattr(sync, field) for field in SERVER_DRAFT if field != "target"}}


def destination_error(form, error: DevpilotError) -> None:
    """A refusal of the server destination, shown at the form field it names."""
    field = (error.details or [{}])[0].get("field", "").rsplit(".", 1)[-1]
    form.add_error({"serverId": "target", "tag": "target", "reloadCommand": "reload_command", "filePath": "file_path",
                    "mode": "file_mode", "owner": "file_owner", "group": "file_group", "format": "file_format",
                    }.get(field), error.message)


def draft_sync(workspace, draft):
    """An unsaved Sync built from the wizard's draft (what Review dry-runs and Create saves)."""
    environment = workspace.environments.get(slug=draft["environment"])
    if draft.get("destination") == devpilot_server.name:
        name = draft.get("name", "")
        return Sync(
            workspace=workspace, name=name, description=draft.get("description", ""), environment=environment,
            folder=environment.folders.get(path=draft["secret_path"]), destination=devpilot_server.name,
            **server_destination_fields(workspace, draft, name), key_schema=draft.get("key_schema", ""),
            auto_sync_enabled=draft["auto_sync_enabled"], disable_secret_deletion=draft["disable_secret_deletion"])
    return Sync(
        workspace=workspace, name=draft.get("name", ""), description=draft.get("description", ""),
        connection=workspace.connections.filter(pk=draft["connection"]).first(), environment=environment,
        folder=environment.folders.get(path=draft["secret_path"]), app_id=draft["app_id"],
        app_name=draft.get("app_name", ""), component=draft.get("component", ""), env_type=draft["env_type"],
        env_scope=draft["env_scope"], key_schema=draft.get("key_schema", ""),
        auto_sync_enabled=draft["auto_sync_enabled"], disable_secret_deletion=draft["disable_secret_deletion"],
    )


@workspace_view("syncs.manage")
def wizard_start(request):
    _draft(request).clear()
    return redirect("sync_wizard", ws=request.workspace.slug, step="source")


@workspace_view("syncs.manage")
def wizard(request, step):
    if step not in dict(STEPS):
        raise Http404("No such step.")
    draft = _draft(request).data
    missing = _first_missing_step(draft)
    order = [s for s, _ in STEPS]
    if missing and order.index(missing) < order.index(step):
        return redirect("sync_wizard", ws=request.workspace.slug, step=missing)
    handler = {"source": _source, "destination": _destination, "options": _options, "details": _details,
               "review": _review}[step]
    response = handler(request, draft)
    going_back = request.method == "POST" and request.POST.get("go") == "back" and order.index(step) > 0
    if going_back and response.status_code == 200:
        # The step had errors: go back anyway, keeping what the earlier steps saved.
        return redirect("sync_wizard", ws=request.workspace.slug, step=order[order.index(step) - 1])
    return response


def _step_page(request, step, context):
    order = [s for s, _ in STEPS]
    return render(request, "syncs/wizard.html", {
        "steps": STEPS, "step": step, "step_index": order.index(step),
        "previous": order[order.index(step) - 1] if order.index(step) else None, **context,
    })


def _next(request, step, data):
    _draft(request).update(**data)
    order = [s for s, _ in STEPS]
    if request.POST.get("go") == "back" and order.index(step):
        return redirect("sync_wizard", ws=request.workspace.slug, step=order[order.index(step) - 1])
    return redirect("sync_wizard", ws=request.workspace.slug, step=order[order.index(step) + 1])


def _source(request, draft):
    form = SourceForm(request.POST or None, workspace=request.workspace, initial=draft)
    if request.method == "POST" and form.is_valid():
        return _next(request, "source", form.cleaned_data)
    return _step_page(request, "source", {"form": form})


def _apps_for(request, connection_id):
    """(apps, error) for a connection of this workspace: every app, or the reason there are none."""
    connection = request.workspace.connections.filter(pk=connection_id).first() if connection_id else None
    if connection is None:
        return [], None
    try:
        return sorted(connection.client().list_apps(), key=lambda a: a["spec"]["name"].lower()), None
    except digitalocean.DigitalOceanError as e:
        return [], f"Could not list the apps of {connection.name}: {e.message}"


def _destination_kind(request, draft):
    chosen = request.POST.get("destination_kind") or request.GET.get("kind")
    if chosen in ("servers", "app"):
        return chosen
    return "servers" if draft.get("destination") == devpilot_server.name else "app"


def _destination(request, draft):
    if _destination_kind(request, draft) == "servers":
        return _server_destination(request, draft)
    if not request.workspace.connections.exists():
        return _step_page(request, "destination", {"no_connections": True, "kind": "app"})
    form = DestinationForm(request.POST or None, workspace=request.workspace, initial={
        "connection": draft.get("connection"), "app_id": draft.get("app_id"), "component": draft.get("component", ""),
        "env_type": draft.get("env_type", "SECRET"), "env_scope": draft.get("env_scope", "RUN_AND_BUILD_TIME")})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        connection = request.workspace.connections.get(pk=data["connection"])
        try:
            app = connection.client().get_app(data["app_id"])
            app_platform.target_envs(app["spec"], data["component"])
        except digitalocean.DigitalOceanError as e:
            form.add_error("app_id", e.message)
        except app_platform.DestinationError as e:
            form.add_error("component", str(e))
        else:
            return _next(request, "destination", {**data, "app_name": app["spec"]["name"],
                                                  "destination": app_platform.name})
    connection_id = form["connection"].value() or (form.fields["connection"].choices[0][0])
    apps, apps_error = _apps_for(request, connection_id)
    selected = next((a for a in apps if a["id"] == form["app_id"].value()), None)
    return _step_page(request, "destination", {
        "form": form, "apps": apps, "apps_error": apps_error, "selected_app": form["app_id"].value(),
        "components": app_platform.components(selected["spec"]) if selected else [],
        "selected_component": form["component"].value() or "", "kind": "app",
    })


SERVER_DRAFT = ("target", "file_path", "file_format", "file_owner", "file_group", "file_mode", "reload_command")


def _server_destination(request, draft):
    """One server or a tag, and the file: checked as a sync would be (workspace, path, mode, reload command)."""
    form = ServerDestinationForm(request.POST or None, workspace=request.workspace, initial={
        key: draft[key] for key in SERVER_DRAFT if key in draft})
    if request.method == "POST" and form.is_valid():
        data = {**form.cleaned_data, "destination": devpilot_server.name}
        candidate = draft_sync(request.workspace, {"auto_sync_enabled": True, "disable_secret_deletion": False,
                                                   **draft, **data, "name": draft.get("name") or "sync"})
        candidate.workspace = request.workspace
        try:
            devpilot_server.validate(candidate)
        except DevpilotError as e:
            destination_error(form, e)
        else:
            return _next(request, "destination", data)
    return _step_page(request, "destination", {"form": form, "kind": "servers",
                                               "no_servers": not request.workspace.servers.live().exists()})


@workspace_view("syncs.manage")
def wizard_apps(request):
    """The app picker for a connection, filtered by a search (HTMX)."""
    apps, apps_error = _apps_for(request, request.GET.get("connection"))
    query = request.GET.get("q", "").strip().lower()
    if query:
        apps = [a for a in apps if query in a["spec"]["name"].lower() or query in a["id"]]
    return render(request, "syncs/wizard.html#app_picker", {
        "apps": apps, "apps_error": apps_error, "selected_app": request.GET.get("app_id") or _draft(request).data.get("app_id"),
        "query": query,
    })


@workspace_view("syncs.manage")
def wizard_components(request):
    """Where in the chosen app variables can go: app level, or one of its components (HTMX)."""
    connection = request.workspace.connections.filter(pk=request.GET.get("connection")).first()
    components, error = [], None
    if connection and request.GET.get("app_id"):
        try:
            app = connection.client().get_app(request.GET["app_id"])
            components = app_platform.components(app.get("spec") or {})
        except digitalocean.DigitalOceanError as e:
            error = e.message
    return render(request, "syncs/wizard.html#component_picker", {
        "components": components, "components_error": error, "selected_component": request.GET.get("component", "")})


def _source_keys(request, draft):
    environment = request.workspace.environments.filter(slug=draft.get("environment")).first()
    if environment is None:
        return [], ""
    # The keys a sync of the folder pushes: its own and its imports' (key names only, no value is read).
    folder = (environment.slug, draft.get("secret_path", "/"))
    keys = references.Resolver(request.workspace.pk, keys_only=True).keys(folder)
    return sorted(keys), environment.slug


def _options(request, draft):
    form = OptionsForm(request.POST or None, initial={
        "initial_sync_behavior": "overwrite-destination",
        "key_schema": request.GET.get("key_schema", draft.get("key_schema", "")),  # "Use this key schema" link
        "auto_sync_enabled": draft.get("auto_sync_enabled", True),
        "disable_secret_deletion": draft.get("disable_secret_deletion", False)})
    if request.method == "POST" and form.is_valid():
        shared = ownership.conflict(draft_sync(request.workspace, {**draft, **form.cleaned_data}))
        if shared is None:
            return _next(request, "options", form.cleaned_data)
        form.add_error("key_schema", shared)  # said here, where the key schema is chosen, not only at Create
    schema = form["key_schema"].value() or ""
    return _step_page(request, "options", {"form": form, **_preview(request, draft, schema),
                                           "foreign": _foreign_variables(request, draft, schema)})


SUGGESTED_SCHEMAS = ["DEVPILOT_{{secretKey}}", "DEVPILOT_{{environment}}_{{secretKey}}"]


def _foreign_variables(request, draft, schema):
    """When the chosen app already holds variables the source does not, and `schema` would manage (so
    delete) them: {"keys": [...], "suggestion": a key schema that leaves them alone}. Otherwise None."""
    connection = request.workspace.connections.filter(pk=draft.get("connection")).first()
    if connection is None or not draft.get("app_id"):
        return None
    try:
        schema = keyschema.validate(schema)
        app = connection.client().get_app(draft["app_id"])
        existing = [e.get("key") for e in app_platform.target_envs(copy.deepcopy(app.get("spec") or {}),
                                                                  draft.get("component", "")) if e.get("key")]
    except (keyschema.KeySchemaError, digitalocean.DigitalOceanError, app_platform.DestinationError):
        return None
    keys, environment = _source_keys(request, draft)

    def doomed(candidate):
        desired = {keyschema.render(candidate, key, environment) for key in keys}
        return sorted(k for k in existing if k not in desired and keyschema.manages(candidate, k, environment))

    foreign = doomed(schema)
    if not foreign:
        return None
    suggestion = next((c for c in SUGGESTED_SCHEMAS if not doomed(c)), None)
    example = keyschema.render(suggestion, keys[0], environment) if suggestion and keys else ""
    return {"keys": foreign, "suggestion": suggestion, "example": example, "app_name": draft.get("app_name", "")}


def _preview(request, draft, schema):
    keys, environment = _source_keys(request, draft)
    try:
        schema = keyschema.validate(schema)
        error = None
    except keyschema.KeySchemaError as e:
        return {"preview": [], "preview_error": str(e)}
    preview = []
    for key in keys[:50]:
        rendered = keyschema.render(schema, key, environment)
        preview.append((key, rendered, app_platform.KEY_RE.match(rendered) is not None))
    return {"preview": preview, "preview_error": error, "preview_more": max(0, len(keys) - 50)}


@workspace_view("syncs.manage")
def wizard_preview(request):
    return render(request, "syncs/wizard.html#preview", _preview(request, _draft(request).data, request.GET.get("key_schema", "")))


def _details(request, draft):
    form = DetailsForm(request.POST or None, workspace=request.workspace, initial={
        "name": draft.get("name") or suggest_name(draft.get("app_name") or draft.get("target", "").partition(":")[2][:8],
                                                  draft.get("environment", "")),
        "description": draft.get("description", "")})
    if request.method == "POST" and form.is_valid():
        return _next(request, "details", form.cleaned_data)
    return _step_page(request, "details", {"form": form})


def _review(request, draft):
    sync = draft_sync(request.workspace, draft)
    if request.method == "POST" and request.POST.get("go") == "back":
        return redirect("sync_wizard", ws=request.workspace.slug, step="details")
    plan, plan_error, server_plans = None, None, None
    try:
        if sync.destination == devpilot_server.name:
            server_plans = [(name, Plan(changes=changes)) for name, changes in devpilot_server.dry_run(sync).items()]
        else:
            plan = engine.dry_run(sync)  # again on Create: what is confirmed is what the app holds now
    except (engine.SyncFailed, engine.Retry) as e:
        plan_error = str(e)
    deletions = [change.key for change in plan.changes if change.action == DELETE] if plan else []
    confirm_error = None
    if request.method == "POST" and plan_error is None:
        if deletions and request.POST.get("confirm_deletions") != str(len(deletions)):
            n = len(deletions)
            confirm_error = (f"This sync deletes {n} variable{'s' if n != 1 else ''} from {sync.app_name or 'the app'}: "
                             "tick the confirmation to create it, or go back and set a key schema.")
        else:
            try:
                services.create(sync, user=request.user, request=request)
            except services.SyncError as e:
                messages.error(request, str(e))
                return redirect("sync_wizard", ws=request.workspace.slug, step="details")
            _draft(request).clear()
            messages.success(request, f"Sync {sync.name} created." + (" Syncing now." if sync.auto_sync_enabled else ""))
            return redirect("sync_detail", ws=request.workspace.slug, sync_id=sync.pk)
    return _step_page(request, "review", {"sync": sync, "plan": plan, "plan_error": plan_error,
                                          "server_plans": server_plans,
                                          "deletions": deletions, "confirm_error": confirm_error,
                                          "source_notes": references.source_notes(sync.environment, sync.folder.path)})


# --- A sync's page and actions -------------------------------------------------------------------


def _status(sync):
    """The status fragment's context: the last runs, their deployments, and whether the page keeps polling."""
    if sync.destination == devpilot_server.name:
        servers = [devpilot_server.delivery_state(d) for d in devpilot_server.deliveries(sync)]
        return {"sync": sync, "runs": [], "servers": servers,
                "live": sync.is_busy or any(row["state"] in ("pending", "sent") and row["online"] for row in servers)}
    runs = list(sync.runs.all()[:25])
    for run in runs:
        run.following = deployments.is_following(run)
        run.restorable = deployments.is_restorable(run)
    restores = [r for r in runs if r.kind == RunKind.RESTORE]
    restoring = any(r.status in (SyncStatus.PENDING, SyncStatus.RUNNING) for r in restores)
    restored = {r.restores_id for r in restores if r.status != SyncStatus.FAILED}
    return {
        "sync": sync, "runs": runs,
        "deployment_run": next((r for r in runs if r.deployment_id), None),
        # The banner offers to restore the failed run, unless that is done or under way.
        "failed_run": next((r for r in runs if r.pk == sync.last_sync_job_id and r.restorable
                            and r.pk not in restored), None),
        "live": sync.is_busy or restoring or any(r.following for r in runs),
    }


@workspace_view()
def sync_detail(request, sync_id):
    return render(request, "syncs/detail.html", _status(_sync(request, sync_id)))


@workspace_view("syncs.manage")
def sync_dry_run(request, sync_id):
    """What the sync would write now (one read of the app, no write): keys, never values, and the source's
    imported keys and references; an unresolved reference is the error a run would fail with."""
    sync = _sync(request, sync_id)
    plan, plan_error, server_plans = None, None, None
    try:
        if sync.destination == devpilot_server.name:
            server_plans = [(server, Plan(changes=changes)) for server, changes in devpilot_server.dry_run(sync).items()]
        else:
            plan = engine.dry_run(sync)
    except (engine.SyncFailed, engine.Retry) as e:
        plan_error = str(e)
    context = {"sync": sync, "plan": plan, "plan_error": plan_error, "dry_run": True, "server_plans": server_plans,
               "source_notes": references.source_notes(sync.environment, sync.folder.path)}
    if request.htmx:
        return render(request, "syncs/_dry_run.html", context)
    return render(request, "syncs/detail.html", {**_status(sync), **context})


@workspace_view()
def sync_status(request, sync_id):
    sync = Sync.objects.filter(workspace=request.workspace, pk=sync_id).first()
    if sync is None and not request.htmx:
        raise Http404("No such sync.")
    if sync is None:  # the page was following a removal, and the worker then deleted the sync
        messages.success(request, "The sync's secrets were removed and the sync was deleted.")
        return HttpResponseClientRedirect(reverse("syncs", kwargs={"ws": request.workspace.slug}))
    return render(request, "syncs/detail.html#status", _status(sync))


def _back(request, sync):
    if request.htmx:
        return render(request, "syncs/detail.html#status", _status(sync))
    return redirect("sync_detail", ws=request.workspace.slug, sync_id=sync.pk)


def _queue(request, sync_id, action):
    sync = _sync(request, sync_id)
    try:
        action(sync, user=request.user, request=request)
    except services.SyncError as e:
        messages.error(request, str(e))
    return _back(request, sync)


@require_POST
@workspace_view("syncs.manage")
def sync_run(request, sync_id):
    return _queue(request, sync_id, services.sync_now)


@require_POST
@workspace_view("syncs.manage")
def sync_remove_secrets(request, sync_id):
    return _queue(request, sync_id, services.remove_secrets)


@require_POST
@workspace_view("syncs.manage")
def sync_toggle_auto(request, sync_id):
    sync = _sync(request, sync_id)
    services.update(sync, {"auto_sync_enabled": not sync.auto_sync_enabled}, user=request.user, request=request)
    messages.success(request, f"Auto-sync {'enabled' if sync.auto_sync_enabled else 'disabled'}.")
    return redirect("sync_detail", ws=request.workspace.slug, sync_id=sync.pk)


def _run_to_restore(request, sync):
    """The run named by ?run= (or the form), else the sync's latest run that can be restored."""
    run_id = request.POST.get("run") or request.GET.get("run")
    if not run_id:
        return sync.runs.exclude(previous_ciphertext="").filter(status__in=deployments.WRITES).first()
    try:
        return sync.runs.get(pk=uuid.UUID(run_id))
    except (ValueError, sync.runs.model.DoesNotExist):
        raise Http404("No such run of this sync.") from None


@workspace_view("syncs.manage")
def sync_restore(request, sync_id):
    """Restore previous values: a dry run of what goes back, then (POST) the restore in the background."""
    sync = _sync(request, sync_id)
    run = _run_to_restore(request, sync)
    if request.method != "POST" or run is None:
        return _restore_page(request, sync, run)
    try:
        deployments.request_restore(run, request.user, request=request)
    except DevpilotError as e:
        messages.error(request, e.message)
        return redirect(reverse("sync_restore", kwargs={"ws": request.workspace.slug, "sync_id": sync.pk})
                        + f"?run={run.pk}")
    messages.success(request, f"Restoring the values from before {deployments.run_time(run)}; the history below "
                              "follows it.")
    return redirect("sync_detail", ws=request.workspace.slug, sync_id=sync.pk)


def _restore_page(request, sync, run):
    steps, error = [], None
    if run is not None:
        try:
            steps = deployments.restore_plan(run)
        except DevpilotError as e:
            error = e.message
    changes = [s for s in steps if s.action != deployments.UNCHANGED]
    return render(request, "syncs/restore.html", {
        "sync": sync, "run": run, "run_time": deployments.run_time(run) if run else "", "error": error,
        "steps": steps, "changes": changes, "changed_since": [s.key for s in changes if s.changed_since],
    })


@workspace_view("syncs.manage")
def sync_edit(request, sync_id):
    """Options and details of any sync; the connection of an App Platform sync; the servers and the file of a
    server sync (a file it no longer writes loses the sync's keys at the next run, as Remove secrets would)."""
    sync = _sync(request, sync_id)
    destination = None
    if sync.destination == devpilot_server.name:
        destination = ServerDestinationForm(request.POST or None, prefix="destination", workspace=request.workspace,
                                            keep_tag=sync.server_tag, initial=server_destination_initial(sync))
    options = OptionsForm(request.POST or None, prefix="options", initial={
        "initial_sync_behavior": sync.initial_sync_behavior, "key_schema": sync.key_schema,
        "auto_sync_enabled": sync.auto_sync_enabled, "disable_secret_deletion": sync.disable_secret_deletion})
    details = DetailsForm(request.POST or None, prefix="details", workspace=request.workspace, exclude=sync,
                          initial={"name": sync.name, "description": sync.description})
    connections = request.workspace.connections.all()
    forms_valid = all([form.is_valid() for form in (options, details, destination) if form is not None])
    if request.method == "POST" and forms_valid:
        changes = {**options.cleaned_data, **details.cleaned_data}
        if destination is not None:
            changes.update(server_destination_fields(request.workspace, destination.cleaned_data,
                                                     details.cleaned_data["name"]))
        connection_id = request.POST.get("connection")
        if connection_id and destination is None and str(sync.connection_id) != connection_id:
            changes["connection"] = get_object_or_404(connections, pk=connection_id)
        changes = {field: value for field, value in changes.items() if getattr(sync, field) != value}
        try:
            services.update(sync, changes, user=request.user, request=request)
            messages.success(request, "Sync updated; the next run applies the changes."
                             if not sync.auto_sync_enabled else "Sync updated; it runs now with the changes.")
            return redirect("sync_detail", ws=request.workspace.slug, sync_id=sync.pk)
        except DevpilotError as e:
            sync.refresh_from_db()  # the page shows the sync as saved, not as the refused change left it
            field = (e.details or [{}])[0].get("field", "")
            if destination is not None and field.startswith("destinationConfig."):
                destination_error(destination, e)
            elif field.endswith("keySchema"):
                options.add_error("key_schema", e.message)
            else:
                details.add_error("name", e.message)
    return render(request, "syncs/edit.html", {"sync": sync, "options": options, "details": details,
                                               "destination": destination, "connections": connections})


@workspace_view("syncs.manage")
def sync_delete(request, sync_id):
    sync = _sync(request, sync_id)
    if request.method == "POST":
        remove = request.POST.get("remove_secrets") == "yes"
        try:
            services.delete(sync, remove_secrets_first=remove, user=request.user, request=request)
        except services.SyncError as e:
            messages.error(request, str(e))
            return redirect("sync_detail", ws=request.workspace.slug, sync_id=sync.pk)
        if remove:
            messages.success(request, f"Removing the secrets of {sync.name} from {sync.app_name or sync.app_id}; "
                                      "the sync is deleted once they are removed.")
            return redirect("sync_detail", ws=request.workspace.slug, sync_id=sync.pk)
        messages.success(request, f"Sync {sync.name} deleted.")
        return redirect("syncs", ws=request.workspace.slug)
    return render(request, "syncs/delete.html", {"sync": sync})


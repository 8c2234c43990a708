"""Secrets pages: environments, folders and secrets, edited inline with HTMX."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from devpilot import audit, dotenv, secrets
from devpilot.access import get_in_workspace, has_permission, workspace_view
from devpilot.models import Environment, Folder, Secret
from devpilot.secret_forms import EnvironmentForm, FolderForm, ImportForm, SecretForm


def _environment(request, env):
    return get_object_or_404(Environment, workspace=request.workspace, slug=env)


def _folder(request, environment):
    try:
        return secrets.get_folder(environment, request.GET.get("path") or request.POST.get("path") or "/")
    except secrets.SecretsError as e:
        raise Http404(str(e)) from None


def _secret(request, secret_id):
    return get_object_or_404(
        Secret.objects.select_related("environment", "folder", "updated_by"),
        workspace=request.workspace, pk=secret_id,
    )


def _breadcrumbs(path):
    crumbs = [("/", "/")]
    if path != "/":
        parts = path[1:].split("/")
        crumbs += [("/" + "/".join(parts[: i + 1]), name) for i, name in enumerate(parts)]
    return crumbs


def _folder_url(folder):
    url = reverse("secrets", kwargs={"ws": folder.workspace.slug, "env": folder.environment.slug})
    return url if folder.path == "/" else f"{url}?path={folder.path}"


@workspace_view()
def secrets_home(request):
    first = request.workspace.environments.first()
    if first is None:
        return redirect("environments", ws=request.workspace.slug)
    return redirect("secrets", ws=request.workspace.slug, env=first.slug)


def _page_context(request, environment, folder, form=None):
    return {
        "environment": environment,
        "environments": request.workspace.environments.all(),
        "folder": folder,
        "secrets": folder.secrets.select_related("updated_by"),
        "subfolders": secrets.subfolders(environment, folder.path),
        "breadcrumbs": _breadcrumbs(folder.path),
        "form": form or SecretForm(),
        "folder_form": FolderForm(),
    }


@workspace_view()
def secrets_page(request, env):
    environment = _environment(request, env)
    folder = _folder(request, environment)
    return render(request, "secrets/page.html", _page_context(request, environment, folder))


@require_POST
@workspace_view("secrets.write")
def secret_create(request, env):
    environment = _environment(request, env)
    folder = _folder(request, environment)
    form = SecretForm(request.POST)
    if form.is_valid():
        try:
            secret = secrets.create_secret(
                environment, folder.path, form.cleaned_data["key"], form.cleaned_data["value"],
                form.cleaned_data["comment"], user=request.user, request=request,
            )
        except secrets.SecretsError as e:
            form.add_error("key", str(e))
        else:
            form = None
            if not request.htmx:
                messages.success(request, f"{secret.key} added.")
                return redirect(_folder_url(folder))
    if request.htmx:
        return render(request, "secrets/page.html#section", _page_context(request, environment, folder, form))
    messages.error(request, "; ".join(e for errors in form.errors.values() for e in errors))
    return redirect(_folder_url(folder))


@workspace_view()
def secret_row(request, secret_id):
    return render(request, "secrets/page.html#row", {"secret": _secret(request, secret_id)})


@workspace_view("secrets.write")
def secret_edit(request, secret_id):
    secret = _secret(request, secret_id)
    if request.method == "POST":
        form = SecretForm(request.POST)
        if form.is_valid():
            try:
                secret = secrets.update_secret(
                    secret, key=form.cleaned_data["key"], value=form.cleaned_data["value"],
                    comment=form.cleaned_data["comment"], expected_version=form.cleaned_data["version"],
                    user=request.user, request=request,
                )
                return render(request, "secrets/page.html#row", {"secret": secret})
            except secrets.StaleVersion as e:
                form.add_error(None, str(e))
            except secrets.SecretsError as e:
                form.add_error("key", str(e))
    else:
        form = SecretForm(initial={"key": secret.key, "value": secret.value, "comment": secret.comment,
                                   "version": secret.version})
    return render(request, "secrets/page.html#edit_row", {"secret": secret, "form": form})


@require_POST
@workspace_view("secrets.read_values")
def secret_reveal(request, secret_id):
    secret = _secret(request, secret_id)
    audit.record(request.workspace, "secret.revealed", request=request, target=secret,
                 target_label=f"{secret.environment.slug}:{secret.folder.path}:{secret.key}")
    return render(request, "secrets/page.html#row", {"secret": secret, "revealed": secret.value})


@require_POST
@workspace_view("secrets.write")
def secret_delete(request, secret_id):
    secret = _secret(request, secret_id)
    secrets.delete_secret(secret, user=request.user, request=request)
    if request.htmx:
        return HttpResponse("")
    messages.success(request, f"{secret.key} deleted.")
    return redirect(_folder_url(secret.folder))


@workspace_view()
def secret_history(request, secret_id):
    secret = _secret(request, secret_id)
    versions = secret.versions.select_related("created_by")
    return render(request, "secrets/history.html", {"secret": secret, "versions": versions})


@require_POST
@workspace_view("secrets.read_values")
def version_reveal(request, secret_id, version_id):
    secret = _secret(request, secret_id)
    version = get_object_or_404(secret.versions.select_related("created_by"), pk=version_id)
    audit.record(request.workspace, "secret.version_revealed", request=request, target=secret, version=version.version)
    return render(request, "secrets/history.html#version", {"secret": secret, "version": version, "revealed": version.value})


@require_POST
@workspace_view("secrets.write")
def version_restore(request, secret_id, version_id):
    secret = _secret(request, secret_id)
    version = get_object_or_404(secret.versions, pk=version_id)
    secret = secrets.restore_version(secret, version, user=request.user, request=request)
    messages.success(request, f"{secret.key} restored to version {version.version} (now version {secret.version}).")
    return redirect("secret_history", ws=request.workspace.slug, secret_id=secret.pk)


@require_POST
@workspace_view("secrets.write")
def folder_create(request, env):
    environment = _environment(request, env)
    parent = _folder(request, environment)
    form = FolderForm(request.POST)
    if form.is_valid():
        try:
            folder = secrets.create_folder(environment, parent.path, form.cleaned_data["name"], user=request.user,
                                           request=request)
            return redirect(_folder_url(folder))
        except secrets.SecretsError as e:
            messages.error(request, str(e))
    return redirect(_folder_url(parent))


@require_POST
@workspace_view("secrets.write")
def folder_rename(request, folder_id):
    folder = get_in_workspace(request, Folder.objects.select_related("environment"), pk=folder_id)
    form = FolderForm(request.POST)
    if form.is_valid():
        try:
            secrets.rename_folder(folder, form.cleaned_data["name"], user=request.user, request=request)
        except secrets.SecretsError as e:
            messages.error(request, str(e))
    return redirect(_folder_url(folder))


@workspace_view("secrets.write")
def folder_delete(request, folder_id):
    folder = get_in_workspace(request, Folder.objects.select_related("environment"), pk=folder_id)
    secret_count, folder_count = secrets.folder_contents(folder)
    if request.method == "POST":
        try:
            secrets.delete_folder(folder, confirmed=request.POST.get("confirm") == "yes", user=request.user,
                                  request=request)
            messages.success(request, f"Folder {folder.path} deleted.")
            parent = folder.environment.folders.get(path=secrets.parent_path(folder.path))
            return redirect(_folder_url(parent))
        except secrets.SecretsError as e:
            messages.error(request, str(e))
            if not (secret_count or folder_count):
                return redirect(_folder_url(folder))
    return render(request, "secrets/folder_delete.html", {
        "folder": folder, "secret_count": secret_count, "folder_count": folder_count,
    })


@workspace_view("secrets.write")
def secrets_import(request, env):
    environment = _environment(request, env)
    folder = _folder(request, environment)
    form = ImportForm(request.POST or None)
    preview = None
    if request.method == "POST" and form.is_valid():
        parsed = dotenv.parse(form.cleaned_data["text"])
        existing = set(folder.secrets.filter(key__in=list(parsed.entries)).values_list("key", flat=True))
        if parsed.ok and request.POST.get("confirm") == "yes":
            result = secrets.bulk_import(environment, folder.path, parsed.entries,
                                         overwrite=form.cleaned_data["overwrite"], user=request.user, request=request)
            messages.success(request, (
                f"Imported: {len(result.created)} created, {len(result.updated)} updated, "
                f"{len(result.skipped)} skipped, {len(result.unchanged)} unchanged."
            ))
            return redirect(_folder_url(folder))
        preview = {"parsed": parsed, "existing": existing, "new": [k for k in parsed.entries if k not in existing]}
    return render(request, "secrets/import.html", {
        "environment": environment, "folder": folder, "form": form, "preview": preview,
    })


@workspace_view("secrets.read_values")
def secrets_download(request, env):
    environment = _environment(request, env)
    folder = _folder(request, environment)
    values = secrets.read_folder(environment, folder.path)
    audit.record(request.workspace, "secrets.downloaded", request=request,
                 target_label=f"{environment.slug}:{folder.path}", count=len(values))
    name = f"{environment.slug}{folder.path.replace('/', '-') if folder.path != '/' else ''}.env"
    response = HttpResponse(dotenv.render(values), content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@workspace_view()
def secrets_search(request, env):
    environment = _environment(request, env)
    query = request.GET.get("q", "").strip()
    results = []
    if query:
        results = (environment.secrets.filter(key__icontains=query).select_related("folder", "updated_by")
                   .order_by("folder__path", "key")[:200])
    return render(request, "secrets/search.html", {
        "environment": environment, "environments": request.workspace.environments.all(), "query": query,
        "results": results,
    })


@workspace_view()
def environments(request):
    form = EnvironmentForm(request.POST or None)
    if request.method == "POST":
        if not has_permission(request, "environments.manage"):
            raise PermissionDenied
        if form.is_valid():
            try:
                secrets.create_environment(request.workspace, form.cleaned_data["name"], form.cleaned_data["slug"],
                                           user=request.user, request=request)
                messages.success(request, f"Environment {form.cleaned_data['name']} added.")
                return redirect("environments", ws=request.workspace.slug)
            except secrets.SecretsError as e:
                form.add_error(None, str(e))
    envs = request.workspace.environments.annotate(secret_count=Count("secrets"))
    return render(request, "secrets/environments.html", {"settings_tab": "environments", "form": form, "envs": envs})


@require_POST
@workspace_view("environments.manage")
def environment_edit(request, environment_id):
    environment = get_in_workspace(request, Environment, pk=environment_id)
    form = EnvironmentForm(request.POST)
    if form.is_valid():
        try:
            secrets.rename_environment(environment, form.cleaned_data["name"], form.cleaned_data["slug"],
                                       user=request.user, request=request)
            messages.success(request, "Environment saved.")
        except secrets.SecretsError as e:
            messages.error(request, str(e))
    return redirect("environments", ws=request.workspace.slug)


@require_POST
@workspace_view("environments.manage")
def environment_delete(request, environment_id):
    environment = get_in_workspace(request, Environment, pk=environment_id)
    if request.POST.get("confirm") != environment.slug:
        messages.error(request, f"Type {environment.slug} to delete the environment {environment.name}.")
        return redirect("environments", ws=request.workspace.slug)
    try:
        secrets.delete_environment(environment, user=request.user, request=request)
        messages.success(request, f"Environment {environment.name} deleted.")
    except secrets.SecretsError as e:
        messages.error(request, str(e))
    return redirect("environments", ws=request.workspace.slug)

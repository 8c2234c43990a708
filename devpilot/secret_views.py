"""Secrets pages: environments, folders and secrets, edited inline with HTMX."""

import uuid
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Q
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from devpilot import audit, dotenv, imports, overview, references, secrets
from devpilot.access import get_in_workspace, has_permission, workspace_view
from devpilot.errors import DevpilotError
from devpilot.models import Environment, Folder, Secret, SecretImport, SecretReference
from devpilot.prepared import PreparedQuery
from devpilot.secret_forms import EnvironmentForm, FolderForm, ImportForm, SecretForm


def _environment(request, env):
    return get_object_or_404(Environment, workspace=request.workspace, slug=env)


def _folder(request, environment):
    try:
        return secrets.get_folder(environment, request.GET.get("path") or request.POST.get("path") or "/")
    except secrets.SecretsError as e:
        raise Http404(str(e)) from None


@dataclass
class Place:
    """Where a secrets page is: the workspace's environments (its tabs), one of them, a folder and its children."""

    environments: list[Environment]
    environment: Environment
    folder: Folder
    subfolders: list[Folder]


def _place(request, env) -> Place:
    """The page's place in two queries: the environments, then the folder with its direct subfolders (and
    whether it has imports or references, so a folder without them costs no query for either)."""
    environments = _ENVIRONMENTS_OF(workspace_id=request.workspace.pk)
    environment = next((e for e in environments if e.slug == env), None)
    if environment is None:
        raise Http404("No such environment.")
    try:
        path = secrets.normalize_path(request.GET.get("path") or request.POST.get("path") or "/")
    except secrets.SecretsError as e:
        raise Http404(str(e)) from None
    prefix = "/" if path == "/" else path + "/"  # folder names are letters, digits, - and _: nothing to escape
    found = _FOLDER_AND_CHILDREN(environment_id=environment.pk, path=path, children=f"^{prefix}[^/]+$")
    folder = next((f for f in found if f.path == path), None)
    if folder is None:
        raise Http404(f"There is no folder {path} in {environment.name}.")
    for each in found:
        each.environment = environment
    return Place(environments, environment, folder, [f for f in found if f is not folder])


# Every secrets page's first two queries, their SQL built once per process (devpilot/prepared.py).
_ENVIRONMENTS_OF = PreparedQuery(lambda workspace_id: Environment.objects.filter(workspace_id=workspace_id),
                                 workspace_id=uuid.UUID)
_FOLDER_AND_CHILDREN = PreparedQuery(
    lambda environment_id, path, children: Folder.objects.filter(
        Q(path=path) | Q(path__regex=children), environment_id=environment_id).annotate(
        has_imports=Exists(SecretImport.objects.filter(folder=OuterRef("pk"))),
        has_references=Exists(SecretReference.objects.filter(secret__folder=OuterRef("pk")))),
    environment_id=uuid.UUID, path=str, children=str)


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


PAGE_SIZE = 50  # secrets per page: a page's size and time stay the same however big the folder is
_NO_ID = uuid.UUID(int=0)


def _with_row_urls(request, rows):
    """Give each secret `row_url` ("/w/<ws>/secret/<id>/"; the row's links add "edit/", "reveal/"...), from
    one reversed URL per response instead of four `{% url %}` per row."""
    base = reverse("secret_row", kwargs={"ws": request.workspace.slug, "secret_id": _NO_ID}).removesuffix(f"{_NO_ID}/")
    for secret in rows:
        secret.row_url = f"{base}{secret.pk}/"
    return rows


def _with_links(request, rows, folder_has_references=True):
    """Give each secret `links`: its references (from the plaintext index, never its value), each marked
    resolved or not. A constant number of queries for the whole page (references.links_of), none when the
    folder is known to hold no reference."""
    found = references.links_of(request.workspace.pk, [secret.pk for secret in rows]) if folder_has_references else {}
    if found:
        base = reverse("secrets", kwargs={"ws": request.workspace.slug, "env": "-"}).removesuffix("-/")
        for links in found.values():
            for link in links:
                link.href = f"{base}{link.environment}/" + ("" if link.path == "/" else f"?path={quote(link.path)}")
    for secret in rows:
        secret.links = found.get(secret.pk, [])
    return rows


def _row_context(request, secret, **extra):
    return {"secret": _with_links(request, _with_row_urls(request, [secret]))[0], **extra}


@dataclass
class Window:
    """One page of a folder's secrets in key order, found by keyset (`key > after` or `key < before`),
    never by offset, so the last page costs what the first does."""

    rows: list
    query: str
    previous_url: str | None
    next_url: str | None


def _rows_of(folder_id):
    # Only what a row shows: not the ciphertext, nor the whole user.
    return (Secret.objects.filter(folder_id=folder_id).select_related("updated_by").order_by("key")
            .only("id", "key", "comment", "version", "updated_at", "folder_id", "updated_by__email"))


# A folder's first page, what nearly every visit shows, from SQL built once per process (devpilot/prepared.py).
_FIRST_PAGE = PreparedQuery(lambda folder_id: _rows_of(folder_id)[: PAGE_SIZE + 1], folder_id=uuid.UUID)


def _window(request, folder, *, after="", before="", start="", query=""):
    if not (after or before or start or query):
        page = _FIRST_PAGE(folder_id=folder.pk)
        more_before, more_after, page = False, len(page) > PAGE_SIZE, page[:PAGE_SIZE]
    else:
        more_before, more_after, page = _page_at(_rows_of(folder.pk), after, before, start, query)

    base = reverse("secrets", kwargs={"ws": request.workspace.slug, "env": folder.environment.slug})

    def link(**keyset):
        params = {"path": folder.path} if folder.path != "/" else {}
        params.update({"q": query} if query else {})
        params.update(keyset)
        return f"{base}?{urlencode(params)}" if params else base

    return Window(
        rows=page, query=query,
        previous_url=(link(before=page[0].key) if page else link()) if more_before else None,
        next_url=link(after=page[-1].key) if more_after and page else None,
    )


def _page_at(rows, after, before, start, query):
    """(more before, more after, the page) of `rows` after, before or from a key, among keys holding `query`."""
    if query:
        rows = rows.filter(key__icontains=query)  # the whole folder, not only this page
    if before:
        page = list(rows.filter(key__lt=before).order_by("-key")[: PAGE_SIZE + 1])[::-1]
        return len(page) > PAGE_SIZE, True, page[-PAGE_SIZE:]
    if after:
        rows_here = rows.filter(key__gt=after)
    elif start:
        rows_here = rows.filter(key__gte=start)
    else:
        rows_here = rows
    page = list(rows_here[: PAGE_SIZE + 1])
    more_after, page = len(page) > PAGE_SIZE, page[:PAGE_SIZE]
    first = after or start
    more_before = bool(first) and rows.filter(key__lt=page[0].key if page else first).exists()
    return more_before, more_after, page


def _page_context(request, place: Place, form=None, window=None):
    environment, folder = place.environment, place.folder
    if window is None:
        window = _window(request, folder, after=request.GET.get("after", ""), before=request.GET.get("before", ""),
                         query=request.GET.get("q", "").strip())
    return {
        "environment": environment,
        "environments": place.environments,
        "folder": folder,
        "secrets": _with_links(request, _with_row_urls(request, window.rows), folder.has_references),
        "revealed": None,  # rows show no value here; set, so 50 rows do not each look it up and miss
        **_imports_context(folder, folder.has_imports),
        "window": window,
        "subfolders": place.subfolders,
        "breadcrumbs": _breadcrumbs(folder.path),
        "form": form or SecretForm(),
        "folder_form": FolderForm(),
    }


def _imports_context(folder, has_imports=True, error=""):
    """The folder's imports section: each import with the keys it brings and which wins."""
    return {"imports": references.imports_view(folder) if has_imports else [], "import_error": error}


def _render_imports(request, folder, error=""):
    if not request.htmx:
        if error:
            messages.error(request, error)
        return redirect(_folder_url(folder))
    context = {"environment": folder.environment, "folder": folder, "environments": folder.environment.workspace
               .environments.all(), **_imports_context(folder, error=error)}
    return render(request, "secrets/_imports.html", context)


@require_POST
@workspace_view("secrets.write")
def secret_import_add(request, env):
    folder = _place(request, env).folder
    try:
        source = imports.source_folder(folder, request.POST.get("source_environment", ""),
                                       request.POST.get("source_path") or "/")
        imports.add_import(folder, source, user=request.user, request=request)
    except DevpilotError as e:
        return _render_imports(request, folder, e.message)
    return _render_imports(request, folder)


def _import(request, import_id):
    return get_in_workspace(request, SecretImport.objects.select_related(
        "folder__environment", "folder__workspace", "source_folder__environment"), pk=import_id)


@require_POST
@workspace_view("secrets.write")
def secret_import_move(request, import_id):
    item = _import(request, import_id)
    order = list(item.folder.imports.values_list("pk", flat=True))
    step = -1 if request.POST.get("direction") == "up" else 1
    position = min(max(1, order.index(item.pk) + 1 + step), len(order))
    imports.move_import(item, position, user=request.user, request=request)
    return _render_imports(request, item.folder)


@require_POST
@workspace_view("secrets.write")
def secret_import_remove(request, import_id):
    item = _import(request, import_id)
    folder = item.folder
    try:
        imports.remove_import(item, user=request.user, request=request)
    except DevpilotError as e:
        return _render_imports(request, folder, e.message)
    return _render_imports(request, folder)


@workspace_view()
def secrets_page(request, env):
    return render(request, "secrets/page.html", _page_context(request, _place(request, env)))


@sensitive_post_parameters("value", "text")
@require_POST
@workspace_view("secrets.write")
def secret_create(request, env):
    place = _place(request, env)
    environment, folder = place.environment, place.folder
    form = SecretForm(request.POST)
    if form.is_valid():
        try:
            secret = secrets.create_secret(
                environment, folder.path, form.cleaned_data["key"], form.cleaned_data["value"],
                form.cleaned_data["comment"], user=request.user, request=request,
            )
        except secrets.SecretsError as e:
            form.add_error(getattr(e, "field", "key"), str(e))
        else:
            form = None
            if not request.htmx:
                messages.success(request, f"{secret.key} added.")
                return redirect(_folder_url(folder))
            folder.has_references = folder.has_references or secret.references.exists()
            # Show the new secret: on the first page if it falls there, else on a page that begins with it.
            window = _window(request, folder)
            if secret.key not in {s.key for s in window.rows}:
                window = _window(request, folder, start=secret.key)
            return render(request, "secrets/page.html#section", _page_context(request, place, None, window))
    if request.htmx:
        return render(request, "secrets/page.html#section", _page_context(request, place, form))
    messages.error(request, "; ".join(e for errors in form.errors.values() for e in errors))
    return redirect(_folder_url(folder))


@workspace_view()
def secret_row(request, secret_id):
    return render(request, "secrets/page.html#row", _row_context(request, _secret(request, secret_id)))


@sensitive_post_parameters("value", "text")
@workspace_view("secrets.write")
def secret_edit(request, secret_id):
    secret = _secret(request, secret_id)
    if request.method == "POST":
        form = SecretForm(request.POST)
        if form.is_valid():
            try:
                secret = secrets.update_secret(
                    secret, key=form.cleaned_data["key"],
                    value=form.cleaned_data["value"] if form.cleaned_data["change_value"] else None,
                    comment=form.cleaned_data["comment"], expected_version=form.cleaned_data["version"],
                    user=request.user, request=request,
                )
                return render(request, "secrets/page.html#row", _row_context(request, secret))
            except secrets.StaleVersion as e:
                form.add_error(None, str(e))
            except secrets.SecretsError as e:
                form.add_error(getattr(e, "field", "key"), str(e))
    else:
        # The current value is not sent to the browser: editing it is a choice, not a silent reveal.
        form = SecretForm(initial={"key": secret.key, "comment": secret.comment, "version": secret.version})
    return render(request, "secrets/page.html#edit_row", _row_context(request, secret, form=form))


@never_cache  # a value is in the answer: no cache may keep it
@require_POST
@workspace_view("secrets.read_values")
def secret_reveal(request, secret_id):
    """The stored value; with `resolved`, the value as syncs push it (references expanded), audited as such."""
    secret = _secret(request, secret_id)
    resolved = request.POST.get("resolved") == "1"
    secrets.record_values_read(request.workspace, f"{secret.environment.slug}:{secret.folder.path}", [secret.key],
                               "reveal (resolved)" if resolved else "reveal", request=request, target=secret)
    if resolved:
        value, unresolved = references.Resolver(secret.workspace_id).expand(
            (secret.environment.slug, secret.folder.path), secret.key)
        return render(request, "secrets/page.html#row", _row_context(
            request, secret, revealed=value, revealed_resolved=True, unresolved=unresolved))
    return render(request, "secrets/page.html#row", _row_context(request, secret, revealed=secret.value))


@require_POST
@workspace_view("secrets.write")
def secret_delete(request, secret_id):
    secret = _secret(request, secret_id)
    try:
        secrets.delete_secret(secret, user=request.user, request=request)
    except secrets.SecretsError as e:  # other secrets refer to it: the row stays and says who
        if request.htmx:
            return render(request, "secrets/page.html#row", _row_context(request, secret, row_error=str(e)))
        messages.error(request, str(e))
        return redirect(_folder_url(secret.folder))
    if request.htmx:
        return HttpResponse("")
    messages.success(request, f"{secret.key} deleted.")
    return redirect(_folder_url(secret.folder))


@workspace_view()
def secret_history(request, secret_id):
    secret = _secret(request, secret_id)
    versions = secret.versions.select_related("created_by")
    return render(request, "secrets/history.html", {"secret": secret, "versions": versions})


@never_cache
@require_POST
@workspace_view("secrets.read_values")
def version_reveal(request, secret_id, version_id):
    secret = _secret(request, secret_id)
    version = get_object_or_404(secret.versions.select_related("created_by"), pk=version_id)
    secrets.record_values_read(request.workspace, f"{secret.environment.slug}:{secret.folder.path}", [secret.key],
                               f"history (version {version.version})", request=request, target=secret)
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


@sensitive_post_parameters("value", "text")
@workspace_view("secrets.write")
def secrets_import(request, env):
    environment = _environment(request, env)
    folder = _folder(request, environment)
    form = ImportForm(request.POST or None)
    preview = None
    if request.method == "POST" and form.is_valid():
        parsed = dotenv.parse(form.cleaned_data["text"])
        mode = "overwrite" if form.cleaned_data["overwrite"] else "skip"
        # Import writes what the preview said: a choice changed after Check shows the preview again.
        checked_as = request.POST.get("checked_mode", mode)
        if parsed.ok and request.POST.get("confirm") == "yes" and checked_as == mode:
            try:
                result = secrets.bulk_import(environment, folder.path, parsed.entries,
                                             overwrite=form.cleaned_data["overwrite"], user=request.user,
                                             request=request)
            except secrets.SecretsError as e:  # changed since the check (a referenced secret deleted)
                form.add_error("text", str(e))
            else:
                messages.success(request, (
                    f"Imported: {len(result.created)} created, {len(result.updated)} updated, "
                    f"{len(result.skipped)} skipped, {len(result.unchanged)} unchanged."
                ))
                return redirect(_folder_url(folder))
        preview = {"parsed": parsed, "mode": mode}
        if parsed.ok:  # what each choice would write, exactly as bulk_import decides it
            current = {s.key: s.value for s in folder.secrets.filter(key__in=list(parsed.entries))}
            new = [k for k in parsed.entries if k not in current]
            changed = [k for k in parsed.entries if k in current and current[k] != parsed.entries[k]]
            unchanged = [k for k in parsed.entries if k in current and current[k] == parsed.entries[k]]
            preview.update(new=new, changed=changed, unchanged=unchanged, overwrite_writes=new + changed,
                           writes=new + changed if mode == "overwrite" else new)
            try:  # references checked as the import would: a missing target or a cycle is said before writing
                references.check(environment, folder.path, {k: parsed.entries[k] for k in preview["writes"]})
            except references.ReferenceRefused as e:
                preview["reference_problem"] = e.message
    return render(request, "secrets/import.html", {
        "environment": environment, "folder": folder, "form": form, "preview": preview,
    })


@never_cache
@workspace_view("secrets.read_values")
def secrets_download(request, env):
    environment = _environment(request, env)
    folder = _folder(request, environment)
    # As a sync would push it: imports merged, references expanded (an unresolved one stays as written).
    values = references.resolve_folder(environment, folder.path).values
    secrets.record_values_read(request.workspace, f"{environment.slug}:{folder.path}", values, "download",
                               request=request)
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
    envs = overview.ENVIRONMENTS_WITH_SECRET_COUNTS(workspace_id=request.workspace.pk)
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

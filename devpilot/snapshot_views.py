"""Folder history pages (snapshots, the folder at a point in time, rollback) and the environment comparison
with promotion. Thin adapters: the work is in devpilot/snapshots.py and devpilot/compare.py."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode

from django.contrib import messages
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from devpilot import compare, secrets, snapshots
from devpilot.access import has_permission, workspace_view
from devpilot.errors import DevpilotError
from devpilot.models import Folder, FolderSnapshot
from devpilot.secret_views import _breadcrumbs, _folder_url, _place

HISTORY_PAGE_SIZE = 25


def _history_url(folder: Folder, **params) -> str:
    url = reverse("folder_history", kwargs={"ws": folder.workspace.slug, "env": folder.environment.slug})
    query = {**({"path": folder.path} if folder.path != "/" else {}), **params}
    return f"{url}?{urlencode(query)}" if query else url


def _parse_time(raw: str) -> datetime | None:
    """A datetime-local value ("2026-11-24T12:30"), read in the server's time zone (shown on the page)."""
    try:
        return timezone.make_aware(datetime.fromisoformat(raw))
    except ValueError:
        return None


@workspace_view()
def folder_history(request: HttpRequest, env: str) -> HttpResponse:
    place = _place(request, env)
    environment, folder = place.environment, place.folder
    if request.GET.get("at"):
        when = _parse_time(request.GET["at"])
        if when is None:
            messages.error(request, "Give a date and time such as 2026-11-24 12:30.")
            return redirect(_history_url(folder))
        try:
            snapshot = snapshots.snapshot_at_time(folder, when)
        except DevpilotError as e:
            messages.error(request, e.message)
            return redirect(_history_url(folder))
        url = reverse("snapshot", kwargs={"ws": request.workspace.slug, "secret_snapshot_id": snapshot.pk})
        return redirect(f"{url}?{urlencode({'at': request.GET['at']})}")
    rows = folder.snapshots.annotate(key_count=Count("entries")).order_by("-number")
    before = request.GET.get("before", "")
    if before.isdigit():
        rows = rows.filter(number__lt=int(before))
    page = list(rows[: HISTORY_PAGE_SIZE + 1])
    more, page = len(page) > HISTORY_PAGE_SIZE, page[:HISTORY_PAGE_SIZE]
    keys = snapshots.changed_keys(page)
    for snapshot in page:
        snapshot.keys = keys[snapshot.pk]
    return render(request, "secrets/snapshots.html", {
        "environment": environment, "folder": folder, "breadcrumbs": _breadcrumbs(folder.path),
        "snapshots": page, "latest": snapshots.latest_number(folder),
        "older_url": _history_url(folder, before=page[-1].number) if more and page else None,
        "newest_url": _history_url(folder) if before else None,
        "now": timezone.localtime().strftime("%Y-%m-%dT%H:%M"),
    })


def _snapshot(request: HttpRequest, secret_snapshot_id) -> FolderSnapshot:
    return get_object_or_404(FolderSnapshot.objects.select_related("folder__environment", "folder__workspace"),
                             folder__workspace=request.workspace, pk=secret_snapshot_id)


def _neighbours(snapshot: FolderSnapshot) -> tuple[FolderSnapshot | None, FolderSnapshot | None]:
    others = snapshot.folder.snapshots
    return (others.filter(number__lt=snapshot.number).order_by("-number").first(),
            others.filter(number__gt=snapshot.number).order_by("number").first())


@workspace_view()
def snapshot_detail(request: HttpRequest, secret_snapshot_id) -> HttpResponse:
    snapshot = _snapshot(request, secret_snapshot_id)
    previous, following = _neighbours(snapshot)
    return render(request, "secrets/snapshot.html", {
        "snapshot": snapshot, "folder": snapshot.folder, "environment": snapshot.folder.environment,
        "entries": list(snapshots.state_at(snapshot.folder, snapshot.number).values()),
        "changes": snapshots.changes_of(snapshot), "previous": previous, "following": following,
        "at": _parse_time(request.GET.get("at", "")), "history_url": _history_url(snapshot.folder),
        "is_latest": following is None,
    })


@never_cache  # a value is in the answer: no cache may keep it
@require_POST
@workspace_view("secrets.read_values")
def snapshot_reveal(request: HttpRequest, secret_snapshot_id) -> HttpResponse:
    snapshot = _snapshot(request, secret_snapshot_id)
    entry = snapshots.state_at(snapshot.folder, snapshot.number).get(request.POST.get("key", ""))
    if entry is None:
        raise Http404("That key was not in the folder at this snapshot.")
    folder = snapshot.folder
    secrets.record_values_read(request.workspace, f"{folder.environment.slug}:{folder.path}", [entry.key],
                               f"folder history (snapshot #{snapshot.number})", request=request, target=folder)
    return render(request, "secrets/snapshot.html#entry", {
        "snapshot": snapshot, "entry": entry, "revealed": entry.version.value,
    })


@workspace_view("secrets.write")
def snapshot_rollback(request: HttpRequest, secret_snapshot_id) -> HttpResponse:
    snapshot = _snapshot(request, secret_snapshot_id)
    folder = snapshot.folder
    if request.method == "POST":
        expected = request.POST.get("expected_latest", "")
        try:
            made = snapshots.rollback(snapshot, expected_latest=int(expected) if expected.isdigit() else -1,
                                      user=request.user, request=request)
        except DevpilotError as e:
            messages.error(request, e.message)
        else:
            if made is None:
                messages.info(request, f"{folder.path} already is as it was at snapshot #{snapshot.number}.")
            else:
                messages.success(request, f"{folder.path} rolled back to snapshot #{snapshot.number} (now snapshot "
                                          f"#{made.number}; roll back to #{made.number - 1} to undo).")
            return redirect(_history_url(folder))
    return render(request, "secrets/rollback.html", {
        "snapshot": snapshot, "folder": folder, "environment": folder.environment,
        "plan": snapshots.plan_rollback(snapshot), "history_url": _history_url(folder),
    })


# --- Compare and promote ---------------------------------------------------------------------


def _compare_url(request: HttpRequest, path: str, **params) -> str:
    query = {**({"path": path} if path != "/" else {}), **params}
    url = reverse("compare", kwargs={"ws": request.workspace.slug})
    return f"{url}?{urlencode(query)}" if query else url


@workspace_view()
def compare_page(request: HttpRequest) -> HttpResponse:
    try:
        path = secrets.normalize_path(request.GET.get("path") or "/")
    except secrets.SecretsError as e:
        messages.error(request, str(e))
        return redirect(_compare_url(request, "/"))
    comparison = compare.compare(request.workspace, path, with_values=has_permission(request, "secrets.read_values"))
    only_differences = request.GET.get("diff") == "1"
    paths = sorted({path, *Folder.objects.filter(workspace=request.workspace).values_list("path", flat=True)})
    environments = comparison.environments
    return render(request, "secrets/compare.html", {
        "comparison": comparison, "rows": comparison.differences if only_differences else comparison.rows,
        "only_differences": only_differences, "paths": paths, "can_promote": has_permission(request, "secrets.write"),
        "source": request.GET.get("source") or (environments[0].slug if environments else ""),
        "target": request.GET.get("target") or (environments[1].slug if len(environments) > 1 else ""),
        "all_url": _compare_url(request, path), "diff_url": _compare_url(request, path, diff="1"),
    })


@workspace_view("secrets.write")
def promote(request: HttpRequest) -> HttpResponse:
    """POST from the compare page: a preview; POST with confirm=yes: the promotion itself."""
    path = request.POST.get("path") or request.GET.get("path") or "/"
    back = _compare_url(request, path if path.startswith("/") else "/")
    if request.method != "POST":
        return redirect(back)
    keys = request.POST.getlist("keys")
    source, target = request.POST.get("source", ""), request.POST.get("target", "")
    try:
        if request.POST.get("confirm") == "yes":
            expected = request.POST.get("expected_latest", "")
            plan = compare.promote(request.workspace, path, source, target, keys,
                                   expected_latest=int(expected) if expected.isdigit() else -1,
                                   user=request.user, request=request)
            messages.success(request, f"Promoted {len(plan.keys)} key{'' if len(plan.keys) == 1 else 's'} from "
                                      f"{plan.source.name} to {plan.target.name}: {len(plan.create)} created, "
                                      f"{len(plan.overwrite)} overwritten.")
            return redirect(_folder_url(plan.target.folders.get(path=plan.path)))
        plan = compare.preview(request.workspace, path, source, target, keys)
    except DevpilotError as e:
        messages.error(request, e.message)
        return redirect(_compare_url(request, path if path.startswith("/") else "/", source=source, target=target))
    return render(request, "secrets/promote.html", {"plan": plan, "back_url": back})

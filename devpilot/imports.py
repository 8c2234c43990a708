"""Secret imports: a folder shows (and syncs) the secrets of other folders, in an order its members set.

Precedence, as Infisical's: the folder's own secrets win over every import; among imports, a later one
(higher position) overrides an earlier one. Imports chain: an imported folder brings its own imports along,
so a cycle (a folder importing itself through others) is refused. The resolution is devpilot/references.py.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import Max

from devpilot import audit, references, secrets
from devpilot.errors import Conflict, Invalid, NotFound
from devpilot.models import Folder, SecretImport, SecretReference


def _label(folder: Folder) -> str:
    return f"{folder.environment.slug}:{folder.path}"


def imports_of(folder: Folder) -> list[SecretImport]:
    """A folder's imports in order (the first is overridden by every later one)."""
    return list(folder.imports.select_related("source_folder__environment"))


def source_folder(folder: Folder, environment_slug: str, path: str) -> Folder:
    """The folder to import, looked up in `folder`'s own workspace only."""
    try:
        path = secrets.normalize_path(path)
    except secrets.SecretsError as e:
        raise Invalid.for_field("path", e.message) from None
    source = (Folder.objects.select_related("environment")
              .filter(workspace_id=folder.workspace_id, environment__slug=environment_slug, path=path).first())
    if source is None:
        if not folder.workspace.environments.filter(slug=environment_slug).exists():
            raise NotFound(f"There is no environment {environment_slug} in this workspace.")
        raise NotFound(f"There is no folder {path} in {environment_slug}.")
    return source


def _chain_back(source: Folder, folder: Folder) -> list[str] | None:
    """The import chain from `source` back to `folder`, if `source` already imports it (directly or not)."""
    edges: dict = {}
    for importer, imported in SecretImport.objects.filter(workspace_id=folder.workspace_id).values_list(
            "folder_id", "source_folder_id"):
        edges.setdefault(importer, []).append(imported)
    stack = [(source.pk, [source.pk])]
    seen = set()
    while stack:
        current, path = stack.pop()
        if current == folder.pk:
            return path
        if current in seen:
            continue
        seen.add(current)
        stack += [(nxt, path + [nxt]) for nxt in edges.get(current, [])]
    return None


def _refuse_invalid_source(folder: Folder, source: Folder) -> None:
    if source.workspace_id != folder.workspace_id:
        raise NotFound("There is no such folder in this workspace.")
    if source.pk == folder.pk:
        raise Invalid(f"{_label(folder)} cannot import itself.")
    chain = _chain_back(source, folder)
    if chain is not None:
        labels = {f.pk: _label(f) for f in Folder.objects.filter(pk__in=chain).select_related("environment")}
        links = [_label(folder), *(labels[pk] for pk in chain)]
        raise Invalid(
            f"{' imports '.join(links)}: that is a cycle, so {_label(folder)} cannot import {_label(source)}.")


def _refuse_breaking_references(folder: Folder) -> None:
    """After an import is removed or re-pointed (in the transaction): refuse when a reference to this folder
    named a key only that import gave, as deleting that secret would be refused."""
    wanted = set(SecretReference.objects.filter(
        workspace_id=folder.workspace_id, environment_slug=folder.environment.slug, path=folder.path,
    ).values_list("key", "secret__environment__slug", "secret__folder__path", "secret__key"))
    if not wanted:
        return
    resolver = references.Resolver(folder.workspace_id, keys_only=True)
    here = (folder.environment.slug, folder.path)
    broken = sorted(f"{slug}:{path}:{referrer} (refers to {_label(folder)}:{key})"
                    for key, slug, path, referrer in wanted if resolver.lookup(here, key) is None)
    if broken:
        raise Invalid(f"{', '.join(broken)} would no longer resolve without this import. Change those first.")


@transaction.atomic
def add_import(folder: Folder, source: Folder, *, user=None, request=None) -> SecretImport:
    _refuse_invalid_source(folder, source)
    position = (folder.imports.aggregate(last=Max("position"))["last"] or 0) + 1
    try:
        with transaction.atomic():
            created = SecretImport.objects.create(workspace_id=folder.workspace_id, folder=folder, source_folder=source,
                                                  position=position, created_by=user)
    except IntegrityError:
        raise Conflict(f"{_label(folder)} already imports {_label(source)}.") from None
    audit.record(folder.workspace, "secret_import.created", request=request, actor=user, target=created,
                 target_label=_label(folder), source=_label(source))
    secrets._emit(folder.workspace_id, folder.environment_id, [folder.path])
    return created


@transaction.atomic
def move_import(secret_import: SecretImport, position: int, *, user=None, request=None) -> SecretImport:
    """Put an import at `position` (1 is the first, overridden by all later ones); the others shift."""
    folder = secret_import.folder
    ordered = [i for i in folder.imports.select_for_update() if i.pk != secret_import.pk]
    if position < 1 or position > len(ordered) + 1:
        raise Invalid.for_field("position", f"Choose a position from 1 to {len(ordered) + 1}.")
    ordered.insert(position - 1, secret_import)
    for number, item in enumerate(ordered, start=1):
        item.position = number
    SecretImport.objects.bulk_update(ordered, ["position"])
    secret_import.position = position
    audit.record(folder.workspace, "secret_import.moved", request=request, actor=user, target=secret_import,
                 target_label=_label(folder), source=_label(secret_import.source_folder), position=position)
    secrets._emit(folder.workspace_id, folder.environment_id, [folder.path])
    return secret_import


@transaction.atomic
def change_source(secret_import: SecretImport, source: Folder, *, user=None, request=None) -> SecretImport:
    """Import another folder in the same place of the order (Infisical's PATCH with a new environment or path)."""
    folder = secret_import.folder
    if source.pk == secret_import.source_folder_id:
        return secret_import
    _refuse_invalid_source(folder, source)
    if folder.imports.filter(source_folder=source).exists():
        raise Conflict(f"{_label(folder)} already imports {_label(source)}.")
    previous = _label(secret_import.source_folder)
    secret_import.source_folder = source
    secret_import.save(update_fields=["source_folder", "updated_at"])
    _refuse_breaking_references(folder)
    audit.record(folder.workspace, "secret_import.changed", request=request, actor=user, target=secret_import,
                 target_label=_label(folder), source=_label(source), previous=previous)
    secrets._emit(folder.workspace_id, folder.environment_id, [folder.path])
    return secret_import


@transaction.atomic
def remove_import(secret_import: SecretImport, *, user=None, request=None) -> None:
    """Stop importing. Refused when a reference to this folder needs a key only this import gives."""
    folder = secret_import.folder
    source = _label(secret_import.source_folder)
    secret_import.delete()
    _refuse_breaking_references(folder)
    audit.record(folder.workspace, "secret_import.deleted", request=request, actor=user, target_label=_label(folder),
                 source=source)
    secrets._emit(folder.workspace_id, folder.environment_id, [folder.path])

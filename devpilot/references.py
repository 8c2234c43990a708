"""Secret references and the one resolution of a folder's values (imports merged, references expanded).

Syntax (Infisical's): `${KEY}` is KEY in the same environment and folder; `${env.KEY}` is KEY at the root
of the environment with slug `env`; `${env.a.b.KEY}` is KEY in the folder /a/b of `env`. A reference reads
the target folder as a sync would push it: its own secrets over its imports.

DigitalOcean App Platform has its own bindable variables with the same `${...}` look, filled in by App
Platform when the app deploys. Devpilot passes them through untouched. The rule that tells them apart:

1. `${APP_DOMAIN}`, `${APP_URL}`, `${APP_ID}` and every `${_self.NAME}` are always App Platform's.
2. Three or more segments (`${env.folder.KEY}`) are always a Devpilot reference.
3. Two segments `${x.NAME}`: a Devpilot reference when `x` is an environment slug of the secret's own
   workspace; otherwise App Platform's when NAME is one of its bindable names (`${db.DATABASE_URL}`,
   `${api.PRIVATE_URL}`); otherwise a Devpilot reference to a missing environment.
4. One segment `${KEY}` (not an app-wide name): a Devpilot reference in the same folder.

References never cross workspaces: environment slugs are looked up only in the secret's own workspace.

Resolution reads folders in waves: the asked folders, then every folder they import or reference, and so
on; each wave is three queries (its folders, their secrets, their imports) for however many folders. The
number of queries depends on how deep references and imports chain, never on how many references there are.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Q, Subquery
from django.views.decorators.debug import sensitive_variables

from devpilot import crypto
from devpilot.errors import Invalid
from devpilot.models import Environment, Folder, Secret, SecretImport, SecretReference

# App Platform's bindable variables (DigitalOcean's "How to Use Bindable Variables"): app-wide names,
# `${<component>.NAME}` and `${<database>.NAME}`. Any `${_self.NAME}` is App Platform's whatever NAME is.
APP_WIDE = frozenset({"APP_DOMAIN", "APP_URL", "APP_ID"})
COMPONENT_NAMES = frozenset({"PRIVATE_DOMAIN", "PRIVATE_URL", "PUBLIC_ROUTE_PATH", "COMMIT_HASH", "URL"})
DATABASE_NAMES = frozenset({"DATABASE_URL", "HOSTNAME", "PORT", "USERNAME", "PASSWORD", "DATABASE", "CA_CERT",
                            "JDBC_DATABASE_URL", "REDIS_URL"})
BINDABLE_NAMES = COMPONENT_NAMES | DATABASE_NAMES

PLACEHOLDER_RE = re.compile(r"\$\{([^${}\s]+)\}")
_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_SEGMENT_RE = re.compile(r"^[A-Za-z0-9_-]+$")

FolderRef = tuple[str, str]  # (environment slug, path)


@dataclass(frozen=True)
class Reference:
    """A Devpilot reference found in a value: `text` is what is between ${ and }."""

    text: str
    environment: str
    path: str
    key: str

    @property
    def folder(self) -> FolderRef:
        return (self.environment, self.path)

    @property
    def label(self) -> str:
        return f"{self.environment}:{self.path}:{self.key}"


def label(folder: FolderRef, key: str) -> str:
    return f"{folder[0]}:{folder[1]}:{key}"


def classify(text: str, here: FolderRef, slugs: set[str]) -> Reference | None:
    """The Devpilot reference `${text}` stands for in folder `here`, or None when it is App Platform's (or
    not a reference at all: `${not a key}` stays as written)."""
    parts = text.split(".")
    if len(parts) == 1:
        if text in APP_WIDE or not _KEY_RE.match(text):
            return None
        return Reference(text, here[0], here[1], text)
    first, key = parts[0], parts[-1]
    if first == "_self" or not _KEY_RE.match(key):
        return None
    if len(parts) == 2 and first not in slugs and key in BINDABLE_NAMES:
        return None
    if not _SLUG_RE.match(first) or not all(_SEGMENT_RE.match(p) for p in parts[1:-1]):
        return None
    path = "/" + "/".join(parts[1:-1])
    return Reference(text, first, path, key)


def references_in(value: str, here: FolderRef, slugs: set[str]) -> list[Reference]:
    found = (classify(m.group(1), here, slugs) for m in PLACEHOLDER_RE.finditer(value or ""))
    return list(dict.fromkeys(r for r in found if r is not None))


def workspace_slugs(workspace_id) -> set[str]:
    return set(Environment.objects.filter(workspace_id=workspace_id).values_list("slug", flat=True))


# --- Resolution --------------------------------------------------------------------------------


@dataclass
class Entry:
    """One key of a resolved folder: its value, where it comes from, and what could not be resolved."""

    key: str
    value: str
    source: FolderRef  # the folder holding it: the folder itself, or the import that wins
    own: bool
    unresolved: list[str] = field(default_factory=list)  # reasons, each naming the chain


@dataclass
class Resolved:
    folder: FolderRef
    entries: dict[str, Entry]

    @property
    def values(self) -> dict[str, str]:
        return {key: entry.value for key, entry in self.entries.items()}

    @property
    def unresolved(self) -> dict[str, list[str]]:
        return {key: entry.unresolved for key, entry in self.entries.items() if entry.unresolved}

    def unresolved_message(self) -> str:
        return " ".join(_sentence(reasons[0]) for _, reasons in sorted(self.unresolved.items()))


class Resolver:
    """Reads the folders a resolution needs (in waves, see the module's doc) and expands values.

    `overrides` replaces a folder's own secrets (key -> value, None deletes) before they are saved: the
    save-time check resolves what the folder would hold."""

    def __init__(self, workspace_id, *, overrides: dict[FolderRef, dict[str, str | None]] | None = None,
                 keys_only: bool = False):
        self.workspace_id = workspace_id
        self.keys_only = keys_only  # read keys and imports, never a value (pages showing where keys come from)
        self.slugs = workspace_slugs(workspace_id)
        self.overrides = overrides or {}
        self.own: dict[FolderRef, dict[str, str] | None] = {}  # None: no such folder
        self.imports: dict[FolderRef, list[FolderRef]] = {}
        self._expanded: dict[tuple[FolderRef, str], tuple[str, list[str]]] = {}

    # Reading

    def load(self, folders) -> None:
        wanted = {f for f in folders if f not in self.own}
        while wanted:
            self._read_wave(wanted)
            wanted = {f for f in self._needed(wanted) if f not in self.own}

    def _read_wave(self, folders: set[FolderRef]) -> None:
        by_env = defaultdict(set)
        for slug, path in folders:
            by_env[slug].add(path)
        where = Q()
        for slug, paths in by_env.items():
            where |= Q(environment__slug=slug, path__in=paths)
        existing = set(Folder.objects.filter(workspace_id=self.workspace_id).filter(where)
                       .values_list("environment__slug", "path"))
        for f in folders:
            self.own[f] = {} if f in existing else None
            self.imports[f] = []
        secret_where = Q()
        for slug, paths in by_env.items():
            secret_where |= Q(environment__slug=slug, folder__path__in=paths)
        rows = Secret.objects.filter(workspace_id=self.workspace_id).filter(secret_where)
        if self.keys_only:
            for slug, path, key in rows.values_list("environment__slug", "folder__path", "key"):
                if self.own[(slug, path)] is not None:
                    self.own[(slug, path)][key] = ""  # type: ignore[index]
        else:
            self._decrypt(rows)
        import_where = Q()
        for slug, paths in by_env.items():
            import_where |= Q(folder__environment__slug=slug, folder__path__in=paths)
        for slug, path, source_slug, source_path in (
                SecretImport.objects.filter(workspace_id=self.workspace_id).filter(import_where)
                .order_by("position", "created_at")
                .values_list("folder__environment__slug", "folder__path", "source_folder__environment__slug",
                             "source_folder__path")):
            self.imports[(slug, path)].append((source_slug, source_path))
        for f, changes in self.overrides.items():
            if f in folders and self.own[f] is not None:
                for key, value in changes.items():
                    if value is None:
                        self.own[f].pop(key, None)
                    else:
                        self.own[f][key] = value

    @sensitive_variables("values")
    def _decrypt(self, rows) -> None:
        cipher: crypto.EncryptedValue = Secret.value  # type: ignore[assignment]  # the descriptor
        keyring = crypto.KeyRing()
        for pk, slug, path, key, ciphertext in rows.values_list("id", "environment__slug", "folder__path", "key",
                                                                "value_ciphertext"):
            values = self.own[(slug, path)]
            if values is not None:
                values[key] = cipher.decrypt_value(ciphertext, pk, keyring)

    def _needed(self, folders: set[FolderRef]) -> set[FolderRef]:
        needed: set[FolderRef] = set()
        for f in folders:
            needed.update(self.imports.get(f, []))
            for value in (self.own.get(f) or {}).values():
                needed.update(r.folder for r in references_in(value, f, self.slugs))
        return needed

    # Merging and expanding

    def lookup(self, folder: FolderRef, key: str, seen: frozenset = frozenset()) -> tuple[FolderRef, str] | None:
        """(the folder holding `key` as `folder` shows it, its raw value): own secrets first, then the imports
        from the last to the first, each as it shows its own imports."""
        if folder not in self.own:
            self.load([folder])
        own = self.own.get(folder)
        if own and key in own:
            return folder, own[key]
        for source in reversed(self.imports.get(folder, [])):
            if source in seen:
                continue
            found = self.lookup(source, key, seen | {folder})
            if found:
                return found
        return None

    def keys(self, folder: FolderRef, seen: frozenset = frozenset()) -> dict[str, FolderRef]:
        """Every key `folder` shows, with the folder it comes from (own over later imports over earlier)."""
        if folder not in self.own:
            self.load([folder])
        merged: dict[str, FolderRef] = {}
        for source in self.imports.get(folder, []):
            if source not in seen:
                merged.update(self.keys(source, seen | {folder}))
        merged.update({key: folder for key in self.own.get(folder) or {}})
        return merged

    @sensitive_variables("raw", "value")
    def expand(self, folder: FolderRef, key: str, chain: tuple[str, ...] = ()) -> tuple[str, list[str]]:
        """`key`'s value in `folder` with every Devpilot reference replaced, and the reasons any could not be
        (an unresolved reference is left as written)."""
        found = self.lookup(folder, key)
        if found is None:
            return "", [self.why_missing(folder, key, chain)]
        origin, raw = found
        memo = self._expanded.get((origin, key))
        if memo is not None:
            return memo
        here = label(origin, key)
        if here in chain:
            return raw, [" → ".join(_short(chain + (here,))) + " is a cycle"]
        chain = chain + (here,)
        reasons: list[str] = []

        def replace(match: re.Match) -> str:
            reference = classify(match.group(1), origin, self.slugs)
            if reference is None:
                return match.group(0)
            value, why = self.expand(reference.folder, reference.key, chain)
            if why:
                reasons.extend(why)
                return match.group(0)
            return value

        value = PLACEHOLDER_RE.sub(replace, raw)
        result = (value, list(dict.fromkeys(reasons)))
        if not reasons:  # a failure depends on the chain that led here: only successes are kept
            self._expanded[(origin, key)] = result
        return result

    def why_missing(self, folder: FolderRef, key: str, chain: tuple[str, ...]) -> str:
        prefix = " → ".join(_short(chain + (label(folder, key),))) + ": "
        if folder[0] not in self.slugs:
            return prefix + f"there is no environment {folder[0]} in this workspace."
        if self.own.get(folder) is None:
            return prefix + f"there is no folder {folder[1]} in {folder[0]}."
        return prefix + f"there is no secret {key} in {folder[0]}:{folder[1]}."

    @sensitive_variables("raw", "value", "entries")
    def resolve(self, folder: FolderRef, *, expand: bool = True, include_imports: bool = True) -> Resolved:
        self.load([folder])
        if include_imports:
            sources = self.keys(folder)
        else:
            sources = {key: folder for key in self.own.get(folder) or {}}
        entries = {}
        for key in sorted(sources):
            origin = sources[key]
            raw = self.own[origin][key]  # type: ignore[index]
            value, reasons = self.expand(folder, key) if expand else (raw, [])
            entries[key] = Entry(key, value, origin, origin == folder, reasons)
        return Resolved(folder, entries)


def _short(chain) -> list[str]:
    """Links in the chain's first folder by their key alone: 'DATABASE_URL → dev:/db:PASSWORD → DATABASE_URL'."""
    if not chain:
        return []
    start = chain[0].rsplit(":", 1)[0] + ":"
    return [link[len(start):] if link.startswith(start) else link for link in chain]


def resolve_folder(environment, path: str, *, expand: bool = True, include_imports: bool = True) -> Resolved:
    """The one resolution of a folder, used by syncs, the API, the .env download and the pages: imports merged
    (later imports over earlier ones), then the folder's own secrets over them, then references expanded.

    The caller has checked that its reader may read values (`secrets.read_values`): roles are workspace-wide,
    so whoever may read this folder may read every folder of the workspace a reference reaches."""
    return Resolver(environment.workspace_id).resolve((environment.slug, path), expand=expand,
                                                      include_imports=include_imports)


# --- Save-time checks and the reference index ------------------------------------------------------


class ReferenceRefused(Invalid):
    """A value refers to something missing, or to itself through a chain."""


@sensitive_variables("values", "changes")
def check(environment, path: str, changes: dict[str, str | None]) -> None:
    """Refuse writing `changes` (key -> new value, None for a deletion) to a folder when a written value
    refers to something missing or makes a cycle; the message names the chain."""
    written = [key for key, value in changes.items() if value is not None and PLACEHOLDER_RE.search(value)]
    if not written:
        return
    here = (environment.slug, path)
    resolver = Resolver(environment.workspace_id, overrides={here: changes})
    resolver.load([here])
    problems = []
    for key in written:
        _, reasons = resolver.expand(here, key)
        problems.extend(reasons)
    if problems:
        raise ReferenceRefused(" ".join(_sentence(p) for p in dict.fromkeys(problems)))


def _sentence(problem: str) -> str:
    return problem if problem.endswith(".") else problem + "."


@sensitive_variables("secrets")
def reindex(environment, path: str, secrets: list[Secret]) -> None:
    """Rewrite the reference index of these saved secrets of one folder from their values."""
    if not secrets:
        return
    SecretReference.objects.filter(secret__in=[s.pk for s in secrets]).delete()
    holding = [secret for secret in secrets if "${" in (secret.value or "")]
    if not holding:
        return
    slugs = workspace_slugs(environment.workspace_id)
    here = (environment.slug, path)
    rows = []
    for secret in holding:
        rows += [SecretReference(secret_id=secret.pk, workspace_id=secret.workspace_id, environment_slug=r.environment,
                                 path=r.path, key=r.key) for r in references_in(secret.value, here, slugs)]
    SecretReference.objects.bulk_create(rows)


def referrers(environment, path: str, keys, *, excluding=()) -> dict[str, list[str]]:
    """For each of `keys` in a folder, the secrets (as 'env:/path:KEY') whose values refer to it."""
    rows = (SecretReference.objects.filter(workspace_id=environment.workspace_id, environment_slug=environment.slug,
                                           path=path, key__in=list(keys)).exclude(secret_id__in=list(excluding))
            .values_list("key", "secret__environment__slug", "secret__folder__path", "secret__key"))
    found: dict[str, list[str]] = defaultdict(list)
    for key, slug, folder_path, referrer in rows:
        found[key].append(f"{slug}:{folder_path}:{referrer}")
    return {key: sorted(names) for key, names in found.items()}


def refuse_if_referenced(environment, path: str, keys, *, excluding=(), doing: str = "delete") -> None:
    """Deleting (or renaming) a secret others refer to would break them silently: refuse, naming them."""
    found = referrers(environment, path, keys, excluding=excluding)
    if found:
        parts = [f"{key} is used by {', '.join(names)}" for key, names in sorted(found.items())]
        raise ReferenceRefused(f"Cannot {doing}: {'; '.join(parts)}. Change those values first.")


def refuse_breaking(environment, paths: list[str] | None, *, doing: str, deleting: bool) -> None:
    """Refuse renaming or deleting folders (`paths`; None: the whole environment) when secrets elsewhere refer
    to their secrets (a reference names the environment's slug and the path), or, when deleting, other folders
    import them. A reference from a secret to its own folder is spared on a rename (`${KEY}` keeps working)."""
    refs = SecretReference.objects.filter(workspace_id=environment.workspace_id, environment_slug=environment.slug)
    if paths is not None:
        refs = refs.filter(path__in=paths)
    broken = []
    columns = ("path", "key", "secret__environment_id", "secret__folder__path", "secret__environment__slug",
               "secret__key")
    for path, key, env_id, folder_path, slug, referrer in refs.values_list(*columns):
        inside = env_id == environment.pk and (paths is None or folder_path in paths)
        if (env_id == environment.pk and folder_path == path) or (deleting and inside):
            continue
        broken.append(f"{slug}:{folder_path}:{referrer} (refers to {environment.slug}:{path}:{key})")
    if deleting:
        imports = SecretImport.objects.filter(source_folder__environment=environment)
        if paths is not None:
            imports = imports.filter(source_folder__path__in=paths)
        for env_id, folder_path, slug, source_path in imports.values_list(
                "folder__environment_id", "folder__path", "folder__environment__slug", "source_folder__path"):
            if env_id == environment.pk and (paths is None or folder_path in paths):
                continue
            broken.append(f"{slug}:{folder_path} (imports {environment.slug}:{source_path})")
    if broken:
        names = sorted(set(broken))
        more = f" and {len(names) - 5} more" if len(names) > 5 else ""
        raise ReferenceRefused(f"Cannot {doing}: {', '.join(names[:5])}{more} depend on it. Change those first.")


# --- What the secrets page shows (from the index: key names, never values) -----------------------------


@dataclass
class Link:
    """A reference as the secrets page shows it: its target, and whether that target exists."""

    environment: str
    path: str
    key: str
    resolved: bool
    reason: str = ""

    @property
    def label(self) -> str:
        return f"{self.environment}:{self.path}:{self.key}"


def links_of(workspace_id, secret_ids) -> dict[object, list[Link]]:
    """Each secret's references (from the plaintext index) with whether each target key exists, as its
    folder shows it (own secrets and imports). Two queries for the index and the slugs, then one wave of
    three for the target folders (more only for imports of imports), whatever the number of rows."""
    rows = list(SecretReference.objects.filter(secret_id__in=list(secret_ids))
                .values_list("secret_id", "environment_slug", "path", "key").order_by("id"))
    if not rows:
        return {}
    resolver = Resolver(workspace_id, keys_only=True)
    resolver.load({(slug, path) for _, slug, path, _ in rows if slug in resolver.slugs})
    links: dict[object, list[Link]] = defaultdict(list)
    for secret_id, slug, path, key in rows:
        found = slug in resolver.slugs and resolver.lookup((slug, path), key) is not None
        reason = "" if found else resolver.why_missing((slug, path), key, ()).split(": ", 1)[-1]
        links[secret_id].append(Link(slug, path, key, found, reason))
    return links


@dataclass
class ImportedKey:
    key: str
    winner: str  # "" when this import's value is the one used; else what overrides it


@dataclass
class ImportView:
    secret_import: SecretImport
    label: str
    missing: bool
    keys: list[ImportedKey]


def imports_view(folder) -> list[ImportView]:
    """A folder's imports in order, each with the keys it brings and, per key, whether it is used or what
    overrides it (the folder's own secret, or a later import). Key names only."""
    items = list(folder.imports.select_related("source_folder__environment"))
    if not items:
        return []
    here = (folder.environment.slug, folder.path)
    resolver = Resolver(folder.workspace_id, keys_only=True)
    resolver.load([here])
    own = resolver.own.get(here) or {}
    sources = [(i.source_folder.environment.slug, i.source_folder.path) for i in items]
    brought = [resolver.keys(source, frozenset({here})) for source in sources]
    views = []
    for position, (item, source) in enumerate(zip(items, sources, strict=True)):
        keys = []
        for key in sorted(brought[position]):
            later = [sources[j] for j in range(position + 1, len(items)) if key in brought[j]]
            if key in own:
                winner = "this folder's own secret"
            elif later:
                winner = f"the later import {later[-1][0]}:{later[-1][1]}"
            else:
                winner = ""
            keys.append(ImportedKey(key, winner))
        views.append(ImportView(item, f"{source[0]}:{source[1]}", resolver.own.get(source) is None, keys))
    return views


def source_notes(environment, path: str) -> list[tuple[str, str]]:
    """For a sync's review: each key of the folder that comes from an import or whose value holds references,
    with a note saying so ("imported from dev:/shared", "refers to dev:/db:PASSWORD"). Key names only."""
    here = (environment.slug, path)
    resolver = Resolver(environment.workspace_id, keys_only=True)
    holders = resolver.keys(here)
    if not holders:
        return []
    where = Q()
    for slug, folder_path in set(holders.values()):
        where |= Q(secret__environment__slug=slug, secret__folder__path=folder_path)
    refers: dict[tuple[FolderRef, str], list[str]] = defaultdict(list)
    for slug, folder_path, key, target_slug, target_path, target_key in (
            SecretReference.objects.filter(workspace_id=environment.workspace_id).filter(where).order_by("id")
            .values_list("secret__environment__slug", "secret__folder__path", "secret__key", "environment_slug",
                         "path", "key")):
        refers[((slug, folder_path), key)].append(label((target_slug, target_path), target_key))
    notes = []
    for key in sorted(holders):
        parts = []
        if holders[key] != here:
            parts.append(f"imported from {holders[key][0]}:{holders[key][1]}")
        if refers.get((holders[key], key)):
            parts.append("refers to " + ", ".join(refers[(holders[key], key)]))
        if parts:
            notes.append((key, "; ".join(parts)))
    return notes


# --- Who depends on a folder (auto-sync) -----------------------------------------------------------


def dependent_folders(workspace_id, environment_id, path: str) -> set[tuple[object, str]]:
    """Every folder (environment id, path) whose resolved secrets change when this folder's do: the folders
    importing it or referring to it, and theirs in turn; the folder itself included. One query a level
    (references and imports in one UNION; the environment's slug read inside it)."""
    seen = {(environment_id, path)}
    frontier = set(seen)
    while frontier:
        by_slug = Q()
        by_folder = Q()
        for env_id, folder_path in frontier:
            slug = Subquery(Environment.objects.filter(pk=env_id).values("slug")[:1])
            by_slug |= Q(environment_slug=slug, path=folder_path)
            by_folder |= Q(source_folder__environment_id=env_id, source_folder__path=folder_path)
        referring = (SecretReference.objects.filter(workspace_id=workspace_id).filter(by_slug).order_by()
                     .values_list("secret__environment_id", "secret__folder__path"))
        importing = (SecretImport.objects.filter(workspace_id=workspace_id).filter(by_folder).order_by()
                     .values_list("folder__environment_id", "folder__path"))
        frontier = {(env_id, folder_path) for env_id, folder_path in referring.union(importing)} - seen
        seen |= frontier
    return seen

"""The secrets service: every write to environments, folders and secrets goes through here.

Each write is one transaction and, once committed, sends `secrets_changed` exactly once
per (workspace, environment, path) it touched, however many secrets it changed. Secret
syncs subscribe to that signal.
"""

import re
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from devpilot import audit, references, snapshots
from devpilot.errors import Invalid, NotFound
from devpilot.models import Environment, Folder, Secret, SecretVersion, SnapshotKind
from devpilot.signals import secrets_changed

KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SEGMENT_RE = re.compile(r"^[A-Za-z0-9_-]+$")
ENV_SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
MAX_VALUE_BYTES = 64 * 1024
MAX_KEY_LENGTH = 255


class SecretsError(Invalid):
    """A write the rules refuse. The message is shown to the user as it is."""


class FolderNotFound(SecretsError, NotFound):
    status = 404
    code = "not_found"


class StaleVersion(SecretsError):
    """The secret changed since the user loaded it."""

    status = 409
    code = "stale_version"

    def __init__(self, secret):
        super().__init__(
            f"{secret.key} was changed by {secret.updated_by or 'someone'} since you opened it "
            f"(now version {secret.version}). Reload it and apply your change again."
        )
        self.current = secret


class InvalidReference(SecretsError):
    """A value refers to a missing secret, folder or environment, or makes a cycle: said beside the value."""

    field = "value"


def _refuse_breaking(environment, paths, *, doing, deleting):
    """Renaming or deleting what other secrets refer to (or import) would break them silently: refused."""
    try:
        references.refuse_breaking(environment, paths, doing=doing, deleting=deleting)
    except references.ReferenceRefused as e:
        raise SecretsError(e.message) from None


def _check_references(environment, path, changes, *, renamed=None, excluding=()):
    """Refuse values whose references are missing or cycle (references.check), and renaming a referenced key."""
    try:
        if renamed:
            references.refuse_if_referenced(environment, path, [renamed], excluding=excluding, doing=f"rename {renamed}")
    except references.ReferenceRefused as e:
        raise SecretsError(e.message) from None
    try:
        references.check(environment, path, changes)
    except references.ReferenceRefused as e:
        raise InvalidReference(e.message) from None


# --- Validation ------------------------------------------------------------------------------


def validate_key(key: str) -> str:
    key = (key or "").strip()
    if not key:
        raise SecretsError("A key is required.")
    if len(key) > MAX_KEY_LENGTH:
        raise SecretsError(f"Keys are at most {MAX_KEY_LENGTH} characters.")
    if not KEY_RE.match(key):
        raise SecretsError(
            f"{key!r} is not a valid key: use letters, digits and _, not starting with a digit."
        )
    return key


def validate_value(value: str) -> str:
    value = value if value is not None else ""
    if "\x00" in value:
        raise SecretsError("Values may not contain NUL characters.")
    if len(value.encode()) > MAX_VALUE_BYTES:
        raise SecretsError("Values are at most 64 KiB.")
    return value


def normalize_path(path: str) -> str:
    """'/app-secrets/api/' -> '/app-secrets/api'; raises SecretsError on anything else."""
    path = (path or "/").strip()
    if not path.startswith("/"):
        path = "/" + path
    if path != "/":
        path = path.rstrip("/")
    if path == "/":
        return path
    for segment in path[1:].split("/"):
        if not SEGMENT_RE.match(segment):
            raise SecretsError(
                f"{path!r} is not a valid path: folder names use letters, digits, - and _, separated by /."
            )
    return path


def join_path(parent: str, name: str) -> str:
    return normalize_path(("" if parent == "/" else parent) + "/" + name.strip())


def parent_path(path: str) -> str:
    return "/" if path.count("/") <= 1 else path.rsplit("/", 1)[0]


# --- Events ----------------------------------------------------------------------------------


def _emit(workspace_id, environment_id, paths):
    """Send one event per path once the current transaction commits (none on rollback)."""

    def send():
        for path in sorted(set(paths)):
            secrets_changed.send(sender=Secret, workspace_id=workspace_id, environment_id=environment_id, path=path)

    transaction.on_commit(send)


# --- Reading ---------------------------------------------------------------------------------

VALUES_READ = "secrets.values_read"


def record_values_read(workspace, where: str, keys, how: str, *, request=None, target=None):
    """Every read of secret values by a person or a client is one audit event: who (the request's user,
    token or identity), which keys, and how ("reveal", "history", "download", "api")."""
    keys = sorted(keys)
    audit.record(workspace, VALUES_READ, request=request, target=target, target_label=where, how=how,
                 count=len(keys), keys=keys[:500])


def get_folder(environment, path) -> Folder:
    path = normalize_path(path)
    folder = environment.folders.filter(path=path).first()
    if folder is None:
        raise FolderNotFound(f"There is no folder {path} in {environment.name}.")
    return folder


def read_folder(environment, path) -> dict[str, str]:
    """The plaintext secrets of one folder, by key. What secret syncs push."""
    secrets = Secret.objects.filter(environment=environment, folder__path=normalize_path(path))
    return {s.key: s.value for s in secrets.only("id", "key", "value_ciphertext")}


def subfolders(environment, path):
    """Direct children of `path`."""
    prefix = "/" if path == "/" else path + "/"
    return [
        f for f in environment.folders.filter(path__startswith=prefix).exclude(path="/")
        if "/" not in f.path[len(prefix):]
    ]


# --- Secrets ---------------------------------------------------------------------------------


def _version_of(secret):
    """The secret's current state as an (unsaved) history entry."""
    version = SecretVersion(
        secret=secret, folder_id=secret.folder_id, key=secret.key, version=secret.version, comment=secret.comment,
        created_by=secret.updated_by, created_at=timezone.now(),
    )
    version.value = secret.value
    return version


def _record_version(secret):
    """Keep the secret's current state in its history (called after every change)."""
    version = _version_of(secret)
    version.save()
    return version


# "args" and "kwds" are transaction.atomic's own frame (contextlib), which holds the same arguments.
@sensitive_variables("value", "args", "kwds")
@transaction.atomic
def create_secret(environment, path, key, value, comment="", *, user=None, request=None) -> Secret:
    folder = get_folder(environment, path)
    key = validate_key(key)
    value = validate_value(value)
    if folder.secrets.filter(key=key).exists():
        raise SecretsError(f"{key} already exists in {environment.slug}:{folder.path}.")
    _check_references(environment, folder.path, {key: value})
    secret = Secret(
        workspace=environment.workspace, environment=environment, folder=folder, key=key,
        comment=comment or "", created_by=user, updated_by=user,
    )
    secret.value = value
    try:
        with transaction.atomic():
            secret.save()
    except IntegrityError:
        raise SecretsError(f"{key} already exists in {environment.slug}:{folder.path}.") from None
    references.reindex(environment, folder.path, [secret])
    snapshots.record(folder, SnapshotKind.CREATE, {key: _record_version(secret)}, user=user, request=request)
    audit.record(environment.workspace, "secret.created", request=request, actor=user, target=secret,
                 target_label=f"{environment.slug}:{folder.path}:{key}")
    _emit(environment.workspace_id, environment.pk, [folder.path])
    return secret


@sensitive_variables("value", "changes", "current", "args", "kwds")
@transaction.atomic
def update_secret(secret, *, value=None, comment=None, key=None, expected_version=None, user=None,
                  request=None, kind=SnapshotKind.EDIT) -> Secret:
    """Change a secret. `expected_version` is the version the user saw: a later one is refused."""
    current = Secret.objects.select_for_update(of=("self",)).select_related("folder", "environment", "updated_by").get(pk=secret.pk)
    previous_key = current.key
    seen = current.version if expected_version is None else int(expected_version)
    if seen != current.version:
        raise StaleVersion(current)
    changes = {}
    if key is not None:
        key = validate_key(key)
        if key != current.key:
            if current.folder.secrets.filter(key=key).exists():
                raise SecretsError(f"{key} already exists in this folder.")
            changes["key"] = key
    if value is not None:
        value = validate_value(value)
        if value != current.value:
            changes["value"] = value
    if comment is not None and comment != current.comment:
        changes["comment"] = comment
    if not changes:
        return current
    if "key" in changes or "value" in changes:
        renamed = current.key if "key" in changes else None
        _check_references(current.environment, current.folder.path,
                          {**({current.key: None} if renamed else {}), changes.get("key", current.key): changes.get("value", current.value)},
                          renamed=renamed, excluding=[current.pk])
    for name, new in changes.items():
        setattr(current, name, new)
    now = timezone.now()
    # Conditional on the version seen: race-free even where select_for_update is a no-op (SQLite).
    updated = Secret.objects.filter(pk=current.pk, version=seen).update(
        key=current.key, value_ciphertext=current.value_ciphertext, comment=current.comment,
        version=seen + 1, updated_by=user, updated_at=now,
    )
    if not updated:
        raise StaleVersion(Secret.objects.select_related("updated_by").get(pk=current.pk))
    current.version, current.updated_by, current.updated_at = seen + 1, user, now
    if "value" in changes:
        references.reindex(current.environment, current.folder.path, [current])
    renamed_from = {previous_key: None} if previous_key != current.key else {}
    snapshots.record(current.folder, kind, {**renamed_from, current.key: _record_version(current)}, user=user,
                     request=request)
    audit.record(current.workspace, "secret.updated", request=request, actor=user, target=current,
                 target_label=f"{current.environment.slug}:{current.folder.path}:{current.key}",
                 fields=sorted(changes))
    _emit(current.workspace_id, current.environment_id, [current.folder.path])
    return current


@transaction.atomic
def delete_secret(secret, *, user=None, request=None):
    path = secret.folder.path
    label = f"{secret.environment.slug}:{path}:{secret.key}"
    try:
        references.refuse_if_referenced(secret.environment, path, [secret.key], excluding=[secret.pk])
    except references.ReferenceRefused as e:
        raise SecretsError(e.message) from None
    secret.delete()
    snapshots.record(secret.folder, SnapshotKind.DELETE, {secret.key: None}, user=user, request=request)
    audit.record(secret.workspace, "secret.deleted", request=request, actor=user, target_label=label)
    _emit(secret.workspace_id, secret.environment_id, [path])


@transaction.atomic
def delete_secrets(environment, path, keys, *, user=None, request=None):
    """Delete several secrets of one folder: one transaction, one change event."""
    folder = get_folder(environment, path)
    try:
        references.refuse_if_referenced(environment, folder.path, keys,
                                        excluding=folder.secrets.filter(key__in=keys).values_list("pk", flat=True))
    except references.ReferenceRefused as e:
        raise SecretsError(e.message) from None
    gone = list(folder.secrets.filter(key__in=keys).values_list("key", flat=True))
    deleted, _ = folder.secrets.filter(key__in=keys).delete()
    if deleted:
        snapshots.record(folder, SnapshotKind.DELETE, dict.fromkeys(gone), user=user, request=request)
        audit.record(environment.workspace, "secrets.deleted", request=request, actor=user,
                     target_label=f"{environment.slug}:{folder.path}", keys=sorted(keys))
        _emit(environment.workspace_id, environment.pk, [folder.path])


@transaction.atomic
def restore_version(secret, version: SecretVersion, *, user=None, request=None) -> Secret:
    if version.secret_id != secret.pk:
        raise SecretsError("That version belongs to another secret.")
    restored = update_secret(secret, value=version.value, comment=version.comment, user=user, kind=SnapshotKind.RESTORE)
    audit.record(secret.workspace, "secret.restored", request=request, actor=user, target=restored,
                 restored_version=version.version)
    return restored


@dataclass
class ImportResult:
    created: list = field(default_factory=list)
    updated: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    unchanged: list = field(default_factory=list)


@sensitive_variables("entries", "value", "secret", "existing", "new_secrets", "updated", "args", "kwds")
@transaction.atomic
def bulk_import(environment, path, entries: dict[str, str], *, overwrite: bool, comments: dict[str, str] | None = None,
                user=None, request=None) -> ImportResult:
    """Write many secrets at once: one transaction, one change event. `comments` sets comments by key."""
    comments = comments or {}
    folder = get_folder(environment, path)
    for key, value in entries.items():
        validate_key(key)
        validate_value(value)
    existing = {s.key: s for s in folder.secrets.select_for_update()}
    result = ImportResult()
    new_secrets = []
    for key, value in entries.items():
        secret = existing.get(key)
        if secret is None:
            secret = Secret(workspace=environment.workspace, environment=environment, folder=folder, key=key,
                            created_by=user, updated_by=user)
            secret.value = value
            secret.comment = comments.get(key, "")
            new_secrets.append(secret)
            result.created.append(key)
        elif secret.value == value and comments.get(key, secret.comment) == secret.comment:
            result.unchanged.append(key)
        elif not overwrite:
            result.skipped.append(key)
        else:
            secret.value = value
            secret.comment = comments.get(key, secret.comment)
            secret.version += 1
            secret.updated_by = user
            secret.updated_at = timezone.now()
            result.updated.append(key)
    _check_references(environment, folder.path, {k: entries[k] for k in [*result.created, *result.updated]})
    Secret.objects.bulk_create(new_secrets)
    updated = [existing[k] for k in result.updated]
    references.reindex(environment, folder.path, [*new_secrets, *updated])
    Secret.objects.bulk_update(updated, ["value_ciphertext", "comment", "version", "updated_by", "updated_at"])
    versions = SecretVersion.objects.bulk_create([_version_of(secret) for secret in [*new_secrets, *updated]])
    snapshots.record(folder, SnapshotKind.IMPORT, {v.key: v for v in versions}, user=user, request=request)
    if result.created or result.updated:
        audit.record(environment.workspace, "secrets.imported", request=request, actor=user,
                     target_label=f"{environment.slug}:{folder.path}",
                     created=len(result.created), updated=len(result.updated), skipped=len(result.skipped))
        _emit(environment.workspace_id, environment.pk, [folder.path])
    return result


# --- Folders ---------------------------------------------------------------------------------


def _protected_message(error: ProtectedError, what: str) -> str:
    names = sorted({str(obj) for obj in error.protected_objects})
    return f"{what} is used by the secret sync{'s' if len(names) > 1 else ''} {', '.join(names)}; delete or change them first."


@transaction.atomic
def create_folder(environment, parent, name, *, user=None, request=None) -> Folder:
    path = join_path(parent, name)
    get_folder(environment, parent)
    if environment.folders.filter(path=path).exists():
        raise SecretsError(f"The folder {path} already exists.")
    folder = Folder.objects.create(workspace=environment.workspace, environment=environment, path=path)
    audit.record(environment.workspace, "folder.created", request=request, actor=user, target=folder)
    return folder


@transaction.atomic
def rename_folder(folder, new_name, *, user=None, request=None) -> Folder:
    if folder.path == "/":
        raise SecretsError("The root folder cannot be renamed.")
    old = folder.path
    new = join_path(parent_path(old), new_name)
    if new == old:
        return folder
    env = folder.environment
    if env.folders.filter(path=new).exists():
        raise SecretsError(f"The folder {new} already exists.")
    moved = list(env.folders.filter(path__startswith=old + "/")) + [folder]
    _refuse_breaking(env, [f.path for f in moved], doing=f"rename {env.slug}:{old}", deleting=False)
    for f in moved:
        f.path = new + f.path[len(old):]
    Folder.objects.bulk_update(moved, ["path"])
    audit.record(env.workspace, "folder.renamed", request=request, actor=user, target=folder, old_path=old)
    with_secrets = set(Secret.objects.filter(folder__in=moved).values_list("folder_id", flat=True))
    touched = [f for f in moved if f.pk in with_secrets]
    _emit(env.workspace_id, env.pk, [f.path for f in touched] + [old + f.path[len(new):] for f in touched])
    return folder


def folder_contents(folder):
    """(number of secrets, number of sub-folders) under a folder, at any depth."""
    env = folder.environment
    below = env.folders.filter(path__startswith=folder.path.rstrip("/") + "/")
    return (
        Secret.objects.filter(environment=env).filter(folder__in=[folder, *below]).count(),
        below.count(),
    )


@transaction.atomic
def delete_folder(folder, *, confirmed=False, user=None, request=None):
    if folder.path == "/":
        raise SecretsError("The root folder cannot be deleted.")
    env = folder.environment
    secret_count, folder_count = folder_contents(folder)
    if (secret_count or folder_count) and not confirmed:
        raise SecretsError(
            f"{folder.path} holds {secret_count} secret(s) and {folder_count} folder(s); confirm to delete them all."
        )
    doomed = [folder, *env.folders.filter(path__startswith=folder.path + "/")]
    _refuse_breaking(env, [f.path for f in doomed], doing=f"delete {env.slug}:{folder.path}", deleting=True)
    paths = list(Secret.objects.filter(folder__in=doomed).values_list("folder__path", flat=True).distinct())
    try:
        Secret.objects.filter(folder__in=doomed).delete()
        Folder.objects.filter(pk__in=[f.pk for f in doomed]).delete()
    except ProtectedError as e:
        raise SecretsError(_protected_message(e, f"The folder {folder.path}")) from None
    audit.record(env.workspace, "folder.deleted", request=request, actor=user, target_label=f"{env.slug}:{folder.path}",
                 secrets=secret_count)
    _emit(env.workspace_id, env.pk, paths)


# --- Environments ----------------------------------------------------------------------------


def _validate_env(workspace, name, slug, exclude=None):
    name, slug = (name or "").strip(), (slug or "").strip().lower()
    if not name:
        raise SecretsError("An environment needs a name.")
    if not ENV_SLUG_RE.match(slug) or len(slug) > 64:
        raise SecretsError("Environment slugs use lowercase letters, digits and -.")
    others = workspace.environments.filter(slug=slug)
    if exclude is not None:
        others = others.exclude(pk=exclude.pk)
    if others.exists():
        raise SecretsError(f"An environment with slug {slug} already exists.")
    return name, slug


@transaction.atomic
def create_environment(workspace, name, slug, *, user=None, request=None) -> Environment:
    name, slug = _validate_env(workspace, name, slug)
    position = (workspace.environments.order_by("-position").values_list("position", flat=True).first() or 0) + 1
    env = Environment.objects.create(workspace=workspace, name=name, slug=slug, position=position)
    Folder.objects.create(workspace=workspace, environment=env, path="/")
    audit.record(workspace, "environment.created", request=request, actor=user, target=env)
    return env


@transaction.atomic
def rename_environment(env, name, slug, *, user=None, request=None) -> Environment:
    name, slug = _validate_env(env.workspace, name, slug, exclude=env)
    old = env.slug
    if slug != old:
        _refuse_breaking(env, None, doing=f"change the slug of {env.name}", deleting=False)
    env.name, env.slug = name, slug
    env.save(update_fields=["name", "slug"])
    audit.record(env.workspace, "environment.renamed", request=request, actor=user, target=env, old_slug=old)
    return env


@transaction.atomic
def delete_environment(env, *, user=None, request=None):
    _refuse_breaking(env, None, doing=f"delete the environment {env.name}", deleting=True)
    paths = list(env.folders.filter(secrets__isnull=False).values_list("path", flat=True).distinct())
    try:
        Secret.objects.filter(environment=env).delete()
        Folder.objects.filter(environment=env).delete()
        env.delete()
    except ProtectedError as e:
        raise SecretsError(_protected_message(e, f"The environment {env.name}")) from None
    audit.record(env.workspace, "environment.deleted", request=request, actor=user, target_label=env.slug)
    _emit(env.workspace_id, env.pk, paths)

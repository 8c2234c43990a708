"""Compare a folder path across environments, and promote keys from one environment to another.

Values are compared by hash here, on the server; a comparison names, per key and environment, only
whether the key is present and which of the row's distinct values it holds ("value 1", "value 2"), never a
value or a hash. Whether values are equal tells a little about them, so only roles that may read values
see it (`secrets.read_values`); the others see presence only.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from devpilot import audit, references, secrets, snapshots
from devpilot.crypto import KeyRing
from devpilot.errors import Conflict, Invalid, NotFound
from devpilot.models import Environment, Folder, Secret, SecretVersion, SnapshotKind, Workspace

_VALUE = Secret.__dict__["value"]  # the EncryptedValue: decrypts rows read without model instances


@dataclass
class Cell:
    present: bool
    group: int | None = None  # which distinct value of the row (1, 2…); None when absent or not shown


@dataclass
class Row:
    key: str
    cells: list[Cell]

    @property
    def differs(self) -> bool:
        """Missing somewhere, or (when values are compared) not the same value everywhere."""
        present = [c for c in self.cells if c.present]
        return len(present) != len(self.cells) or len({c.group for c in present}) > 1


@dataclass
class Comparison:
    path: str
    environments: list[Environment]
    folders: dict  # environment pk -> Folder or None
    rows: list[Row]
    with_values: bool

    @property
    def differences(self) -> list[Row]:
        return [row for row in self.rows if row.differs]


@sensitive_variables("found", "in_envs", "rows")
def compare(workspace: Workspace, path: str, *, with_values: bool) -> Comparison:
    """Every key of `path` in every environment (in the workspace's order). One query for the folders and
    one for the secrets, however many environments."""
    path = secrets.normalize_path(path)
    environments = list(workspace.environments.all())
    folders = {f.environment_id: f for f in Folder.objects.filter(environment__workspace=workspace, path=path)}
    found: dict[str, dict] = {}
    rows = Secret.objects.filter(folder__in=folders.values()).values_list("environment_id", "key", "pk",
                                                                         "value_ciphertext")
    for environment_id, key, pk, ciphertext in rows:
        found.setdefault(key, {})[environment_id] = (pk, ciphertext)
    keyring = KeyRing()
    result = []
    for key in sorted(found):
        in_envs = found[key]
        digests = {env_id: _digest(keyring, *row) for env_id, row in in_envs.items()} if with_values else {}
        groups: dict[str, int] = {}
        cells = []
        for environment in environments:
            if environment.pk not in in_envs:
                cells.append(Cell(False))
            elif with_values:
                cells.append(Cell(True, groups.setdefault(digests[environment.pk], len(groups) + 1)))
            else:
                cells.append(Cell(True))
        result.append(Row(key, cells))
    return Comparison(path, environments, {e.pk: folders.get(e.pk) for e in environments}, result, with_values)


@sensitive_variables("ciphertext", "value")
def _digest(keyring: KeyRing, pk, ciphertext: str) -> str:
    """A secret's value hashed, for equality only. Never leaves this module."""
    value = _VALUE.decrypt_value(ciphertext, pk, keyring) or ""
    return hashlib.sha256(value.encode()).hexdigest()


# --- Promotion ---------------------------------------------------------------------------------


@dataclass
class PromotionPlan:
    """What promoting `keys` from source to target does (keys only). `latest` is the target folder's last
    snapshot number, so a change made in the target after the preview is refused."""

    path: str
    source: Environment
    target: Environment
    create: list[str] = field(default_factory=list)
    overwrite: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    latest: int = 0
    folder_missing: bool = False

    @property
    def keys(self) -> list[str]:
        return sorted([*self.create, *self.overwrite])


def _environments(workspace: Workspace, source: str, target: str) -> tuple[Environment, Environment]:
    by_slug = {e.slug: e for e in workspace.environments.filter(slug__in=[source, target])}
    for name, slug in (("sourceEnvironment", source), ("targetEnvironment", target)):
        if slug not in by_slug:
            raise NotFound.for_field(name, f"There is no environment {slug}.")
    if source == target:
        raise Invalid.for_field("targetEnvironment", "Choose a target environment other than the source.")
    return by_slug[source], by_slug[target]


@sensitive_variables("source_values", "target_secrets")
def _plan(workspace, path, source_slug, target_slug, keys) -> tuple[PromotionPlan, dict, Folder | None]:
    path = secrets.normalize_path(path)
    keys = sorted(set(keys))
    if not keys:
        raise Invalid.for_field("keys", "Select at least one key to promote.")
    source, target = _environments(workspace, source_slug, target_slug)
    source_folder = source.folders.filter(path=path).first()
    if source_folder is None:
        raise NotFound(f"There is no folder {path} in {source.name}.")
    source_secrets = {s.key: s for s in source_folder.secrets.filter(key__in=keys)}
    missing = [k for k in keys if k not in source_secrets]
    if missing:
        raise Invalid.for_field("keys", f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not in "
                                        f"{source.slug}:{path}.")
    target_folder = target.folders.filter(path=path).first()
    target_secrets = {s.key: s for s in target_folder.secrets.filter(key__in=keys)} if target_folder else {}
    plan = PromotionPlan(path, source, target, folder_missing=target_folder is None,
                         latest=snapshots.latest_number(target_folder) if target_folder else 0)
    for key in keys:
        existing = target_secrets.get(key)
        if existing is None:
            plan.create.append(key)
        elif existing.value == source_secrets[key].value:
            plan.unchanged.append(key)
        else:
            plan.overwrite.append(key)
    return plan, source_secrets, target_folder


def preview(workspace: Workspace, path: str, source: str, target: str, keys: list[str]) -> PromotionPlan:
    return _plan(workspace, path, source, target, keys)[0]


@sensitive_variables("source_secrets", "args", "kwds")
@transaction.atomic
def promote(workspace: Workspace, path: str, source: str, target: str, keys: list[str], *,
            expected_latest: int | None = None, user=None, request=None) -> PromotionPlan:
    """Copy the values of `keys` from source to target as one change: a new version per secret written, one
    snapshot of the target folder, one audit event and one change event (so each auto-sync runs once).
    The target folder (and its parents) is created if missing. Values are copied as written (references
    included); a created secret takes the source's comment, an overwritten one keeps its own."""
    plan, source_secrets, target_folder = _plan(workspace, path, source, target, keys)
    if expected_latest is not None and plan.latest != expected_latest:
        raise Conflict(f"{plan.target.slug}:{plan.path} changed since you opened this preview. Review it again.")
    if not plan.keys:
        return plan
    references.check(plan.target, plan.path, {key: source_secrets[key].value for key in plan.keys})
    if target_folder is None:
        target_folder = _make_folder(plan.target, plan.path, user=user, request=request)
    versions = _write(plan, target_folder, source_secrets, user)
    snapshots.record(target_folder, SnapshotKind.PROMOTION, {v.key: v for v in versions}, user=user, request=request,
                     summary=f"Promoted {len(versions)} key{'' if len(versions) == 1 else 's'} from {plan.source.slug}")
    audit.record(workspace, "secrets.promoted", request=request, actor=user,
                 target_label=f"{plan.target.slug}:{plan.path}", source=f"{plan.source.slug}:{plan.path}",
                 keys=plan.keys, created=plan.create, overwritten=plan.overwrite)
    secrets._emit(workspace.pk, plan.target.pk, [plan.path])
    return plan


@sensitive_variables("source_secrets", "created", "overwritten")
def _write(plan: PromotionPlan, folder: Folder, source_secrets: dict, user) -> list[SecretVersion]:
    """The promotion's writes, in bulk: created and overwritten secrets and a new version of each."""
    locked = {s.key: s for s in folder.secrets.select_for_update().filter(key__in=plan.overwrite)}
    now = timezone.now()
    created = []
    for key in plan.create:
        secret = Secret(workspace=folder.workspace, environment=plan.target, folder=folder, key=key,
                        comment=source_secrets[key].comment, created_by=user, updated_by=user)
        secret.value = source_secrets[key].value
        created.append(secret)
    overwritten = [locked[key] for key in plan.overwrite]
    for secret in overwritten:
        secret.value = source_secrets[secret.key].value
        secret.version, secret.updated_by, secret.updated_at = secret.version + 1, user, now
    Secret.objects.bulk_create(created)
    Secret.objects.bulk_update(overwritten, ["value_ciphertext", "version", "updated_by", "updated_at"])
    references.reindex(plan.target, plan.path, [*created, *overwritten])
    return SecretVersion.objects.bulk_create([secrets._version_of(s) for s in [*created, *overwritten]])


def _make_folder(environment: Environment, path: str, *, user=None, request=None) -> Folder:
    """The folder at `path`, creating each missing folder on the way down from /."""
    folder = environment.folders.get(path="/")
    for segment in path.strip("/").split("/") if path != "/" else []:
        child = secrets.join_path(folder.path, segment)
        folder = environment.folders.filter(path=child).first() or secrets.create_folder(
            environment, folder.path, segment, user=user, request=request)
    return folder

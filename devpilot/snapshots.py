"""Point-in-time recovery: every change to a folder is a numbered snapshot, and a folder rolls back to any.

A snapshot is a delta: one `FolderSnapshot` row and one `SnapshotEntry` per key the change touched, naming
the `SecretVersion` the key then had (null: the key was deleted). Values are never copied, so editing one
secret of a 1,000-secret folder adds two rows. The folder's state at snapshot N is the last entry per key
at or before N, read in one query (`state_at`).

Retention (`DEVPILOT_SNAPSHOT_RETENTION_DAYS`, 0 keeps everything): `housekeeping` folds each folder's
snapshots older than the cutoff into one base snapshot holding the state at the cutoff, then deletes the
versions nothing refers to any more.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Exists, F, Max, OuterRef, Q, Subquery, Window
from django.db.models.functions import RowNumber
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from devpilot import audit, references
from devpilot.errors import Conflict, NotFound
from devpilot.models import Folder, FolderSnapshot, Secret, SecretVersion, SnapshotEntry, SnapshotKind



# --- Recording ---------------------------------------------------------------------------------


def _lock(folder: Folder) -> None:
    """Serialise the folder's writers so snapshot numbers never collide. Callers lock the secrets they
    change first and the folder last, in that order everywhere, so two writers cannot deadlock."""
    list(Folder.objects.select_for_update().filter(pk=folder.pk).values_list("pk", flat=True))


def latest_number(folder: Folder) -> int:
    return FolderSnapshot.objects.filter(folder=folder).aggregate(n=Max("number"))["n"] or 0


def record(folder: Folder, kind: str, changes: dict[str, SecretVersion | None], *, user=None, request=None,
           summary: str = "") -> FolderSnapshot | None:
    """Record one change to `folder`: the new version of each changed key (None for a deleted key). Called
    inside the change's transaction, so a change and its snapshot are written together or not at all."""
    if not changes:
        return None
    _lock(folder)
    number = latest_number(folder) + 1
    actor, _, _, label = audit.describe_actor(request, user)
    snapshot = FolderSnapshot.objects.create(folder=folder, number=number, kind=kind, actor=actor, actor_label=label,
                                             summary=summary[:300] or _summary(kind, changes))
    SnapshotEntry.objects.bulk_create([
        SnapshotEntry(snapshot=snapshot, folder=folder, number=number, key=key, version=version)
        for key, version in sorted(changes.items())
    ])
    return snapshot


def _summary(kind: str, changes: dict[str, SecretVersion | None]) -> str:
    keys = sorted(changes)
    shown = ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")
    return f"{SnapshotKind(kind).label}: {shown}"


# --- Reading ---------------------------------------------------------------------------------


def state_at(folder: Folder, number: int) -> dict[str, SnapshotEntry]:
    """The folder's secrets at snapshot `number`, by key: each key's last entry at or before it, with its
    version and the snapshot that set it. One query, however long the history."""
    last = (SnapshotEntry.objects.filter(folder=folder, key=OuterRef("key"), number__lte=number)
            .order_by("-number").values("pk")[:1])
    entries = (SnapshotEntry.objects.filter(folder=folder, number__lte=number, pk=Subquery(last),
                                            version__isnull=False)
               .select_related("version__created_by", "snapshot").order_by("key"))
    return {entry.key: entry for entry in entries}


def snapshot_at_time(folder: Folder, when: datetime) -> FolderSnapshot:
    snapshot = folder.snapshots.filter(created_at__lte=when).order_by("-number").first()
    if snapshot is None:
        raise NotFound(f"{folder.path} has no recorded history at or before {when:%Y-%m-%d %H:%M} UTC.")
    return snapshot


@dataclass
class Change:
    key: str
    version: SecretVersion | None  # None: deleted

    @property
    def what(self) -> str:
        if self.version is None:
            return "deleted"
        return "created" if self.version.version == 1 else f"changed to v{self.version.version}"


def changes_of(snapshot: FolderSnapshot) -> list[Change]:
    return [Change(e.key, e.version) for e in snapshot.entries.select_related("version").order_by("key")]


def changed_keys(snapshots: list[FolderSnapshot], first: int = 8) -> dict:
    """The first keys (by name) each snapshot changed, for a page of snapshots, in one query however many keys
    a snapshot holds (a base snapshot holds the whole folder): {snapshot pk: [keys]}."""
    keys: dict = {s.pk: [] for s in snapshots}
    ranked = (SnapshotEntry.objects.filter(snapshot__in=snapshots)
              .annotate(rank=Window(RowNumber(), partition_by=F("snapshot_id"), order_by=F("key").asc()))
              .filter(rank__lte=first).order_by("key").values_list("snapshot_id", "key"))
    for snapshot_id, key in ranked:
        keys[snapshot_id].append(key)
    return keys


# --- Rolling back ------------------------------------------------------------------------------


@dataclass
class RollbackPlan:
    """What rolling back to a snapshot does to the folder as it is now (keys only)."""

    snapshot: FolderSnapshot
    latest: int  # the folder's last snapshot number when the plan was made
    create: list[str] = field(default_factory=list)
    change: list[str] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.create) + len(self.change) + len(self.delete)

    @property
    def is_empty(self) -> bool:
        return not self.size


@sensitive_variables("target", "live")
def _plan(snapshot: FolderSnapshot, target: dict[str, SnapshotEntry], live: dict[str, Secret]) -> RollbackPlan:
    plan = RollbackPlan(snapshot, latest_number(snapshot.folder))
    for key, entry in target.items():
        secret = live.get(key)
        if secret is None:
            plan.create.append(key)
        elif (secret.value, secret.comment) != (entry.version.value, entry.version.comment):
            plan.change.append(key)
    plan.delete = sorted(set(live) - set(target))
    return plan


def plan_rollback(snapshot: FolderSnapshot) -> RollbackPlan:
    folder = snapshot.folder
    return _plan(snapshot, state_at(folder, snapshot.number), {s.key: s for s in folder.secrets.all()})


@sensitive_variables("target", "live", "args", "kwds")
@transaction.atomic
def rollback(snapshot: FolderSnapshot, *, expected_latest: int | None = None, user=None,
             request=None) -> FolderSnapshot | None:
    """Put the folder back as it was at `snapshot`, as one new change (itself a snapshot, so undoable):
    secrets deleted since are recreated with their values then, changed ones get a new version, ones added
    since are deleted. `expected_latest` is the last snapshot number the user's preview saw: a change made
    after it is refused, not overwritten. None when the folder already is as it was."""
    from devpilot import secrets  # here: devpilot.secrets records its own changes through this module

    folder = Folder.objects.select_related("environment__workspace").get(pk=snapshot.folder_id)
    live = {s.key: s for s in folder.secrets.select_for_update()}
    _lock(folder)
    target = state_at(folder, snapshot.number)
    plan = _plan(snapshot, target, live)
    if expected_latest is not None and plan.latest != expected_latest:
        raise Conflict(f"{folder.path} changed since you opened this preview (now at snapshot #{plan.latest}). "
                       "Review the preview again.")
    if plan.is_empty:
        return None
    _refuse_broken_references(folder, plan, target, live)
    versions = _write(folder, plan, target, live, user)
    made = record(folder, SnapshotKind.ROLLBACK, {**{v.key: v for v in versions}, **dict.fromkeys(plan.delete)},
                  user=user, request=request, summary=f"Rolled back to snapshot #{snapshot.number}")
    environment = folder.environment
    audit.record(environment.workspace, "folder.rolled_back", request=request, actor=user,
                 target_label=f"{environment.slug}:{folder.path}", snapshot=snapshot.number,
                 created=plan.create, changed=plan.change, deleted=plan.delete)
    secrets._emit(environment.workspace_id, environment.pk, [folder.path])
    return made


@sensitive_variables("target", "live", "created", "changed")
def _write(folder: Folder, plan: RollbackPlan, target: dict[str, SnapshotEntry], live: dict[str, Secret],
           user) -> list[SecretVersion]:
    """The rollback's writes, in bulk: recreated and changed secrets (and their new versions), deletions."""
    from devpilot import secrets

    environment, now = folder.environment, timezone.now()
    created = []
    for key in plan.create:
        secret = Secret(workspace=environment.workspace, environment=environment, folder=folder, key=key,
                        comment=target[key].version.comment, created_by=user, updated_by=user)
        secret.value = target[key].version.value
        created.append(secret)
    changed = [live[key] for key in plan.change]
    for secret in changed:
        secret.value, secret.comment = target[secret.key].version.value, target[secret.key].version.comment
        secret.version, secret.updated_by, secret.updated_at = secret.version + 1, user, now
    Secret.objects.bulk_create(created)
    Secret.objects.bulk_update(changed, ["value_ciphertext", "comment", "version", "updated_by", "updated_at"])
    Secret.objects.filter(pk__in=[live[key].pk for key in plan.delete]).delete()
    references.reindex(environment, folder.path, [*created, *changed])
    return SecretVersion.objects.bulk_create([secrets._version_of(s) for s in [*created, *changed]])


@sensitive_variables("target", "live")
def _refuse_broken_references(folder: Folder, plan: RollbackPlan, target: dict[str, SnapshotEntry],
                              live: dict[str, Secret]) -> None:
    """The rules of every save: a restored value's references must resolve, and a secret another folder refers
    to is not deleted (references.ReferenceRefused, an Invalid naming the chain)."""
    references.refuse_if_referenced(folder.environment, folder.path, plan.delete,
                                    excluding=[s.pk for s in live.values()], doing="roll back")
    references.check(folder.environment, folder.path, {
        **{key: target[key].version.value for key in [*plan.create, *plan.change]}, **dict.fromkeys(plan.delete)})


# --- Retention -------------------------------------------------------------------------------


@transaction.atomic
def compact(folder: Folder, cutoff: datetime) -> int:
    """Fold the folder's snapshots at or before `cutoff` into the last of them, which then holds the whole
    state at the cutoff. Returns how many snapshots were removed."""
    base = folder.snapshots.filter(created_at__lte=cutoff).order_by("-number").first()
    if base is None or not folder.snapshots.filter(number__lt=base.number).exists():
        return 0
    _lock(folder)
    state = state_at(folder, base.number)
    SnapshotEntry.objects.filter(folder=folder, number__lte=base.number).delete()
    SnapshotEntry.objects.bulk_create([
        SnapshotEntry(snapshot=base, folder=folder, number=base.number, key=key, version_id=entry.version_id)
        for key, entry in state.items()
    ])
    _, removed = FolderSnapshot.objects.filter(folder=folder, number__lt=base.number).delete()
    base.kind = SnapshotKind.BASE
    base.summary = f"State on {base.created_at:%Y-%m-%d %H:%M} UTC (earlier history compacted)"
    base.save(update_fields=["kind", "summary"])
    return removed.get(FolderSnapshot._meta.label, 0)


def prune_versions(cutoff: datetime) -> int:
    """Delete versions older than `cutoff` that no snapshot refers to and that are not a live secret's
    current value."""
    referenced = SnapshotEntry.objects.filter(version_id=OuterRef("pk"))
    doomed = (SecretVersion.objects.filter(created_at__lt=cutoff).filter(~Exists(referenced))
              .exclude(Q(secret__isnull=False) & Q(version=F("secret__version"))))
    deleted, _ = SecretVersion.objects.filter(pk__in=list(doomed.values_list("pk", flat=True))).delete()
    return deleted


def housekeeping(now: datetime | None = None) -> dict:
    """The scheduled retention run (devpilot/schedules.py); does nothing when retention keeps everything."""
    days = settings.DEVPILOT_SNAPSHOT_RETENTION_DAYS
    if days <= 0:
        return {"compacted": 0, "pruned": 0}
    cutoff = (now or timezone.now()) - timedelta(days=days)
    folder_ids = (FolderSnapshot.objects.filter(created_at__lte=cutoff).values("folder")
                  .annotate(n=Count("pk")).filter(n__gt=1).values_list("folder", flat=True))
    compacted = sum(compact(folder, cutoff) for folder in Folder.objects.filter(pk__in=list(folder_ids)))
    return {"compacted": compacted, "pruned": prune_versions(cutoff)}

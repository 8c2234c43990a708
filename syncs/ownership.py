"""Two syncs never manage the same variable of an app, so a batch never has to pick a winner.

A sync manages a destination variable when it would write it (its folder's keys under its key
schema) or could delete it (its key schema matches and secret deletion is on), or wrote it before.
Creating or changing a sync that would share a variable with another sync writing to the same
app and target (app-level, or one component) is refused, naming the other sync. Keys added to a
folder later can still collide; the engine then fails the later sync's part (syncs/engine.py).
"""

from devpilot.models import Secret
from syncs import keyschema
from syncs.models import Sync, SyncedKey


def destination_keys(sync) -> set[str]:
    """The variables the sync writes now (keys only: no secret value is read)."""
    keys = Secret.objects.filter(environment_id=sync.environment_id, folder_id=sync.folder_id).values_list(
        "key", flat=True)
    return {keyschema.render(sync.key_schema, key, sync.environment.slug) for key in keys}


def _manages(sync, key: str, written: set[str]) -> bool:
    return key in written or (
        not sync.disable_secret_deletion and keyschema.manages(sync.key_schema, key, sync.environment.slug))


def conflict(candidate) -> str | None:
    """Why `candidate` (saved or not) would share a variable with another sync, or None."""
    if candidate.destination != "digital-ocean-app-platform":
        return _same_file(candidate)
    others = Sync.objects.filter(destination=candidate.destination, app_id=candidate.app_id, component=candidate.component or "").exclude(
        pk=candidate.pk).select_related("environment").order_by("created_at")
    mine = None
    for other in others:
        mine = destination_keys(candidate) if mine is None else mine
        theirs = destination_keys(other) | set(SyncedKey.objects.filter(sync=other).values_list("key", flat=True))
        shared = sorted({key for key in mine if _manages(other, key, theirs)} |
                        {key for key in theirs if _manages(candidate, key, mine)})
        if shared:
            return (f"{_names(shared)} {'is' if len(shared) == 1 else 'are'} already managed by sync {other.name} "
                    f"({other.target_label} of {other.app_name or other.app_id}). Two syncs cannot manage the same "
                    "variable: give this sync a key schema that sets its variables apart, or another destination.")
    return None


def _same_file(candidate) -> str | None:
    """A file on a server has one sync writing it: two would undo each other's writes."""
    from syncs.destinations import devpilot_server

    mine = {server.pk for server in devpilot_server.targets(candidate)}
    others = Sync.objects.filter(workspace=candidate.workspace_id, destination=candidate.destination,
                                 file_path=candidate.file_path).exclude(pk=candidate.pk).order_by("created_at")
    for other in others:
        shared = [s.name for s in devpilot_server.targets(other) if s.pk in mine]
        if shared:
            return (f"The sync {other.name} writes {candidate.file_path} on {_names(shared)} already; choose another "
                    "file path.")
    return None


def _names(keys: list[str]) -> str:
    return ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")

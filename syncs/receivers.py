from syncs import tasks
from syncs.models import Sync, SyncStatus


def source_changed(sender, workspace_id, environment_id, path, **kwargs):
    tasks.source_changed(workspace_id, environment_id, path)


def connection_removed(sender, connection, **kwargs):
    Sync.objects.filter(connection=connection).update(
        sync_status=SyncStatus.FAILED,
        last_sync_message="The connection was removed. Choose another connection to sync again.",
        pending_run_at=None,
    )

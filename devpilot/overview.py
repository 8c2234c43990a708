"""What the Overview shows of a workspace, in a fixed number of queries whatever its size.

It is the page every member lands on, and its queries are the same on every visit: their SQL is built once
per process (devpilot/prepared.py), not on each visit (about half of the page's time went to building it).
"""

import uuid

from django.db.models import Count, Func, IntegerField, OuterRef, Subquery

from connections.models import Connection
from devpilot.models import AuditEvent, Environment, Secret
from devpilot.prepared import PreparedQuery
from provisioning.models import Server
from syncs.models import Sync, SyncStatus

FAILING_SYNCS_SHOWN = 5
RECENT_EVENTS_SHOWN = 8


def _environments_with_secret_counts(workspace_id):
    # COUNT(*) as a plain function, not an aggregate (which adds GROUP BY) nor COUNT(id) (which reads the table
    # for the ids): PostgreSQL then counts in the (environment_id) index alone, this environment's entries only,
    # where a join grouped by environment read every secret of every workspace.
    count = Secret.objects.filter(environment=OuterRef("pk")).order_by().annotate(
        n=Func(template="COUNT(*)", output_field=IntegerField()))
    return Environment.objects.filter(workspace_id=workspace_id).annotate(
        secret_count=Subquery(count.values("n"))).order_by("position", "created_at")


# The workspace's environments in order, each with `secret_count` (also the Environments settings' list).
ENVIRONMENTS_WITH_SECRET_COUNTS = PreparedQuery(_environments_with_secret_counts, workspace_id=uuid.UUID)
CONNECTIONS = PreparedQuery(lambda workspace_id: Connection.objects.filter(workspace_id=workspace_id),
                            workspace_id=uuid.UUID)
SYNC_COUNTS = PreparedQuery(lambda workspace_id: Sync.objects.filter(workspace_id=workspace_id).values_list(
    "sync_status").annotate(n=Count("id")).order_by(), workspace_id=uuid.UUID)
LIVE_SERVER_COUNTS = PreparedQuery(lambda workspace_id: Server.objects.filter(workspace_id=workspace_id).live()
                                   .values_list("status").annotate(n=Count("id")).order_by(), workspace_id=uuid.UUID)
FAILING_SYNCS = PreparedQuery(lambda workspace_id: Sync.objects.filter(
    workspace_id=workspace_id, sync_status=SyncStatus.FAILED).only("id", "name", "workspace_id")[:FAILING_SYNCS_SHOWN],
    workspace_id=uuid.UUID)
RECENT_EVENTS = PreparedQuery(
    lambda workspace_id: AuditEvent.objects.filter(workspace_id=workspace_id)[:RECENT_EVENTS_SHOWN],
    workspace_id=uuid.UUID)


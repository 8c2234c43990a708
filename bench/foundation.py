"""The workspace home page: SQL queries and median time, with a little and a lot of history."""

from bench.common import count_queries, median_time, report, setup_django


def main():
    setup_django()
    from django.test import Client

    from devpilot import audit
    from devpilot.models import Membership, Role, User
    from devpilot.workspaces import create_workspace

    owner = User.objects.create_user("bench-home@example.com", "bench-password-1")
    workspace = create_workspace(owner, "Bench home")
    for i in range(5):
        create_workspace(owner, f"Other {i}")
    client = Client()
    client.force_login(owner)
    url = f"/w/{workspace.slug}/"
    rows = []
    for members, events in ((1, 10), (200, 5000)):
        for i in range(Membership.objects.filter(workspace=workspace).count(), members):
            user = User.objects.create_user(f"member{i}@example.com", "x")
            Membership.objects.create(workspace=workspace, user=user, role=Role.MEMBER)
        for i in range(workspace.audit_events.count(), events):
            audit.record(workspace, "bench.event", actor=owner, target_label=f"thing {i}")
        client.get(url)
        with count_queries() as queries:
            assert client.get(url).status_code == 200
        rows.append((f"workspace home, {members} members, {events} audit events: SQL queries", len(queries)))
        rows.append((f"workspace home, {members} members, {events} audit events: median",
                     f"{median_time(lambda: client.get(url)):.0f} ms"))
    report("Workspace home page", rows)

from django.dispatch import Signal

# Sent once per committed write, after commit, for the folder it touched:
#   secrets_changed.send(sender=None, workspace_id=..., environment_id=..., path="/app-secrets")
# Auto-sync subscribes to it.
secrets_changed = Signal()

# Sent inside the removal's transaction when someone leaves or is removed from a workspace:
#   member_removed.send(sender=Membership, membership=...)
# Their access to the workspace's servers ends with it (provisioning/access.py).
member_removed = Signal()

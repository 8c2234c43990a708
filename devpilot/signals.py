from django.dispatch import Signal

# Sent once per committed write, after commit, for the folder it touched:
#   secrets_changed.send(sender=None, workspace_id=..., environment_id=..., path="/app-secrets")
# Auto-sync subscribes to it.
secrets_changed = Signal()

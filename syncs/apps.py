from django.apps import AppConfig


class SyncsConfig(AppConfig):
    name = "syncs"
    verbose_name = "Secret syncs"

    def ready(self):
        from connections.signals import connection_removed
        from devpilot.signals import secrets_changed
        from syncs import receivers

        secrets_changed.connect(receivers.source_changed, dispatch_uid="syncs.source_changed")
        connection_removed.connect(receivers.connection_removed, dispatch_uid="syncs.connection_removed")

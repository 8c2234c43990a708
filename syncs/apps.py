from django.apps import AppConfig


class SyncsConfig(AppConfig):
    name = "syncs"
    verbose_name = "Secret syncs"

    def ready(self):
        from connections.signals import connection_removed
        from devpilot.signals import secrets_changed
        from syncs import receivers
        from syncs.destinations import devpilot_server  # noqa: F401 - registers the agent's write_env_file

        secrets_changed.connect(receivers.source_changed, dispatch_uid="syncs.source_changed")
        connection_removed.connect(receivers.connection_removed, dispatch_uid="syncs.connection_removed")

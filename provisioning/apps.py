from django.apps import AppConfig


class ProvisioningConfig(AppConfig):
    name = "provisioning"
    verbose_name = "Servers"

    def ready(self):
        from connections.signals import connection_created

        from devpilot.signals import member_removed
        from provisioning import access, receivers

        connection_created.connect(receivers.connection_created, dispatch_uid="provisioning.connection_created")
        member_removed.connect(access.member_removed, dispatch_uid="provisioning.member_removed")

from django.apps import AppConfig


class ProvisioningConfig(AppConfig):
    name = "provisioning"
    verbose_name = "Servers"

    def ready(self):
        from connections.signals import connection_created

        from provisioning import receivers

        connection_created.connect(receivers.connection_created, dispatch_uid="provisioning.connection_created")

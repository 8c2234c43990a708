from django.apps import AppConfig


class DevpilotConfig(AppConfig):
    name = "devpilot"
    verbose_name = "Devpilot"

    def ready(self):
        from devpilot import checks  # noqa: F401 - registers the system checks

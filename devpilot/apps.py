from django.apps import AppConfig


class DevpilotConfig(AppConfig):
    name = "devpilot"
    verbose_name = "Devpilot"

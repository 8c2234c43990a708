from django.core.management.base import BaseCommand

from devpilot import schedules


class Command(BaseCommand):
    help = "Install or update Devpilot's recurring tasks (heartbeat, auto-sync retries, reconciliation)."

    def handle(self, *args, **options):
        count = schedules.install()
        self.stdout.write(f"{count} schedules installed.")

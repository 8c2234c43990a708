import json

from django.core.management.base import BaseCommand, CommandError

from devpilot import health


class Command(BaseCommand):
    help = "Print whether the database answers and a django-q2 worker ran recently; exit 1 if not."

    def handle(self, *args, **options):
        report = health.check()
        self.stdout.write(json.dumps(report))
        if not report["ok"]:
            raise CommandError("Unhealthy: " + ("no recent worker heartbeat" if report["database"] else "database down"))

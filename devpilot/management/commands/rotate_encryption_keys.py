from django.core.management.base import BaseCommand

from devpilot.crypto import load_keys, rotate_all


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored token, secret value and private key under the newest key "
        "(the first of DEVPILOT_ENCRYPTION_KEYS). Fails, changing nothing further, on a value "
        "no configured key can decrypt."
    )

    def handle(self, *args, **options):
        newest = load_keys()[0][0]
        counts = rotate_all()
        for label, count in counts.items():
            self.stdout.write(f"{label}: {count} re-encrypted")
        self.stdout.write(self.style.SUCCESS(f"Every value is now under key {newest}."))

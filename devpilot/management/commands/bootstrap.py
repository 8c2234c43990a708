import json

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from devpilot import audit
from devpilot.models import Role, User
from devpilot.tokens import create_api_token
from devpilot.workspaces import create_workspace


class Command(BaseCommand):
    help = "Create the first user, their workspace and an admin API token; print them as JSON."

    def add_arguments(self, parser):
        parser.add_argument("--email", required=True)
        parser.add_argument("--password", required=True)
        parser.add_argument("--workspace", required=True, help="Name of the workspace to create.")

    def handle(self, *args, email, password, workspace, **options):
        email = email.strip().lower()
        if User.objects.filter(email__iexact=email).exists():
            raise CommandError(f"A user with email {email} already exists; bootstrap only sets up a new install.")
        try:
            validate_password(password, User(email=email))
        except ValidationError as e:
            raise CommandError("Password rejected: " + " ".join(e.messages)) from None
        with transaction.atomic():
            user = User.objects.create_user(email=email, password=password)
            ws = create_workspace(user, workspace)
            token, plaintext = create_api_token(ws, "bootstrap", role=Role.ADMIN, created_by=user)
            audit.record(ws, "workspace.bootstrapped", actor=user, target=ws)
        self.stdout.write(json.dumps({
            "user": {"id": user.pk, "email": user.email},
            "workspace": {"id": str(ws.pk), "slug": ws.slug, "name": ws.name},
            "token": plaintext,
        }))

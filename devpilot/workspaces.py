"""Creating workspaces and managing who belongs to them."""

from django.db import transaction
from django.utils.text import slugify

from devpilot.models import Environment, Folder, Membership, Role, Workspace

DEFAULT_ENVIRONMENTS = [("Development", "dev"), ("Staging", "staging"), ("Production", "prod")]


def unique_slug(name: str) -> str:
    base = slugify(name)[:50] or "workspace"
    slug, n = base, 1
    while Workspace.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


@transaction.atomic
def create_workspace(owner, name: str) -> Workspace:
    workspace = Workspace.objects.create(name=name, slug=unique_slug(name))
    Membership.objects.create(workspace=workspace, user=owner, role=Role.OWNER)
    for position, (env_name, env_slug) in enumerate(DEFAULT_ENVIRONMENTS):
        environment = Environment.objects.create(
            workspace=workspace, name=env_name, slug=env_slug, position=position
        )
        Folder.objects.create(workspace=workspace, environment=environment, path="/")
    return workspace


def delete_workspace(workspace):
    """Delete a workspace and everything in it. Droplets at DigitalOcean are left alone."""
    workspace.delete()

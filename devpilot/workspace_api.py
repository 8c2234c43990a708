"""The workspaces a token may see: tokens belong to one workspace."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router

from devpilot.api import answers, iso, token
from devpilot.models import Workspace
from devpilot.schemas import WorkspacesOut

router = Router(tags=["Workspaces"])


def workspace_json(workspace: Workspace) -> dict:
    return {"id": workspace.pk, "slug": workspace.slug, "name": workspace.name, "createdAt": iso(workspace.created_at)}


@router.get("/v1/workspaces", auth=token(), response=answers(WorkspacesOut))
def list_workspaces(request: HttpRequest) -> dict:
    return {"workspaces": [workspace_json(request.workspace)]}  # type: ignore[attr-defined]

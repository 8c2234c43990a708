from django.http import JsonResponse

from devpilot.api import api_view, iso


def workspace_json(workspace):
    return {"id": str(workspace.pk), "slug": workspace.slug, "name": workspace.name,
            "createdAt": iso(workspace.created_at)}


@api_view()
def workspaces(request):
    """The workspaces this token may see: tokens belong to one workspace."""
    return JsonResponse({"workspaces": [workspace_json(request.workspace)]})

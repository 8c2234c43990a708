from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from connections import budget, services
from connections.forms import ConnectForm, RotateForm
from connections.models import Connection
from connections.providers import all_providers, get_provider
from devpilot.access import get_in_workspace, workspace_view


def _connection(request, connection_id):
    return get_in_workspace(request, Connection, pk=connection_id)


@workspace_view()
def integrations(request):
    connections = request.workspace.connections.all()
    cards = [(p, [c for c in connections if c.provider == p.slug]) for p in all_providers()]
    return render(request, "connections/integrations.html", {"settings_tab": "integrations", "cards": cards})


@sensitive_post_parameters("token")
@workspace_view("integrations.manage")
def connect(request, provider):
    try:
        provider_module = get_provider(provider)
    except KeyError:
        raise Http404("No such provider.") from None
    form = ConnectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            connection = services.connect(
                request.workspace, provider, form.cleaned_data["name"], form.cleaned_data["token"],
                form.cleaned_data["description"], user=request.user, request=request,
            )
        except services.ConnectionError_ as e:
            form.add_error(None, str(e))
        else:
            messages.success(request, f"Connected to {provider_module.name} as {connection.account_email}.")
            return redirect("connection_detail", ws=request.workspace.slug, connection_id=connection.pk)
    return render(request, "connections/connect.html", {
        "settings_tab": "integrations", "provider": provider_module, "form": form,
    })


@workspace_view()
def detail(request, connection_id):
    connection = _connection(request, connection_id)
    return render(request, "connections/detail.html", {
        "settings_tab": "integrations", "connection": connection, "used": services.usage(connection),
        "calls": budget.usage(connection.rate_key),
    })


@require_POST
@workspace_view("integrations.manage")
def test_credentials(request, connection_id):
    connection = services.test(_connection(request, connection_id), user=request.user, request=request)
    if request.htmx:
        return render(request, "connections/detail.html#status", {"connection": connection, "tested": True,
                                                                   "calls": budget.usage(connection.rate_key)})
    messages.success(request, "Credentials tested.")
    return redirect("connection_detail", ws=request.workspace.slug, connection_id=connection.pk)


@sensitive_post_parameters("token")
@workspace_view("integrations.manage")
def rotate(request, connection_id):
    connection = _connection(request, connection_id)
    form = RotateForm(request.POST or None)
    confirm = None
    if request.method == "POST" and form.is_valid():
        try:
            services.rotate(connection, form.cleaned_data["token"],
                            confirm_account_change=request.POST.get("confirm_account_change") == "yes",
                            user=request.user, request=request)
        except services.AccountChanged as e:
            confirm = str(e)
        except services.ConnectionError_ as e:
            form.add_error(None, str(e))
        else:
            messages.success(request, f"Token rotated (version {connection.version}). Revoke the old token in DigitalOcean.")
            return redirect("connection_detail", ws=request.workspace.slug, connection_id=connection.pk)
    return render(request, "connections/rotate.html", {
        "settings_tab": "integrations", "connection": connection, "form": form, "confirm": confirm,
    })


@workspace_view("integrations.manage")
def remove(request, connection_id):
    connection = _connection(request, connection_id)
    if request.method == "POST":
        services.remove(connection, user=request.user, request=request)
        messages.success(request, f"{connection.name} removed. No Droplets were destroyed.")
        return redirect("integrations", ws=request.workspace.slug)
    return render(request, "connections/remove.html", {
        "settings_tab": "integrations", "connection": connection, "used": services.usage(connection),
    })

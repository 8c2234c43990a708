from django.urls import path

from provisioning import views

base = "w/<slug:ws>/servers/"
server = base + "<uuid:server_id>/"

urlpatterns = [
    path(base, views.server_list, name="servers"),
    path(base + "new/", views.wizard_start, name="server_new"),
    path(base + "new/<slug:step>/", views.wizard, name="server_wizard"),
    path(server, views.server_detail, name="server_detail"),
    path(server + "progress/", views.server_progress, name="server_progress"),
    path(server + "action/", views.server_action, name="server_action"),
    path(server + "destroy/", views.server_destroy, name="server_destroy"),
    path("w/<slug:ws>/settings/ssh-key/", views.ssh_key, name="ssh_key"),
    path("w/<slug:ws>/settings/ssh-key/private/", views.ssh_key_download, name="ssh_key_download"),
    path("agent/devpilot-agent.py", views.agent_script, name="agent_script"),
]

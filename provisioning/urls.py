from django.urls import path

from provisioning import agent_views, views

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
    path(base + "archive/", views.server_archive, name="server_archive"),
    path(server + "confirm/<slug:action>/", views.server_confirm, name="server_confirm"),
    path(server + "resize/", views.server_resize, name="server_resize"),
    path(server + "firewall/", views.server_firewall, name="server_firewall"),
    path(server + "snapshots/", views.server_snapshots, name="server_snapshots"),
    path(server + "snapshots/take/", views.snapshot_take, name="snapshot_take"),
    path(server + "snapshots/<slug:droplet_snapshot_id>/delete/", views.snapshot_delete, name="snapshot_delete"),
    path("w/<slug:ws>/settings/ssh-key/", views.ssh_key, name="ssh_key"),
    path("w/<slug:ws>/settings/ssh-key/private/", views.ssh_key_download, name="ssh_key_download"),
    path("agent/devpilot-agent.py", views.agent_script, name="agent_script"),
    # The agent's work (provisioning/agent_views.py): HTMX blocks of the server page, alert rules, people's keys.
    path(server + "access/", agent_views.server_access, name="server_access"),
    path(server + "access/change/", agent_views.server_access_change, name="server_access_change"),
    path(server + "files/", agent_views.server_files, name="server_files"),
    path(server + "metrics/", agent_views.server_metrics, name="server_metrics"),
    path("w/<slug:ws>/settings/alerts/", agent_views.alert_rules, name="alert_rules"),
    path("w/<slug:ws>/settings/alerts/<int:rule_id>/", agent_views.alert_rule_change, name="alert_rule_change"),
    path("accounts/ssh-keys/", agent_views.ssh_keys, name="account_ssh_keys"),
    path("accounts/ssh-keys/<uuid:key_id>/delete/", agent_views.ssh_key_delete, name="account_ssh_key_delete"),
]

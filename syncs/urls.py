from django.urls import path

from syncs import views

base = "w/<slug:ws>/syncs/"
sync = base + "<uuid:sync_id>/"

urlpatterns = [
    path(base, views.sync_list, name="syncs"),
    path(base + "new/", views.wizard_start, name="sync_new"),
    path(base + "new/apps/", views.wizard_apps, name="sync_wizard_apps"),
    path(base + "new/preview/", views.wizard_preview, name="sync_wizard_preview"),
    path(base + "new/components/", views.wizard_components, name="sync_wizard_components"),
    path(base + "new/<slug:step>/", views.wizard, name="sync_wizard"),
    path(sync, views.sync_detail, name="sync_detail"),
    path(sync + "status/", views.sync_status, name="sync_status"),
    path(sync + "run/", views.sync_run, name="sync_run"),
    path(sync + "remove-secrets/", views.sync_remove_secrets, name="sync_remove_secrets"),
    path(sync + "auto-sync/", views.sync_toggle_auto, name="sync_toggle_auto"),
    path(sync + "restore/", views.sync_restore, name="sync_restore"),
    path(sync + "dry-run/", views.sync_dry_run, name="sync_dry_run"),
    path(sync + "edit/", views.sync_edit, name="sync_edit"),
    path(sync + "delete/", views.sync_delete, name="sync_delete"),
]

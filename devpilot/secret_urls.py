from django.urls import path

from devpilot import secret_views as views
from devpilot import snapshot_views

env = "w/<slug:ws>/secrets/<slug:env>/"
secret = "w/<slug:ws>/secret/<uuid:secret_id>/"

urlpatterns = [
    path("w/<slug:ws>/secrets/", views.secrets_home, name="secrets_home"),
    path(env, views.secrets_page, name="secrets"),
    path(env + "add/", views.secret_create, name="secret_create"),
    path(env + "folders/", views.folder_create, name="folder_create"),
    path(env + "import/", views.secrets_import, name="secrets_import"),
    path(env + "download/", views.secrets_download, name="secrets_download"),
    path(env + "search/", views.secrets_search, name="secrets_search"),
    path(env + "history/", snapshot_views.folder_history, name="folder_history"),
    path("w/<slug:ws>/snapshots/<uuid:secret_snapshot_id>/", snapshot_views.snapshot_detail, name="snapshot"),
    path("w/<slug:ws>/snapshots/<uuid:secret_snapshot_id>/reveal/", snapshot_views.snapshot_reveal,
         name="snapshot_reveal"),
    path("w/<slug:ws>/snapshots/<uuid:secret_snapshot_id>/rollback/", snapshot_views.snapshot_rollback,
         name="snapshot_rollback"),
    path("w/<slug:ws>/compare/", snapshot_views.compare_page, name="compare"),
    path("w/<slug:ws>/compare/promote/", snapshot_views.promote, name="promote"),
    path(env + "imports/", views.secret_import_add, name="secret_import_add"),
    path("w/<slug:ws>/imports/<uuid:import_id>/move/", views.secret_import_move, name="secret_import_move"),
    path("w/<slug:ws>/imports/<uuid:import_id>/remove/", views.secret_import_remove, name="secret_import_remove"),
    path(secret, views.secret_row, name="secret_row"),
    path(secret + "edit/", views.secret_edit, name="secret_edit"),
    path(secret + "reveal/", views.secret_reveal, name="secret_reveal"),
    path(secret + "delete/", views.secret_delete, name="secret_delete"),
    path(secret + "history/", views.secret_history, name="secret_history"),
    path(secret + "versions/<uuid:version_id>/reveal/", views.version_reveal, name="version_reveal"),
    path(secret + "versions/<uuid:version_id>/restore/", views.version_restore, name="version_restore"),
    path("w/<slug:ws>/folders/<uuid:folder_id>/rename/", views.folder_rename, name="folder_rename"),
    path("w/<slug:ws>/folders/<uuid:folder_id>/delete/", views.folder_delete, name="folder_delete"),
    path("w/<slug:ws>/settings/environments/", views.environments, name="environments"),
    path("w/<slug:ws>/settings/environments/<uuid:environment_id>/", views.environment_edit, name="environment_edit"),
    path("w/<slug:ws>/settings/environments/<uuid:environment_id>/delete/", views.environment_delete,
         name="environment_delete"),
]

from django.urls import path

from devpilot import secret_views as views

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

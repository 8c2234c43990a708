from django.urls import path

from connections import api, views

base = "w/<slug:ws>/settings/integrations/"

urlpatterns = [
    path(base, views.integrations, name="integrations"),
    path(base + "<slug:provider>/connect/", views.connect, name="connection_connect"),
    path(base + "connections/<uuid:connection_id>/", views.detail, name="connection_detail"),
    path(base + "connections/<uuid:connection_id>/test/", views.test_credentials, name="connection_test"),
    path(base + "connections/<uuid:connection_id>/rotate/", views.rotate, name="connection_rotate"),
    path(base + "connections/<uuid:connection_id>/remove/", views.remove, name="connection_remove"),
    path("api/v1/app-connections/digital-ocean", api.connections, name="api_connections"),
    path("api/v1/app-connections/digital-ocean/<uuid:connection_id>", api.connection, name="api_connection"),
    path("api/v1/app-connections/digital-ocean/<uuid:connection_id>/apps", api.connection_apps,
         name="api_connection_apps"),
]

from django.urls import path

from connections import views

base = "w/<slug:ws>/settings/integrations/"

urlpatterns = [
    path(base, views.integrations, name="integrations"),
    path(base + "<slug:provider>/connect/", views.connect, name="connection_connect"),
    path(base + "connections/<uuid:connection_id>/", views.detail, name="connection_detail"),
    path(base + "connections/<uuid:connection_id>/test/", views.test_credentials, name="connection_test"),
    path(base + "connections/<uuid:connection_id>/rotate/", views.rotate, name="connection_rotate"),
    path(base + "connections/<uuid:connection_id>/remove/", views.remove, name="connection_remove"),
]

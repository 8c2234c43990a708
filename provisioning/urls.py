from django.urls import path

from provisioning import api

urlpatterns = [
    path("api/v1/servers", api.servers, name="api_servers"),
    path("api/v1/servers/<uuid:server_id>", api.server, name="api_server"),
    path("api/v1/servers/<uuid:server_id>/actions", api.server_actions, name="api_server_actions"),
    path("api/v1/agent/register", api.agent_register, name="agent_register"),
    path("api/v1/agent/heartbeat", api.agent_heartbeat, name="agent_heartbeat"),
]

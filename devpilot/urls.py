"""Root URLs. Each app owns its paths: pages under w/<slug:ws>/..., API under api/...

Convention (the isolation test relies on it): every workspace-scoped page takes the
workspace slug as `ws`, and object ids as `<uuid:..._id>`.
"""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("devpilot.core_urls")),
    path("", include("devpilot.secret_urls")),
    path("", include("connections.urls")),
    path("", include("syncs.urls")),
    path("", include("provisioning.urls")),
]

handler404 = "devpilot.views.not_found"
handler403 = "devpilot.views.forbidden"
handler500 = "devpilot.views.server_error"

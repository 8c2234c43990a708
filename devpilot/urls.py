"""Root URLs. Each app owns its paths: pages under w/<slug:ws>/..., API under api/...

Convention (the isolation test relies on it): every workspace-scoped page takes the
workspace slug as `ws`, and object ids as `<uuid:..._id>`.
"""

from allauth.account.decorators import secure_admin_login
from django.contrib import admin
from django.urls import include, path

from devpilot.api import api, register_routers

register_routers()

# The admin's login is the site's (allauth): same rate limits, lockout and MFA.
admin.site.login = secure_admin_login(admin.site.login)

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("", include("devpilot.core_urls")),
    path("", include("devpilot.secret_urls")),
    path("", include("connections.urls")),
    path("", include("syncs.urls")),
    path("", include("provisioning.urls")),
]

handler404 = "devpilot.views.not_found"
handler403 = "devpilot.views.forbidden"
handler500 = "devpilot.views.server_error"

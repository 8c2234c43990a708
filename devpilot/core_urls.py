from django.urls import include, path
from django.views.generic import RedirectView

from devpilot import accounts, identity_views, views

urlpatterns = [
    path("", views.home, name="home"),
    path("health/", views.health_view, name="health"),
    path("favicon.ico", views.favicon, name="favicon"),
    # Accounts: django-allauth under accounts/ (login/, signup/, logout/, password/reset/,
    # email/, 2fa/...); the sign-up view knows about invitations.
    path("accounts/signup/", accounts.SignupView.as_view(), name="account_signup"),
    # Today's password-reset addresses lead to allauth's (old reset links had a different token).
    path("accounts/password-reset/", RedirectView.as_view(pattern_name="account_reset_password", query_string=True)),
    path("accounts/password-reset/sent/", RedirectView.as_view(pattern_name="account_reset_password_done")),
    path("accounts/reset/done/", RedirectView.as_view(pattern_name="account_login")),
    path("accounts/reset/<str:uidb64>/<str:token>/", RedirectView.as_view(url="/accounts/password/reset/")),
    path("accounts/", include("allauth.urls")),
    path("invitations/<str:token>/", views.accept_invitation, name="accept_invitation"),
    path("workspaces/new/", views.workspace_create, name="workspace_create"),
    path("w/<slug:ws>/", views.workspace_home, name="workspace_home"),
    path("w/<slug:ws>/settings/", views.settings_general, name="settings_general"),
    path("w/<slug:ws>/settings/members/", views.member_list, name="members"),
    path("w/<slug:ws>/settings/members/<int:membership_id>/role/", views.member_role, name="member_role"),
    path("w/<slug:ws>/settings/members/<int:membership_id>/remove/", views.member_remove, name="member_remove"),
    path("w/<slug:ws>/settings/invitations/<uuid:invitation_id>/revoke/", views.invitation_revoke,
         name="invitation_revoke"),
    path("w/<slug:ws>/settings/api-tokens/", views.api_tokens, name="api_tokens"),
    path("w/<slug:ws>/settings/api-tokens/<uuid:token_id>/revoke/", views.api_token_revoke,
         name="api_token_revoke"),
    path("w/<slug:ws>/settings/audit-log/", views.audit_log, name="audit_log"),
    path("w/<slug:ws>/settings/machine-identities/", identity_views.identity_list, name="identities"),
    path("w/<slug:ws>/settings/machine-identities/<uuid:identity_id>/", identity_views.identity_detail,
         name="identity_detail"),
    path("w/<slug:ws>/settings/machine-identities/<uuid:identity_id>/delete/", identity_views.identity_delete,
         name="identity_delete"),
    path("w/<slug:ws>/settings/machine-identities/<uuid:identity_id>/client-secrets/<uuid:client_secret_id>/revoke/",
         identity_views.client_secret_revoke, name="client_secret_revoke"),
]

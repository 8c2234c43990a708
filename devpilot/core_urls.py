from django.contrib.auth import views as auth_views
from django.urls import path

from devpilot import api_views, views

urlpatterns = [
    path("", views.home, name="home"),
    path("health/", views.health_view, name="health"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("accounts/signup/", views.signup, name="signup"),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password-reset/", auth_views.PasswordResetView.as_view(), name="password_reset"),
    path("accounts/password-reset/sent/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path("accounts/reset/<uidb64>/<token>/", auth_views.PasswordResetConfirmView.as_view(),
         name="password_reset_confirm"),
    path("accounts/reset/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
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
    path("api/v1/workspaces", api_views.workspaces, name="api_workspaces"),
]

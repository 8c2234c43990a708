"""Accounts on django-allauth: the adapters, the sign-up view and the MFA rules.

- Email is the username. Sign-up creates the first workspace, except a sign-up from an
  invitation: that one has the invited address filled in and locked, must verify the
  address (a link sent to it) and then joins the inviting workspace without another click.
- Failed logins are rate limited per account and per address (settings.ACCOUNT_RATE_LIMITS);
  the admin's login page is this one (see devpilot/urls.py).
- MFA: TOTP, recovery codes and WebAuthn passkeys (allauth.mfa), secrets stored encrypted.
  A workspace can require it of its members; devpilot.access sends those without it here.
"""

import re

from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.app_settings import EmailVerificationMethod
from allauth.account.internal import flows
from allauth.account.models import EmailAddress
from allauth.account.views import SignupView as AllauthSignupView
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.mfa.adapter import DefaultMFAAdapter
from allauth.mfa.models import Authenticator
from django.urls import resolve, reverse
from django.urls.exceptions import Resolver404
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters

from devpilot import crypto

# A header (a mail subject) must be one line: CR, LF and other controls would end it.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")

JOIN_SESSION_KEY = "devpilot_join_invitation"  # set by an invitation sign-up: join once verified
MFA_NEXT_SESSION_KEY = "devpilot_mfa_next"  # the workspace page that asked for MFA
MFA_TYPES = [Authenticator.Type.TOTP, Authenticator.Type.WEBAUTHN]


def clean_header(value) -> str:
    """One line of text, fit for a mail header: control characters become one space."""
    return _CONTROL.sub(" ", str(value)).strip()


def verified_emails(user) -> set[str]:
    if not user.is_authenticated:
        return set()
    return {e.lower() for e in EmailAddress.objects.filter(user=user, verified=True).values_list("email", flat=True)}


def has_verified_email(user, email) -> bool:
    return email.lower() in verified_emails(user)


def has_mfa(user) -> bool:
    return user.is_authenticated and Authenticator.objects.filter(user=user, type__in=MFA_TYPES).exists()


def invitation_from_path(path):
    """The pending invitation a next= path points at (/invitations/<token>/), else None."""
    from devpilot import members

    if not path:
        return None
    try:
        match = resolve(path.split("?")[0])
    except Resolver404:
        return None
    if match.url_name != "accept_invitation":
        return None
    invitation = members.find_invitation(match.kwargs["token"])
    return invitation if invitation is not None and invitation.is_pending else None


class AccountAdapter(DefaultAccountAdapter):
    error_messages = {
        **DefaultAccountAdapter.error_messages,
        "email_taken": "An account with this email already exists. Log in instead.",
        "email_password_mismatch": "The email address and/or password you specified are not correct.",
        "too_many_login_attempts": "Too many failed login attempts. Try again in 15 minutes, "
                                   "or reset your password.",
    }

    def clean_email(self, email):
        return super().clean_email(email).strip().lower()

    def format_email_subject(self, subject):
        return clean_header(super().format_email_subject(clean_header(subject)))

    def get_signup_redirect_url(self, request):
        workspace = getattr(request, "devpilot_new_workspace", None)
        if workspace is not None:
            return reverse("workspace_home", kwargs={"ws": workspace.slug})
        return super().get_signup_redirect_url(request)

    def get_email_verification_redirect_url(self, email_address):
        join = self.request.session.get(JOIN_SESSION_KEY)
        if join and self.request.user.is_authenticated:
            return join["path"]
        return super().get_email_verification_redirect_url(email_address)

    def is_open_for_signup(self, request):
        return True


class MFAAdapter(DefaultMFAAdapter):
    """TOTP secrets and recovery-code seeds are encrypted like every other secret."""

    AAD = "allauth.mfa"

    def encrypt(self, text):
        return crypto.encrypt(text, self.AAD)

    def decrypt(self, encrypted_text):
        return crypto.decrypt(encrypted_text, self.AAD)


@method_decorator(sensitive_post_parameters("password1", "password2"), name="dispatch")
class SignupView(AllauthSignupView):
    """allauth's sign-up, aware of invitations (next=/invitations/<token>/)."""

    template_name = "account/signup.html"

    def dispatch(self, request, *args, **kwargs):
        self.next_path = (request.POST.get("next") or request.GET.get("next") or "").split("?")[0]
        self.invitation = invitation_from_path(self.next_path)
        return super().dispatch(request, *args, **kwargs)

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs["invitation"] = self.invitation
        return kwargs

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["invitation"] = self.invitation
        return context

    def form_valid(self, form):
        if self.invitation is None:
            return super().form_valid(form)
        self.user, response = form.try_save(self.request)
        if response:
            return response
        path = self.next_path  # resolved to this invitation in dispatch()
        self.request.session[JOIN_SESSION_KEY] = {"invitation": str(self.invitation.pk), "path": path}
        try:
            # Invited accounts verify their address before they can join.
            return flows.signup.complete_signup(
                self.request, user=self.user, redirect_url=path,
                email_verification=EmailVerificationMethod.MANDATORY,
            )
        except ImmediateHttpResponse as e:
            return e.response


class SensitiveAccountFormsMiddleware:
    """Error reports never show what was posted to account pages (passwords, codes, keys)."""

    PREFIXES = ("/accounts/", "/invitations/", "/admin/login/")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith(self.PREFIXES):
            request.sensitive_post_parameters = "__ALL__"
        return self.get_response(request)


def account_pages(request):
    """Template context for the account and security pages (under /accounts/)."""
    if not request.path.startswith("/accounts/") or not request.user.is_authenticated:
        return {}
    return {
        "mfa_next": request.session.get(MFA_NEXT_SESSION_KEY) if has_mfa(request.user) else None,
        "email_verified": bool(verified_emails(request.user)),
    }

"""Two-factor authentication: TOTP, recovery codes and passkeys, and workspaces that require it."""

import base64
import hashlib
import hmac
import re
import struct
import time

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator

from devpilot.models import AuditEvent, Role
from tests.conftest import PASSWORD, log_in


def totp(secret, at=None):
    """RFC 6238 by hand: HMAC-SHA1 over the 30-second counter, 6 digits."""
    counter = int((at or time.time()) // 30)
    digest = hmac.new(base64.b32decode(secret, casefold=True), struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


def fresh_totp(secret):
    """A code with at least 3 seconds of its window left (so it is still valid when checked)."""
    if 30 - time.time() % 30 < 3:
        time.sleep(30 - time.time() % 30 + 0.1)
    return totp(secret)


@pytest.fixture
def verified(db):
    def verify(user):
        EmailAddress.objects.update_or_create(user=user, email=user.email, defaults={"verified": True, "primary": True})
        return user

    return verify


def activate_totp(client):
    # Changing MFA asks for the password again (allauth's reauthentication).
    assert client.post("/accounts/reauthenticate/", {"password": PASSWORD}).status_code == 302
    page = client.get("/accounts/2fa/totp/activate/").content.decode()
    secret = re.search(r'id="authenticator_secret" value="([A-Z2-7]+)"', page).group(1)
    response = client.post("/accounts/2fa/totp/activate/", {"code": fresh_totp(secret)})
    assert response.status_code == 302, response.content.decode()
    return secret


def reauthenticate(page):
    page.wait_for_url("**/accounts/reauthenticate/**")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/accounts/2fa/(totp|webauthn)/.*"))


# --- Browser ---------------------------------------------------------------------------------


@pytest.mark.browser
def test_enrol_totp_then_log_in_with_a_code_and_with_a_recovery_code(page, owner, workspace, verified):
    verified(owner)
    log_in(page, owner.email)
    page.wait_for_url(f"**/w/{workspace.slug}/")
    page.click("text=Security")
    page.wait_for_url("**/accounts/2fa/")
    page.click("text=Set up an authenticator app")
    reauthenticate(page)
    assert page.locator("img.qr").is_visible()
    secret = page.input_value("#authenticator_secret")
    page.fill("input[name=code]", fresh_totp(secret))
    page.click("button:has-text('Activate')")
    page.wait_for_url("**/accounts/2fa/recovery-codes/")
    codes = page.locator("#recovery_codes li").all_inner_texts()
    assert len(codes) == 10
    assert Authenticator.objects.filter(user=owner, type="totp").exists()
    # The secret is stored encrypted, never as the base32 the app was shown.
    assert secret not in str(Authenticator.objects.get(user=owner, type="totp").data)

    page.click("text=Log out")
    page.wait_for_url("**/accounts/login/")
    log_in(page, owner.email)
    page.wait_for_url("**/accounts/2fa/authenticate/")
    page.fill("input[name=code]", "000000" if totp(secret) != "000000" else "111111")
    page.click("button:has-text('Log in')")
    assert "Incorrect code" in page.content()
    page.fill("input[name=code]", fresh_totp(secret))
    page.click("button:has-text('Log in')")
    page.wait_for_url(f"**/w/{workspace.slug}/")

    page.click("text=Log out")
    page.wait_for_url("**/accounts/login/")
    log_in(page, owner.email)
    page.wait_for_url("**/accounts/2fa/authenticate/")
    page.fill("input[name=code]", codes[0])
    page.click("button:has-text('Log in')")
    page.wait_for_url(f"**/w/{workspace.slug}/")

    # A recovery code works once.
    page.click("text=Log out")
    page.wait_for_url("**/accounts/login/")
    log_in(page, owner.email)
    page.wait_for_url("**/accounts/2fa/authenticate/")
    page.fill("input[name=code]", codes[0])
    page.click("button:has-text('Log in')")
    assert "Incorrect code" in page.content()


@pytest.mark.browser
def test_a_workspace_that_requires_mfa_sends_members_to_set_it_up(page, owner, workspace, make_member, verified):
    member = verified(make_member(workspace, Role.MEMBER))
    workspace.require_mfa = True
    workspace.save()
    log_in(page, member.email)
    page.wait_for_url("**/accounts/2fa/")
    assert "Acme requires two-factor authentication" in page.content()
    page.click("text=Set up an authenticator app")
    reauthenticate(page)
    secret = page.input_value("#authenticator_secret")
    page.fill("input[name=code]", fresh_totp(secret))
    page.click("button:has-text('Activate')")
    page.wait_for_url("**/accounts/2fa/recovery-codes/")
    page.click("text=Continue to your workspace")
    page.wait_for_url(f"**/w/{workspace.slug}/")
    assert page.locator("h1").inner_text() == "Acme"


@pytest.mark.browser
def test_a_passkey_is_added_and_logs_in(page, owner, workspace, verified):
    verified(owner)
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
        "hasUserVerification": True, "isUserVerified": True, "automaticPresenceSimulation": True,
    }})
    log_in(page, owner.email)
    page.wait_for_url(f"**/w/{workspace.slug}/")
    page.goto("/accounts/2fa/webauthn/add/")
    reauthenticate(page)
    page.check("input[name=passwordless]")
    page.click("#mfa_webauthn_add")
    page.wait_for_url("**/accounts/2fa/recovery-codes/")
    assert Authenticator.objects.filter(user=owner, type="webauthn").exists()
    page.click("text=Log out")
    page.wait_for_url("**/accounts/login/")
    page.click("#passkey_login")
    page.wait_for_url(f"**/w/{workspace.slug}/")


# --- Server side -----------------------------------------------------------------------------


def test_mfa_needs_a_verified_address(client_for, owner):
    client = client_for(owner)
    assert "Verify your email address" in client.get("/accounts/2fa/").content.decode()
    response = client.get("/accounts/2fa/totp/activate/")
    assert response.status_code == 302  # allauth refuses until the address is verified
    assert not Authenticator.objects.filter(user=owner).exists()


def test_login_asks_for_the_second_factor(client, owner, workspace, verified, client_for):
    verified(owner)
    secret = activate_totp(client_for(owner))
    response = client.post("/accounts/login/", {"login": owner.email, "password": PASSWORD})
    assert response.url == "/accounts/2fa/authenticate/"
    assert client.get(f"/w/{workspace.slug}/").status_code == 302  # not logged in yet
    response = client.post("/accounts/2fa/authenticate/", {"code": fresh_totp(secret)})
    assert response.status_code == 302
    assert client.get(f"/w/{workspace.slug}/").status_code == 200


def test_only_owners_require_mfa_and_only_with_mfa_themselves(client_for, owner, workspace, make_member, verified):
    admin = make_member(workspace, Role.ADMIN)
    url = f"/w/{workspace.slug}/settings/"
    assert client_for(admin).post(url, {"action": "mfa", "require_mfa": "on"}).status_code == 403
    assert "Only owners change this" in client_for(admin).get(url).content.decode()
    owner_client = client_for(owner)
    response = owner_client.post(url, {"action": "mfa", "require_mfa": "on"})
    assert response.url == "/accounts/2fa/"  # set it up for yourself first
    workspace.refresh_from_db()
    assert not workspace.require_mfa
    verified(owner)
    activate_totp(owner_client)
    owner_client.post(url, {"action": "mfa", "require_mfa": "on"})
    workspace.refresh_from_db()
    assert workspace.require_mfa
    assert AuditEvent.objects.filter(workspace=workspace, action="workspace.mfa_required").exists()
    assert "Members must use two-factor authentication" in owner_client.get(url).content.decode()
    # The admin, without MFA, now sees none of the workspace's pages.
    for path in ["", "settings/", "settings/members/", "secrets/dev/"]:
        response = client_for(admin).get(f"/w/{workspace.slug}/{path}")
        assert response.status_code == 302 and response.url == "/accounts/2fa/", path
    htmx = client_for(admin).get(f"/w/{workspace.slug}/", HTTP_HX_REQUEST="true")
    assert htmx["HX-Redirect"] == "/accounts/2fa/"
    # Other workspaces of the same people are not affected.
    from devpilot.workspaces import create_workspace

    other = create_workspace(admin, "Other")
    assert client_for(admin).get(f"/w/{other.slug}/").status_code == 200
    owner_client.post(url, {"action": "mfa"})
    workspace.refresh_from_db()
    assert not workspace.require_mfa

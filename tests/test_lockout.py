"""Failed logins are throttled per account, for the site and the admin alike, and the lock lifts.

settings.ACCOUNT_RATE_LIMITS["login_failed"] = "20/m/ip,5/15m/key": five wrong passwords for
one account within 15 minutes refuse the next attempt even with the right password.
"""

import re
import time

import pytest
from allauth.core.internal import ratelimit
from django.core import mail

from tests.conftest import PASSWORD

LIMIT = 5
WINDOW = 15 * 60


class Clock:
    """Stands in for time in allauth's rate limiter, so a test can jump past the window."""

    def __init__(self):
        self.offset = 0

    def time(self):
        return time.time() + self.offset

    def __getattr__(self, name):
        return getattr(time, name)


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(ratelimit, "time", fake)
    return fake


def attempt(client, email, password, next_url=None):
    data = {"login": email, "password": password}
    url = "/accounts/login/" + (f"?next={next_url}" if next_url else "")
    return client.post(url, data)


def logged_in(client):
    return "_auth_user_id" in client.session


def test_wrong_passwords_lock_the_account_even_for_the_right_one_then_the_lock_lifts(client, owner, clock):
    for _ in range(LIMIT):
        assert "not correct" in attempt(client, owner.email, "wrong").content.decode()
    refused = attempt(client, owner.email, PASSWORD)
    assert refused.status_code == 200 and "Too many failed login attempts" in refused.content.decode()
    assert not logged_in(client)
    # Another address or browser does not help: the count is the account's.
    from django.test import Client

    other = Client(REMOTE_ADDR="198.51.100.7")
    attempt(other, owner.email, PASSWORD)
    assert not logged_in(other)
    # Still locked just before the window ends; let in once it has passed.
    clock.offset = WINDOW - 60
    assert not logged_in(client) and "Too many" in attempt(client, owner.email, PASSWORD).content.decode()
    clock.offset = WINDOW + 1
    assert attempt(client, owner.email, PASSWORD).status_code == 302
    assert logged_in(client)


def test_the_lock_does_not_touch_other_accounts(client, owner, make_user):
    make_user("other@example.com")
    for _ in range(LIMIT):
        attempt(client, owner.email, "wrong")
    assert attempt(client, "other@example.com", PASSWORD).status_code == 302


def test_a_password_reset_lifts_the_lock(client, owner):
    for _ in range(LIMIT):
        attempt(client, owner.email, "wrong")
    client.post("/accounts/password/reset/", {"email": owner.email})
    link = re.search(r"http://testserver(/accounts/password/reset/key/\S+/)", mail.outbox[-1].body).group(1)
    form_url = client.get(link).url
    client.post(form_url, {"password1": "a-brand-new-passphrase", "password2": "a-brand-new-passphrase"})
    assert attempt(client, owner.email, "a-brand-new-passphrase").status_code == 302


def test_the_admin_login_is_the_same_throttled_login(client, owner, clock):
    owner.is_staff = owner.is_superuser = True
    owner.save()
    # The admin's own form is not a way around the limits: it sends you to the site's login.
    response = client.post("/admin/login/", {"username": owner.email, "password": PASSWORD})
    assert response.status_code == 302 and response.url.startswith("/accounts/login/?next=")
    assert not logged_in(client)
    for _ in range(LIMIT):
        attempt(client, owner.email, "wrong", next_url="/admin/")
    refused = attempt(client, owner.email, PASSWORD, next_url="/admin/")
    assert "Too many failed login attempts" in refused.content.decode()
    assert client.get("/admin/").status_code == 302
    clock.offset = WINDOW + 1
    response = attempt(client, owner.email, PASSWORD, next_url="/admin/")
    assert response.url == "/admin/"
    assert client.get("/admin/").status_code == 200

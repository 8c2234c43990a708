"""Settings for the test suite: the real settings with test keys and fast hashing.

DATABASE_URL and REDIS_URL still come from the environment, so CI runs on PostgreSQL.
"""

import os

os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production")
os.environ.setdefault(
    "DEVPILOT_ENCRYPTION_KEYS", "dGVzdC1rZXktdGVzdC1rZXktdGVzdC1rZXktdGVzdC0=,b2xkLWtleS1vbGQta2V5LW9sZC1rZXktb2xkLWtleS0="
)
os.environ.setdefault("DEVPILOT_HTTPS", "false")
os.environ.setdefault("DEBUG", "false")

from devpilot.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
# Worker processes started by tests are pointed at a fake through the environment.
DIGITALOCEAN_API_URL = os.environ.get("DIGITALOCEAN_API_URL", "https://api.digitalocean.test")
DEVPILOT_PUBLIC_URL = "http://testserver"
ALLOWED_HOSTS = ["*"]

# Tasks run inline unless a worker test starts real qcluster processes (they set this to false).
Q_CLUSTER["sync"] = os.environ.get("DEVPILOT_TEST_Q_SYNC", "true") == "true"  # noqa: F405
# Static files come from the finders in tests; there is no collectstatic output to serve.
STATIC_ROOT = None
WHITENOISE_USE_FINDERS = True

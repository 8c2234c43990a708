"""Devpilot settings, all read from the environment (and a local .env file).

The defaults run on one machine (SQLite, django-q2's ORM broker). With DEBUG off
the defaults are production settings: `manage.py check --deploy` reports nothing.
"""

from pathlib import Path

import environ
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent
VERSION = "0.1.0"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env("SECRET_KEY")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])

# Newest first. Each key: 32 random bytes in URL-safe base64 (Fernet.generate_key()).
DEVPILOT_ENCRYPTION_KEYS = env.list("DEVPILOT_ENCRYPTION_KEYS")
DEVPILOT_PUBLIC_URL = env("DEVPILOT_PUBLIC_URL", default="http://127.0.0.1:8000").rstrip("/")
# The agent refuses plain http:// unless this says the network between Droplets and Devpilot is private.
DEVPILOT_AGENT_ALLOW_HTTP = env.bool("DEVPILOT_AGENT_ALLOW_HTTP", default=False)
# Sensitive variables and POST fields stay hidden in error reports, DEBUG or not.
DEFAULT_EXCEPTION_REPORTER_FILTER = "devpilot.reporting.AlwaysSafeExceptionReporterFilter"
DIGITALOCEAN_API_URL = env("DIGITALOCEAN_API_URL", default="https://api.digitalocean.com").rstrip("/")
DEVPILOT_AUTOSYNC_DEBOUNCE = env.int("DEVPILOT_AUTOSYNC_DEBOUNCE", default=5)
DEVPILOT_LEASE_SECONDS = env.int("DEVPILOT_LEASE_SECONDS", default=20)  # worker leases; the sweeper resumes work after one
DEVPILOT_DO_CALLS_PER_MINUTE = env.int("DEVPILOT_DO_CALLS_PER_MINUTE", default=240)  # per token; DigitalOcean allows 250
DEVPILOT_DO_CALLS_PER_HOUR = env.int("DEVPILOT_DO_CALLS_PER_HOUR", default=4800)  # and 5,000 (connections/budget.py)
DEVPILOT_HTTPS = env.bool("DEVPILOT_HTTPS", default=not DEBUG)
# Folder history (point-in-time recovery): snapshots older than this many days are folded into one base
# snapshot (the state then stays recoverable) and versions nothing refers to are deleted. 0 keeps all.
DEVPILOT_SNAPSHOT_RETENTION_DAYS = env.int("DEVPILOT_SNAPSHOT_RETENTION_DAYS", default=0)
REDIS_URL = env("REDIS_URL", default="")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "ninja",  # the API reference page and its vendored Swagger UI files
    "devpilot",
    "connections",
    "syncs",
    "provisioning",
    "django_q",  # after devpilot, whose `qcluster` command (schedules within a second) takes precedence
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "devpilot.accounts.SensitiveAccountFormsMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "devpilot.middleware.DevpilotMiddleware",
]

ROOT_URLCONF = "devpilot.urls"
WSGI_APPLICATION = "devpilot.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "devpilot.context_processors.workspace",
                "devpilot.accounts.account_pages",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
# Persistent connections: a request reuses its worker's connection instead of paying a new
# connection (and PostgreSQL backend) each time; the health check drops one the server closed.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web server and worker write to one file: wait for the lock instead of failing.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "devpilot.User"
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "account_login"

# Accounts: django-allauth (devpilot/accounts.py). Only allauth's backend, so every
# password check (the login page, the admin's, reauthentication) is rate limited.
AUTHENTICATION_BACKENDS = ["allauth.account.auth_backends.AuthenticationBackend"]
ACCOUNT_ADAPTER = "devpilot.accounts.AccountAdapter"
ACCOUNT_FORMS = {"signup": "devpilot.forms.SignUpForm"}
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_UNIQUE_EMAIL = True
# "optional": a verification link is sent on sign-up and unverified accounts can log in,
# but an invitation is accepted only by a verified address (invitation sign-ups verify
# before they join) and MFA needs a verified address. "mandatory" for installs whose
# mail is known to work.
ACCOUNT_EMAIL_VERIFICATION = env("DEVPILOT_EMAIL_VERIFICATION", default="optional")
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_EMAIL_SUBJECT_PREFIX = "Devpilot: "
ACCOUNT_SESSION_REMEMBER = None
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_PRESERVE_USERNAME_CASING = False
# Failed logins: 5 per account per 15 minutes and 20 a minute per address. Older failures
# age out (a sliding window), and a completed password reset clears the account's count,
# so nobody can keep the real owner out.
ACCOUNT_RATE_LIMITS = {"login_failed": "20/m/ip,5/15m/key"}
MFA_ADAPTER = "devpilot.accounts.MFAAdapter"
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes", "webauthn"]
MFA_PASSKEY_LOGIN_ENABLED = True
MFA_TOTP_ISSUER = "Devpilot"
MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = not DEVPILOT_HTTPS

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False  # Devpilot speaks English only: gettext is a pass-through, not a catalog lookup per string
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Devpilot <devpilot@localhost>")
# EMAIL_URL (e.g. smtp+tls://user:password@smtp.example.com:587) says where mail goes.
# Without it: printed on the console in DEBUG, the local SMTP server otherwise.
if env("EMAIL_URL", default="") or not DEBUG:
    _email = env.email_url("EMAIL_URL", default="smtp://localhost:25")
    MAILERS = {
        "default": {
            "BACKEND": _email["EMAIL_BACKEND"],
            "OPTIONS": {
                "host": _email["EMAIL_HOST"],
                "port": _email["EMAIL_PORT"],
                "username": _email["EMAIL_HOST_USER"],
                "password": _email["EMAIL_HOST_PASSWORD"],
                "use_tls": _email.get("EMAIL_USE_TLS", False),
                "use_ssl": _email.get("EMAIL_USE_SSL", False),
            },
        }
    }
else:
    MAILERS = {"default": {"BACKEND": "django.core.mail.backends.console.EmailBackend"}}

# Security: HTTPS settings move together.
SECURE_SSL_REDIRECT = DEVPILOT_HTTPS
SESSION_COOKIE_SECURE = DEVPILOT_HTTPS
CSRF_COOKIE_SECURE = DEVPILOT_HTTPS
SECURE_HSTS_SECONDS = 31536000 if DEVPILOT_HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = DEVPILOT_HTTPS
SECURE_HSTS_PRELOAD = DEVPILOT_HTTPS
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if DEVPILOT_HTTPS else None
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# No inline scripts or styles anywhere: every page passes this policy.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "font-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

# django-q2: a task's timeout is below its retry so a slow task is never run twice
# at once; failures are acknowledged after max_attempts instead of redelivered forever.
Q_CLUSTER = {
    "name": "devpilot",
    "workers": env.int("Q_WORKERS", default=2),
    "timeout": 240,
    "retry": 300,
    "max_attempts": 3,
    "ack_failures": True,
    "catch_up": False,
    "save_limit": 1000,
    "label": "Tasks",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
    Q_CLUSTER["poll"] = 0.2  # seconds between the ORM broker's queue polls (django-q2's default)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

DEVPILOT_API_RATE_LIMIT = env.int("DEVPILOT_API_RATE_LIMIT", default=600)  # requests a minute a token
CACHES = {
    # Django's Redis backend, with one client per connection pool rather than one per call (devpilot/cache.py).
    "default": {"BACKEND": "devpilot.cache.RedisCache", "LOCATION": REDIS_URL}
    if REDIS_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}
# With a shared cache, a page reads its session from Redis (written through to the database, so a
# cache flush logs nobody out); a per-process cache cannot share sessions, so then the database alone.
SESSION_ENGINE = ("django.contrib.sessions.backends.cached_db" if REDIS_URL
                  else "django.contrib.sessions.backends.db")

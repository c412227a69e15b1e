"""Settings, read from the environment (and an optional `.env` file).

Every name here is documented in the README's configuration table.
"""

import hashlib
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# Values already in the environment win over the file's.
ENV_FILE = Path(env.str("ENV_FILE", default=str(BASE_DIR / ".env")))
if ENV_FILE.is_file():
    env.read_env(ENV_FILE)

DEBUG = env.bool("DEBUG", default=False)

# Commands that only read the code (its models, its messages) sign nothing,
# so they also run on a fresh clone that has no secret yet.
CODE_ONLY_COMMANDS = {"makemigrations", "makemessages", "compilemessages"}
RUNNING_COMMAND = (
    sys.argv[1] if Path(sys.argv[0]).name in ("manage.py", "django-admin") and len(sys.argv) > 1 else ""
)

SECRET_KEY = env("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG and RUNNING_COMMAND not in CODE_ONLY_COMMANDS:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set it in the environment or in .env "
            "(`make run` writes a .env for local use)."
        )
    SECRET_KEY = "django-insecure-local-development-only"

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "smscampaigns",
    "vibes",
    "marketing_activities",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Vibes' callbacks need none of the middleware below (vibes/middleware.py).
    "vibes.middleware.CallbacksMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "smscampaigns.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "smscampaigns.wsgi.application"

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Django's SQLite, with this process's writers queued for the write lock
    # in the order they came instead of polling for it (smscampaigns/db/sqlite3).
    DATABASES["default"]["ENGINE"] = "smscampaigns.db.sqlite3"
    # WAL lets the web app read while a campaign run writes; IMMEDIATE
    # transactions take the write lock up front instead of failing on upgrade.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL",
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
        }
    )
    # The test database is a file, not shared-cache memory: runs, callbacks
    # and worker processes write to it at once, which shared-cache SQLite
    # answers with "table is locked" instead of waiting its turn.
    DATABASES["default"].setdefault("TEST", {}).setdefault(
        "NAME",
        str(
            Path(tempfile.gettempdir())
            / f"smscampaigns-test-{hashlib.md5(str(BASE_DIR).encode()).hexdigest()[:8]}.sqlite3"
        ),
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "marketing_activities:index"
LOGOUT_REDIRECT_URL = "login"

# The installation's language: the interface's default, and the language of
# the system tokens ({{system.date}}) in every SMS.
LANGUAGE_CODE = env("LANGUAGE_CODE", default="en")
LANGUAGES = [
    ("en", _("English")),
    ("de", _("German")),
    ("sv", _("Swedish")),
    ("nl", _("Dutch")),
    ("it", _("Italian")),
    ("fr", _("French")),
]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = env("TIME_ZONE", default="UTC")
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# --- Production hardening (see `manage.py check --deploy`) -----------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# --- People ----------------------------------------------------------------
# Numbers written without a country code are read as numbers of this region.
PHONE_DEFAULT_REGION = env("PHONE_DEFAULT_REGION", default="US").upper()

# --- Vibes -----------------------------------------------------------------
# With no Vibes credentials the app talks to the local simulator
# (`manage.py vibes_simulator`), which `make run` starts on this port.
VIBES_PLATFORM_URL = env("VIBES_PLATFORM_URL", default="http://127.0.0.1:8787")
VIBES_CONNECT_URL = env("VIBES_CONNECT_URL", default="http://127.0.0.1:8787")
VIBES_COMPANY_KEY = env("VIBES_COMPANY_KEY", default="demo-company")
VIBES_USERNAME = env("VIBES_USERNAME", default="demo")
VIBES_PASSWORD = env("VIBES_PASSWORD", default="demo-password")
VIBES_SHORT_CODE = env("VIBES_SHORT_CODE", default="12345")
VIBES_RATE_LIMIT = env.float("VIBES_RATE_LIMIT", default=100.0)
VIBES_CONNECT_TIMEOUT = env.float("VIBES_CONNECT_TIMEOUT", default=3.05)
VIBES_READ_TIMEOUT = env.float("VIBES_READ_TIMEOUT", default=15.0)
VIBES_CALLBACK_USERNAME = env("VIBES_CALLBACK_USERNAME", default="vibes")
VIBES_CALLBACK_PASSWORD = env("VIBES_CALLBACK_PASSWORD", default="")
VIBES_CALLBACK_ALLOWED_IPS = env.list("VIBES_CALLBACK_ALLOWED_IPS", default=[])
# The callbacks URL as Vibes reaches it (with credentials), sent with every
# SMS so delivery receipts come back; empty: no receipts are asked for.
VIBES_DELIVERY_RECEIPT_URL = env("VIBES_DELIVERY_RECEIPT_URL", default="")


def site_address(public_callbacks_url: str, trusted_origins: list[str]) -> str:
    """The installation's public address (scheme and host), as far as the
    settings tell it: the callbacks URL Vibes reaches (never its
    credentials), else the first trusted origin, else the address `make run` serves."""
    public = urlsplit(public_callbacks_url)
    if public.scheme and public.hostname:
        port = f":{public.port}" if public.port else ""
        host = f"[{public.hostname}]" if ":" in public.hostname else public.hostname
        return f"{public.scheme}://{host}{port}"
    if trusted_origins:
        return trusted_origins[0]
    return "http://127.0.0.1:8000"


# Where the short links of tracked links point (`<this>/l/<code>`): short
# is better, every character counts in an SMS.
SHORT_LINK_BASE_URL = env(
    "SHORT_LINK_BASE_URL", default=site_address(VIBES_DELIVERY_RECEIPT_URL, CSRF_TRUSTED_ORIGINS)
).rstrip("/")

# How long a person has to answer Vibes' confirmation text before a
# Subscribe step's pending row expires (Marketo documents 24 hours).
VIBES_CONFIRMATION_HOURS = env.float("VIBES_CONFIRMATION_HOURS", default=24.0)

# --- Campaign runs -----------------------------------------------------------
# Calls in flight at once per worker (the rate limit still applies).
RUNNER_CONCURRENCY = env.int("RUNNER_CONCURRENCY", default=8)
# How long a worker taking over an interrupted batch waits for the delivery
# receipts of SMS sent just before the interruption.
RUNNER_RECEIPT_GRACE = env.float("RUNNER_RECEIPT_GRACE", default=10.0)
# Where the Run button's runs (and the admin's subscriber syncs) go: "auto"
# (Celery with a broker, else a thread of the web process), "celery", "thread"
# or "inline" (tests).
RUNNER_BACKGROUND = env("RUNNER_BACKGROUND", default="auto")
# Where Vibes callbacks are applied: "request" (stored and applied in one
# transaction) or "background" (the request only stores them; a worker applies
# them, where RUNNER_BACKGROUND says: Celery, a thread, or "inline" at commit).
VIBES_CALLBACKS_APPLY = env("VIBES_CALLBACKS_APPLY", default="request")
# With Celery: how many tasks (so, up to how many workers) share one run.
RUNNER_PARALLEL_TASKS = env.int("RUNNER_PARALLEL_TASKS", default=2)
# Quiet hours (the window is the administrators', in the admin): off only
# when set so here, for an installation that must text at any hour (tests, staging).
QUIET_HOURS_ENABLED = env.bool("QUIET_HOURS_ENABLED", default=True)

# --- Background work -------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE = {
    "run-due-campaigns": {"task": "marketing_activities.tasks.run_due_campaigns_task", "schedule": 60.0},
    "apply-pending-callbacks": {"task": "vibes.tasks.callbacks_apply_pending_task", "schedule": 60.0},
    "check-sms-figures": {"task": "marketing_activities.tasks.sms_figures_check_task", "schedule": 86400.0},
}

# The DEBUG error page and the error e-mails hide every secret, also the
# credentials inside URLs (smscampaigns/error_reports.py).
DEFAULT_EXCEPTION_REPORTER = "smscampaigns.error_reports.SecretHidingExceptionReporter"
DEFAULT_EXCEPTION_REPORTER_FILTER = "smscampaigns.error_reports.SecretHidingReporterFilter"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="WARNING")},
    "loggers": {
        "vibes": {"level": env("VIBES_LOG_LEVEL", default="WARNING")},
        "marketing_activities": {"level": env("RUNNER_LOG_LEVEL", default="INFO")},
    },
}

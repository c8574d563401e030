"""One env-driven settings module.

Without ``DATABASE_URL`` and ``REDIS_URL`` it runs embedded: SQLite in ``var/``, an in-memory channel
layer and an in-process worker pool. With them it is the production stack. Every variable read here is
listed in ``.env.example``.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import csp.constants as _csp
import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from None


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    return [part.strip() for part in raw.split(",") if part.strip()]


# Off unless asked for: a deployment that forgets the variable must not show settings on a 500 or
# run on the built-in keys. ./scripts/demo and ./scripts/test set it for themselves.
DEBUG = env_bool("DEBUG", False)

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY is required when DEBUG is false")
    SECRET_KEY = "dev-only-insecure-key-" + "x" * 40

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# Fernet key for secrets at rest (endpoint API keys). Dev falls back to one derived from SECRET_KEY.
FIELD_ENCRYPTION_KEY = env_str("FIELD_ENCRYPTION_KEY")
if not FIELD_ENCRYPTION_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEY is required when DEBUG is false")
    FIELD_ENCRYPTION_KEY = base64.urlsafe_b64encode(hashlib.sha256(SECRET_KEY.encode()).digest()).decode()

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "axes",
    "csp",
    "benchmarks",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "benchmarks.middleware.CurrentTeamMiddleware",
    "axes.middleware.AxesMiddleware",  # last: it answers a locked-out login
]

# Login throttling (django-axes): after LOGIN_FAILURE_LIMIT wrong passwords for one username from one
# address, that pair is locked out for LOGIN_COOLOFF_MINUTES (HTTP 429); a success resets the count.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = env_float("LOGIN_COOLOFF_MINUTES", 15.0) / 60.0
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False

# Content-Security-Policy (django-csp) on every response: everything from this origin only; scripts
# from static/ (plotly.min.js included) plus inline ones carrying this response's nonce
# (``<script nonce="{{ CSP_NONCE }}">``); no inline event handlers. Styles may be inline (plotly sets
# style attributes on its SVG; a style cannot run code). ``data:`` images for the empty favicon.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [_csp.SELF],
        "script-src": [_csp.SELF, _csp.NONCE],
        "style-src": [_csp.SELF, _csp.UNSAFE_INLINE],
        "img-src": [_csp.SELF, "data:"],
        "connect-src": [_csp.SELF],  # the run page's websocket: same host (CSP3 'self' covers ws/wss)
        "object-src": [_csp.NONE],
        "base-uri": [_csp.SELF],
        "form-action": [_csp.SELF],
        "frame-ancestors": [_csp.NONE],
    }
}

ROOT_URLCONF = "llmperf_site.urls"
ASGI_APPLICATION = "llmperf_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "benchmarks.context_processors.teams",
                "csp.context_processors.nonce",
            ],
        },
    },
]

DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 0))}
else:
    SQLITE_PATH = Path(env_str("SQLITE_PATH", str(BASE_DIR / "var" / "db.sqlite3")))
    SQLITE_PATH.parent.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": SQLITE_PATH,
            # Worker threads write records while pages read: WAL, and wait for the lock instead of failing.
            "OPTIONS": {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL;",
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL")
# redis-py 8 reads with a 5 s socket timeout by default and channels_redis blocks up to 5 s in
# BZPOPMIN waiting for a message, so an idle viewer's websocket can close with 1011 every few
# seconds (bench/bench_live.py sets 30). Unset keeps redis-py's default: a longer timeout makes
# channels' test teardown hang (tests/benchmarks/test_access.py), not yet understood.
CHANNEL_SOCKET_TIMEOUT_S = env_str("CHANNEL_SOCKET_TIMEOUT_S")
if REDIS_URL:
    _host: str | dict[str, object] = (
        {"address": REDIS_URL, "socket_timeout": float(CHANNEL_SOCKET_TIMEOUT_S)}
        if CHANNEL_SOCKET_TIMEOUT_S
        else REDIS_URL
    )
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [_host]}}
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Embedded mode: tasks run on a thread pool inside this process (see benchmarks/services/dispatch.py).
EMBEDDED_WORKER = not REDIS_URL
# Anyone may create an account: on by default for the demo and development, off for a deployment
# (an admin creates accounts and adds people to teams).
ALLOW_SIGNUP = env_bool("ALLOW_SIGNUP", DEBUG or EMBEDDED_WORKER)
EMBEDDED_WORKER_THREADS = env_int("EMBEDDED_WORKER_THREADS", 8)
# Where load, test connections and webhooks may go (runner.policy): CIDRs, host names or host:port.
# The app's own database and broker are always denied, and link-local ranges (cloud metadata) unless
# an exact entry allows one; everything else, loopback included, is allowed unless TARGET_ALLOW narrows it.
TARGET_ALLOW = env_list("TARGET_ALLOW", [])
TARGET_DENY = env_list("TARGET_DENY", [])

# A load shard hands its records and live deltas to a writer process of its own, so database and
# broker work never takes the GIL from the measuring loop (embedded mode: a thread, since its live
# bus lives in this process).
SHARD_SINK_PROCESS = env_bool("SHARD_SINK_PROCESS", not EMBEDDED_WORKER)
# CPUs the writer process runs on ("1", "2-3,6"); empty: the worker's own. On a load worker with
# cores to spare, keep the writer off the core the measuring loop runs on.
SHARD_WRITER_CPUS = env_str("SHARD_WRITER_CPUS", "")

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_LOAD_QUEUE = "load"
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_DIRECT = True  # each worker also consumes its own queue, so shards go to chosen workers
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE = {
    "reap-stale-runs": {
        "task": "benchmarks.tasks.reap_stale_runs",
        "schedule": env_float("REAP_INTERVAL_S", 10.0),
    },
    # Scheduled plans live in the database (PlanSchedule); this only looks for due ones.
    "tick-schedules": {"task": "benchmarks.tasks.tick_schedules", "schedule": 60.0},
    # Raw request records past their team's retention (Team.raw_records_days), deleted in batches.
    "purge-records": {"task": "benchmarks.tasks.purge_records", "schedule": 3600.0},
}

# A running shard that has not heartbeated for this long is dead; a queued one never picked up too.
SHARD_HEARTBEAT_TIMEOUT_S = env_float("SHARD_HEARTBEAT_TIMEOUT_S", 20.0)
# finalize waits this long for records a shard counted but the database does not hold yet
FINALIZE_SETTLE_S = env_float("FINALIZE_SETTLE_S", 5.0)
SHARD_START_TIMEOUT_S = env_float("SHARD_START_TIMEOUT_S", 120.0)
# Records a shard's writer could not store while the database was unreachable wait here (JSONL per
# run and shard) until it returns; on a shared volume if aggregators run on other machines.
SHARD_SPOOL_DIR = Path(env_str("SHARD_SPOOL_DIR", str(BASE_DIR / "var" / "spool")))
# How long a shard at its end waits for an unreachable database before leaving its row to the reaper.
SHARD_DATABASE_PATIENCE_S = env_float("SHARD_DATABASE_PATIENCE_S", 120.0)
# Shards per run when the plan says "auto" and no worker answers the inspect call.
DEFAULT_SHARD_COUNT = env_int("DEFAULT_SHARD_COUNT", 1)
# Dataset uploads above these limits are refused with a message saying which limit was hit.
DATASET_MAX_MB = env_int("DATASET_MAX_MB", 100)
DATASET_MAX_ITEMS = env_int("DATASET_MAX_ITEMS", 100_000)
# One row: JSON nesting levels, one line of JSONL or text (checked before parsing) and one prompt's
# text (characters; ~1M tokens at the default). Each is refused per row, naming the limit.
DATASET_MAX_DEPTH = env_int("DATASET_MAX_DEPTH", 64)
DATASET_MAX_LINE_KB = env_int("DATASET_MAX_LINE_KB", 8 * 1024)
DATASET_MAX_PROMPT_CHARS = env_int("DATASET_MAX_PROMPT_CHARS", 4_000_000)

# How large a run may be (runner.Limits): checked when a profile, endpoint or plan is saved (forms,
# plans as code), again when a run starts, and by the engine on every shard; each refusal names the
# setting. LIMIT_USERS also bounds open-loop requests in flight; LIMIT_RATE is requests per second.
LIMIT_USERS = env_int("LIMIT_USERS", 10_000)
LIMIT_SPAWN_RATE = env_float("LIMIT_SPAWN_RATE", 1_000.0)
LIMIT_RATE = env_float("LIMIT_RATE", 10_000.0)
LIMIT_DURATION_S = env_float("LIMIT_DURATION_S", 86_400.0)
LIMIT_REQUESTS = env_int("LIMIT_REQUESTS", 10_000_000)
LIMIT_TIMEOUT_S = env_float("LIMIT_TIMEOUT_S", 3_600.0)
LIMIT_REPLAY_ENTRIES = env_int("LIMIT_REPLAY_ENTRIES", 1_000_000)
LIMIT_REPLAY_S = env_float("LIMIT_REPLAY_S", 86_400.0)
LIMIT_PREVIEW_POINTS = env_int("LIMIT_PREVIEW_POINTS", 2_000)
LIMIT_SHARDS = env_int("LIMIT_SHARDS", 64)

# Per-team quotas (a team's own max_concurrent_runs / max_load_slots overrides them): runs at once,
# and shards at once over all its runs. A run over quota, or waiting for a free load-worker slot
# (a worker's pool size, from Celery's inspect), stays queued with its place in line and starts
# when a slot frees (services/runs/admit.py, from housekeeping and whenever a run ends).
TEAM_MAX_RUNS = env_int("TEAM_MAX_RUNS", 4)
TEAM_MAX_LOAD_SLOTS = env_int("TEAM_MAX_LOAD_SLOTS", 16)

# Links in alert webhooks and e-mails point here.
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000")
# Regression alerts by e-mail (Django's SMTP settings; the console backend prints them instead).
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "llmperf@localhost")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# plotly.min.js comes from the installed plotly package: no CDN, no vendored copy in git.
_PLOTLY_DIR = Path(__import__("plotly").__file__).parent / "package_data"
STATICFILES_DIRS = [BASE_DIR / "static", ("vendor/plotly", str(_PLOTLY_DIR))]
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # container health checks speak plain HTTP
if env_bool("USE_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # httpx logs every request line at INFO; keep it quiet (URLs only, but noisy under load).
    "loggers": {"httpx": {"level": "WARNING"}},
}

"""Quaymaster settings: every value comes from the environment, read here and nowhere else.

The README lists each variable. ``QUAYMASTER_ENV=development`` (the default) fills in a
SQLite database and generated secrets under ``var/``; ``production`` requires them.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import environ

from quaymaster.config import (
    files_storage,
    metrics_networks,
    persistent_secret,
    proxy_ssl_header,
    required_in_production,
    split_keys,
    web_origins,
)
from quaymaster.logs import logging_config

env = environ.Env()

BASE_DIR = Path(__file__).resolve().parent.parent
# Generated secrets, the SQLite database and uploaded files live here in development.
VAR_DIR = Path(env.str("QUAYMASTER_VAR_DIR", default=str(BASE_DIR / "var")))

QUAYMASTER_ENV = env.str("QUAYMASTER_ENV", default="development")
if QUAYMASTER_ENV not in {"development", "production"}:
    raise environ.ImproperlyConfigured(
        f"QUAYMASTER_ENV must be 'development' or 'production', not {QUAYMASTER_ENV!r}"
    )
PRODUCTION = QUAYMASTER_ENV == "production"

DEBUG = env.bool("DEBUG", default=not PRODUCTION)

_secret_key = env.str("SECRET_KEY", default="")
required_in_production("SECRET_KEY", _secret_key, PRODUCTION)
SECRET_KEY = _secret_key or persistent_secret(VAR_DIR / "secret_key", make="django")

_encryption_keys = env.str("QUAYMASTER_ENCRYPTION_KEYS", default="")
required_in_production("QUAYMASTER_ENCRYPTION_KEYS", _encryption_keys, PRODUCTION)
# Keys that encrypt queue credentials at rest; the first encrypts, all decrypt (rotation).
QUAYMASTER_ENCRYPTION_KEYS = split_keys(
    _encryption_keys or persistent_secret(VAR_DIR / "encryption_key", make="fernet")
)

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[] if PRODUCTION else ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'quaymaster.sqlite3'}")
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web process, the relay and the workers read while one of them writes.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    )
    # Tests use a file too: an in-memory database with a shared cache fails at once, instead of
    # waiting, when two threads write (a worker is several threads that write).
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-quaymaster.sqlite3")}
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "django_celery_beat",
    "axes",
    "audit",
    "accounts",
    "backoffice",
    "zstorage",
    "queues",
    "workers",
    "jobs",
    "alerts",
]

MIDDLEWARE = [
    # First: every line a request logs carries its id, which the answer sends back.
    "quaymaster.logs.RequestIdMiddleware",
    # First: counts and times every request, the other middleware's work included.
    "quaymaster.metrics_views.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "accounts.epoch.EpochMiddleware",
    # Before CSRF: refuses an oversized CSV upload by its Content-Length, unread (CSRF's check
    # reads the whole multipart body, spooling the file to disk).
    "backoffice.uploads.UploadSizeMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Who acts, for the audit trail (audit.context): the request's user, token and address.
    "audit.middleware.AuditContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last: turns a login that axes refused (locked out) into the login page with status 429.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "quaymaster.urls"
WSGI_APPLICATION = "quaymaster.wsgi.application"
ASGI_APPLICATION = "quaymaster.asgi.application"

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
            ],
        },
    },
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
# The demo admin that `manage.py bootstrap_demo` (and so `make run`) creates; a password is
# generated and kept under var/ when none is given.
QUAYMASTER_ADMIN_USERNAME = env.str("QUAYMASTER_ADMIN_USERNAME", default="admin")
QUAYMASTER_ADMIN_PASSWORD = env.str("QUAYMASTER_ADMIN_PASSWORD", default="")

# Login brute-force protection (django-axes, see backoffice/login_lockout.py): this many failed
# logins for one username from one client address lock that pair (the right password is refused
# too) until this long after the last failure; a successful login clears the count. Counts live
# in the database, shared by every web process; `manage.py axes_reset` (or axes_reset_username,
# axes_reset_ip_username) unlocks at once.
QUAYMASTER_LOGIN_FAILURE_LIMIT = env.int("QUAYMASTER_LOGIN_FAILURE_LIMIT", default=5)
QUAYMASTER_LOGIN_COOLOFF_MINUTES = env.float("QUAYMASTER_LOGIN_COOLOFF_MINUTES", default=15.0)
if QUAYMASTER_LOGIN_FAILURE_LIMIT < 1 or QUAYMASTER_LOGIN_COOLOFF_MINUTES <= 0:
    raise environ.ImproperlyConfigured(
        "QUAYMASTER_LOGIN_FAILURE_LIMIT must be 1 or more and QUAYMASTER_LOGIN_COOLOFF_MINUTES "
        "more than 0."
    )
# The client address is REMOTE_ADDR, unless a proxy in front sets (and overwrites) a header
# with it: name it here (e.g. X-Forwarded-For; its last address is taken, the one the proxy
# appended). Set it only behind such a proxy: otherwise a client could claim any address.
_client_ip_header = env.str("QUAYMASTER_CLIENT_IP_HEADER", default="").strip()
if _client_ip_header and not re.fullmatch(r"[A-Za-z0-9-]+", _client_ip_header):
    raise environ.ImproperlyConfigured(
        "QUAYMASTER_CLIENT_IP_HEADER must be a header name, e.g. X-Forwarded-For."
    )
QUAYMASTER_CLIENT_IP_META_KEY = (
    "HTTP_" + _client_ip_header.upper().replace("-", "_") if _client_ip_header else ""
)
AUTHENTICATION_BACKENDS = [
    "backoffice.login_lockout.LoginLockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = QUAYMASTER_LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=QUAYMASTER_LOGIN_COOLOFF_MINUTES)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_HANDLER = "backoffice.login_lockout.LoginAttemptHandler"  # axes' database handler
AXES_RESET_ON_SUCCESS = True
# A refused try while locked is not counted: the lock ends when the page says, and a locked
# pair's row stops growing.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_CLIENT_IP_CALLABLE = "audit.context.client_ip"
AXES_USERNAME_CALLABLE = "backoffice.login_lockout.username"
AXES_LOCKOUT_CALLABLE = "backoffice.login_lockout.lockout_response"
# Bounded tables: a row per username and address with failures in the last cool-off (older
# rows are deleted at the next login attempt); no per-login success log, no failure history.
AXES_DISABLE_ACCESS_LOG = True
AXES_ENABLE_ACCESS_FAILURE_LOG = False
AXES_VERBOSE = False  # no banner at every start; lockouts are still logged (WARNING)

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "backoffice:home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    # Files the platform writes (ctx.files, the demo reports): the local folder MEDIA_ROOT, or an
    # S3 bucket given by QUAYMASTER_FILES_URL (s3://bucket/prefix?endpoint_url=…).
    "default": files_storage(env.str("QUAYMASTER_FILES_URL", default="")),
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = env.str("MEDIA_URL", default="/media/")

# Outgoing email (the send_email handler): console in development, e.g. smtp://… in production.
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)  # EMAIL_BACKEND, EMAIL_HOST, … as django-environ documents
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="quaymaster@localhost")

if PRODUCTION:
    if DEBUG:
        raise environ.ImproperlyConfigured(
            "DEBUG must be off when QUAYMASTER_ENV=production (its error pages show settings "
            "and code)."
        )
    SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
    CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
    # Browsers come back over HTTPS only; a proxy that redirects itself may turn ours off.
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    # Orchestrators probe /healthz over plain HTTP from inside the network.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
# Trusted only when a proxy that sets (and overwrites) the header is configured: otherwise
# any client could claim HTTPS with it.
_proxy_ssl_header = env.str("QUAYMASTER_PROXY_SSL_HEADER", default="")
if _proxy_ssl_header:
    SECURE_PROXY_SSL_HEADER = proxy_ssl_header(_proxy_ssl_header)

# Pages of these origins may read the streams process's answers with the user's cookies (CORS):
# scheme, host and port must match exactly. Unset in development: a page on the request's own
# host name (any port), as `make run` serves web and streams on two ports of one host.
QUAYMASTER_WEB_ORIGIN = web_origins(env.list("QUAYMASTER_WEB_ORIGIN", default=[]))
QUAYMASTER_STREAMS_SAME_HOST = not PRODUCTION and not QUAYMASTER_WEB_ORIGIN

REST_FRAMEWORK = {
    # The API reads JSON only: a body sent as a form is 415 unsupported_media_type, not read as
    # fields that lack what the JSON had (a publish without its "handler").
    "DEFAULT_PARSER_CLASSES": ["quaymaster.parsers.JsonParser"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: an API client without credentials gets 401 with WWW-Authenticate.
        "accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Every view also checks a token's scopes (accounts.scopes): views that set their own
    # permission_classes list TokenScope too (tests/accounts/test_scopes.py holds this).
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "accounts.permissions.TokenScope",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "quaymaster.exceptions.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["accounts.throttling.TokenRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"token": env.str("QUAYMASTER_API_RATE", default="6000/min")},
}

# The cache holds API rate-limit counters: per process by default; point CACHE_URL at a shared
# cache (e.g. redis://…) to limit across processes.
CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://")}
SPECTACULAR_SETTINGS = {
    "TITLE": "Quaymaster API",
    "DESCRIPTION": "ZStorage tables and records, queues and message publishing.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # Swagger UI's assets come from the drf-spectacular-sidecar package, not from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# The engines this deployment can reach. Unset means "not configured", which /healthz reports.
KAFKA_BOOTSTRAP_SERVERS = env.str("KAFKA_BOOTSTRAP_SERVERS", default="")
# How long a Kafka worker that died keeps its partitions (queues/backends/kafka/membership.py):
# the group session timeout (heartbeats every third of it), and the group protocol (classic, or
# consumer: KIP-848, whose session timeout is the broker's).
QUAYMASTER_KAFKA_SESSION_TIMEOUT_MS = env.int("QUAYMASTER_KAFKA_SESSION_TIMEOUT_MS", default=10_000)
QUAYMASTER_KAFKA_GROUP_PROTOCOL = env.str("QUAYMASTER_KAFKA_GROUP_PROTOCOL", default="classic")
SQS_ENDPOINT_URL = env.str("SQS_ENDPOINT_URL", default="")
AMQP_URL = env.str("AMQP_URL", default="")

# Celery runs jobs and schedules. The embedded default needs no broker server: kombu's
# filesystem transport keeps messages under var/celery.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {
        "data_folder_in": str(VAR_DIR / "celery" / "out"),
        "data_folder_out": str(VAR_DIR / "celery" / "out"),
        "processed_folder": str(VAR_DIR / "celery" / "processed"),
        "control_folder": str(VAR_DIR / "celery" / "control"),
    }
    if CELERY_BROKER_URL.startswith("filesystem")
    else {}
)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Beat reads its schedule from the database (django-celery-beat): the schedules admins edit
# (jobs.Schedule keeps a PeriodicTask each) and the static entries below, which it copies in.
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
HOUSEKEEPING_SECONDS = env.float("QUAYMASTER_HOUSEKEEPING_SECONDS", default=600.0)
# One pass of the alerts evaluator every this many seconds (beat's alerts.evaluate task, and
# manage.py evaluate_alerts's default interval).
QUAYMASTER_ALERT_EVALUATE_SECONDS = env.float("QUAYMASTER_ALERT_EVALUATE_SECONDS", default=30.0)
# Resolved alerts (and their history) older than this are deleted by housekeeping (alerts.prune).
QUAYMASTER_ALERT_RETENTION_DAYS = env.float("QUAYMASTER_ALERT_RETENTION_DAYS", default=90.0)
# Replays (queues/replay): the most records one may send, its highest rate (records a second),
# the lease a runner renews with each chunk (a dead runner's replay is resumed after it), and
# the scheduler's tick: every TICK seconds it runs unheld replays for at most SLICE seconds.
QUAYMASTER_REPLAY_MAX_RECORDS = env.int("QUAYMASTER_REPLAY_MAX_RECORDS", default=1_000_000)
QUAYMASTER_REPLAY_MAX_RATE = env.int("QUAYMASTER_REPLAY_MAX_RATE", default=10_000)
QUAYMASTER_REPLAY_LEASE_SECONDS = env.float("QUAYMASTER_REPLAY_LEASE_SECONDS", default=30.0)
QUAYMASTER_REPLAY_TICK_SECONDS = env.float("QUAYMASTER_REPLAY_TICK_SECONDS", default=5.0)
QUAYMASTER_REPLAY_SLICE_SECONDS = env.float("QUAYMASTER_REPLAY_SLICE_SECONDS", default=4.0)
CELERY_BEAT_SCHEDULE = {
    # Starts scheduled job runs and applies deadlines (jobs.windows).
    "jobs-tick": {
        "task": "jobs.tick",
        "schedule": env.float("QUAYMASTER_JOB_TICK_SECONDS", default=5.0),
    },
    # Runs the replays nobody runs (started from the API or pages, or whose runner died).
    "queues-replays": {"task": "queues.replays", "schedule": QUAYMASTER_REPLAY_TICK_SECONDS},
    # Measures the alert rules: opens, re-notifies and resolves alerts (alerts.evaluator).
    "alerts-evaluate": {"task": "alerts.evaluate", "schedule": QUAYMASTER_ALERT_EVALUATE_SECONDS},
    # Housekeeping: each deletes only what is past its retention (see each app's housekeeping).
    **{
        name: {"task": name, "schedule": HOUSEKEEPING_SECONDS}
        for name in (
            "queues.prune_outbox",
            "queues.prune_idempotency_keys",
            "workers.prune_lifecycle",
            "jobs.prune",
            "audit.prune",
            "alerts.prune",
        )
    },
}
# Audit rows older than this are deleted by housekeeping (audit.prune).
QUAYMASTER_AUDIT_RETENTION_DAYS = env.float("QUAYMASTER_AUDIT_RETENTION_DAYS", default=365.0)
if QUAYMASTER_AUDIT_RETENTION_DAYS <= 0:
    raise environ.ImproperlyConfigured("QUAYMASTER_AUDIT_RETENTION_DAYS must be more than 0.")
QUAYMASTER_OUTBOX_RETENTION_HOURS = env.float("QUAYMASTER_OUTBOX_RETENTION_HOURS", default=24.0)
QUAYMASTER_IDEMPOTENCY_KEY_HOURS = env.float("QUAYMASTER_IDEMPOTENCY_KEY_HOURS", default=24.0)
# A publish that claimed its Idempotency-Key and gave no answer for this long died: a repeat
# of the key takes the claim over instead of being told to wait.
QUAYMASTER_IDEMPOTENCY_CLAIM_SECONDS = env.float(
    "QUAYMASTER_IDEMPOTENCY_CLAIM_SECONDS", default=60.0
)

# Limits on the work one API request may ask for: the query language's nesting depth, its
# size (objects, conditions and values) and the values of one $in/$nin; rows per bulk write.
QUAYMASTER_QUERY_MAX_DEPTH = env.int("QUAYMASTER_QUERY_MAX_DEPTH", default=32)
QUAYMASTER_QUERY_MAX_NODES = env.int("QUAYMASTER_QUERY_MAX_NODES", default=2000)
QUAYMASTER_QUERY_MAX_LIST = env.int("QUAYMASTER_QUERY_MAX_LIST", default=1000)
QUAYMASTER_BULK_MAX_ROWS = env.int("QUAYMASTER_BULK_MAX_ROWS", default=1000)
# The back-office's CSV import takes files up to this size; a larger upload is refused (413) by
# its Content-Length, before its body is read (backoffice/uploads.py).
QUAYMASTER_IMPORT_MAX_BYTES = env.int("QUAYMASTER_IMPORT_MAX_BYTES", default=5 * 1024**2)
# On PostgreSQL, the Record API's reads (list, query, aggregate) stop after this; 0: no limit.
QUAYMASTER_API_STATEMENT_TIMEOUT_MS = env.int("QUAYMASTER_API_STATEMENT_TIMEOUT_MS", default=15000)

# Jobs. The queue runs go to when none is given; limits on what one run may be started with;
# job modules beyond each app's jobs.py.
QUAYMASTER_JOB_QUEUE = env.str("QUAYMASTER_JOB_QUEUE", default="jobs")
QUAYMASTER_JOB_MAX_INSTANCES = env.int("QUAYMASTER_JOB_MAX_INSTANCES", default=100_000)
QUAYMASTER_JOB_MAX_PARAMS_BYTES = env.int("QUAYMASTER_JOB_MAX_PARAMS_BYTES", default=32 * 1024**2)
QUAYMASTER_JOB_MODULES = env.list("QUAYMASTER_JOB_MODULES", default=[])
QUAYMASTER_JOB_RETENTION_DAYS = env.float("QUAYMASTER_JOB_RETENTION_DAYS", default=30.0)
# A schedule's fire that comes later than this after its due time was missed (beat was down).
QUAYMASTER_SCHEDULE_GRACE_SECONDS = env.float("QUAYMASTER_SCHEDULE_GRACE_SECONDS", default=60.0)

# Workers. Handler modules beyond each app's handlers.py; heartbeat period; lifecycle log
# retention.
QUAYMASTER_HANDLER_MODULES = env.list("QUAYMASTER_HANDLER_MODULES", default=[])
# The built-in webhook handler posts only to endpoints admins configured, and only to public
# addresses: networks listed here (CIDRs, e.g. "10.1.0.0/16") may be reached as well.
QUAYMASTER_WEBHOOK_ALLOWED_NETWORKS = env.list("QUAYMASTER_WEBHOOK_ALLOWED_NETWORKS", default=[])
# The built-in send_email handler sends from DEFAULT_FROM_EMAIL, to at most this many addresses.
QUAYMASTER_EMAIL_MAX_RECIPIENTS = env.int("QUAYMASTER_EMAIL_MAX_RECIPIENTS", default=50)
# A dry run of a dead letter (workers/dry_run.py) waits this long for its handler, then answers
# "still running" (the handler's work is rolled back whenever it ends).
QUAYMASTER_DRY_RUN_SECONDS = env.float("QUAYMASTER_DRY_RUN_SECONDS", default=10.0)
QUAYMASTER_WORKER_HEARTBEAT_SECONDS = env.float("QUAYMASTER_WORKER_HEARTBEAT_SECONDS", default=5.0)
QUAYMASTER_LIFECYCLE_RETENTION_DAYS = env.float("QUAYMASTER_LIFECYCLE_RETENTION_DAYS", default=7.0)
QUAYMASTER_LIFECYCLE_MAX_EVENTS = env.int("QUAYMASTER_LIFECYCLE_MAX_EVENTS", default=100_000)
# Message traces (queues/tracing.py): the broker id and publish time of every published message,
# kept as long as the lifecycle log; off only to measure what they cost (make bench).
QUAYMASTER_TRACE_MESSAGES = env.bool("QUAYMASTER_TRACE_MESSAGES", default=True)
# Readiness (/readyz, manage.py health, the dashboard) turns "degraded" when the outbox's oldest
# pending message waits longer than this, or a message was dead-lettered this recently.
QUAYMASTER_READY_OUTBOX_AGE_SECONDS = env.float("QUAYMASTER_READY_OUTBOX_AGE_SECONDS", default=300)
QUAYMASTER_READY_DEAD_LETTER_MINUTES = env.float("QUAYMASTER_READY_DEAD_LETTER_MINUTES", default=5)

# Prometheus metrics (quaymaster/metrics.py). /metrics on the web process answers a bearer
# token equal to QUAYMASTER_METRICS_TOKEN, or a client in QUAYMASTER_METRICS_ALLOW_NETWORKS
# (CIDRs; loopback by default); anyone else gets 404. --metrics-port servers bind to
# QUAYMASTER_METRICS_BIND; the relay samples backlog and engine figures every
# QUAYMASTER_METRICS_SAMPLE_SECONDS.
QUAYMASTER_METRICS_TOKEN = env.str("QUAYMASTER_METRICS_TOKEN", default="")
QUAYMASTER_METRICS_ALLOW_NETWORKS = metrics_networks(
    env.list("QUAYMASTER_METRICS_ALLOW_NETWORKS", default=["127.0.0.0/8", "::1/128"])
)
QUAYMASTER_METRICS_BIND = env.str("QUAYMASTER_METRICS_BIND", default="127.0.0.1")
QUAYMASTER_METRICS_SAMPLE_SECONDS = env.float("QUAYMASTER_METRICS_SAMPLE_SECONDS", default=15.0)

# Where the browser opens live streams (server-sent events): the ASGI "streams" process, so a
# held-open stream never occupies one of the API's gunicorn workers.
QUAYMASTER_STREAMS_URL = env.str("QUAYMASTER_STREAMS_URL", default="http://127.0.0.1:8001/streams/")

# Logs of every process (quaymaster/logs.py): text lines, or LOG_FORMAT=json for one JSON object
# per line carrying the request, token, queue, message and run ids where they apply.
LOG_FORMAT = env.str("LOG_FORMAT", default="text").strip().lower()
LOGGING = logging_config(LOG_FORMAT, env.str("LOG_LEVEL", default="INFO"))

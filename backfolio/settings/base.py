"""Settings shared by every runtime mode.

With no environment set, the embedded default runs: SQLite in ``var/``, artifacts on the local
filesystem, and Dramatiq with an in-process broker whose worker threads start with the server.
``DATABASE_URL``, ``REDIS_URL`` and the ``STORAGE_*`` variables switch each piece to its
production form (PostgreSQL, a Redis broker with ``manage.py rundramatiq`` workers, S3).
"""

import os
from datetime import timedelta
from pathlib import Path

import environ

from backfolio.secret_key import embedded_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# Without DJANGO_SECRET_KEY (the embedded default) the key is random, generated on the first start
# and kept owner-only in var/; no key written in the source ever signs anything.
SECRET_KEY_FILE = env.path("DJANGO_SECRET_KEY_FILE", default=str(VAR_DIR / "secret_key"))
SECRET_KEY = env("DJANGO_SECRET_KEY", default="") or embedded_secret_key(SECRET_KEY_FILE)
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "axes",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "corsheaders",
    "django_dramatiq",
    "backfolio.common",
    "marketdata",
    "strategies",
    "backtests",
    "metrics",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes requires: turns a login lockout into its 429 response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "backfolio.urls"
WSGI_APPLICATION = "backfolio.wsgi.application"

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

# --- Database ---------------------------------------------------------------------------------
# SQLite is the embedded default. Worker threads write while the web serves, so SQLite runs in
# WAL mode with IMMEDIATE transactions and a generous lock timeout instead of failing with
# "database is locked".
SQLITE_PATH = env.path("SQLITE_PATH", default=str(VAR_DIR / "backfolio.sqlite3"))
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{SQLITE_PATH}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: broker, cache, throttling ----------------------------------------------------------
REDIS_URL = env("REDIS_URL", default="")

# Rate-limit counters live in this cache, so it must be one every process of the service shares:
# Redis in production; in the embedded default, files in var/cache (gunicorn's worker processes
# all see them; each entry is written to a temporary file and renamed into place).
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "backfolio",
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": env("BACKFOLIO_CACHE_DIR", default=str(VAR_DIR / "cache")),
            "OPTIONS": {"MAX_ENTRIES": 10_000},
        }
    }

DRAMATIQ_MIDDLEWARE = [
    "dramatiq.middleware.AgeLimit",
    "dramatiq.middleware.TimeLimit",
    "dramatiq.middleware.Callbacks",
    "dramatiq.middleware.Retries",
    "django_dramatiq.middleware.DbConnectionsMiddleware",
    "backfolio.workers.WarmEnginesMiddleware",
]
if REDIS_URL:
    DRAMATIQ_BROKER = {
        "BROKER": "dramatiq.brokers.redis.RedisBroker",
        "OPTIONS": {"url": REDIS_URL},
        "MIDDLEWARE": DRAMATIQ_MIDDLEWARE,
    }
    # A Redis consumer polls an empty queue with a back-off that grows to the worker timeout (1 s
    # by default): an idle worker process would take up to a second to join a research sweep
    # another process has started. 100 ms keeps it close behind (ten cheap polls a second). Read
    # by the `rundramatiq` processes, which inherit it; the environment may set another value.
    os.environ.setdefault("dramatiq_worker_timeout", "100")
else:
    DRAMATIQ_BROKER = {
        "BROKER": "dramatiq.brokers.stub.StubBroker",
        "OPTIONS": {},
        "MIDDLEWARE": DRAMATIQ_MIDDLEWARE,
    }
DRAMATIQ_TASKS_DATABASE = "default"
DRAMATIQ_AUTODISCOVER_MODULES = ["tasks"]

# In the embedded mode the web process consumes its own in-process queue with these threads.
BACKFOLIO_EMBEDDED_WORKERS = env.bool("BACKFOLIO_EMBEDDED_WORKERS", default=not REDIS_URL)
BACKFOLIO_EMBEDDED_WORKER_THREADS = env.int("BACKFOLIO_EMBEDDED_WORKER_THREADS", default=2)
# A run that takes longer than this is stopped and marked failed.
BACKFOLIO_RUN_TIME_LIMIT_SECONDS = env.int("BACKFOLIO_RUN_TIME_LIMIT_SECONDS", default=600)
# The first start of the embedded default (SQLite, nothing in it) loads demo content owned by a
# demo user; and when there is no user at all it creates a staff user whose one-time password it
# prints. Production settings turn both off; BACKFOLIO_DEMO=0 turns the demo content off.
BACKFOLIO_DEMO = env.bool("BACKFOLIO_DEMO", default=True)
BACKFOLIO_FIRST_START_STAFF_USER = True
# A running row whose heartbeat is older than this belongs to a dead worker.
BACKFOLIO_HEARTBEAT_TIMEOUT_SECONDS = env.int("BACKFOLIO_HEARTBEAT_TIMEOUT_SECONDS", default=120)
# Reads of tasks and backtests look for dead workers' rows at most this often.
BACKFOLIO_REAPER_INTERVAL_SECONDS = env.int("BACKFOLIO_REAPER_INTERVAL_SECONDS", default=15)

# Imported price series: how long a process trusts its last look at the table (an import in the
# same process is seen at once; other processes see it within this time).
MARKETDATA_VERSION_TTL_SECONDS = env.float("MARKETDATA_VERSION_TTL_SECONDS", default=1.0)

# --- Storage: artifacts ------------------------------------------------------------------------
MEDIA_ROOT = env.path("MEDIA_ROOT", default=str(VAR_DIR / "media"))
MEDIA_URL = "/media/"
STATIC_ROOT = env.path("STATIC_ROOT", default=str(VAR_DIR / "staticfiles"))
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]

STORAGE_BACKEND = env("STORAGE_BACKEND", default="local")  # "local" or "s3"
if STORAGE_BACKEND == "s3":
    _artifact_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env("STORAGE_BUCKET_NAME"),
            "endpoint_url": env("STORAGE_ENDPOINT_URL", default=None),
            "region_name": env("STORAGE_REGION_NAME", default=None),
            "access_key": env("STORAGE_ACCESS_KEY_ID", default=None),
            "secret_key": env("STORAGE_SECRET_ACCESS_KEY", default=None),
            "location": env("STORAGE_LOCATION", default="artifacts"),
            "file_overwrite": False,
            "default_acl": None,
        },
    }
else:
    _artifact_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT)},
    }
STORAGES = {
    "default": _artifact_storage,
    # Hashed names (a changed file gets a new URL) let WhiteNoise send far-future cache headers;
    # gzip and Brotli copies are made once at collectstatic.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- Auth --------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    # django-axes refuses a locked-out login before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Proxies whose X-Forwarded-For is believed (addresses or networks, comma-separated). Empty: the
# connection's own address is the client's (backfolio.common.client_address).
BACKFOLIO_TRUSTED_PROXIES = env.list("BACKFOLIO_TRUSTED_PROXIES", default=[])

# Login lockout on every login path (admin, /accounts/login/, POST /api/auth/login): after this
# many failures for one username from one client address, that pair is refused until the
# cool-off has passed; a success clears the count. Attempts are kept in the database, so every
# process sees them.
AXES_FAILURE_LIMIT = env.int("BACKFOLIO_LOGIN_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("BACKFOLIO_LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "backfolio.common.client_address.client_address"
AXES_DISABLE_ACCESS_LOG = True  # successful logins are not recorded row by row
AXES_HTTP_RESPONSE_CODE = 429

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

# With this on, every API requires an authenticated user (SPEC §10).
BACKFOLIO_REQUIRE_AUTH = env.bool("BACKFOLIO_REQUIRE_AUTH", default=False)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["backfolio.common.permissions.ApiAccess"],
    "DEFAULT_RENDERER_CLASSES": ["backfolio.common.renderers.FastJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["backfolio.common.parsers.FastJSONParser"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "backfolio.common.openapi.ContractAutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # Every write (POST, PUT, PATCH, DELETE) of every API counts, in the shared cache.
    "DEFAULT_THROTTLE_CLASSES": [
        "backfolio.common.throttles.AnonymousWriteThrottle",
        "backfolio.common.throttles.UserWriteThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "results_create": "10/min",
        "anon_writes": env("BACKFOLIO_ANON_WRITE_RATE", default="60/min"),
        "user_writes": env("BACKFOLIO_USER_WRITE_RATE", default="600/min"),
    },
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=15),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=7),
    "AUTH_HEADER_TYPES": ("Bearer",),
    # A refresh token works once: each refresh returns a new one and blacklists the old.
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    # Tokens carry a digest of the password hash; a password change ends every token issued
    # before it, access tokens included (backfolio.common.tokens blacklists the refresh tokens).
    "CHECK_REVOKE_TOKEN": True,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Backfolio API",
    "DESCRIPTION": (
        "Backtesting service: the v1 resource API, the Backfolio portfolio-backtest contract "
        "(v2.0) and the authenticated results API."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Documents validated by the strategy language and the run parsers, published as components.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "strategies.api.openapi.add_language_components",
        "backtests.api.v1.openapi.add_run_config_components",
        "backtests.api.portfolio.schema.add_portfolio_components",
    ],
}

# CORS is closed unless origins are listed.
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])

# Request bodies larger than this are refused (a strategy document is a few kB).
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=2 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    # django-axes logs every failed login at INFO; lockouts stay visible at WARNING.
    "loggers": {"numba": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}

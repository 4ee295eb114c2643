"""Test settings: the embedded default unless DATABASE_URL / REDIS_URL point elsewhere."""

import tempfile
from pathlib import Path

from .base import *  # noqa: F403
from .base import CACHES, DATABASES, REST_FRAMEWORK, STORAGES, env

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Tests start their own Dramatiq workers where they need them.
BACKFOLIO_EMBEDDED_WORKERS = False
MEDIA_ROOT = tempfile.mkdtemp(prefix="backfolio-test-media-")
if STORAGES["default"]["BACKEND"] == "django.core.files.storage.FileSystemStorage":
    STORAGES["default"]["OPTIONS"]["location"] = MEDIA_ROOT
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not shared-cache memory: worker threads then wait on SQLite's lock (WAL, timeout)
    # the way they do in the embedded mode, instead of failing with "table is locked".
    DATABASES["default"]["TEST"] = {
        "NAME": str(Path(tempfile.mkdtemp(prefix="backfolio-test-db-")) / "test.sqlite3")
    }
STATIC_ROOT = tempfile.mkdtemp(prefix="backfolio-test-static-")
WHITENOISE_USE_FINDERS = True
# Rolled-back test transactions leave no signal behind: read the uploaded series' version fresh.
MARKETDATA_VERSION_TTL_SECONDS = 0
# A cache folder of the test run's own; a second process joins it through BACKFOLIO_CACHE_DIR.
if CACHES["default"]["BACKEND"].endswith("FileBasedCache"):
    CACHES["default"]["LOCATION"] = env(
        "BACKFOLIO_CACHE_DIR", default=tempfile.mkdtemp(prefix="backfolio-test-cache-")
    )
# The suite writes far faster than anyone may; the rate-limit tests set their own rates.
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_THROTTLE_RATES": {
        **REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
        "anon_writes": "1000000/min",
        "user_writes": "1000000/min",
    },
}

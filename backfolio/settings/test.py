"""Test settings: the embedded default unless DATABASE_URL / REDIS_URL point elsewhere."""

import tempfile
from pathlib import Path

from .base import *  # noqa: F403
from .base import DATABASES, STORAGES

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

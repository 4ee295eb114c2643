"""Test settings: the embedded default unless DATABASE_URL / REDIS_URL point elsewhere."""

import tempfile

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
    DATABASES["default"]["TEST"] = {"NAME": None}
STATIC_ROOT = tempfile.mkdtemp(prefix="backfolio-test-static-")
WHITENOISE_USE_FINDERS = True

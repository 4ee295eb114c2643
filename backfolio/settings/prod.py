"""Production: secrets and hosts from the environment, HTTPS everywhere, DEBUG off.

``DJANGO_SECRET_KEY`` is required: production never falls back to the embedded default's key
file (checked before the shared settings load, so a missing key never creates one).
"""

import os

from django.core.exceptions import ImproperlyConfigured

if not os.environ.get("DJANGO_SECRET_KEY"):
    raise ImproperlyConfigured("Set the DJANGO_SECRET_KEY environment variable in production.")

from .base import *  # noqa: F403
from .base import env

DEBUG = False
# Never demo content or a generated staff password in production.
BACKFOLIO_DEMO = False
BACKFOLIO_FIRST_START_STAFF_USER = False
SECRET_KEY = env("DJANGO_SECRET_KEY")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

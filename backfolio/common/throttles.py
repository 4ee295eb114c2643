"""Write rate limits for every API: anonymous callers per client address, users per account.

Counts live in the default cache, which every process of the service shares (Redis with
``REDIS_URL``, else files in ``var/cache``), so the limit holds whatever process answers. Rates
are settings (``DEFAULT_THROTTLE_RATES``: ``anon_writes``, ``user_writes``), read when a request
is checked. Reads are never counted. Each contract's exception handler gives the 429 its shape.
"""

from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from backfolio.common.client_address import client_address

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class _WriteThrottle(SimpleRateThrottle):
    def get_rate(self):
        # Read now, not when DRF imported its settings, so changed settings apply.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_ident(self, request):
        return client_address(request)


class AnonymousWriteThrottle(_WriteThrottle):
    """Writes by anonymous callers, per client address (``anon_writes``)."""

    scope = "anon_writes"

    def get_cache_key(self, request, view):
        if request.method in SAFE_METHODS or request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class UserWriteThrottle(_WriteThrottle):
    """Writes by authenticated users, per account (``user_writes``)."""

    scope = "user_writes"

    def get_cache_key(self, request, view):
        if request.method in SAFE_METHODS or not request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}

"""API access: open by default as the v1 and Backfolio contracts document, closed on request.

With ``BACKFOLIO_REQUIRE_AUTH=true`` every API requires an authenticated user (SPEC §10). What a
caller may *see* is decided by the selectors' ownership scoping, not here.
"""

from django.conf import settings
from rest_framework.permissions import BasePermission


class ApiAccess(BasePermission):
    def has_permission(self, request, view) -> bool:
        if getattr(settings, "BACKFOLIO_REQUIRE_AUTH", False):
            return bool(request.user and request.user.is_authenticated)
        return True

"""How every operation of ``/api/schema`` documents what it really answers.

Views document their success bodies and the errors particular to them (``extend_schema``). The
errors every view of a kind can answer are added here, in the shape of the contract the view
belongs to, so that no operation forgets one:

- 400 for a body that is not JSON (operations with a request body);
- 401 and 403 where credentials are read (a bad token, a session without its CSRF token,
  ``BACKFOLIO_REQUIRE_AUTH``);
- 404 for an unknown id (operations with a path parameter);
- 413 for a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` and 415 for a body that is not JSON;
- 429 where the view throttles;
- 503 when the database cannot be reached (``backfolio.common.errors``).

Optional query parameters accept an empty value (``allowEmptyValue``): every list reads
``?status=`` as no filter.

A view says which contract's error shape it uses through ``documented_error(status_code)`` on its
error mixin; a view without one answers with DRF's ``{"detail": "…"}``. Operations open to
anonymous callers (``ApiAccess`` while ``BACKFOLIO_REQUIRE_AUTH`` is off) list an empty security
requirement next to the token and session, as OpenAPI spells "credentials optional". Request
bodies that refuse unknown keys (``StrictFieldsMixin``) say so with ``additionalProperties:
false``; a body that needs one of several fields lists them in ``requires_one_of``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import permissions, serializers

from backfolio.common.permissions import ApiAccess
from backfolio.common.serializers import StrictFieldsMixin

BODY_METHODS = ("POST", "PUT", "PATCH")

DESCRIPTIONS = {
    400: "Invalid input.",
    401: "Missing, invalid or expired credentials.",
    403: "Not allowed (someone else's record, or a session request without its CSRF token).",
    404: "Unknown id (or not visible to the caller).",
    413: "Request body too large.",
    415: "Request body is not JSON.",
    429: "Too many requests; retry after the Retry-After header's seconds.",
    503: "The database is unavailable; retry shortly.",
}


class ErrorDetailSerializer(serializers.Serializer):
    """DRF's own error body, used by the v1 contract for every error but a 400."""

    detail = serializers.CharField()


def component_ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


class ContractAutoSchema(AutoSchema):
    def get_auth(self):
        auths = super().get_auth()
        if auths and {} not in auths and self._anonymous_allowed():
            auths.append({})
        return auths

    def _anonymous_allowed(self) -> bool:
        if getattr(settings, "BACKFOLIO_REQUIRE_AUTH", False):
            return False
        return all(
            # A tuple: DRF permission classes overload ``|`` to compose permissions.
            isinstance(permission, (ApiAccess, permissions.AllowAny))
            for permission in self.view.get_permissions()
        )

    def get_operation(self, *args, **kwargs):
        operation = super().get_operation(*args, **kwargs)
        for parameter in (operation or {}).get("parameters", []):
            # DRF's query serializers, django-filter and the paging parameters all read an
            # optional parameter sent empty (``?status=``) as one not sent.
            if parameter["in"] == "query" and not parameter.get("required"):
                parameter["allowEmptyValue"] = True
        return operation

    def _map_basic_serializer(self, serializer, direction):
        schema = super()._map_basic_serializer(serializer, direction)
        if direction != "request":
            return schema
        if isinstance(serializer, StrictFieldsMixin):
            schema["additionalProperties"] = False
        if alternatives := getattr(serializer, "requires_one_of", None):
            schema["anyOf"] = [{"required": [name]} for name in alternatives]
        return schema

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        for status_code in self._common_error_statuses():
            if str(status_code) in responses:
                continue
            responses[str(status_code)] = self._get_response_for_code(
                self._error_response(status_code), str(status_code)
            )
        return responses

    def _common_error_statuses(self) -> list[int]:
        statuses = []
        has_body = self.method in BODY_METHODS and self.get_request_serializer() is not None
        if has_body:
            statuses.append(400)
        if self.view.get_authenticators():
            statuses.extend([401, 403])
        if "{" in self.path:
            statuses.append(404)
        if has_body:
            statuses.extend([413, 415])
        if self._throttled():
            statuses.append(429)
        statuses.append(503)
        return statuses

    def _throttled(self) -> bool:
        return bool(self.view.get_throttles())

    def _error_response(self, status_code: int) -> OpenApiResponse:
        documented_error = getattr(self.view, "documented_error", None)
        schema = documented_error(status_code) if documented_error else ErrorDetailSerializer
        return OpenApiResponse(schema, description=DESCRIPTIONS[status_code])


def add_components(result: dict, components: dict[str, dict[str, Any]]) -> dict:
    """Add named schemas to a generated document (for a postprocessing hook)."""
    result.setdefault("components", {}).setdefault("schemas", {}).update(components)
    return result

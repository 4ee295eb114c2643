"""The v1 contract's error shape, for every v1 view (strategies included).

- 400: a field-keyed dict. Top-level fields map to a list of messages
  (``{"strategy_id": ["Strategy … does not exist."]}``); a document field (``config``,
  ``definition``, ``base_config``) maps to a dict keyed by the path inside it
  (``{"config": {"start_date": ["…"]}}``); a sweep's grid maps to a dict keyed by the entry's
  index (``{"param_grid": {"3": {"stop_loss": ["…"]}}}``). A body that is not JSON at all is
  ``{"detail": "JSON parse error - …"}``.
- 404, 405, 409, 415: DRF's ``{"detail": "…"}``.
- 413 for an oversized body, 503 when the database cannot be reached
  (``backfolio.common.errors``).
- Anything unexpected: 500 ``{"detail": "Internal server error."}`` (logged with its traceback).
"""

import logging

from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import status
from rest_framework.exceptions import APIException, NotFound, ValidationError
from rest_framework.response import Response

from backfolio.common.errors import Conflict, InvalidInput, drf_error_response
from backfolio.common.openapi import ErrorDetailSerializer

VALIDATION_ERRORS_SCHEMA = {
    "type": "object",
    "description": (
        "400: field → list of messages; a document field (config, definition, base_config, "
        "param_grid) → object keyed by the path (or grid index) inside it; a body that is not "
        'JSON → {"detail": "JSON parse error - …"}.'
    ),
    "additionalProperties": {
        "anyOf": [
            {"type": "array", "items": {"type": "string"}},
            {"type": "object", "additionalProperties": True},
            {"type": "string"},
        ]
    },
}


logger = logging.getLogger(__name__)

NON_FIELD = "non_field_errors"


class ConflictError(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "Conflict."
    default_code = "conflict"


def _as_api_exception(exc: Exception) -> Exception:
    """The services' and Django's errors as the DRF exceptions v1 answers them with."""
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {NON_FIELD: exc.messages}
        return ValidationError(detail=detail)
    if isinstance(exc, InvalidInput):
        return ValidationError(detail=exc.errors)
    if isinstance(exc, ObjectDoesNotExist):
        return NotFound(str(exc) or "Not found.")
    if isinstance(exc, Conflict):
        return ConflictError(str(exc))
    return exc


def v1_exception_handler(exc, context):
    """DRF's handler is v1's envelope: ``{"detail": …}``, or a 400's field-keyed dict."""
    _, response = drf_error_response(_as_api_exception(exc), context)
    if response is None:
        logger.exception("Unhandled error in the v1 API", exc_info=exc)
        return Response(
            {"detail": "Internal server error."}, status=status.HTTP_500_INTERNAL_SERVER_ERROR
        )
    return response


class V1ErrorsMixin:
    """Use the v1 error shape in a DRF view."""

    def get_exception_handler(self):
        return v1_exception_handler

    @staticmethod
    def documented_error(status_code: int):
        """The body of a v1 error response, for the OpenAPI document."""
        return VALIDATION_ERRORS_SCHEMA if status_code == 400 else ErrorDetailSerializer

"""The errors every app's services raise, and the failures that are not the caller's input.

``InvalidInput`` and ``Conflict`` are what a service raises for input it refuses and for a row
whose state does not allow the operation; each contract renders them in its own error shape.

``classify_failure`` decides, once for every contract's handler, the status and the sentence of
an infrastructure failure: a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` is 413, a database that
cannot be reached is 503 (clients should retry), never a 500 traceback.

Every contract's exception handler starts from ``drf_error_response`` (DRF's own handler, these
failures included) and wraps its result in the contract's envelope.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404
from rest_framework.exceptions import APIException, NotFound, PermissionDenied
from rest_framework.response import Response
from rest_framework.views import exception_handler


class InvalidInput(Exception):
    """Input that cannot be accepted; ``errors`` is field-keyed (nested for documents)."""

    def __init__(self, errors: Mapping[str, Any]) -> None:
        super().__init__(str(errors))
        self.errors = dict(errors)


class Conflict(Exception):
    """The request is valid but the row's state does not allow it (e.g. already running)."""


@dataclass(frozen=True)
class ServiceFailure:
    status: int
    code: str
    message: str


def classify_failure(exc: BaseException) -> ServiceFailure | None:
    """The response an infrastructure failure deserves, or None for anything else."""
    if isinstance(exc, RequestDataTooBig):
        return ServiceFailure(
            413,
            "PAYLOAD_TOO_LARGE",
            f"Request body is too large (limit {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes).",
        )
    if isinstance(exc, OperationalError | InterfaceError):
        return ServiceFailure(
            503, "SERVICE_UNAVAILABLE", "The database is unavailable; retry shortly."
        )
    return None


class ServiceFailureError(APIException):
    """An infrastructure failure (``classify_failure``) as the DRF exception it answers as."""

    def __init__(self, failure: ServiceFailure):
        self.status_code = failure.status
        self.failure = failure
        super().__init__(detail=failure.message, code=failure.code)


def drf_error_response(exc: Exception, context) -> tuple[Exception, Response | None]:
    """DRF's ``exception_handler`` on ``exc``: the status, the ``WWW-Authenticate`` and
    ``Retry-After`` headers and the body DRF gives it (``{"detail": …}``, or a validation
    error's own dict), with Django's ``Http404``/``PermissionDenied`` and the failures of
    ``classify_failure`` as API exceptions too; None for anything else (a bug).

    Returns the exception DRF answered with, so that a contract can word its envelope."""
    if (failure := classify_failure(exc)) is not None:
        exc = ServiceFailureError(failure)
    elif isinstance(exc, Http404):
        exc = NotFound(*exc.args)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = PermissionDenied(*exc.args)
    return exc, exception_handler(exc, context)

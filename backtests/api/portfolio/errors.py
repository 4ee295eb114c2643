"""This contract's error envelope, for its views only.

- 400: ``{"success": false, "error": "Backtest failed", "warnings": [...], "errors": [...]}``
  listing every problem; each message is in both lists (the contract's example lists them under
  ``warnings``; SPEC §8 adds ``errors``).
- Other client errors (404 unknown run, 401/403 when authentication is required, 405, 415) use
  the same keys with their own ``error`` line.
- 413 (body over the upload limit) and 503 (database unreachable): the 400 shape with the
  reason (``backfolio.common.errors``).
- 500: ``{"success": false, "error": "Internal server error during backtest execution",
  "warnings": []}``, only for an unexpected exception (a bug); it is logged with its traceback.
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from backfolio.common.errors import ServiceFailureError, drf_error_response
from backtests.portfolio.requests import InvalidPortfolioRequest

from .schema import PortfolioErrorSchema

logger = logging.getLogger("backtests.portfolio")

BACKTEST_FAILED = "Backtest failed"
INTERNAL_ERROR = "Internal server error during backtest execution"


class PortfolioApiError(exceptions.APIException):
    """A client error of this contract: an ``error`` line and the messages behind it."""

    def __init__(self, *, status_code: int, error: str, messages: list[str] | None = None):
        self.status_code = status_code
        self.error = error
        self.messages = list(messages or [])
        super().__init__(detail=error)


def failure_body(error: str, messages: list[str]) -> dict:
    return {"success": False, "error": error, "warnings": list(messages), "errors": list(messages)}


def _error_and_messages(answered: exceptions.APIException) -> tuple[str, list[str]]:
    """This contract's ``error`` line and messages for the exception DRF answered."""
    if isinstance(answered, PortfolioApiError):
        return answered.error, answered.messages
    if isinstance(answered, exceptions.ParseError):
        return BACKTEST_FAILED, [f"Malformed JSON: {answered.detail}"]
    if isinstance(answered, ServiceFailureError):
        return BACKTEST_FAILED, [answered.failure.message]
    detail = answered.detail
    message = str(detail) if not isinstance(detail, dict | list) else str(answered)
    return message, [message]


def portfolio_exception_handler(exc, context) -> Response:
    """DRF's handler (status, headers), its answer in this contract's envelope; a 500 with the
    contract's sentence for anything unexpected (a bug, logged)."""
    if isinstance(exc, InvalidPortfolioRequest):
        exc = PortfolioApiError(
            status_code=status.HTTP_400_BAD_REQUEST, error=BACKTEST_FAILED, messages=exc.messages
        )
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    answered, response = drf_error_response(exc, context)
    if response is None:
        set_rollback()
        logger.exception("Portfolio backtest failed unexpectedly", exc_info=exc)
        return Response(
            {"success": False, "error": INTERNAL_ERROR, "warnings": []},
            status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    response.data = failure_body(*_error_and_messages(answered))
    return response


class PortfolioApiMixin:
    """Gives a view this contract's error envelope for every exception it raises."""

    def get_exception_handler(self):
        return portfolio_exception_handler

    @staticmethod
    def documented_error(status_code: int):
        """The body of this contract's error responses, for the OpenAPI document."""
        return PortfolioErrorSchema

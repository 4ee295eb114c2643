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

from backfolio.common.errors import classify_failure
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


def portfolio_exception_handler(exc, context) -> Response:
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, InvalidPortfolioRequest):
        return Response(failure_body(BACKTEST_FAILED, exc.messages), status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, PortfolioApiError):
        return Response(failure_body(exc.error, exc.messages), exc.status_code)
    if isinstance(exc, exceptions.ParseError):
        return Response(
            failure_body(BACKTEST_FAILED, [f"Malformed JSON: {exc.detail}"]),
            status.HTTP_400_BAD_REQUEST,
        )
    if (failure := classify_failure(exc)) is not None:
        set_rollback()
        return Response(failure_body(BACKTEST_FAILED, [failure.message]), failure.status)
    if isinstance(exc, exceptions.APIException):
        message = str(exc.detail) if not isinstance(exc.detail, dict | list) else str(exc)
        response = Response(failure_body(message, [message]), exc.status_code)
        if getattr(exc, "wait", None):
            response["Retry-After"] = str(int(exc.wait))
        return response
    set_rollback()
    logger.exception("Portfolio backtest failed unexpectedly", exc_info=exc)
    return Response(
        {"success": False, "error": INTERNAL_ERROR, "warnings": []},
        status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


class PortfolioApiMixin:
    """Gives a view this contract's error envelope for every exception it raises."""

    def get_exception_handler(self):
        return portfolio_exception_handler

    @staticmethod
    def documented_error(status_code: int):
        """The body of this contract's error responses, for the OpenAPI document."""
        return PortfolioErrorSchema

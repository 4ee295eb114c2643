"""This contract's errors: ``{"error": {"code", "message", "status"}}`` and nothing else.

Every view of the results API (and its auth endpoints) uses :func:`results_exception_handler`
through :class:`ResultsApiMixin`: DRF's own handler answers first (status, ``WWW-Authenticate``,
``Retry-After``), and its answer is worded in this envelope, so DRF's own errors (bad or expired
token, throttling, parse errors, wrong method) read like the ones raised here.
"""

from django.http import Http404
from rest_framework import exceptions, status

from backfolio.common.errors import ServiceFailureError, drf_error_response

from .serializers import ErrorSchema

AUTHENTICATION_REQUIRED = "Authentication required"
NOT_YOUR_BACKTEST = "Access denied (not your backtest)"
BACKTEST_NOT_FOUND = "Backtest not found"

_CODES = {
    400: "VALIDATION_ERROR",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    409: "CONFLICT",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "RATE_LIMITED",
}


class ResultsApiError(exceptions.APIException):
    """An error with this contract's code and message, raised by the results API's views."""

    def __init__(self, *, status_code: int, message: str, code: str | None = None):
        self.status_code = status_code
        self.error_code = code or _CODES.get(status_code, "ERROR")
        super().__init__(detail=message)


def not_found(message: str = BACKTEST_NOT_FOUND) -> ResultsApiError:
    return ResultsApiError(status_code=404, message=message)


def forbidden(message: str = NOT_YOUR_BACKTEST) -> ResultsApiError:
    return ResultsApiError(status_code=403, message=message)


def validation_error(message: str) -> ResultsApiError:
    return ResultsApiError(status_code=400, message=message)


def invalid_credentials() -> ResultsApiError:
    return ResultsApiError(status_code=401, message="Invalid credentials")


def error_body(*, status_code: int, message: str, code: str | None = None) -> dict:
    return {
        "error": {
            "code": code or _CODES.get(status_code, "ERROR"),
            "message": message,
            "status": status_code,
        }
    }


def validation_message(detail) -> str:
    """One readable sentence from a serializer's error dict: ``"startDate: must be before…"``.

    Field names are the request's own (camelCase); nested errors are joined with dots.
    """
    parts: list[str] = []

    def walk(value, path: str) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                if key == "non_field_errors":
                    walk(inner, path)
                else:
                    walk(inner, f"{path}.{key}" if path else str(key))
        elif isinstance(value, list) and all(not isinstance(v, (dict, list)) for v in value):
            text = " ".join(str(item) for item in value)
            parts.append(f"{path}: {text}" if path else text)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, f"{path}[{index}]")
        else:
            parts.append(f"{path}: {value}" if path else str(value))

    walk(detail, "")
    return "; ".join(parts) or "Invalid request"


def _message(exc: Exception, answered: exceptions.APIException) -> str:
    """This contract's sentence for an error (``answered`` is the exception DRF answered)."""
    if isinstance(exc, Http404):
        return BACKTEST_NOT_FOUND
    if isinstance(answered, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        # Missing, expired and forged tokens all read the same: nothing about why leaks out.
        return AUTHENTICATION_REQUIRED
    if isinstance(answered, exceptions.PermissionDenied):
        return NOT_YOUR_BACKTEST
    if isinstance(answered, exceptions.Throttled):
        seconds = int(answered.wait) if answered.wait is not None else None
        return "Too many requests" + (f"; retry in {seconds} s" if seconds else "")
    if isinstance(answered, exceptions.ValidationError):
        return validation_message(answered.detail)
    return str(answered.detail)


def results_exception_handler(exc, context):
    """DRF's handler (status, headers), its answer wrapped in ``{"error": {code, message,
    status}}``; anything unexpected stays a real 500."""
    answered, response = drf_error_response(exc, context)
    if response is None:
        return None
    if isinstance(answered, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        response.status_code = status.HTTP_401_UNAUTHORIZED
    if isinstance(answered, ServiceFailureError):
        code = answered.failure.code
    else:
        code = getattr(answered, "error_code", None)
    response.data = error_body(
        status_code=response.status_code, message=_message(exc, answered), code=code
    )
    return response


class ResultsApiMixin:
    """Gives a DRF view this contract's error envelope."""

    def get_exception_handler(self):
        return results_exception_handler

    @staticmethod
    def documented_error(status_code: int):
        """The body of this contract's error responses, for the OpenAPI document."""
        return ErrorSchema

"""Failures that are not the caller's input, classified once for every contract's handler.

Each contract renders these in its own error shape; this module only decides the status and the
sentence: a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` is 413, a database that cannot be reached is
503 (clients should retry), never a 500 traceback.
"""

from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError


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

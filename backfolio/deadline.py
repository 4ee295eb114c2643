"""A cooperative time limit for one run, checked inside the pure core (no Django here).

A run that asks for too much must stop at the service's time limit in every mode: in the request
thread of a synchronous execute, in an embedded worker thread, in a ``rundramatiq`` process — and
also when the client that asked for it has gone away. The caller opens ``run_time_limit(seconds)``
around the run; the core calls ``check_deadline()`` between indicator computations, between the
steps of a run and in the engines' bar loops, and the run ends with ``RunTimeLimitExceeded``
within one step of the limit. The limit lives in a context variable, so each thread (each run)
has its own and nothing needs to be passed down.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator
from contextlib import contextmanager


class RunTimeLimitExceeded(Exception):
    """The run went past its time limit (``seconds``) and was stopped."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(
            f"The run was stopped: it exceeded the run time limit of {seconds:g} s "
            "(BACKFOLIO_RUN_TIME_LIMIT_SECONDS)."
        )


# (monotonic deadline, the limit in seconds) of the run in progress in this context.
_deadline: contextvars.ContextVar[tuple[float, float] | None] = contextvars.ContextVar(
    "run_deadline", default=None
)


@contextmanager
def run_time_limit(seconds: float | None) -> Iterator[None]:
    """Limit the run inside the block to ``seconds`` (None or ≤ 0: no limit of its own).

    Nested limits keep the earlier deadline: a sweep's limit is not extended by its entries'.
    """
    current = _deadline.get()
    limit = current
    if seconds is not None and seconds > 0:
        deadline = time.monotonic() + seconds
        if current is None or deadline < current[0]:
            limit = (deadline, float(seconds))
    token = _deadline.set(limit)
    try:
        yield
    finally:
        _deadline.reset(token)


def check_deadline() -> None:
    """Raise ``RunTimeLimitExceeded`` when the current run is past its limit (cheap: call often)."""
    limit = _deadline.get()
    if limit is not None and time.monotonic() > limit[0]:
        raise RunTimeLimitExceeded(limit[1])

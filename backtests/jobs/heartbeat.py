"""The heartbeat thread that runs beside every long job.

While a worker runs a backtest, a research chunk or a walk-forward fold, a daemon thread writes
a fresh heartbeat to the job's row every quarter of ``BACKFOLIO_HEARTBEAT_TIMEOUT_SECONDS`` (at
least every half second), so that a long engine call is not taken for a dead worker; the
reapers act only on heartbeats older than the timeout. A failed write is logged and ends the
thread, never the work: a missed heartbeat only risks an early reap or re-run.
"""

from __future__ import annotations

import logging
import threading

from django.db import connection

from backtests.jobs.outcomes import heartbeat_timeout

logger = logging.getLogger(__name__)


class HeartbeatThread:
    """Use as a context manager around the work; subclasses say what ``write`` writes."""

    thread_name = "heartbeat"

    def __init__(self) -> None:
        self.interval = max(heartbeat_timeout() / 4, 0.5)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=self.thread_name, daemon=True)

    def __enter__(self) -> HeartbeatThread:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def write(self) -> None:
        raise NotImplementedError

    def _beat(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                self.write()
        except Exception:  # a missed heartbeat only risks an early reap; never stop the work
            logger.exception("%s failed", self)
        finally:
            connection.close()

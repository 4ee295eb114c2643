"""Worker start-up: in-process Dramatiq workers for the embedded mode, and engine warm-up.

With no ``REDIS_URL`` the broker is Dramatiq's in-process ``StubBroker``: messages never leave the
web process, so that process runs the worker threads too. With Redis, separate
``manage.py rundramatiq`` processes consume the queue and nothing starts here.
"""

import atexit
import logging
import threading
import time

import dramatiq
from django.conf import settings

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_worker = None


def warm_engines() -> None:
    """Import the engines and load their compiled code from the on-disk cache (compiling it the
    first time), so the first backtest a process serves does not pay for it."""
    started = time.perf_counter()
    try:
        from backtests.engines.warmup import warm_engines as warm

        warm()
    except Exception:  # warming is an optimisation; a failure here must not stop serving
        logger.exception("Warming the engines failed")
    else:
        logger.info("Engines warm in %.1f s", time.perf_counter() - started)


def start_embedded_workers():
    """Start this process's worker threads once; returns the worker, or None when not embedded."""
    global _worker
    if not settings.BACKFOLIO_EMBEDDED_WORKERS:
        return None
    from dramatiq.brokers.stub import StubBroker

    broker = dramatiq.get_broker()
    if not isinstance(broker, StubBroker):
        return None
    with _lock:
        if _worker is None:
            _worker = dramatiq.Worker(
                broker, worker_threads=settings.BACKFOLIO_EMBEDDED_WORKER_THREADS
            )
            _worker.start()
            atexit.register(_worker.stop)
            logger.info(
                "Started %d embedded Dramatiq worker threads",
                settings.BACKFOLIO_EMBEDDED_WORKER_THREADS,
            )
    return _worker


class WarmEnginesMiddleware(dramatiq.Middleware):
    """Warm the engines when a ``rundramatiq`` worker process boots."""

    def after_worker_boot(self, broker, worker):
        warm_engines()

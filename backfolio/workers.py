"""In-process Dramatiq workers for the embedded mode.

With no ``REDIS_URL`` the broker is Dramatiq's in-process ``StubBroker``: messages never leave the
web process, so that process runs the worker threads too. With Redis, separate
``manage.py rundramatiq`` processes consume the queue and nothing starts here.
"""

import atexit
import logging
import threading

from django.conf import settings

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_worker = None


def start_embedded_workers():
    """Start this process's worker threads once; returns the worker, or None when not embedded."""
    global _worker
    if not settings.BACKFOLIO_EMBEDDED_WORKERS:
        return None
    import dramatiq
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
            _warm_engines_in_background()
            logger.info(
                "Started %d embedded Dramatiq worker threads",
                settings.BACKFOLIO_EMBEDDED_WORKER_THREADS,
            )
    return _worker


def _warm_engines_in_background() -> None:
    """Compile (or load from the on-disk cache) the engines' code while the server starts, so
    the first backtest does not pay for it."""

    def warm():
        try:
            from backtests.engines.warmup import warm_engines

            warm_engines()
        except Exception:  # warming is an optimisation; a failure here must not stop serving
            logger.exception("Warming the engines failed")

    threading.Thread(target=warm, name="engine-warmup", daemon=True).start()

"""Worker start-up: in-process Dramatiq workers for the embedded mode, and engine warm-up.

With no ``REDIS_URL`` the broker is Dramatiq's in-process ``StubBroker``: messages never leave the
web process, so that process runs the worker threads too. With Redis, separate
``manage.py rundramatiq`` processes consume the queue and nothing starts here.

Under gunicorn (``gunicorn.conf.py``) the master imports the app and calls ``prepare_to_fork``:
it warms the engines once and every worker inherits the loaded code; threads start only in the
workers (``after_fork``), because threads do not survive a fork.
"""

import atexit
import gc
import logging
import os
import threading
import time

import dramatiq
from django.conf import settings

logger = logging.getLogger(__name__)

GUNICORN_ROLE_ENV = "BACKFOLIO_GUNICORN_ROLE"  # "master" while preloading, "worker" after fork
WARM_CALLBACKS_ENV = "BACKFOLIO_WARM_SIGNAL_CALLBACKS"  # now | background | skip

_lock = threading.Lock()
_worker = None


def signal_callback_warm_mode(default: str) -> str:
    """How to compile the engines' numba callback path (see ``backtests.engines.warmup``)."""
    return os.environ.get(WARM_CALLBACKS_ENV, default)


def warm_engines(*, signal_callbacks: str | None = None) -> None:
    """Load the engines before the first backtest this process serves.

    The usual runs need no compiling; the rare ones that need vectorbt's numba callbacks are
    compiled in a background thread by default, so that serving starts at once.
    """
    mode = signal_callbacks or signal_callback_warm_mode("background")
    started = time.perf_counter()
    try:
        from backtests.engines.warmup import warm_engines as warm

        warm(signal_callbacks=mode)
    except Exception:  # warming is an optimisation; a failure here must not stop serving
        logger.exception("Warming the engines failed")
    else:
        logger.info(
            "Engines warm in %.1f s (signal callbacks: %s)", time.perf_counter() - started, mode
        )


def freeze_loaded_objects() -> None:
    """Move every object alive now (modules, compiled engines, settings) out of the garbage
    collector's sight, for the life of the process.

    Loading Django, pandas, vectorbt and numba's compiled kernels leaves about half a million
    container objects that live as long as the process; without this, every full collection
    walks all of them (0.25–0.35 s of CPU each) and a long task such as a walk-forward triggers
    one every few runs, so the same work gets slower the longer a worker has been busy. After a
    fork the walk would also write to every page the parent loaded (copy on write). Frozen, a
    full collection looks only at what the process created since.
    """
    gc.collect()
    gc.freeze()
    logger.info("Froze %d loaded objects out of later garbage collections", gc.get_freeze_count())


def prepare_to_fork() -> None:
    """In a pre-forking master: warm what every child inherits, and start no thread.

    The callback path is compiled here too by default: once, instead of once per worker. With
    ``BACKFOLIO_WARM_SIGNAL_CALLBACKS=background`` each worker compiles it after the fork. What
    is loaded by then is frozen (``freeze_loaded_objects``) just before the fork, so the children
    share those pages and their collections skip them.
    """
    from django.db import connections

    mode = signal_callback_warm_mode("now")
    warm_engines(signal_callbacks="now" if mode == "now" else "skip")
    # A database connection opened while loading would be one socket shared by every worker.
    connections.close_all()
    freeze_loaded_objects()


def after_fork() -> None:
    """In each forked child of a preloading master: start the threads the master could not."""
    if signal_callback_warm_mode("now") == "background":
        from backtests.engines.warmup import warm_signal_callbacks_in_background

        warm_signal_callbacks_in_background()
    start_embedded_workers()


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
            _start_time_limit_watchers(broker)
            _worker.start()
            atexit.register(_worker.stop)
            logger.info(
                "Started %d embedded Dramatiq worker threads",
                settings.BACKFOLIO_EMBEDDED_WORKER_THREADS,
            )
    return _worker


def _start_time_limit_watchers(broker) -> None:
    """Start the thread of Dramatiq's ``TimeLimit`` middleware, which ``rundramatiq`` starts at
    process boot and an in-process worker never does; without it an embedded worker's actor
    time limit is never enforced (runs also stop themselves: ``backfolio.deadline``)."""
    from dramatiq.middleware import TimeLimit

    for middleware in broker.middleware:
        manager = getattr(middleware, "manager", None)
        never_started = isinstance(manager, threading.Thread) and manager.ident is None
        if isinstance(middleware, TimeLimit) and never_started:
            middleware.after_process_boot(broker)


class WarmEnginesMiddleware(dramatiq.Middleware):
    """Warm the engines when a ``rundramatiq`` worker process boots."""

    def after_worker_boot(self, broker, worker):
        warm_engines()
        freeze_loaded_objects()

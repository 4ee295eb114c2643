"""Dramatiq actors: they take ids, are idempotent, and leave everything else to ``jobs``.

Runs are not retried (``max_retries=0``): a failed run is a result, recorded on its row. Each run
has ``BACKFOLIO_RUN_TIME_LIMIT_SECONDS``; past it the run is stopped and marked failed — by the
core's own deadline checks (``backfolio.deadline``), which work in every mode. Dramatiq's
``TimeLimit`` is the backstop, a grace period later, for a run stuck between two checks. A sweep
whose entries differ only in plugin parameters on vectorbt sends one ``run_sweep_batch`` message:
its entries share vectorised engine calls (``sweeps.sweep_runs_as_batch``). Any other sweep sends
one ``run_sweep_entry`` message per grid entry, so its entries run in parallel across however
many workers consume the queue.

``StaleRunReaper`` runs the reaper when a worker boots and then periodically inside it, so a row
left ``running`` by a worker that died is failed even when nobody reads it.
"""

import logging
import threading

import dramatiq
from django.conf import settings
from django.db import connection
from dramatiq.middleware import Middleware

from backtests import robustness
from backtests.jobs import reaper, runner, sweeps
from backtests.jobs.outcomes import heartbeat_timeout

logger = logging.getLogger(__name__)

# The core stops a run at the limit itself; Dramatiq's asynchronous exception comes later, only
# for a run stuck in code that never checks (it cannot interrupt a call into C either).
TIME_LIMIT_BACKSTOP_GRACE_SECONDS = 30
RUN_TIME_LIMIT_MS = (
    int(settings.BACKFOLIO_RUN_TIME_LIMIT_SECONDS) + TIME_LIMIT_BACKSTOP_GRACE_SECONDS
) * 1000


@dramatiq.actor(max_retries=0, time_limit=RUN_TIME_LIMIT_MS)
def execute_backtest(backtest_id: str, task_id: str) -> None:
    reaper.maybe_reap()
    runner.run_execute_task(backtest_id, task_id)


@dramatiq.actor(max_retries=0, time_limit=RUN_TIME_LIMIT_MS)
def run_sweep_entry(backtest_id: str, task_id: str) -> None:
    reaper.maybe_reap()
    sweeps.run_sweep_entry(backtest_id, task_id)


@dramatiq.actor(max_retries=0, time_limit=RUN_TIME_LIMIT_MS)
def run_sweep_batch(sweep_id: str, task_id: str) -> None:
    reaper.maybe_reap()
    sweeps.run_sweep_batch(sweep_id, task_id)


# A robustness computation re-runs its backtest once per step (at most).
ROBUSTNESS_TIME_LIMIT_MS = RUN_TIME_LIMIT_MS * robustness.TOTAL_STEPS


@dramatiq.actor(max_retries=0, time_limit=ROBUSTNESS_TIME_LIMIT_MS)
def compute_robustness(robustness_id: str) -> None:
    robustness.robustness_run_queued(robustness_id)


class StaleRunReaper(Middleware):
    """Reap stale runs at worker boot and every half heartbeat timeout while the worker lives."""

    def __init__(self) -> None:
        self._stop = threading.Event()

    def after_worker_boot(self, broker, worker) -> None:
        self._stop.clear()
        threading.Thread(target=self._loop, name="backtest-reaper", daemon=True).start()

    def before_worker_shutdown(self, broker, worker) -> None:
        self._stop.set()

    def _loop(self) -> None:
        interval = max(heartbeat_timeout() / 2, 1.0)
        try:
            while True:
                try:
                    reaper.reap_stale_runs()
                except Exception:  # housekeeping: try again next time
                    logger.exception("Reaping stale backtests failed")
                if self._stop.wait(interval):
                    return
        finally:
            connection.close()


def _install_reaper() -> None:
    broker = dramatiq.get_broker()
    if not any(isinstance(middleware, StaleRunReaper) for middleware in broker.middleware):
        broker.add_middleware(StaleRunReaper())


_install_reaper()

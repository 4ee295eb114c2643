"""One backtest run: claim its row, run the pipeline with a heartbeat and progress, store the
artifacts, write the outcome (``outcomes.finish_run``).

``claim_run`` moves a row to ``running`` with a conditional UPDATE, so two workers, or a
duplicate message, never run the same row twice. ``execute_run`` runs a claimed row to its end;
``run_execute_task`` is the body of the ``execute_backtest`` actor.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.db import OperationalError
from django.utils import timezone

from backfolio.deadline import RunTimeLimitExceeded, run_time_limit
from backtests import artifacts
from backtests.jobs.heartbeat import HeartbeatThread
from backtests.jobs.outcomes import (
    completed_fields,
    failed_fields,
    finish_run,
    run_time_limit_seconds,
    time_limit_fields,
)
from backtests.models import Backtest, Task
from backtests.pipeline import RunError, allocation_report, run_backtest
from backtests.run_config import stored_run_spec

logger = logging.getLogger(__name__)

ACTIVE_TASK_STATUSES = (Task.Status.PENDING, Task.Status.STARTED, Task.Status.PROGRESS)
PROGRESS_WRITE_INTERVAL_SECONDS = 1.0


def claim_run(backtest: Backtest, *, only_pending: bool = False) -> int | None:
    """Move ``backtest`` to ``running`` if nobody runs it; returns the new run number or None.

    ``only_pending`` claims only a row that has never run (sweep entries). The in-memory
    instance is updated to match the row.
    """
    for _attempt in range(2):
        now = timezone.now()
        rows = Backtest.objects.filter(pk=backtest.pk, run_count=backtest.run_count)
        rows = (
            rows.filter(status=Backtest.Status.PENDING)
            if only_pending
            else rows.exclude(status=Backtest.Status.RUNNING)
        )
        fields = {
            "status": Backtest.Status.RUNNING,
            "run_count": backtest.run_count + 1,
            "started_at": now,
            "completed_at": None,
            "heartbeat_at": now,
            "progress": 0,
            "progress_message": "",
            "error": "",
            "metrics": {},
            "extra_metrics": {},
            "equity_curve_uri": None,
            "trades_uri": None,
        }
        if rows.update(**fields, updated_at=now):
            for name, value in fields.items():
                setattr(backtest, name, value)
            backtest.updated_at = now
            return backtest.run_count
        backtest.refresh_from_db(fields=["status", "run_count"])
        if backtest.status == Backtest.Status.RUNNING or (
            only_pending and backtest.status != Backtest.Status.PENDING
        ):
            return None
    return None


class _ProgressWriter:
    """Writes the engine's progress (and a heartbeat) to the row, at most once a second."""

    def __init__(self, backtest: Backtest, run_number: int) -> None:
        self.backtest = backtest
        self.run_number = run_number
        self.last_write = time.monotonic()
        self.last_percent = 0

    def __call__(self, fraction: float) -> None:
        percent = min(max(int(fraction * 100), 0), 99)
        now = time.monotonic()
        if percent <= self.last_percent or now - self.last_write < PROGRESS_WRITE_INTERVAL_SECONDS:
            return
        self.last_write, self.last_percent = now, percent
        try:
            Backtest.objects.filter(
                pk=self.backtest.pk, status=Backtest.Status.RUNNING, run_count=self.run_number
            ).update(progress=percent, heartbeat_at=timezone.now())
        except OperationalError:  # progress is informative; the next report tries again
            return
        self.backtest.progress = percent


class Heartbeat(HeartbeatThread):
    """Keeps the running row's ``heartbeat_at`` fresh (only while this run holds it), so that a
    long engine call without progress reports is not mistaken for a dead worker."""

    thread_name = "backtest-heartbeat"

    def __init__(self, backtest_id, run_number: int) -> None:
        self.backtest_id = backtest_id
        self.run_number = run_number
        super().__init__()

    def __str__(self) -> str:
        return f"Heartbeat for backtest {self.backtest_id}"

    def write(self) -> None:
        Backtest.objects.filter(
            pk=self.backtest_id, status=Backtest.Status.RUNNING, run_count=self.run_number
        ).update(heartbeat_at=timezone.now())


def execute_run(backtest: Backtest, run_number: int, *, heartbeat: bool = False) -> Backtest:
    """Run a claimed backtest to its end and record the outcome; never raises for a failed run.

    Returns ``backtest`` with its fields set as written (no extra query). The run stops at
    ``BACKFOLIO_RUN_TIME_LIMIT_SECONDS`` whichever thread runs it (a request's, an embedded
    worker's, a ``rundramatiq`` process's): the core checks the deadline as it goes.
    """
    from dramatiq.middleware.time_limit import TimeLimitExceeded

    beating = Heartbeat(backtest.pk, run_number) if heartbeat else None
    try:
        if beating:
            beating.__enter__()
        with run_time_limit(run_time_limit_seconds()):
            fields = _run_fields(backtest, run_number)
    except TimeLimitExceeded:
        fields = time_limit_fields()
    finally:
        if beating:
            beating.__exit__(None, None, None)
    settled = finish_run(
        backtest.pk, run_number, fields, sweep_id=backtest.sweep_id, settle_task=heartbeat
    )
    if settled:
        for name, value in fields.items():
            setattr(backtest, name, value)
    else:
        backtest.refresh_from_db()
    return backtest


def strategy_snapshot(backtest: Backtest) -> dict[str, Any]:
    """What a run executes of its strategy (``kind``, ``definition``, ``timeframe``), from the
    backtest's own snapshot of it (``Backtest.strategy_snapshot``), never from the strategy as
    it is now: anyone may edit a shared strategy, and that must not change what someone else's
    backtest executes.

    A row created without a snapshot (a bulk insert) gets one on its first run.
    """
    snapshot = backtest.strategy_snapshot
    if snapshot is None and backtest.strategy_id is not None:
        snapshot = backtest.strategy.run_snapshot()
        Backtest.objects.filter(pk=backtest.pk, strategy_snapshot__isnull=True).update(
            strategy_snapshot=snapshot
        )
        backtest.strategy_snapshot = snapshot
    if snapshot is None:  # a portfolio run: its whole strategy is in its config
        return {"kind": "signal", "definition": None, "timeframe": None}
    return snapshot


def strategy_inputs(backtest: Backtest) -> dict[str, Any]:
    """``strategy_snapshot`` as ``parse_run_config``'s strategy arguments."""
    snapshot = strategy_snapshot(backtest)
    return {
        "strategy_kind": snapshot["kind"],
        "strategy_definition": snapshot["definition"],
        "strategy_timeframe": snapshot["timeframe"],
    }


def run_spec(backtest: Backtest, *, engine: str | None = None):
    """The validated ``RunSpec`` of a stored v1 backtest, on its own engine or on ``engine``;
    raises ``RunError`` when the stored configuration no longer validates."""
    return stored_run_spec(
        backtest.config,
        snapshot=strategy_snapshot(backtest),
        engine=engine or backtest.engine,
        initial_capital=backtest.initial_capital,
        commission=backtest.commission,
        slippage=backtest.slippage,
    )


def _run_fields(backtest: Backtest, run_number: int) -> dict[str, Any]:
    try:
        spec = run_spec(backtest)
        result = run_backtest(spec, progress=_ProgressWriter(backtest, run_number))
        equity_uri, trades_uri = artifacts.write_run_artifacts(
            backtest.pk, run_number, result.equity, result.trades
        )
        report_uri = None
        if result.groups is not None:
            report_uri = artifacts.write_run_report(
                backtest.pk, run_number, _allocation_report(backtest, spec, result)
            )
    except (RunError, artifacts.ArtifactWriteError, ValueError, RunTimeLimitExceeded) as error:
        return failed_fields(str(error))
    except Exception as error:
        logger.exception("Backtest %s failed with an unexpected error", backtest.pk)
        return failed_fields(f"Internal error: {type(error).__name__}: {error}")
    return {**completed_fields(result, equity_uri, trades_uri), "report_uri": report_uri}


# What an allocation run's saved analytics compare it with when no benchmark was chosen for it.
DEFAULT_REPORT_BENCHMARK = "SPY"


def _allocation_report(backtest: Backtest, spec, result) -> dict[str, Any]:
    """An allocation run's analytics for its page, against the benchmark chosen for it (SPY
    when none was): what a Backfolio run saves in its result."""
    from marketdata.base import MarketDataError
    from marketdata.store import get_store

    benchmark = backtest.benchmark or DEFAULT_REPORT_BENCHMARK
    try:
        close = get_store().load([benchmark], result.start, result.end).close[benchmark]
    except MarketDataError:
        close = None  # a benchmark without prices over the run: no comparison
    return allocation_report(
        result,
        initial_capital=backtest.initial_capital,
        bars_per_year=spec.bars_per_year,
        benchmark=benchmark,
        benchmark_close=close,
    )


def claim_task(task_id: str, *, from_status: str, to_status: str) -> bool:
    now = timezone.now()
    return bool(
        Task.objects.filter(pk=task_id, status=from_status).update(
            status=to_status, started_at=now, updated_at=now
        )
    )


def load_backtest(backtest_id: str) -> Backtest | None:
    return Backtest.objects.select_related("strategy").filter(pk=backtest_id).first()


def run_execute_task(backtest_id: str, task_id: str) -> None:
    """Body of the ``execute_backtest`` actor."""
    if not claim_task(task_id, from_status=Task.Status.PENDING, to_status=Task.Status.STARTED):
        return  # a duplicate message: this task already ran or is running
    backtest = load_backtest(backtest_id)
    if backtest is None:
        _fail_task(task_id, f"Backtest {backtest_id} no longer exists.")
        return
    run_number = claim_run(backtest)
    if run_number is None:
        _fail_task(task_id, f"Backtest {backtest_id} was already running.")
        return
    execute_run(backtest, run_number, heartbeat=True)


def _fail_task(task_id: str, reason: str) -> None:
    now = timezone.now()
    Task.objects.filter(pk=task_id).update(
        status=Task.Status.FAILURE, error=reason, finished_at=now, updated_at=now
    )

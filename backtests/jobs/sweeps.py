"""A sweep's entries: one ``run_sweep_entry`` message each, or every pending entry in vectorised
batches (``run_sweep_batch``) when the engine and the grid allow it. Each entry ends as a single
run would (its own claim, run number, artifacts and guarded outcome UPDATE), counted once on the
sweep's task, whose last entry writes the leaderboard.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from backfolio.deadline import RunTimeLimitExceeded, run_time_limit
from backtests import artifacts
from backtests.engines.registry import runs_signal_batches
from backtests.jobs.outcomes import (
    completed_fields,
    count_sweep_entry,
    failed_fields,
    run_time_limit_seconds,
    time_limit_fields,
)
from backtests.jobs.runner import (
    Heartbeat,
    claim_run,
    claim_task,
    execute_run,
    load_backtest,
    run_spec,
)
from backtests.models import Backtest, Task
from backtests.pipeline import RunError, run_backtest_batch

logger = logging.getLogger(__name__)


def run_sweep_entry(backtest_id: str, task_id: str) -> None:
    """Body of the ``run_sweep_entry`` actor: one grid entry of a sweep."""
    backtest = load_backtest(backtest_id)
    if backtest is None:
        return
    run_number = claim_run(backtest, only_pending=True)
    if run_number is None:
        return  # a duplicate message: this entry already ran or is running
    claim_task(task_id, from_status=Task.Status.PENDING, to_status=Task.Status.PROGRESS)
    execute_run(backtest, run_number, heartbeat=True)


BATCH_CHUNK_SIZE = 100  # runs per engine call: bounds a worker's memory on large sweeps


def sweep_runs_as_batch(engine: str, strategy_kind: str, param_grid) -> bool:
    """Whether a sweep's entries can share vectorised engine calls: an engine that batches, a
    signal strategy, and entries that differ only in their plugin parameters. Other sweeps send
    one message per entry, so their entries run in parallel across workers."""
    return (
        runs_signal_batches(engine)
        and strategy_kind == "signal"
        and all(set(entry) <= {"signal_plugin_params"} for entry in param_grid)
    )


def run_sweep_batch(sweep_id: str, task_id: str) -> None:
    """Body of the ``run_sweep_batch`` actor: every pending entry of a sweep, in chunks of
    ``BATCH_CHUNK_SIZE`` vectorised runs.

    Each entry ends exactly as ``run_sweep_entry`` would leave it — its own claim, run number,
    artifacts, metrics and guarded outcome UPDATE, counted once toward the task's ``done`` — so
    the task, the leaderboard and the rows are the per-entry path's. Entries the engine cannot
    batch run one by one inside ``run_backtest_batch``.
    """
    children = list(
        Backtest.objects.select_related("strategy")
        .filter(sweep_id=sweep_id, status=Backtest.Status.PENDING)
        .order_by("sweep_index")
    )
    for start in range(0, len(children), BATCH_CHUNK_SIZE):
        _run_sweep_chunk(children[start : start + BATCH_CHUNK_SIZE], task_id, sweep_id)


def _run_sweep_chunk(children: list[Backtest], task_id: str, sweep_id) -> None:
    from dramatiq.middleware.time_limit import TimeLimitExceeded

    claimed = _claim_runs(children)
    if not claimed:
        return
    claim_task(task_id, from_status=Task.Status.PENDING, to_status=Task.Status.PROGRESS)
    outcomes: dict[Any, dict[str, Any]] = {}
    specs = []
    for backtest, run_number in claimed:
        try:
            specs.append((backtest, run_number, run_spec(backtest)))
        except RunError as error:
            outcomes[backtest.pk] = failed_fields(str(error))
    beating = _Heartbeats([(backtest.pk, run_number) for backtest, run_number in claimed])
    try:
        with beating, run_time_limit(run_time_limit_seconds()):
            results = run_backtest_batch([spec for _b, _r, spec in specs])
            for (backtest, run_number, _spec), result in zip(specs, results, strict=True):
                outcomes[backtest.pk] = _outcome_fields(backtest, run_number, result)
    except (TimeLimitExceeded, RunTimeLimitExceeded):
        for backtest, _run_number in claimed:
            outcomes.setdefault(backtest.pk, time_limit_fields())
    except Exception as error:  # a bug in the batch: fail the entries, not the worker
        logger.exception("Sweep %s: a batch of entries failed unexpectedly", sweep_id)
        for backtest, _run_number in claimed:
            outcomes.setdefault(
                backtest.pk, failed_fields(f"Internal error: {type(error).__name__}: {error}")
            )
    _finish_runs(
        [(backtest.pk, run_number, outcomes[backtest.pk]) for backtest, run_number in claimed],
        sweep_id,
    )


def _claim_runs(children: list[Backtest]) -> list[tuple[Backtest, int]]:
    """Claim every still-pending entry in one transaction (one commit instead of one each)."""
    with transaction.atomic():
        claimed = []
        for backtest in children:
            run_number = claim_run(backtest, only_pending=True)
            if run_number is not None:
                claimed.append((backtest, run_number))
    return claimed


def _outcome_fields(backtest: Backtest, run_number: int, result) -> dict[str, Any]:
    """A run's outcome fields from its result (or the ``RunError`` it failed with)."""
    if isinstance(result, Exception):
        return failed_fields(str(result))
    try:
        equity_uri, trades_uri = artifacts.write_run_artifacts(
            backtest.pk, run_number, result.equity, result.trades
        )
    except artifacts.ArtifactWriteError as error:
        return failed_fields(str(error))
    return completed_fields(result, equity_uri, trades_uri)


class _Heartbeats(Heartbeat):
    """One heartbeat thread for every run of a batch."""

    def __init__(self, runs: list[tuple[Any, int]]) -> None:
        super().__init__(runs[0][0] if runs else None, 0)
        self.runs = runs

    def write(self) -> None:
        for backtest_id, run_number in self.runs:
            Backtest.objects.filter(
                pk=backtest_id, status=Backtest.Status.RUNNING, run_count=run_number
            ).update(heartbeat_at=timezone.now())


def _finish_runs(runs: list[tuple[Any, int, dict[str, Any]]], sweep_id) -> None:
    """Write a chunk's outcomes in one transaction; each row guarded as ``finish_run`` does and
    counted once toward the sweep's task."""
    with transaction.atomic():
        now = timezone.now()
        written = 0
        for backtest_id, run_number, fields in runs:
            written += Backtest.objects.filter(
                pk=backtest_id, status=Backtest.Status.RUNNING, run_count=run_number
            ).update(**fields, updated_at=now)
        if written:
            count_sweep_entry(sweep_id, written)

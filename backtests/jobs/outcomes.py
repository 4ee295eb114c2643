"""A run's outcome: the fields it ends with, and the one guarded UPDATE that writes them.

``finish_run`` writes the outcome in one UPDATE guarded by the run number — a row that the reaper
already failed, or that a newer run claimed, is left alone. Finishing also settles the linked
task: an execute task ends SUCCESS or FAILURE; a sweep task counts the entry and the last entry
writes the leaderboard.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from backfolio.deadline import RunTimeLimitExceeded
from backtests.jobs.leaderboard import sweep_leaderboard
from backtests.models import Backtest, Sweep, Task
from metrics.jsonsafe import json_safe
from metrics.presenters import v1_row_metrics


def heartbeat_timeout() -> int:
    return int(settings.BACKFOLIO_HEARTBEAT_TIMEOUT_SECONDS)


def run_time_limit_seconds() -> float:
    return float(settings.BACKFOLIO_RUN_TIME_LIMIT_SECONDS)


def time_limit_fields() -> dict[str, Any]:
    """The outcome of a run that Dramatiq's backstop stopped (the core's own check came late)."""
    return failed_fields(str(RunTimeLimitExceeded(run_time_limit_seconds())))


def completed_fields(result, equity_uri: str, trades_uri: str) -> dict[str, Any]:
    return {
        "status": Backtest.Status.COMPLETED,
        "metrics": json_safe(result.metrics),
        "extra_metrics": {},
        "metrics_spec_version": str(result.metrics.get("metrics_spec_version") or ""),
        "fingerprint": result.fingerprint,
        "equity_curve_uri": equity_uri,
        "trades_uri": trades_uri,
        "progress": 100,
        "error": "",
        "completed_at": timezone.now(),
    }


def failed_fields(reason: str) -> dict[str, Any]:
    return {
        "status": Backtest.Status.FAILED,
        "metrics": {"error": reason},
        "extra_metrics": {},
        "equity_curve_uri": None,
        "trades_uri": None,
        "report_uri": None,
        "error": reason,
        "completed_at": timezone.now(),
    }


def finish_run(
    backtest_id,
    run_number: int,
    fields: dict[str, Any],
    *,
    sweep_id=None,
    settle_task: bool = True,
) -> bool:
    """Write a run's outcome and settle its task; False when the row is no longer this run's.

    ``settle_task=False`` skips looking for an execute task (a run in the request has none);
    ``sweep_id`` counts the run as one finished entry of that sweep.
    """
    with transaction.atomic():
        now = timezone.now()
        written = Backtest.objects.filter(
            pk=backtest_id, status=Backtest.Status.RUNNING, run_count=run_number
        ).update(**fields, updated_at=now)
        if not written:
            return False
        completed = fields["status"] == Backtest.Status.COMPLETED
        if settle_task:
            _settle_execute_task(backtest_id, fields, completed, now)
        if sweep_id is not None:
            count_sweep_entry(sweep_id)
    return True


def _settle_execute_task(backtest_id, fields: dict[str, Any], completed: bool, now) -> None:
    Task.objects.filter(
        backtest_id=backtest_id,
        kind=Task.Kind.EXECUTE,
        status__in=(Task.Status.STARTED, Task.Status.PROGRESS),
    ).update(
        status=Task.Status.SUCCESS if completed else Task.Status.FAILURE,
        done=1,
        result={
            "backtest_id": str(backtest_id),
            "status": fields["status"],
            "metrics": v1_row_metrics(fields["metrics"]),
        },
        error="" if completed else fields["error"],
        finished_at=now,
        updated_at=now,
    )


def count_sweep_entry(sweep_id, finished: int = 1) -> None:
    """``finished`` more entries of the sweep have ended; the last one writes the leaderboard."""
    task = Task.objects.select_for_update().filter(sweep_id=sweep_id).first()
    if task is None:
        return
    now = timezone.now()
    task.done = F("done") + finished
    task.status = Task.Status.PROGRESS
    task.updated_at = now
    task.save(update_fields=["done", "status", "updated_at"])
    task.refresh_from_db(fields=["done", "total"])
    if task.done >= task.total:
        task.status = Task.Status.SUCCESS
        task.result = sweep_leaderboard(Sweep.objects.get(pk=sweep_id))
        task.finished_at = now
        task.save(update_fields=["status", "result", "finished_at", "updated_at"])

"""The runner around every backtest run, and the reaper that finds runs whose worker died.

A run's life is told by its row: ``claim_run`` moves it to ``running`` with a conditional UPDATE
(so two workers, or a duplicate message, never run the same row twice), ``execute_run`` runs the
pipeline with a heartbeat and progress on the row, stores the artifacts, and ``finish_run`` writes
the outcome in one UPDATE guarded by the run number — a row that the reaper already failed, or
that a newer run claimed, is left alone. Finishing also settles the linked task: an execute task
ends SUCCESS or FAILURE; a sweep task counts the entry and the last entry writes the leaderboard.

``reap_stale_runs`` fails every ``running`` row whose heartbeat is older than
``BACKFOLIO_HEARTBEAT_TIMEOUT_SECONDS`` and re-sends the messages of tasks that stayed
``PENDING`` that long (the actors are idempotent, so a duplicate is harmless). It runs when a
worker starts, periodically inside workers, at the start of every actor, and (throttled) whenever
the API reads a task or a backtest.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from backfolio.deadline import RunTimeLimitExceeded, run_time_limit
from backtests import artifacts
from backtests.engines.registry import runs_signal_batches
from backtests.models import Backtest, Sweep, Task
from backtests.pipeline import RunError, parse_run_config, run_backtest, run_backtest_batch
from metrics.jsonsafe import json_safe
from metrics.presenters import V1_METRIC_HIGHER_IS_BETTER, v1_row_metrics

logger = logging.getLogger(__name__)

ACTIVE_TASK_STATUSES = (Task.Status.PENDING, Task.Status.STARTED, Task.Status.PROGRESS)
PROGRESS_WRITE_INTERVAL_SECONDS = 1.0
LEADERBOARD_SUMMARY_KEYS = (
    "total_return",
    "perf_cagr",
    "perf_sharpe_ratio",
    "perf_sortino_ratio",
    "risk_max_drawdown",
    "risk_volatility_annualised",
    "trade_total_trades",
    "trade_win_rate",
)


def heartbeat_timeout() -> int:
    return int(settings.BACKFOLIO_HEARTBEAT_TIMEOUT_SECONDS)


def run_time_limit_seconds() -> float:
    return float(settings.BACKFOLIO_RUN_TIME_LIMIT_SECONDS)


def _time_limit_fields() -> dict[str, Any]:
    """The outcome of a run that Dramatiq's backstop stopped (the core's own check came late)."""
    return _failed_fields(str(RunTimeLimitExceeded(run_time_limit_seconds())))


# --- claiming and running ------------------------------------------------------------------


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


class Heartbeat:
    """A thread that keeps ``heartbeat_at`` fresh while a worker runs a backtest, so that a
    long engine call without progress reports is not mistaken for a dead worker."""

    def __init__(self, backtest_id, run_number: int) -> None:
        self.backtest_id = backtest_id
        self.run_number = run_number
        self.interval = max(heartbeat_timeout() / 4, 0.5)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="backtest-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _write(self) -> None:
        Backtest.objects.filter(
            pk=self.backtest_id, status=Backtest.Status.RUNNING, run_count=self.run_number
        ).update(heartbeat_at=timezone.now())

    def _beat(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                self._write()
        except Exception:  # a missed heartbeat only risks an early reap; never kill the run
            logger.exception("Heartbeat for backtest %s failed", self.backtest_id)
        finally:
            connection.close()


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
        fields = _time_limit_fields()
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


def strategy_inputs(backtest: Backtest) -> dict[str, Any]:
    """The strategy half of a run's configuration, from the backtest's own snapshot of its
    strategy (``Backtest.strategy_snapshot``), never from the strategy as it is now: anyone may
    edit a shared strategy, and that must not change what someone else's backtest executes.

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
        return {"strategy_kind": "signal", "strategy_definition": None, "strategy_timeframe": None}
    return {
        "strategy_kind": snapshot["kind"],
        "strategy_definition": snapshot["definition"],
        "strategy_timeframe": snapshot["timeframe"],
    }


def _run_fields(backtest: Backtest, run_number: int) -> dict[str, Any]:
    try:
        spec, problems = parse_run_config(
            backtest.config,
            **strategy_inputs(backtest),
            engine=backtest.engine,
            initial_capital=backtest.initial_capital,
            commission=backtest.commission,
            slippage=backtest.slippage,
        )
        if problems:
            raise RunError(
                "Invalid configuration: " + "; ".join(str(problem) for problem in problems)
            )
        result = run_backtest(spec, progress=_ProgressWriter(backtest, run_number))
        equity_uri, trades_uri = artifacts.write_run_artifacts(
            backtest.pk, run_number, result.equity, result.trades
        )
    except (RunError, artifacts.ArtifactWriteError, ValueError, RunTimeLimitExceeded) as error:
        return _failed_fields(str(error))
    except Exception as error:
        logger.exception("Backtest %s failed with an unexpected error", backtest.pk)
        return _failed_fields(f"Internal error: {type(error).__name__}: {error}")
    return _completed_fields(result, equity_uri, trades_uri)


def _completed_fields(result, equity_uri: str, trades_uri: str) -> dict[str, Any]:
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


def _failed_fields(reason: str) -> dict[str, Any]:
    return {
        "status": Backtest.Status.FAILED,
        "metrics": {"error": reason},
        "extra_metrics": {},
        "equity_curve_uri": None,
        "trades_uri": None,
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
            _count_sweep_entry(sweep_id)
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


# --- sweeps ------------------------------------------------------------------------------------


def _count_sweep_entry(sweep_id, finished: int = 1) -> None:
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


def sweep_leaderboard(sweep: Sweep) -> dict[str, Any]:
    """SPEC §2: completed runs ranked by the metric's direction; failed runs last, score null."""
    metric = sweep.rank_metric
    higher_is_better = V1_METRIC_HIGHER_IS_BETTER.get(metric, True)
    children = list(
        sweep.backtests.order_by("sweep_index").values(
            "id", "sweep_index", "status", "metrics", "extra_metrics", "error"
        )
    )
    for child in children:  # the v1 contract's metrics: its keys, its units
        child["metrics"] = v1_row_metrics(child["metrics"], child["extra_metrics"])
    grid = sweep.param_grid

    def score_of(child) -> float | None:
        if child["status"] != Backtest.Status.COMPLETED:
            return None
        value = (child["metrics"] or {}).get(metric)
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        return float(value) if is_number else None

    def order(child) -> tuple:
        score = score_of(child)
        if child["status"] != Backtest.Status.COMPLETED:
            group = 2
        elif score is None:
            group = 1
        else:
            group = 0
        signed = 0.0 if score is None else (-score if higher_is_better else score)
        return (group, signed, child["sweep_index"])

    leaderboard = []
    for rank, child in enumerate(sorted(children, key=order), start=1):
        metrics = child["metrics"] or {}
        entry = {
            "rank": rank,
            "backtest_id": str(child["id"]),
            "overrides": grid[child["sweep_index"]] if child["sweep_index"] is not None else {},
            "status": child["status"],
            "score": score_of(child),
            "rank_metric": metric,
            "metrics_summary": {
                key: metrics.get(key) for key in dict.fromkeys((*LEADERBOARD_SUMMARY_KEYS, metric))
            }
            if child["status"] == Backtest.Status.COMPLETED
            else {},
        }
        if child["status"] == Backtest.Status.FAILED:
            entry["error"] = child["error"] or metrics.get("error") or "failed"
        leaderboard.append(entry)
    completed = sum(1 for child in children if child["status"] == Backtest.Status.COMPLETED)
    failed = sum(1 for child in children if child["status"] == Backtest.Status.FAILED)
    return {
        "leaderboard": leaderboard,
        "total_runs": len(children),
        "completed": completed,
        "failed": failed,
    }


# --- the reaper --------------------------------------------------------------------------------

_reap_lock = threading.Lock()
_last_reap = 0.0


def maybe_reap() -> None:
    """``reap_stale_runs`` at most once per ``BACKFOLIO_REAPER_INTERVAL_SECONDS`` per process."""
    global _last_reap
    interval = float(getattr(settings, "BACKFOLIO_REAPER_INTERVAL_SECONDS", 15))
    now = time.monotonic()
    with _reap_lock:
        if now - _last_reap < interval:
            return
        _last_reap = now
    try:
        reap_stale_runs()
    except Exception:  # reaping is housekeeping: a failure must not break the caller
        logger.exception("Reaping stale backtests failed")


def reap_stale_runs() -> dict[str, int]:
    """Fail runs whose worker stopped beating, and re-send messages that were never picked up.

    Returns how many rows were failed and how many tasks re-queued.
    """
    timeout = heartbeat_timeout()
    now = timezone.now()
    cutoff = now - timedelta(seconds=timeout)
    stale = Backtest.objects.filter(status=Backtest.Status.RUNNING).filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, updated_at__lt=cutoff)
    )
    failed = 0
    for backtest_id, run_number, heartbeat_at, sweep_id in stale.values_list(
        "id", "run_count", "heartbeat_at", "sweep_id"
    ):
        last = heartbeat_at.isoformat() if heartbeat_at else "never"
        reason = (
            f"The worker running this backtest stopped responding (no heartbeat for more than "
            f"{timeout} s; last heartbeat: {last}); the run was abandoned."
        )
        if finish_run(backtest_id, run_number, _failed_fields(reason), sweep_id=sweep_id):
            failed += 1
            logger.warning("Backtest %s: %s", backtest_id, reason)

    # An execute task whose worker died before it claimed the backtest.
    orphaned = Task.objects.filter(
        kind=Task.Kind.EXECUTE,
        status__in=(Task.Status.STARTED, Task.Status.PROGRESS),
        updated_at__lt=cutoff,
    ).exclude(backtest__status=Backtest.Status.RUNNING)
    failed += orphaned.update(
        status=Task.Status.FAILURE,
        error=f"The worker running this task stopped responding for more than {timeout} s.",
        finished_at=now,
        updated_at=now,
    )
    requeued = _requeue_lost_messages(cutoff, now)
    from backtests.research.jobs import reap_research_sweeps
    from backtests.research.walk_forward.jobs import reap_walk_forwards

    research = reap_research_sweeps()
    walk_forwards = reap_walk_forwards()
    requeued += research["chunks"] + research["finishes"]
    requeued += walk_forwards["folds"] + walk_forwards["finishes"]
    return {"failed": failed, "requeued": requeued}


def _requeue_lost_messages(cutoff, now) -> int:
    from backtests import tasks as actors

    requeued = 0
    waiting = Task.objects.filter(
        Q(kind=Task.Kind.EXECUTE, status=Task.Status.PENDING)
        | Q(kind=Task.Kind.SWEEP, status__in=(Task.Status.PENDING, Task.Status.PROGRESS)),
        updated_at__lt=cutoff,
    ).values_list("id", "kind", "backtest_id", "sweep_id")
    for task_id, kind, backtest_id, sweep_id in waiting:
        # Bumping updated_at first makes a concurrent reaper skip this task.
        if not Task.objects.filter(pk=task_id, updated_at__lt=cutoff).update(updated_at=now):
            continue
        if kind == Task.Kind.EXECUTE:
            actors.execute_backtest.send(str(backtest_id), str(task_id))
        else:
            pending = Backtest.objects.filter(
                sweep_id=sweep_id, status=Backtest.Status.PENDING
            ).values_list("id", flat=True)
            for child_id in pending:
                actors.run_sweep_entry.send(str(child_id), str(task_id))
        requeued += 1
        logger.warning("Re-queued task %s: its message was not picked up in time", task_id)
    return requeued


# --- what the actors do ------------------------------------------------------------------------


def _claim_task(task_id: str, *, from_status: str, to_status: str) -> bool:
    now = timezone.now()
    return bool(
        Task.objects.filter(pk=task_id, status=from_status).update(
            status=to_status, started_at=now, updated_at=now
        )
    )


def _load_backtest(backtest_id: str) -> Backtest | None:
    return Backtest.objects.select_related("strategy").filter(pk=backtest_id).first()


def run_execute_task(backtest_id: str, task_id: str) -> None:
    """Body of the ``execute_backtest`` actor."""
    if not _claim_task(task_id, from_status=Task.Status.PENDING, to_status=Task.Status.STARTED):
        return  # a duplicate message: this task already ran or is running
    backtest = _load_backtest(backtest_id)
    if backtest is None:
        _fail_task(task_id, f"Backtest {backtest_id} no longer exists.")
        return
    run_number = claim_run(backtest)
    if run_number is None:
        _fail_task(task_id, f"Backtest {backtest_id} was already running.")
        return
    execute_run(backtest, run_number, heartbeat=True)


def run_sweep_entry(backtest_id: str, task_id: str) -> None:
    """Body of the ``run_sweep_entry`` actor: one grid entry of a sweep."""
    backtest = _load_backtest(backtest_id)
    if backtest is None:
        return
    run_number = claim_run(backtest, only_pending=True)
    if run_number is None:
        return  # a duplicate message: this entry already ran or is running
    _claim_task(task_id, from_status=Task.Status.PENDING, to_status=Task.Status.PROGRESS)
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
    _claim_task(task_id, from_status=Task.Status.PENDING, to_status=Task.Status.PROGRESS)
    outcomes: dict[Any, dict[str, Any]] = {}
    specs = []
    for backtest, run_number in claimed:
        try:
            specs.append((backtest, run_number, run_spec(backtest)))
        except RunError as error:
            outcomes[backtest.pk] = _failed_fields(str(error))
    beating = _Heartbeats([(backtest.pk, run_number) for backtest, run_number in claimed])
    try:
        with beating, run_time_limit(run_time_limit_seconds()):
            results = run_backtest_batch([spec for _b, _r, spec in specs])
            for (backtest, run_number, _spec), result in zip(specs, results, strict=True):
                outcomes[backtest.pk] = _outcome_fields(backtest, run_number, result)
    except (TimeLimitExceeded, RunTimeLimitExceeded):
        for backtest, _run_number in claimed:
            outcomes.setdefault(backtest.pk, _time_limit_fields())
    except Exception as error:  # a bug in the batch: fail the entries, not the worker
        logger.exception("Sweep %s: a batch of entries failed unexpectedly", sweep_id)
        for backtest, _run_number in claimed:
            outcomes.setdefault(
                backtest.pk, _failed_fields(f"Internal error: {type(error).__name__}: {error}")
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


def run_spec(backtest: Backtest, *, engine: str | None = None):
    """The validated ``RunSpec`` of a stored v1 backtest, on its own engine or on ``engine``;
    raises ``RunError`` when the stored configuration no longer validates."""
    spec, problems = parse_run_config(
        backtest.config,
        **strategy_inputs(backtest),
        engine=engine or backtest.engine,
        initial_capital=backtest.initial_capital,
        commission=backtest.commission,
        slippage=backtest.slippage,
    )
    if problems:
        raise RunError("Invalid configuration: " + "; ".join(str(problem) for problem in problems))
    return spec


def _outcome_fields(backtest: Backtest, run_number: int, result) -> dict[str, Any]:
    """A run's outcome fields from its result (or the ``RunError`` it failed with)."""
    if isinstance(result, Exception):
        return _failed_fields(str(result))
    try:
        equity_uri, trades_uri = artifacts.write_run_artifacts(
            backtest.pk, run_number, result.equity, result.trades
        )
    except artifacts.ArtifactWriteError as error:
        return _failed_fields(str(error))
    return _completed_fields(result, equity_uri, trades_uri)


class _Heartbeats(Heartbeat):
    """One heartbeat thread for every run of a batch."""

    def __init__(self, runs: list[tuple[Any, int]]) -> None:
        super().__init__(runs[0][0] if runs else None, 0)
        self.runs = runs

    def _write(self) -> None:
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
            _count_sweep_entry(sweep_id, written)


def _fail_task(task_id: str, reason: str) -> None:
    now = timezone.now()
    Task.objects.filter(pk=task_id).update(
        status=Task.Status.FAILURE, error=reason, finished_at=now, updated_at=now
    )

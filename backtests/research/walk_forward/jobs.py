"""What the walk-forward actor does: one fold's in-sample batch per message, then (in whichever
message finishes the last in-sample batch) the out-of-sample runs in order and the result.

Folds are claimed with a conditional UPDATE (``pending → running``), so a duplicate message does
nothing; the out-of-sample phase is claimed the same way (``out_of_sample_started_at`` set once),
so it runs once at a time. A fold that fails fails the whole analysis, and the other folds'
messages then stop at their claim.

While a worker runs a fold (or the out-of-sample phase) a heartbeat thread keeps the row's
``heartbeat_at`` fresh. ``reap_walk_forwards`` (called by the runs' reaper) hands a fold whose
heartbeat is older than ``BACKFOLIO_HEARTBEAT_TIMEOUT_SECONDS`` back to ``pending`` and re-sends
it, re-sends folds whose message was never picked up, and re-sends the out-of-sample phase when
its worker died or the message that should have started it was lost; nothing is counted twice,
because a fold's in-sample runs are counted on the fold as they end and taken off again when it
is handed back, and the out-of-sample runs only when the result is.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from backfolio.deadline import RunTimeLimitExceeded, run_time_limit
from backtests.jobs import messages
from backtests.jobs.heartbeat import HeartbeatThread
from backtests.jobs.outcomes import heartbeat_timeout
from backtests.models import Task
from backtests.pipeline import RunError
from backtests.research.grid import apply_overrides
from backtests.research.walk_forward import core
from backtests.research.walk_forward.models import WalkForward, WalkForwardFold
from backtests.run_config import RunSpec, stored_run_spec
from marketdata.store import BatchLookups
from metrics.jsonsafe import iso_date, json_safe

logger = logging.getLogger(__name__)


def _fold_of(row: WalkForwardFold) -> core.Fold:
    return core.Fold(
        index=row.index,
        in_sample_start=row.in_sample_start,
        in_sample_end=row.in_sample_end,
        out_of_sample_start=row.out_of_sample_start,
        out_of_sample_end=row.out_of_sample_end,
    )


def combination_spec(
    walk_forward: WalkForward, overrides: dict[str, Any], *, lookups: BatchLookups | None = None
) -> RunSpec:
    """One combination over the whole span (fold windows are cut from it); ``RunError`` when
    its configuration no longer validates."""
    return stored_run_spec(
        apply_overrides(walk_forward.base_config, overrides),
        snapshot=walk_forward.strategy_snapshot,  # never the strategy as edited since
        engine=walk_forward.engine,
        initial_capital=walk_forward.initial_capital,
        commission=walk_forward.commission,
        slippage=walk_forward.slippage,
        store=lookups,
    )


def _count_done(walk_forward_id, runs: int) -> None:
    """``runs`` more runs ended, on the analysis and its task."""
    with transaction.atomic():
        now = timezone.now()
        WalkForward.objects.filter(pk=walk_forward_id).update(done=F("done") + runs, updated_at=now)
        Task.objects.filter(walk_forward__pk=walk_forward_id).update(
            done=F("done") + runs, status=Task.Status.PROGRESS, updated_at=now
        )


def _count_fold_runs(walk_forward_id, fold_id, runs: int) -> None:
    """``runs`` more in-sample runs of a fold ended: counted on the fold and the analysis in one
    transaction, only while this fold is still running (a fold handed back by the reaper
    counts nothing more from its old worker)."""
    with transaction.atomic():
        if WalkForwardFold.objects.filter(pk=fold_id, status=WalkForwardFold.Status.RUNNING).update(
            done=F("done") + runs
        ):
            _count_done(walk_forward_id, runs)


def _start(walk_forward_id) -> None:
    with transaction.atomic():
        now = timezone.now()
        WalkForward.objects.filter(pk=walk_forward_id, status=WalkForward.Status.PENDING).update(
            status=WalkForward.Status.RUNNING, started_at=now, updated_at=now
        )
        Task.objects.filter(walk_forward__pk=walk_forward_id, status=Task.Status.PENDING).update(
            status=Task.Status.PROGRESS, started_at=now, updated_at=now
        )


def _fail(walk_forward_id, reason: str) -> None:
    with transaction.atomic():
        now = timezone.now()
        failed = WalkForward.objects.filter(
            pk=walk_forward_id,
            status__in=(WalkForward.Status.PENDING, WalkForward.Status.RUNNING),
        ).update(status=WalkForward.Status.FAILED, error=reason, completed_at=now, updated_at=now)
        if failed:
            Task.objects.filter(walk_forward__pk=walk_forward_id).update(
                status=Task.Status.FAILURE, error=reason, finished_at=now, updated_at=now
            )


def _claim_fold(walk_forward_id, index: int) -> bool:
    active = WalkForward.objects.filter(
        pk=walk_forward_id,
        status__in=(WalkForward.Status.PENDING, WalkForward.Status.RUNNING),
    )
    return bool(
        WalkForwardFold.objects.filter(
            walk_forward_id=walk_forward_id,
            index=index,
            status=WalkForwardFold.Status.PENDING,
            walk_forward__in=active,
        ).update(status=WalkForwardFold.Status.RUNNING)
    )


def _claim_out_of_sample(walk_forward_id) -> bool:
    """True once, for the message that finds every fold chosen first."""
    with transaction.atomic():
        unchosen = (
            WalkForwardFold.objects.filter(walk_forward_id=walk_forward_id)
            .exclude(status=WalkForwardFold.Status.CHOSEN)
            .exists()
        )
        if unchosen:
            return False
        return bool(
            WalkForward.objects.filter(
                pk=walk_forward_id,
                status=WalkForward.Status.RUNNING,
                out_of_sample_started_at__isnull=True,
            ).update(out_of_sample_started_at=timezone.now())
        )


def run_fold(walk_forward_id: str, index: int) -> None:
    """Body of the ``run_walk_forward_fold`` actor."""
    from dramatiq.middleware.time_limit import TimeLimitExceeded

    if not _claim_fold(walk_forward_id, index):
        return  # a duplicate message, or the analysis already failed
    try:
        _start(walk_forward_id)
        walk_forward = WalkForward.objects.select_related("strategy").get(pk=walk_forward_id)
        row = walk_forward.folds.get(index=index)
        # The core stops the fold at the limit itself; Dramatiq's TimeLimit is the backstop.
        with run_time_limit(settings.BACKFOLIO_RUN_TIME_LIMIT_SECONDS):
            with RowHeartbeat(walk_forward_id, row.pk):
                _choose(walk_forward, row)
            finish(walk_forward_id, walk_forward)
    except (TimeLimitExceeded, RunTimeLimitExceeded):
        limit = settings.BACKFOLIO_RUN_TIME_LIMIT_SECONDS
        _fail(walk_forward_id, f"Fold {index} exceeded the time limit of {limit} s.")
    except RunError as error:
        _fail(walk_forward_id, str(error))
    except Exception as error:  # a bug: fail the analysis, not the worker
        logger.exception("Walk-forward %s fold %s failed unexpectedly", walk_forward_id, index)
        _fail(walk_forward_id, f"Internal error: {type(error).__name__}: {error}")


def finish(walk_forward_id: str, walk_forward: WalkForward | None = None) -> None:
    """The out-of-sample phase, when every fold has chosen and nobody else runs it."""
    if not _claim_out_of_sample(walk_forward_id):
        return
    if walk_forward is None:
        walk_forward = WalkForward.objects.select_related("strategy").get(pk=walk_forward_id)
    with RowHeartbeat(walk_forward_id):
        _run_out_of_sample(walk_forward)


def finish_walk_forward(walk_forward_id: str) -> None:
    """Body of the ``finish_walk_forward`` actor (sent by the reaper)."""
    from dramatiq.middleware.time_limit import TimeLimitExceeded

    try:
        with run_time_limit(settings.BACKFOLIO_RUN_TIME_LIMIT_SECONDS):
            finish(walk_forward_id)
    except (TimeLimitExceeded, RunTimeLimitExceeded):
        limit = settings.BACKFOLIO_RUN_TIME_LIMIT_SECONDS
        _fail(walk_forward_id, f"The out-of-sample runs exceeded the time limit of {limit} s.")
    except RunError as error:
        _fail(walk_forward_id, str(error))
    except Exception as error:  # a bug: fail the analysis, not the worker
        logger.exception("Walk-forward %s failed unexpectedly", walk_forward_id)
        _fail(walk_forward_id, f"Internal error: {type(error).__name__}: {error}")


class RowHeartbeat(HeartbeatThread):
    """Keeps ``heartbeat_at`` fresh while a worker is busy — on the fold it runs (if any) and on
    the analysis, whose ``updated_at`` it also moves so that folds queued behind a long one are
    not taken for lost messages. The first beat is written on entering."""

    thread_name = "walk-forward-heartbeat"

    def __init__(self, walk_forward_id, fold_id=None) -> None:
        self.walk_forward_id = walk_forward_id
        self.fold_id = fold_id
        super().__init__()

    def __str__(self) -> str:
        return "Walk-forward heartbeat"

    def __enter__(self) -> RowHeartbeat:
        self.write()
        super().__enter__()
        return self

    def write(self) -> None:
        now = timezone.now()
        if self.fold_id is not None:
            WalkForwardFold.objects.filter(pk=self.fold_id).update(heartbeat_at=now)
        WalkForward.objects.filter(pk=self.walk_forward_id).update(heartbeat_at=now, updated_at=now)


# The specs of the last analysis this process ran a fold of: its folds differ only in their
# windows, which ``core`` cuts from these, and a worker usually runs several folds of one
# analysis in a row. A spec depends only on fields fixed when the analysis was created (and on
# the market data's coverage, checked when the specs are parsed).
_last_specs: tuple[Any, list[RunSpec]] | None = None
_last_specs_lock = threading.Lock()


def remember_specs(walk_forward_id, specs: list[RunSpec]) -> None:
    """The specs of ``walk_forward_id``'s combinations as its creation parsed them (the same
    snapshot, configuration and settings as ``combination_spec``), for the folds this process
    runs (the embedded mode's workers); a worker elsewhere parses them itself."""
    global _last_specs
    with _last_specs_lock:
        _last_specs = (walk_forward_id, list(specs))


def combination_specs(walk_forward: WalkForward) -> list[RunSpec]:
    """Every combination's spec over the whole span, in the order of ``combinations``."""
    global _last_specs
    # Parsed under the lock: the worker threads that start folds of one analysis together wait
    # for one parse instead of each doing the same.
    with _last_specs_lock:
        if _last_specs is not None and _last_specs[0] == walk_forward.pk:
            return _last_specs[1]
        lookups = BatchLookups()  # every combination asks the data the same questions
        specs = [
            combination_spec(walk_forward, overrides, lookups=lookups)
            for overrides in walk_forward.combinations
        ]
        _last_specs = (walk_forward.pk, specs)
        return specs


def _choose(walk_forward: WalkForward, row: WalkForwardFold) -> None:
    fold = _fold_of(row)
    specs = combination_specs(walk_forward)
    choice = core.choose_in_sample(
        specs,
        fold,
        walk_forward.rank_metric,
        chunk_size=core.IN_SAMPLE_CHUNK_SIZE,
        on_chunk=lambda runs: _count_fold_runs(walk_forward.pk, row.pk, runs),
    )
    if choice.position is None:
        reason = (
            f"Fold {row.index} (in sample {fold.in_sample_start}..{fold.in_sample_end}): no "
            f"combination completed with a {walk_forward.rank_metric} score "
            f"({choice.completed} completed, {choice.failed} failed"
            + (f"; first error: {choice.first_error}" if choice.first_error else "")
            + ")."
        )
        WalkForwardFold.objects.filter(pk=row.pk).update(
            status=WalkForwardFold.Status.FAILED, error=reason, in_sample_failed=choice.failed
        )
        raise RunError(reason)
    _record_choice(row.pk, choice)


def _record_choice(fold_id, choice: core.InSampleChoice) -> None:
    """The fold's choice, once (its runs were counted as they ended): a fold re-run after its
    worker died is chosen by whichever run writes first."""
    WalkForwardFold.objects.filter(pk=fold_id, status=WalkForwardFold.Status.RUNNING).update(
        status=WalkForwardFold.Status.CHOSEN,
        chosen_index=choice.position,
        in_sample_score=choice.score,
        in_sample_metrics=json_safe(choice.metrics),
        in_sample_failed=choice.failed,
    )


def _run_out_of_sample(walk_forward: WalkForward) -> None:
    rows = list(walk_forward.folds.order_by("index"))
    capital = walk_forward.initial_capital
    runs = []
    first_spec = None
    for row in rows:
        spec = combination_spec(walk_forward, walk_forward.combinations[row.chosen_index])
        first_spec = first_spec or spec
        try:
            run = core.run_out_of_sample(spec, _fold_of(row), capital)
        except RunError as error:
            raise RunError(f"Fold {row.index} (out of sample): {error}") from error
        runs.append(run)
        capital = float(run.equity.iloc[-1])
        WalkForwardFold.objects.filter(pk=row.pk).update(
            out_of_sample_metrics=json_safe(run.metrics)
        )
    stitched = core.stitch(
        runs,
        initial_capital=walk_forward.initial_capital,
        bars_per_year=first_spec.bars_per_year,
        risk_free_rate=first_spec.risk_free_rate,
    )
    chosen = [row.chosen_index for row in rows]
    changes = core.choice_changes(chosen)
    result = {
        "metrics": stitched.metrics,  # the core's, as every fold's (the API presents them)
        "psr": stitched.psr,
        "walk_forward_efficiency": core.walk_forward_efficiency(
            stitched.metrics.get(core.ANNUAL_RETURN_KEY),
            [(row.in_sample_metrics or {}).get(core.ANNUAL_RETURN_KEY) for row in rows],
        ),
        "choice_changes": changes,
        "choice_change_rate": changes / (len(rows) - 1) if len(rows) > 1 else None,
        "equity": [
            {"date": iso_date(day), "equity": value}
            for day, value in zip(stitched.equity.index, stitched.equity.to_numpy(), strict=True)
        ],
    }
    _complete(walk_forward.pk, json_safe(result))


def _complete(walk_forward_id, result: dict[str, Any]) -> None:
    with transaction.atomic():
        now = timezone.now()
        completed = WalkForward.objects.filter(
            pk=walk_forward_id, status=WalkForward.Status.RUNNING
        ).update(
            status=WalkForward.Status.COMPLETED,
            result=result,
            done=F("total"),
            completed_at=now,
            updated_at=now,
        )
        if completed:
            Task.objects.filter(walk_forward__pk=walk_forward_id).update(
                status=Task.Status.SUCCESS,
                done=F("total"),
                result={"walk_forward_id": str(walk_forward_id), "status": "completed"},
                finished_at=now,
                updated_at=now,
            )


def _hand_back(fold_id, walk_forward_id, heartbeat) -> bool:
    """A fold whose worker died back to ``pending``, its runs counted so far taken off the
    analysis. Guarded by the heartbeat that was read, so that two reapers hand it back once."""
    with transaction.atomic():
        counted = (
            WalkForwardFold.objects.filter(
                pk=fold_id, status=WalkForwardFold.Status.RUNNING, heartbeat_at=heartbeat
            )
            .values_list("done", flat=True)
            .first()
        )
        if counted is None:
            return False
        if not WalkForwardFold.objects.filter(
            pk=fold_id, status=WalkForwardFold.Status.RUNNING, heartbeat_at=heartbeat
        ).update(status=WalkForwardFold.Status.PENDING, done=0):
            return False
        if counted:
            # updated_at stays: the analysis has not moved (its other folds may be quiet too).
            WalkForward.objects.filter(pk=walk_forward_id).update(done=F("done") - counted)
            Task.objects.filter(walk_forward__pk=walk_forward_id).update(done=F("done") - counted)
        return True


def reap_walk_forwards() -> dict[str, int]:
    """Re-send folds whose worker died or whose message was lost, and the out-of-sample phase
    when its worker died or it never started. Returns how many of each were re-sent."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=heartbeat_timeout())
    active = (WalkForward.Status.PENDING, WalkForward.Status.RUNNING)
    resent = {"folds": 0, "finishes": 0}
    sent: set[tuple[Any, int]] = set()
    dead = WalkForwardFold.objects.filter(
        walk_forward__status__in=active,
        status=WalkForwardFold.Status.RUNNING,
        heartbeat_at__lt=cutoff,
    ).values_list("id", "walk_forward_id", "index", "heartbeat_at")
    for fold_id, walk_forward_id, index, heartbeat in dead:
        if _hand_back(fold_id, walk_forward_id, heartbeat):
            messages.send("run_walk_forward_fold", str(walk_forward_id), index)
            sent.add((walk_forward_id, index))
            resent["folds"] += 1
            logger.warning("Re-sent fold %s of walk-forward %s", index, walk_forward_id)
    unfinished = (
        WalkForward.objects.filter(status=WalkForward.Status.RUNNING)
        .filter(
            Q(out_of_sample_started_at__isnull=False, heartbeat_at__lt=cutoff)
            | Q(out_of_sample_started_at__isnull=True, updated_at__lt=cutoff)
        )
        .exclude(folds__status__in=(WalkForwardFold.Status.PENDING, WalkForwardFold.Status.RUNNING))
        .values_list("id", "out_of_sample_started_at")
    )
    for walk_forward_id, started in unfinished:
        if WalkForward.objects.filter(pk=walk_forward_id, out_of_sample_started_at=started).update(
            out_of_sample_started_at=None, updated_at=now
        ):
            messages.send("finish_walk_forward", str(walk_forward_id))
            resent["finishes"] += 1
            logger.warning("Re-sent the out-of-sample runs of walk-forward %s", walk_forward_id)
    quiet = WalkForward.objects.filter(status__in=active, updated_at__lt=cutoff).values_list(
        "id", flat=True
    )
    for walk_forward_id in quiet:
        # Nothing moved for a heartbeat timeout: the messages of its pending folds were lost.
        # Moving updated_at first makes a concurrent reaper skip it.
        if not WalkForward.objects.filter(pk=walk_forward_id, updated_at__lt=cutoff).update(
            updated_at=now
        ):
            continue
        for index in WalkForwardFold.objects.filter(
            walk_forward_id=walk_forward_id, status=WalkForwardFold.Status.PENDING
        ).values_list("index", flat=True):
            if (walk_forward_id, index) not in sent:
                messages.send("run_walk_forward_fold", str(walk_forward_id), index)
                resent["folds"] += 1
    return resent

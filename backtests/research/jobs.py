"""What the research workers do: run a chunk of a sweep, finish the sweep, reap dead claims.

A chunk is claimed with a conditional UPDATE (``pending → running``, ``attempts + 1``); the new
``attempts`` is the claim's token. While it runs, a heartbeat keeps ``heartbeat_at`` fresh. Its
per-bar returns go to storage under a name that carries the attempt, then one transaction
completes the chunk — an UPDATE guarded by ``status = running`` and the token — inserts its
entries and counts them on the sweep and its task. A claim whose worker died (SIGKILL: nothing
written) goes stale; ``reap_research_sweeps`` puts the chunk back to ``pending`` (guarded by the
same token) and sends its message again, so it is re-run; the dead attempt's entries were never
inserted, and a late writer from a stale claim matches no row. The entries' unique
(sweep, number) constraint backs that up.

A worker that took one of a sweep's chunk messages goes on with the sweep's pending chunks, lowest
number first, and the chunks shrink towards the end of the sweep, so the workers sharing a sweep
finish together. Each chunk also computes its entries' part of the overfitting statistics (the
work that grows with the number of entries), in parallel on whichever workers run the chunks.

The worker that completes the last chunk finishes the sweep: the overfitting block joined from
the chunks' statistics, ``completed``. That step is claimed with a token and a heartbeat too, and
the reaper re-sends it when its worker died. The returns matrix is not written here, while the
sweep's completion waits, but from the chunks' files when it is first asked for
(``returns_files``).
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from backfolio.deadline import RunTimeLimitExceeded, run_time_limit
from backtests import artifacts
from backtests.jobs import messages
from backtests.jobs.heartbeat import HeartbeatThread
from backtests.jobs.outcomes import heartbeat_timeout, run_time_limit_seconds
from backtests.models import Task
from backtests.research import grid as grids
from backtests.research import returns_files, runner
from backtests.research.models import ResearchSweep, ResearchSweepChunk, ResearchSweepEntry
from backtests.research.ranking import score_of
from backtests.run_config import RunError, stored_run_spec
from marketdata.store import BatchLookups, MarketDataError, get_store

logger = logging.getLogger(__name__)


UNFINISHED_CHUNK = (ResearchSweepChunk.Status.PENDING, ResearchSweepChunk.Status.RUNNING)


# --- claims and heartbeats ---------------------------------------------------------------------


def claim_chunk(chunk_id, sweep: ResearchSweep | None = None) -> ResearchSweepChunk | None:
    """Move a pending chunk to ``running``; the chunk (with its new ``attempts``) or None.
    ``sweep``: the chunk's sweep when the caller has it already (it is read otherwise)."""
    now = timezone.now()
    claimed = ResearchSweepChunk.objects.filter(
        pk=chunk_id, status=ResearchSweepChunk.Status.PENDING
    ).update(
        status=ResearchSweepChunk.Status.RUNNING,
        attempts=F("attempts") + 1,
        heartbeat_at=now,
        updated_at=now,
    )
    if not claimed:
        return None
    if sweep is None:
        chunk = ResearchSweepChunk.objects.select_related("sweep").get(pk=chunk_id)
    else:  # the same row: a sweep's plan and settings never change
        chunk = ResearchSweepChunk.objects.get(pk=chunk_id)
        chunk.sweep = sweep
    with transaction.atomic():
        ResearchSweep.objects.filter(pk=chunk.sweep_id, status=ResearchSweep.Status.PENDING).update(
            status=ResearchSweep.Status.RUNNING, started_at=now, updated_at=now
        )
        Task.objects.filter(pk=chunk.sweep.task_id, status=Task.Status.PENDING).update(
            status=Task.Status.PROGRESS, started_at=now, updated_at=now
        )
    return chunk


class Heartbeat(HeartbeatThread):
    """Keeps a claim's ``heartbeat_at`` (or ``field``) fresh while the work runs."""

    thread_name = "research-heartbeat"

    def __init__(self, rows, field: str = "heartbeat_at") -> None:
        self.rows = rows  # a queryset that matches only while the claim is ours
        self.field = field
        super().__init__()

    def __str__(self) -> str:
        return "Research heartbeat"

    def write(self) -> None:
        self.rows.update(**{self.field: timezone.now()})


# --- running a chunk ---------------------------------------------------------------------------


def run_chunk(chunk_id) -> None:
    """Body of the ``run_research_chunk`` actor: run this chunk, then the sweep's other pending
    chunks, lowest number first, until none is left or the message has run for the run time
    limit. Every worker that takes one of a sweep's messages keeps working on the sweep, so no
    worker idles while another holds a queued chunk message behind the one it runs; a message
    whose chunk another worker took helps with what is left, or does nothing. Stopping early is
    safe: a chunk still pending always has its own message queued."""
    started = time.monotonic()
    chunk = claim_chunk(chunk_id)
    if chunk is None:
        sweep_id = (
            ResearchSweepChunk.objects.filter(pk=chunk_id)
            .values_list("sweep_id", flat=True)
            .first()
        )
        chunk = claim_next_chunk(sweep_id) if sweep_id is not None else None
    sweep = chunk.sweep if chunk is not None else None
    while chunk is not None:
        if run_claimed_chunk(chunk):
            if time.monotonic() - started < run_time_limit_seconds():
                finish_sweep(sweep.pk)
            else:  # this message has run long: the finishing step gets a message of its own
                messages.send("finish_research_sweep", str(sweep.pk))
            return
        if time.monotonic() - started >= run_time_limit_seconds():
            return
        chunk = claim_next_chunk(sweep.pk, sweep)


def claim_next_chunk(sweep_id, sweep: ResearchSweep | None = None) -> ResearchSweepChunk | None:
    """Claim the lowest-numbered pending chunk of the sweep; None when none is left."""
    while True:
        pending = list(
            ResearchSweepChunk.objects.filter(
                sweep_id=sweep_id, status=ResearchSweepChunk.Status.PENDING
            )
            .order_by("number")
            .values_list("id", flat=True)[:8]
        )
        if not pending:
            return None
        for chunk_id in pending:  # another worker may take any of them first
            chunk = claim_chunk(chunk_id, sweep)
            if chunk is not None:
                return chunk


def run_claimed_chunk(chunk: ResearchSweepChunk) -> bool:
    """Run a chunk this worker claimed and complete it; True when it was the sweep's last."""
    sweep = chunk.sweep
    token = chunk.attempts
    ours = ResearchSweepChunk.objects.filter(
        pk=chunk.pk, status=ResearchSweepChunk.Status.RUNNING, attempts=token
    )
    plan = sweep.entries_plan[chunk.first : chunk.first + chunk.size]
    with Heartbeat(ours):
        outcomes = _outcomes(sweep, plan)
        frame = runner.returns_frame(outcomes, [number for number, _ in plan])
        statistics = chunk_statistics(sweep, frame)
        try:
            uri = artifacts.save_bytes(
                f"{returns_files.sweep_folder(sweep.pk)}/chunks/{chunk.number}-{token}.parquet",
                returns_files.returns_to_parquet(
                    frame, statistics, row_group=returns_files.returns_row_group(sweep.total)
                ),
            )
        except Exception as error:  # storage down: the entries fail with the reason
            logger.exception("Research chunk %s: storing its returns failed", chunk.pk)
            uri = None
            reason = f"Could not store the entry's returns: {error}"
            outcomes = [runner.failed_outcome(reason) for _ in plan]
        del frame
    entries = [
        ResearchSweepEntry(
            sweep_id=sweep.pk,
            chunk_id=chunk.pk,
            number=number,
            overrides=overrides,
            status=ResearchSweepEntry.Status.COMPLETED
            if outcome.completed
            else ResearchSweepEntry.Status.FAILED,
            metrics=outcome.metrics,
            score=score_of(outcome.metrics, sweep.rank_metric) if outcome.completed else None,
            fingerprint=outcome.fingerprint,
            error=outcome.error,
        )
        for (number, overrides), outcome in zip(plan, outcomes, strict=True)
    ]
    if not _complete_chunk(ours, uri, entries, sweep):
        logger.warning("Chunk %s was re-claimed while attempt %s ran; dropped", chunk.pk, token)
        with contextlib.suppress(Exception):  # an orphan file is harmless; say nothing more
            default_storage.delete(uri)
        return False
    return not sweep.chunks.exclude(status=ResearchSweepChunk.Status.COMPLETED).exists()


def _outcomes(sweep: ResearchSweep, plan: list) -> list[runner.EntryOutcome]:
    """The plan's outcomes; a chunk stopped by the time limit, or by a bug, fails its entries
    with the reason instead of leaving the chunk to be re-run forever."""
    from dramatiq.middleware.time_limit import TimeLimitExceeded

    try:
        # The core stops the chunk at the limit itself; Dramatiq's TimeLimit is the backstop.
        with run_time_limit(settings.BACKFOLIO_RUN_TIME_LIMIT_SECONDS):
            return _run_plan(sweep, plan)
    except (TimeLimitExceeded, RunTimeLimitExceeded):
        reason = (
            f"The chunk exceeded the time limit of {settings.BACKFOLIO_RUN_TIME_LIMIT_SECONDS} s."
        )
    except Exception as error:
        logger.exception("Research sweep %s: a chunk failed unexpectedly", sweep.pk)
        reason = f"Internal error: {type(error).__name__}: {error}"
    return [runner.failed_outcome(reason) for _ in plan]


def _run_plan(sweep: ResearchSweep, plan: list) -> list[runner.EntryOutcome]:
    specs, failed = [], {}
    lookups = BatchLookups()  # the chunk's configurations ask the data the same questions
    for position, (_number, overrides) in enumerate(plan):
        try:
            spec = stored_run_spec(
                grids.apply_overrides(sweep.base_config, overrides),
                snapshot=sweep.strategy_snapshot,
                engine=sweep.engine,
                initial_capital=sweep.initial_capital,
                commission=sweep.commission,
                slippage=sweep.slippage,
                store=lookups,
            )
        except RunError as error:  # the data changed since the sweep was validated
            failed[position] = runner.failed_outcome(str(error))
        else:
            specs.append((position, spec))
    outcomes = dict(failed)
    ran = runner.run_entries([spec for _, spec in specs])
    for (position, _spec), outcome in zip(specs, ran, strict=True):
        outcomes[position] = outcome
    return [outcomes[position] for position in range(len(plan))]


def _complete_chunk(ours, uri: str, entries: list[ResearchSweepEntry], sweep) -> bool:
    with transaction.atomic():
        now = timezone.now()
        if not ours.update(
            status=ResearchSweepChunk.Status.COMPLETED, returns_uri=uri, updated_at=now
        ):
            return False
        ResearchSweepEntry.objects.bulk_create(entries)
        count = len(entries)
        ResearchSweep.objects.filter(pk=sweep.pk).update(done=F("done") + count, updated_at=now)
        Task.objects.filter(pk=sweep.task_id).update(
            done=F("done") + count, status=Task.Status.PROGRESS, updated_at=now
        )
    return True


# --- the overfitting statistics of a chunk -----------------------------------------------------
#
# The statistics the overfitting block needs of each entry (block sums for CSCV, its Sharpe for
# DSR, its part of the SPA maxima; ``metrics.research.TrialStatistics``) are computed column by
# column, so the chunks compute them for their own entries, in parallel on whichever workers run
# them, and the finishing step only joins them. That holds when every chunk's complete bars (the
# bars where each of its entries has a return) are the same — the usual sweep, whose entries all
# trade the same bars: then those are the sweep's common bars. A chunk records which bars its
# statistics are over; when they differ between chunks (a grid over dates or symbols), the
# finishing step computes the statistics over the common bars itself.


def chunk_statistics(sweep: ResearchSweep, frame: pd.DataFrame) -> bytes | None:
    """The chunk's entries' ``TrialStatistics`` over its complete bars, serialised; None when
    they cannot be computed here (no entry completed, too few bars for the partitions, no
    benchmark price on one of the bars, a bug), which the finishing step then finds out again."""
    from metrics.research import trial_statistics

    if frame.shape[1] == 0:
        return None
    complete = frame.dropna(how="any")
    try:
        statistics = trial_statistics(
            complete.to_numpy(dtype="float64"),
            benchmark_returns(sweep, complete.index),
            partitions=sweep.partitions,
            spa_reps=sweep.spa_reps,
            seed=sweep.seed,
        )
    except (ValueError, MarketDataError):
        return None
    except Exception:  # the finishing step computes them itself; the entries stand
        logger.exception("Research sweep %s: a chunk's statistics failed", sweep.pk)
        return None
    return returns_files.encode_statistics(returns_files.bars_key(complete.index), statistics)


# --- finishing a sweep -------------------------------------------------------------------------


def _claim_finish(sweep_id) -> uuid.UUID | None:
    token = uuid.uuid4()
    now = timezone.now()
    claimed = ResearchSweep.objects.filter(
        pk=sweep_id, status=ResearchSweep.Status.RUNNING, finish_token__isnull=True
    ).update(finish_token=token, finish_heartbeat_at=now, updated_at=now)
    return token if claimed else None


def finish_sweep(sweep_id) -> None:
    """Write the returns matrix and the overfitting block; body of ``finish_research_sweep``."""
    token = _claim_finish(sweep_id)
    if token is None:
        return
    ours = ResearchSweep.objects.filter(
        pk=sweep_id, status=ResearchSweep.Status.RUNNING, finish_token=token
    )
    with Heartbeat(ours, "finish_heartbeat_at"):
        try:
            fields = _finished_fields(ResearchSweep.objects.get(pk=sweep_id))
        except Exception as error:  # a bug or storage down: fail the sweep with the reason
            logger.exception("Research sweep %s: finishing failed", sweep_id)
            fields = {
                "status": ResearchSweep.Status.FAILED,
                "error": f"Finishing the sweep failed: {type(error).__name__}: {error}",
            }
    _settle(ours, fields)


def _finished_fields(sweep: ResearchSweep) -> dict[str, Any]:
    chunks = returns_files.chunk_returns(sweep)
    fields: dict[str, Any] = {"overfitting": None, "error": ""}
    best = best_entry(sweep)
    if best is None:
        return {
            **fields,
            "status": ResearchSweep.Status.FAILED,
            "error": "Every entry failed; see the leaderboard for why.",
        }
    fields["status"] = ResearchSweep.Status.COMPLETED
    try:
        fields["overfitting"] = overfitting_block(sweep, chunks, best)
    except (ValueError, MarketDataError) as error:
        fields["error"] = f"The overfitting block could not be computed: {error}"
    return fields


def best_entry(sweep: ResearchSweep) -> int | None:
    """The number of the best completed entry by the sweep's rank metric (the smaller number on
    ties), from the scores kept with the entries; None when no entry completed."""
    from backtests.research.ranking import higher_is_better, order_key

    descending = higher_is_better(sweep.rank_metric)
    scores = sweep.entries.filter(status=ResearchSweepEntry.Status.COMPLETED).values_list(
        "number", "score"
    )
    ranked = [order_key(number, True, score, descending=descending) for number, score in scores]
    return min(ranked)[2] if ranked else None


def benchmark_returns(sweep: ResearchSweep, dates: pd.DatetimeIndex) -> np.ndarray:
    """Buy and hold of the benchmark on ``dates``, no costs: r_1 = 0, r_t = P_t/P_{t−1} − 1 on
    the run's price adjustment and timeframe."""
    config = sweep.base_config
    prices = get_store().load(
        [sweep.benchmark],
        dates[0].date(),
        dates[-1].date(),
        adjustment=config.get("price_adjustment", "total_return"),
        timeframe=config.get("timeframe", sweep.strategy_snapshot["timeframe"] or "1d"),
    )
    close = prices.close[sweep.benchmark].reindex(dates)
    if close.isna().any():
        missing = close.index[close.isna()][0].date().isoformat()
        raise ValueError(f"the benchmark {sweep.benchmark} has no price on {missing}")
    values = close.to_numpy(dtype=float)
    returns = np.empty_like(values)
    returns[0] = 0.0
    returns[1:] = values[1:] / values[:-1] - 1.0
    return returns


def overfitting_block(
    sweep: ResearchSweep, chunks: list[returns_files.ChunkReturns], best: int
) -> dict:
    """``metrics.research.overfitting_report`` over the completed entries' common bars: joined
    from the chunks' statistics when they are all over the same bars, else computed here."""
    from metrics.research import TrialStatistics, overfitting_from_statistics, overfitting_report

    names = [name for chunk in chunks for name in chunk.names]
    best_index = names.index(str(best))
    kept = [chunk.statistics for chunk in chunks]
    if kept and all(item is not None and item[0] == kept[0][0] for item in kept):
        owner = next(chunk for chunk in chunks if str(best) in chunk.names)
        # The bars the chunk's statistics are over: where each of its entries has a return.
        best_returns = owner.frame().dropna(how="any")[str(best)].to_numpy()
        statistics = TrialStatistics.concat([item[1] for item in kept])
        report = overfitting_from_statistics(
            statistics, best_returns, best_index=best_index, benchmark=sweep.benchmark
        )
        return {**report, "best": best}
    dates, names, matrix = returns_files.assemble_returns([chunk.uri for chunk in chunks])
    rows = runner.common_bars(matrix)
    if rows.sum() < 2:
        raise ValueError("the entries share fewer than two bars")
    if not rows.all():
        matrix, dates = np.asfortranarray(matrix[rows]), dates[rows]
    report = overfitting_report(
        matrix,
        benchmark_returns(sweep, dates),
        best_index=best_index,
        benchmark=sweep.benchmark,
        partitions=sweep.partitions,
        spa_reps=sweep.spa_reps,
        seed=sweep.seed,
    )
    return {**report, "best": best}


def _settle(ours, fields: dict[str, Any]) -> None:
    with transaction.atomic():
        now = timezone.now()
        sweep = ours.select_for_update().first()
        if sweep is None:
            return  # the finish was re-claimed after this worker was taken for dead
        ours.update(**fields, completed_at=now, updated_at=now)
        completed = fields["status"] == ResearchSweep.Status.COMPLETED
        Task.objects.filter(pk=sweep.task_id).update(
            status=Task.Status.SUCCESS if completed else Task.Status.FAILURE,
            result={"research_sweep_id": str(sweep.pk), "status": fields["status"]},
            error=fields["error"] if not completed else "",
            finished_at=now,
            updated_at=now,
        )


# --- the reaper --------------------------------------------------------------------------------


def reap_research_sweeps() -> dict[str, int]:
    """Re-queue chunks whose worker stopped beating or whose message was never picked up, and
    finishing steps whose worker died. Returns how many of each were re-sent."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=heartbeat_timeout())
    requeued = {"chunks": 0, "finishes": 0}
    stale = ResearchSweepChunk.objects.filter(
        status=ResearchSweepChunk.Status.RUNNING, heartbeat_at__lt=cutoff
    ).values_list("id", "attempts")
    for chunk_id, attempts in stale:
        # Guarded by the claim that was read, so two reapers re-send a chunk once.
        if ResearchSweepChunk.objects.filter(
            pk=chunk_id, status=ResearchSweepChunk.Status.RUNNING, attempts=attempts,
            heartbeat_at__lt=cutoff,
        ).update(status=ResearchSweepChunk.Status.PENDING, updated_at=now):  # fmt: skip
            messages.send("run_research_chunk", str(chunk_id))
            requeued["chunks"] += 1
            logger.warning("Re-queued research chunk %s: attempt %s went stale", chunk_id, attempts)
    # A pending chunk may simply wait behind others in the queue; its message counts as lost
    # only when its sweep made no progress for a whole timeout (no chunk finished or beating).
    idle = (
        ResearchSweep.objects.filter(
            status__in=(ResearchSweep.Status.PENDING, ResearchSweep.Status.RUNNING),
            updated_at__lt=cutoff,
            chunks__status=ResearchSweepChunk.Status.PENDING,
        )
        .exclude(
            pk__in=ResearchSweepChunk.objects.filter(
                status=ResearchSweepChunk.Status.RUNNING, heartbeat_at__gte=cutoff
            ).values("sweep_id")
        )
        .values_list("id", flat=True)
        .distinct()
    )
    for sweep_id in idle:
        if not ResearchSweep.objects.filter(pk=sweep_id, updated_at__lt=cutoff).update(
            updated_at=now
        ):
            continue  # another reaper took it
        pending = ResearchSweepChunk.objects.filter(
            sweep_id=sweep_id, status=ResearchSweepChunk.Status.PENDING
        ).values_list("id", flat=True)
        for chunk_id in pending:
            messages.send("run_research_chunk", str(chunk_id))
            requeued["chunks"] += 1
        logger.warning("Re-sent the pending chunks of idle research sweep %s", sweep_id)
    unfinished = (
        ResearchSweep.objects.filter(status=ResearchSweep.Status.RUNNING)
        .filter(
            Q(finish_token__isnull=False, finish_heartbeat_at__lt=cutoff)
            | Q(finish_token__isnull=True, updated_at__lt=cutoff)
        )
        .exclude(chunks__status__in=UNFINISHED_CHUNK)
        .values_list("id", "finish_token")
    )
    for sweep_id, token in unfinished:
        if ResearchSweep.objects.filter(pk=sweep_id, finish_token=token).update(
            finish_token=None, updated_at=now
        ):
            messages.send("finish_research_sweep", str(sweep_id))
            requeued["finishes"] += 1
    return requeued

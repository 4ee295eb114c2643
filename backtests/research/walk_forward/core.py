"""Walk-forward analysis (SPEC §13.3), pure: no Django.

The span is the base configuration's ``start_date``..``end_date``. Fold k's in-sample window
starts at the span's start (anchored) or ``k × out_of_sample_months`` after it (rolling) and ends
``in_sample_months`` (anchored: ``in_sample_months + k × out_of_sample_months``) after the span's
start plus ``k × out_of_sample_months``; its out-of-sample window follows for
``out_of_sample_months``. Every window is a half-open month interval ``[a, b)`` shown with its
inclusive last day ``b − 1 day``; month arithmetic is from the span's start each time (pandas'
``DateOffset``: the 31st plus a month is the month's last day), so windows never drift. Folds are
added while the out-of-sample window ends on or before the span's end.

In each fold every combination runs on the in-sample window exactly as a v1 run with those dates
(indicators warmed on the bars before the window), the best by the rank metric (first on ties)
runs on the out-of-sample window with its positions closed at the window's last close, starting
from the previous out-of-sample run's final equity. The out-of-sample equity curves, joined, are
one curve from the initial capital (each run starts where the previous ended, so the joined
returns are each run's own), whose SPEC §5 metrics are computed by ``compute_metrics`` as any
run's.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from backtests.pipeline import (
    EquityColumns,
    RunError,
    RunResult,
    run_backtest,
    run_backtest_batch,
    run_equity_columns,
    run_study,
)
from backtests.research.ranking import score_of
from backtests.run_config import RunSpec
from metrics.calculations import (
    COLUMN_METRIC_KEYS,
    compute_metrics,
    equity_metrics_by_column,
    returns_from_equity,
)
from metrics.presenters import V1_METRIC_HIGHER_IS_BETTER, v1_flat_source
from metrics.research import probabilistic_sharpe_ratio

ROLLING = "rolling"
ANCHORED = "anchored"
SCHEMES = (ROLLING, ANCHORED)
MAX_FOLDS = 240  # 20 years of monthly out-of-sample windows
# Runs per engine call in an in-sample batch: bounds a worker's memory on large grids, and each
# part's end is reported as progress, so a fold of many combinations moves ``done`` several
# times. Each part loads and compiles its price windows and calls the engine once more: parts of
# 400 SMA runs take ~15% less CPU than parts of 200 on a 400-combination grid, and a part of 400
# runs over 20 years of daily bars adds ~0.25 GB to a worker's peak.
IN_SAMPLE_CHUNK_SIZE = 400
# The annualised return whose ratio the walk-forward efficiency is (a ``compute_metrics`` key).
ANNUAL_RETURN_KEY = "cagr"
# v1 flat keys that ``compute_metrics`` derives from the equity curve alone (the others need the
# trades, orders or positions): ranking by one of them needs only each run's equity.
EQUITY_RANK_METRICS = frozenset(
    {
        "total_return",
        "final_value",
        "perf_cagr",
        "perf_sharpe_ratio",
        "perf_sortino_ratio",
        "perf_calmar_ratio",
        "risk_max_drawdown",
        "risk_max_drawdown_duration",
        "risk_var_95",
        "risk_cvar_95",
        "risk_var_99",
        "risk_cvar_99",
        "risk_volatility_annualised",
    }
)


class SpanTooShort(ValueError):
    """The span cannot hold one fold; the message says how many months it needs."""

    def __init__(self, *, start: date, end: date, months_needed: int) -> None:
        self.months_needed = months_needed
        available = months_in_span(start, end)
        super().__init__(
            f"The span {start.isoformat()}..{end.isoformat()} holds {available} whole "
            f"month{'s' if available != 1 else ''}; one fold needs {months_needed} "
            f"(in_sample_months + out_of_sample_months)."
        )


@dataclass(frozen=True)
class Fold:
    index: int
    in_sample_start: date
    in_sample_end: date
    out_of_sample_start: date
    out_of_sample_end: date

    def windows(self) -> dict[str, dict[str, str]]:
        return {
            "in_sample": {
                "start": self.in_sample_start.isoformat(),
                "end": self.in_sample_end.isoformat(),
            },
            "out_of_sample": {
                "start": self.out_of_sample_start.isoformat(),
                "end": self.out_of_sample_end.isoformat(),
            },
        }


def _add_months(start: date, months: int) -> date:
    return (pd.Timestamp(start) + pd.DateOffset(months=months)).date()


def months_in_span(start: date, end: date) -> int:
    """Whole months from ``start`` that end on or before ``end``."""
    months = (end.year - start.year) * 12 + end.month - start.month + 1
    while months > 0 and _add_months(start, months) > end + timedelta(days=1):
        months -= 1
    return max(months, 0)


def is_higher_better(rank_metric: str) -> bool | None:
    """The rank metric's direction (None when it has none)."""
    return V1_METRIC_HIGHER_IS_BETTER.get(rank_metric)


def schedule_folds(
    start: date,
    end: date,
    *,
    scheme: str,
    in_sample_months: int,
    out_of_sample_months: int,
) -> list[Fold]:
    """The folds over the span ``start``..``end`` (inclusive); ``SpanTooShort`` when none fits."""
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of: {', '.join(SCHEMES)}.")
    folds: list[Fold] = []
    limit = end + timedelta(days=1)
    while True:
        shift = len(folds) * out_of_sample_months
        oos_from = _add_months(start, shift + in_sample_months)
        oos_until = _add_months(start, shift + in_sample_months + out_of_sample_months)
        if oos_until > limit:
            break
        in_sample_from = start if scheme == ANCHORED else _add_months(start, shift)
        folds.append(
            Fold(
                index=len(folds),
                in_sample_start=in_sample_from,
                in_sample_end=oos_from - timedelta(days=1),
                out_of_sample_start=oos_from,
                out_of_sample_end=oos_until - timedelta(days=1),
            )
        )
    if not folds:
        raise SpanTooShort(
            start=start, end=end, months_needed=in_sample_months + out_of_sample_months
        )
    return folds


def window_spec(
    spec: RunSpec,
    start: date,
    end: date,
    *,
    initial_capital: float | None = None,
    close_at_end: bool = False,
) -> RunSpec:
    """``spec`` on the window ``start``..``end``: exactly what parsing its configuration with
    those dates gives (same canonical config, so the same fingerprint as that v1 run)."""
    config = {**spec.config, "start_date": start.isoformat(), "end_date": end.isoformat()}
    # ``dataclasses.replace`` without its per-field work (thousands of these per fold): the
    # copy's fields are the spec's, already validated, but for these.
    windowed = copy.copy(spec)
    for name, value in (
        ("start", start),
        ("end", end),
        ("config", config),
        ("initial_capital", spec.initial_capital if initial_capital is None else initial_capital),
        ("close_at_end", close_at_end),
    ):
        object.__setattr__(windowed, name, value)
    return windowed


@dataclass(frozen=True)
class InSampleChoice:
    """The best combination of one fold's in-sample runs (``position`` into the specs given):
    its score (the rank metric's v1 value) and its run's core metrics (``compute_metrics``)."""

    position: int | None
    score: float | None
    metrics: dict[str, Any]
    completed: int
    failed: int
    first_error: str


def choose_in_sample(
    specs: Sequence[RunSpec],
    fold: Fold,
    rank_metric: str,
    *,
    chunk_size: int = IN_SAMPLE_CHUNK_SIZE,
    on_chunk: Callable[[int], None] | None = None,
) -> InSampleChoice:
    """Run every combination on the fold's in-sample window and keep the best by
    ``rank_metric``: the highest (or lowest, by the metric's direction) score, the first
    combination on ties; runs without a score never win. ``on_chunk(n)`` is told each time
    ``n`` more runs have ended.

    Runs go through ``run_backtest_batch`` (vectorised where the engine allows, one by one where
    not); when the metric depends on the equity alone, through ``run_equity_columns`` with the
    metric computed for all runs of a vectorised call at once (``equity_metrics_by_column``),
    and from each contender's own equity curve by ``compute_metrics`` — the same numbers
    without building every run's trades. The chosen run's metrics are those of its full run
    (``run_study``: the same numbers, without the trades, orders and positions frames).
    """
    higher = is_higher_better(rank_metric)
    if higher is None:
        raise ValueError(f"{rank_metric} has no direction.")
    equity_only = rank_metric in EQUITY_RANK_METRICS
    best: tuple[int, float, dict[str, Any] | None] | None = None  # position, score, metrics
    completed = failed = 0
    first_error = ""
    for offset in range(0, len(specs), chunk_size):
        chunk = [
            window_spec(spec, fold.in_sample_start, fold.in_sample_end)
            for spec in specs[offset : offset + chunk_size]
        ]
        outcomes = run_equity_columns(chunk) if equity_only else run_backtest_batch(chunk)
        ran = []
        for position, (spec, outcome) in enumerate(zip(chunk, outcomes, strict=True), offset):
            error = outcome[0] if equity_only else outcome
            if isinstance(error, RunError):
                failed += 1
                first_error = first_error or str(error)
                continue
            completed += 1
            ran.append((position, spec, outcome))
        if equity_only:
            scored = _equity_scores(_contenders(ran, rank_metric, higher), rank_metric)
        else:
            scored = [
                (position, score_of(outcome.metrics, rank_metric), outcome.metrics)
                for position, _spec, outcome in ran
            ]
        for position, score, metrics in scored:
            if score is None:
                continue
            if best is None or (score > best[1] if higher else score < best[1]):
                best = (position, score, metrics)
        if on_chunk is not None:
            on_chunk(len(chunk))
    if best is None:
        return InSampleChoice(None, None, {}, completed, failed, first_error)
    position, score, metrics = best
    if metrics is None:  # ranked on the equity alone: the chosen run's metrics are its full run's
        chosen = run_study(window_spec(specs[position], fold.in_sample_start, fold.in_sample_end))
        if isinstance(chosen, RunError):
            raise chosen
        metrics = chosen.metrics
    return InSampleChoice(position, score, metrics, completed, failed, first_error)


# Scores of equity metrics computed for many runs at once are within this relative distance of
# each run's own ``compute_metrics`` (the same definitions; reductions may round differently).
_COLUMN_SCORE_TOLERANCE = 1e-9


def _contenders(ran: list, rank_metric: str, higher: bool) -> list:
    """The runs of ``ran`` (position, spec, equity) that can be the best by ``rank_metric``, each
    with its equity Series: where the metric is one of ``equity_metrics_by_column``'s, runs
    simulated together are scored together and only those within rounding of the best are kept
    (a run further away is worse by its own metrics too); every run otherwise."""
    source = v1_flat_source(rank_metric)
    by_column = source is not None and source[0] in COLUMN_METRIC_KEYS
    contenders = []
    groups: dict[tuple, list] = {}
    for position, spec, (equity, column) in ran:
        if not by_column or not isinstance(equity, EquityColumns):
            series = equity if not isinstance(equity, EquityColumns) else equity.series(column)
            contenders.append((position, spec, series))
            continue
        group = (id(equity), spec.initial_capital, spec.bars_per_year, spec.risk_free_rate)
        groups.setdefault(group, []).append((position, spec, equity, column))
    for members in groups.values():
        _position, spec, equity, _column = members[0]
        key, factor = source
        scores = (
            factor
            * equity_metrics_by_column(
                equity.values[:, [member[3] for member in members]],
                equity.dates,
                initial_capital=spec.initial_capital,
                bars_per_year=spec.bars_per_year,
                risk_free_rate=spec.risk_free_rate,
            )[key]
        )
        finite = np.isfinite(scores)
        if not finite.any():
            continue  # undefined for every run: none has a score by its own metrics either
        top = scores[finite].max() if higher else scores[finite].min()
        margin = 2 * _COLUMN_SCORE_TOLERANCE * max(1.0, abs(float(top)))
        near = finite & (scores >= top - margin if higher else scores <= top + margin)
        contenders.extend(
            (position, spec, equity.series(column))
            for (position, spec, equity, column), keep in zip(members, near, strict=True)
            if keep
        )
    return sorted(contenders, key=lambda run: run[0])


def _equity_scores(ran: list, rank_metric: str) -> list[tuple[int, float | None, None]]:
    """Each run's score from its own equity metrics, exactly as a full run reports it."""
    return [
        (position, score_of(_equity_metrics(spec, equity), rank_metric), None)
        for position, spec, equity in ran
    ]


def _equity_metrics(spec: RunSpec, equity: pd.Series) -> dict[str, Any]:
    return compute_metrics(
        equity,
        initial_capital=spec.initial_capital,
        bars_per_year=spec.bars_per_year,
        risk_free_rate=spec.risk_free_rate,
    )


def run_out_of_sample(spec: RunSpec, fold: Fold, capital: float) -> RunResult:
    """The chosen combination on the fold's out-of-sample window, from ``capital``, flat at its
    last close. Raises ``RunError``."""
    return run_backtest(
        window_spec(
            spec,
            fold.out_of_sample_start,
            fold.out_of_sample_end,
            initial_capital=capital,
            close_at_end=True,
        )
    )


@dataclass(frozen=True)
class Stitched:
    equity: pd.Series
    metrics: dict[str, Any]  # compute_metrics' keys (SPEC §5)
    psr: float | None


def stitch(
    runs: Sequence[RunResult], *, initial_capital: float, bars_per_year: float, risk_free_rate
) -> Stitched:
    """The out-of-sample runs joined into one curve from ``initial_capital``, its SPEC §5 metrics
    and the PSR of its per-bar returns (against a Sharpe ratio of 0)."""
    equity = pd.concat([run.equity for run in runs])
    equity.name = "equity"
    trades = pd.concat([run.trades for run in runs], ignore_index=True)
    orders = pd.concat([run.orders for run in runs], ignore_index=True)
    positions = pd.concat([run.positions for run in runs]).fillna(0.0)
    metrics = compute_metrics(
        equity,
        initial_capital=initial_capital,
        trades=trades,
        positions=positions,
        orders=orders,
        bars_per_year=bars_per_year,
        risk_free_rate=risk_free_rate,
    )
    returns = returns_from_equity(equity, initial_capital).to_numpy(dtype="float64")
    return Stitched(equity=equity, metrics=metrics, psr=probabilistic_sharpe_ratio(returns))


def walk_forward_efficiency(
    out_of_sample_annual_return: float | None, in_sample_annual_returns: Sequence[float | None]
) -> float | None:
    """Annualised out-of-sample return / mean annualised in-sample return of the chosen entries
    (None when either is unknown or the in-sample mean is 0)."""
    known = [value for value in in_sample_annual_returns if value is not None]
    if (
        out_of_sample_annual_return is None
        or not known
        or len(known) != len(in_sample_annual_returns)
    ):
        return None
    mean = float(np.mean(known))
    if mean == 0.0 or not np.isfinite(mean):
        return None
    return float(out_of_sample_annual_return) / mean


def choice_changes(chosen: Sequence[Any]) -> int:
    """How many folds chose something other than the fold before them."""
    return sum(1 for before, after in itertools.pairwise(chosen) if before != after)

"""Robustness of one completed run (SPEC §13.4): services that compute it once and keep it.

For any completed backtest — v1, results API, sweep entry or Backfolio-saved (source ``v2``):

- ``psr``: the probabilistic Sharpe ratio of the run's per-bar returns (SPEC §13.1), read from
  its stored equity curve.
- ``bootstrap``: stationary-bootstrap percentile intervals of CAGR, Sharpe, Sortino, volatility
  and max drawdown (§5 definitions; max drawdown is a negative fraction, as in §5), and the
  share of resampled Sharpe ratios above 0.
- ``cost_sensitivity``: the run re-run through its own pipeline (same engine, same config, same
  strategy snapshot) at its commission and slippage × 0, 1, 2 and 5 (or 0, 5, 10 and 25 bps
  per side each when it has no costs), and the break-even per-side cost by bisection. A row's
  ``total_costs`` is the commission paid plus the slippage paid: fills move against the trader
  by the slippage fraction of the close (SPEC §6), so an order at fill price p paid
  |size|·p·s/(1+s) when buying and |size|·p·s/(1−s) when selling.
  Backfolio-saved runs have no slippage (their contract has only ``base_commission``): they are
  re-run through the Backfolio runner with ``base_commission`` scaled, slippage stays 0 in every
  row, and the break-even cost is the ``base_commission`` in bps at which CAGR reaches 0.
  A re-run that fails (the broker refuses an order at a high cost) is a row with null numbers
  and its ``error``; the bisection counts it as not profitable.

Speed decides where the work runs (measured on the shared 2-core machine under a load average of
about 8: 20 years of daily SPY, SMA crossover): a vectorbt re-run takes about 0.07 s and 1,000
bootstrap resamples about 0.8 s, so the first request for a vectorbt run with up to 2,000 resamples
is answered in the request, in 1.7–2.2 s (18 re-runs: the four cost rows, of which ×0 is shared
with the bisection's first end, and up to 15 bisection steps). A Backtrader re-run takes about
2.7 s (about 50 s in all), and 10,000 resamples take several seconds: such requests are queued on
the workers (``tasks.compute_robustness``) and answered 202 with ``done``/``total`` until the
result is kept, then 200.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from backfolio.common.errors import Conflict
from backfolio.deadline import RunTimeLimitExceeded, run_time_limit
from backtests import selectors
from backtests.engines import get_engine, registry
from backtests.jobs import messages, outcomes, runner
from backtests.models import Backtest, Robustness
from backtests.pipeline import RunError, run_backtest
from backtests.portfolio.requests import InvalidPortfolioRequest, parse_portfolio_request
from backtests.portfolio.runner import BARS_PER_YEAR as PORTFOLIO_BARS_PER_YEAR
from backtests.portfolio.runner import run_portfolio
from backtests.run_config import parse_run_config
from marketdata.store import MarketDataError, get_store
from metrics.calculations import returns_from_equity
from metrics.jsonsafe import clean_number
from metrics.research import (
    BREAKEVEN_SEARCH_BPS,
    BREAKEVEN_TOLERANCE_BPS,
    DEFAULT_CONFIDENCE,
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    RESEARCH_SPEC_VERSION,
    bootstrap_confidence_intervals,
    breakeven_cost_bps,
    cost_sensitivity_levels,
    probabilistic_sharpe_ratio,
)

# What is fast enough to answer in the request (see the module docstring): re-runs on an engine
# whose runs take milliseconds (``registry.runs_quickly``), and up to this many resamples.
SYNCHRONOUS_MAX_RESAMPLES = 2000

BPS = 10_000
# The bisection's evaluations: both ends, then halving 500 bps down to 0.1 bps.
BISECTION_STEPS = 2 + math.ceil(
    math.log2((BREAKEVEN_SEARCH_BPS[1] - BREAKEVEN_SEARCH_BPS[0]) / BREAKEVEN_TOLERANCE_BPS)
)
# Progress steps: the bootstrap, the four cost rows, the bisection.
TOTAL_STEPS = 1 + 4 + BISECTION_STEPS


@dataclass(frozen=True)
class RobustnessParameters:
    """What a robustness request may choose; the defaults are SPEC §13.1's."""

    resamples: int = DEFAULT_RESAMPLES
    confidence: float = DEFAULT_CONFIDENCE
    block_length: int | None = None  # None: arch's optimal block length for the run's returns
    seed: int = DEFAULT_SEED


@dataclass(frozen=True)
class CostOutcome:
    cagr: float | None
    sharpe: float | None
    max_drawdown: float | None
    total_costs: float | None
    error: str | None = None


@dataclass(frozen=True)
class _RunContext:
    """What the statistics need from a run, and how to re-run it at other costs."""

    commission: float
    slippage: float
    has_slippage: bool
    bars_per_year: float
    risk_free_rate: float
    rerun: Callable[[float, float], CostOutcome]


def robustness_get_or_start(*, backtest: Backtest, parameters: RobustnessParameters) -> Robustness:
    """The kept robustness of ``backtest`` for ``parameters``: computed now when it is fast
    (``registry.runs_quickly``, ``SYNCHRONOUS_MAX_RESAMPLES``), else queued on the workers (the
    row is returned pending).

    Raises ``Conflict`` when the run is not completed, when its stored results cannot be read,
    or when a queued computation failed (the next request starts it again).
    """
    if backtest.status != Backtest.Status.COMPLETED:
        raise Conflict(
            f"Backtest {backtest.pk} is not completed (status: {backtest.status}); "
            "its robustness cannot be computed."
        )
    lookup = {
        "backtest": backtest,
        "run_number": backtest.run_count,
        "resamples": parameters.resamples,
        "confidence": parameters.confidence,
        "block_length": parameters.block_length,
        "seed": parameters.seed,
    }
    existing = Robustness.objects.filter(**lookup).first()
    if existing is not None and existing.research_spec_version != RESEARCH_SPEC_VERSION:
        # Kept under other definitions of the statistics: the same request now means new numbers.
        existing.delete()
        existing = None
    if existing is not None:
        if existing.status == Robustness.Status.FAILED:
            existing.delete()
            raise Conflict(
                f"The robustness computation of backtest {backtest.pk} failed: {existing.error} "
                "Request it again to retry."
            )
        if existing.status != Robustness.Status.COMPLETED and _is_stale(existing):
            _requeue(existing)
        return existing

    synchronous = (
        registry.runs_quickly(backtest.engine) and parameters.resamples <= SYNCHRONOUS_MAX_RESAMPLES
    )
    try:
        with transaction.atomic():
            robustness = Robustness.objects.create(
                **lookup,
                status=Robustness.Status.RUNNING if synchronous else Robustness.Status.PENDING,
                total=TOTAL_STEPS,
                research_spec_version=RESEARCH_SPEC_VERSION,
            )
    except IntegrityError:  # the same request, a moment earlier, created it
        return Robustness.objects.get(**lookup)

    if not synchronous:
        transaction.on_commit(lambda: messages.send("compute_robustness", str(robustness.pk)))
        return robustness
    try:
        result = robustness_compute(
            backtest=backtest,
            parameters=parameters,
            time_limit_seconds=outcomes.run_time_limit_seconds(),
        )
    except BaseException:
        robustness.delete()
        raise
    return _complete(robustness, result)


def robustness_run_queued(robustness_id: str) -> None:
    """Compute a queued robustness row (idempotent: a completed row is left as it is)."""
    claimed = Robustness.objects.filter(
        pk=robustness_id,
        status__in=[Robustness.Status.PENDING, Robustness.Status.RUNNING],
    ).update(status=Robustness.Status.RUNNING, done=0, updated_at=timezone.now())
    if not claimed:
        return
    robustness = Robustness.objects.select_related("backtest").get(pk=robustness_id)
    parameters = RobustnessParameters(
        resamples=robustness.resamples,
        confidence=robustness.confidence,
        block_length=robustness.block_length,
        seed=robustness.seed,
    )

    def progress(done: int) -> None:
        Robustness.objects.filter(pk=robustness.pk).update(done=done, updated_at=timezone.now())

    try:
        result = robustness_compute(
            backtest=robustness.backtest,
            parameters=parameters,
            progress=progress,
            time_limit_seconds=outcomes.run_time_limit_seconds() * TOTAL_STEPS,
        )
    except Conflict as error:
        _fail(robustness, str(error))
        return
    except BaseException as error:  # the time limit's interrupt included: the row must not hang
        _fail(robustness, f"Internal error: {type(error).__name__}: {error}")
        raise
    _complete(robustness, result)


def robustness_compute(
    *,
    backtest: Backtest,
    parameters: RobustnessParameters,
    progress: Callable[[int], None] | None = None,
    time_limit_seconds: float | None = None,
) -> dict[str, Any]:
    """``{psr, bootstrap, cost_sensitivity}`` of a completed run.

    Raises ``Conflict`` when its stored results cannot be read, its returns have no statistics,
    or the whole computation goes past ``time_limit_seconds`` (the core checks the deadline
    between the steps of every re-run).
    """
    try:
        with run_time_limit(time_limit_seconds):
            return _compute(backtest, parameters, progress or (lambda done: None))
    except RunTimeLimitExceeded as error:
        raise Conflict(
            f"Backtest {backtest.pk}: robustness computation stopped. {error}"
        ) from error


def _compute(
    backtest: Backtest, parameters: RobustnessParameters, report: Callable[[int], None]
) -> dict[str, Any]:
    equity = selectors.backtest_equity_curve(backtest=backtest)
    context = _run_context(backtest)
    returns = returns_from_equity(equity, backtest.initial_capital)
    try:
        bootstrap = bootstrap_confidence_intervals(
            returns,
            initial_capital=backtest.initial_capital,
            bars_per_year=context.bars_per_year,
            resamples=parameters.resamples,
            confidence=parameters.confidence,
            block_length=parameters.block_length,
            seed=parameters.seed,
            risk_free_rate=context.risk_free_rate,
        )
    except ValueError as error:
        raise Conflict(
            f"Backtest {backtest.pk}: {error}; its robustness cannot be computed."
        ) from error
    psr = probabilistic_sharpe_ratio(returns.to_numpy())
    steps = 1
    report(steps)

    outcomes: dict[tuple[float, float], CostOutcome] = {}

    def outcome_at(commission: float, slippage: float) -> CostOutcome:
        nonlocal steps
        key = (commission, slippage if context.has_slippage else 0.0)
        if key not in outcomes:
            outcomes[key] = context.rerun(*key)
        steps += 1
        report(steps)
        return outcomes[key]

    rows = []
    for level in cost_sensitivity_levels(context.commission, context.slippage):
        slippage = level["slippage"] if context.has_slippage else 0.0
        outcome = outcome_at(level["commission"], slippage)
        rows.append(
            {
                "multiplier": level["multiplier"],
                "commission": level["commission"],
                "slippage": slippage,
                **dataclasses.asdict(outcome),
            }
        )
    breakeven = breakeven_cost_bps(lambda bps: outcome_at(bps / BPS, bps / BPS).cagr)
    report(TOTAL_STEPS)
    return {
        "psr": psr,
        "bootstrap": bootstrap,
        "cost_sensitivity": {"rows": rows, "breakeven_cost_bps": breakeven},
    }


def _is_stale(robustness: Robustness) -> bool:
    # Progress is written after every step and no step outlives the run time limit: a row
    # unchanged for longer lost its worker (or its message), so it is queued again.
    stale_after = settings.BACKFOLIO_RUN_TIME_LIMIT_SECONDS + outcomes.heartbeat_timeout()
    return robustness.updated_at < timezone.now() - timedelta(seconds=stale_after)


def _requeue(robustness: Robustness) -> None:
    Robustness.objects.filter(pk=robustness.pk).update(
        status=Robustness.Status.PENDING, done=0, updated_at=timezone.now()
    )
    robustness.refresh_from_db()
    transaction.on_commit(lambda: messages.send("compute_robustness", str(robustness.pk)))


# --- re-running a run at other costs -----------------------------------------------------------


def _run_context(backtest: Backtest) -> _RunContext:
    if backtest.source == Backtest.Source.V2:
        return _portfolio_context(backtest)
    return _pipeline_context(backtest)


def _pipeline_context(backtest: Backtest) -> _RunContext:
    spec, problems = parse_run_config(
        backtest.config,
        **runner.strategy_inputs(backtest),
        engine=backtest.engine,
        initial_capital=backtest.initial_capital,
        commission=backtest.commission,
        slippage=backtest.slippage,
    )
    if problems:
        raise Conflict(
            f"Backtest {backtest.pk} can no longer be re-run: "
            + "; ".join(str(problem) for problem in problems)
        )

    def rerun(commission: float, slippage: float) -> CostOutcome:
        try:
            result = run_backtest(
                dataclasses.replace(spec, commission=commission, slippage=slippage)
            )
        except RunError as error:
            return CostOutcome(None, None, None, None, str(error))
        return CostOutcome(
            cagr=result.metrics["cagr"],
            sharpe=result.metrics["sharpe_ratio"],
            max_drawdown=result.metrics["max_drawdown"],
            total_costs=_total_costs(result.orders, slippage),
        )

    return _RunContext(
        commission=backtest.commission,
        slippage=backtest.slippage,
        has_slippage=True,
        bars_per_year=spec.bars_per_year,
        risk_free_rate=spec.risk_free_rate,
        rerun=rerun,
    )


def _portfolio_context(backtest: Backtest) -> _RunContext:
    try:
        request = parse_portfolio_request(backtest.config)
    except InvalidPortfolioRequest as invalid:
        raise Conflict(
            f"Backtest {backtest.pk} can no longer be re-run: {'; '.join(invalid.messages)}"
        ) from invalid
    try:
        prices = get_store().load(
            request.symbols,
            request.start_date,
            request.end_date,
            adjustment=request.price_adjustment,
            warmup_bars=request.warmup_bars,
        )
    except MarketDataError as error:
        raise Conflict(f"Backtest {backtest.pk} can no longer be re-run: {error}") from error
    engine = get_engine(request.engine)

    def rerun(commission: float, slippage: float) -> CostOutcome:
        try:
            run = run_portfolio(
                dataclasses.replace(request, base_commission=commission), prices, engine=engine
            )
        except ValueError as error:  # EngineError: the engine refused its input
            return CostOutcome(None, None, None, None, str(error))
        return CostOutcome(
            cagr=run.metrics["cagr"],
            sharpe=run.metrics["sharpe_ratio"],
            max_drawdown=run.metrics["max_drawdown"],
            total_costs=_total_costs(run.orders, 0.0),
        )

    return _RunContext(
        commission=request.base_commission,
        slippage=0.0,
        has_slippage=False,
        bars_per_year=PORTFOLIO_BARS_PER_YEAR,
        risk_free_rate=0.0,
        rerun=rerun,
    )


def _total_costs(orders: pd.DataFrame, slippage: float) -> float | None:
    if orders is None or len(orders) == 0:
        return 0.0
    size = np.abs(pd.to_numeric(orders["size"], errors="coerce").to_numpy(dtype=float))
    price = pd.to_numeric(orders["price"], errors="coerce").to_numpy(dtype=float)
    fees = pd.to_numeric(orders["fees"], errors="coerce").to_numpy(dtype=float)
    buying = orders["side"].to_numpy() == "buy"
    slippage_paid = size * price * slippage / np.where(buying, 1.0 + slippage, 1.0 - slippage)
    return clean_number(float(np.nansum(fees) + np.nansum(slippage_paid)))


# --- rows -------------------------------------------------------------------------------------


def _complete(robustness: Robustness, result: dict[str, Any]) -> Robustness:
    now = timezone.now()
    Robustness.objects.filter(pk=robustness.pk).update(
        status=Robustness.Status.COMPLETED,
        result=result,
        done=TOTAL_STEPS,
        error="",
        completed_at=now,
        updated_at=now,
    )
    robustness.refresh_from_db()
    return robustness


def _fail(robustness: Robustness, reason: str) -> None:
    Robustness.objects.filter(pk=robustness.pk).update(
        status=Robustness.Status.FAILED, error=reason, updated_at=timezone.now()
    )

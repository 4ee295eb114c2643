"""Run one Backfolio portfolio backtest and assemble the contract's whole ``result`` block (pure).

The steps, each owned by the pure core:

1. ``compile_allocation_strategy`` picks the group per bar and the target weights on every
   scheduled rebalance (``rebalance_frequency``) and every switch of group.
2. ``risk.size_positions`` applies position limits and volatility targeting, and
   ``risk.plan_exits`` the risk exits (only when the request turns them on), cash flows included.
3. The engine (``config.engine``) trades the target weights: fills at the close, commission
   ``base_commission`` × traded notional, no slippage. CASH is not traded: its weight, and any
   weight freed by risk management, stays in the engine's cash at a 0 % return.
4. ``metrics`` computes everything from the engine's equity curve E_t (SPEC §5); the daily logs are
   exactly that curve and its returns (r_1 = E_1/C − 1).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from backfolio.deadline import check_deadline
from backtests.engines.base import ALLOCATION_KIND, Engine, EngineInput
from backtests.pipeline import library_versions
from backtests.portfolio.requests import PortfolioRequest
from backtests.portfolio.risk import BARS_PER_YEAR, RISK_EXIT_LABEL, plan_exits, size_positions
from marketdata.synthetic import CASH_SYMBOL
from metrics import analytics
from metrics.calculations import (
    METRICS_SPEC_VERSION,
    cash_flow_metrics,
    compute_metrics,
    returns_from_equity,
    time_weighted_equity,
    time_weighted_returns,
)
from metrics.jsonsafe import clean_number, iso_date
from metrics.presenters import backfolio_metrics
from strategies.language.compiler import cashflow_schedule, compile_allocation_strategy

ROLLING_WINDOW = 63


@dataclass(frozen=True)
class PortfolioRun:
    """One completed run: the contract's ``result`` block and the frames behind it."""

    result: dict[str, Any]
    equity: pd.Series
    returns: pd.Series
    trades: pd.DataFrame
    orders: pd.DataFrame
    positions: pd.DataFrame
    metrics: dict[str, Any]  # compute_metrics output (SPEC §5 keys; FLOW_METRIC_KEYS with flows)
    groups: pd.Series  # the allocation log
    target_weights: pd.DataFrame  # what the engine was given
    warnings: list[str]
    data_hash: str


def is_cash(symbol: str) -> bool:
    return str(symbol).upper() == CASH_SYMBOL


def run_portfolio(
    request: PortfolioRequest,
    prices: Any,
    *,
    engine: Engine,
    benchmark_close: pd.Series | None = None,
    warnings: list[str] | None = None,
) -> PortfolioRun:
    """Run ``request`` on ``prices`` (a PriceFrame of ``request.symbols`` with warm-up history).

    ``benchmark_close``: the benchmark's closes (any index; aligned here), None when it is not
    available (``warnings`` should then say so). Raises ``EngineError`` (a ValueError) when the
    engine refuses its input.
    """
    started = time.perf_counter()
    warnings = [*request.ignored_field_warnings(), *(warnings or [])]
    if prices.warmup_bars < request.warmup_bars:
        warnings.append(
            f"Only {prices.warmup_bars} of the {request.warmup_bars} bars of history the "
            f"indicators need before {request.start_date.isoformat()} exist; indicators are "
            "undefined (their conditions false) on the first bars"
        )
    plan = compile_allocation_strategy(
        request.strategy,
        prices,
        rebalance=request.rebalance_frequency,
        evaluation=request.evaluation_frequency,
        signal_delay=request.signal_delay,
    )
    check_deadline()
    run_index = plan.target_weights.index
    risky = [symbol for symbol in plan.target_weights.columns if not is_cash(symbol)]
    weights = plan.target_weights[risky]
    groups = plan.groups.copy()

    risk = request.risk
    if risk.sizing_active and risky:
        all_returns = prices.close[risky].pct_change(fill_method=None)
        sized = size_positions(weights, plan.groups, all_returns, risk)
        weights = sized.weights
        warnings.extend(sized.warnings)

    if risky:
        close = prices.close.loc[run_index, risky]
    else:
        # Only CASH: the engine holds everything as cash (a weight of 0 on a CASH column).
        close = pd.DataFrame(1.0, index=run_index, columns=[CASH_SYMBOL])
        weights = pd.DataFrame(
            np.where(plan.target_weights.isna().all(axis=1).to_numpy()[:, None], np.nan, 0.0),
            index=run_index,
            columns=[CASH_SYMBOL],
        )

    flows = None
    if request.cashflow_amount is not None:
        flows = np.where(
            cashflow_schedule(run_index, request.cashflow_frequency),
            request.cashflow_amount,
            0.0,
        )
        if not risk.exits_active:
            # A flow bar trades into the current target weights: the last ones the plan traded
            # to. With risk exits the exit pass decides them (all CASH after an exit).
            flow_rows = flows != 0
            weights = weights.copy()
            weights[flow_rows] = weights.ffill().to_numpy()[flow_rows]

    if risk.exits_active:
        exits = plan_exits(
            close,
            weights,
            plan.switch_mask,
            risk,
            initial_capital=request.initial_capital,
            commission=request.base_commission,
            cash_flows=flows,
        )
        weights = exits.weights
        groups = groups.where(exits.in_market.to_numpy(), RISK_EXIT_LABEL)
        warnings.extend(exits.warnings)

    outcome = engine.run(
        EngineInput(
            close=close,
            initial_capital=request.initial_capital,
            commission=request.base_commission,
            slippage=0.0,
            kind=ALLOCATION_KIND,
            target_weights=weights,
            cash_flows=flows,
        )
    )
    # The contract carries warnings: a run with an order the broker refused completes, and says
    # which order, when and why.
    warnings.extend(refused.describe() for refused in outcome.refused_orders)
    check_deadline()
    equity = outcome.equity
    capital = request.initial_capital
    if outcome.cash_flows is None:
        returns = returns_from_equity(equity, capital)
        performance = equity
    else:
        # Returns that ignore the flows: every return-based metric (and the drawdowns) comes
        # from the curve the capital alone made; final_value stays E_n.
        returns = time_weighted_returns(equity, capital, outcome.cash_flows)
        performance = time_weighted_equity(equity, capital, outcome.cash_flows)
        warnings.extend(_withdrawal_warnings(flows, outcome.cash_flows, run_index))
    metrics = compute_metrics(
        performance,
        initial_capital=capital,
        trades=outcome.trades,
        positions=outcome.positions,
        orders=outcome.orders,
        bars_per_year=BARS_PER_YEAR,
    )
    metrics["final_value"] = clean_number(float(equity.iloc[-1]))
    if outcome.cash_flows is not None:
        metrics.update(
            cash_flow_metrics(run_index, capital, outcome.cash_flows, float(equity.iloc[-1]))
        )
    metrics_block = backfolio_metrics(metrics, returns)

    data_symbols = [symbol for symbol in request.symbols if not is_cash(symbol)]
    completeness = {symbol: float(prices.completeness.get(symbol, 1.0)) for symbol in data_symbols}
    asset_returns = _asset_returns(prices.close, risky, run_index)
    # A withdrawal can empty the portfolio: nothing is held on a bar worth 0.
    worth = equity.to_numpy(dtype=float)
    worth = np.where(worth > 0, worth, np.nan)
    held_weights = (
        pd.DataFrame(
            outcome.positions[risky].to_numpy(dtype=float)
            * close[risky].to_numpy(dtype=float)
            / worth[:, None],
            index=run_index,
            columns=risky,
        )
        if risky
        else pd.DataFrame(index=run_index)
    )

    benchmark_block: dict[str, Any] = {}
    if benchmark_close is not None:
        benchmark_returns = analytics.benchmark_returns_from_prices(benchmark_close, run_index)
        benchmark_block = analytics.benchmark_comparison(
            returns, benchmark_returns, request.benchmark, bars_per_year=BARS_PER_YEAR
        )

    data_quality = analytics.data_quality(
        symbols=data_symbols,
        start_date=run_index[0],
        end_date=run_index[-1],
        n_bars=len(run_index),
        completeness=completeness,
    )
    # The daily logs hold thousands of values: built from whole arrays, not value by value.
    dates = np.datetime_as_string(run_index.to_numpy(dtype="datetime64[D]"), unit="D").tolist()
    equity_values = _json_numbers(equity)
    result = {
        "is_valid": True,
        "validation_score": validation_score(completeness, warnings),
        "metrics": metrics_block,
        "portfolio_log": dict(zip(dates, equity_values, strict=True)),
        "allocation_log": dict(zip(dates, groups.astype(str).tolist(), strict=True)),
        "returns_log": dict(zip(dates, _json_numbers(returns), strict=True)),
        "allocation_summary": analytics.allocation_summary(groups, returns),
        "risk_metrics": analytics.risk_metrics(returns),
        "benchmark_comparison": benchmark_block,
        "transaction_analysis": analytics.transaction_analysis(outcome.orders, equity, capital),
        "drawdown_analysis": analytics.drawdown_analysis(performance, capital),
        "allocation_efficiency": analytics.allocation_efficiency(
            groups, returns, bars_per_year=BARS_PER_YEAR
        ),
        "rolling_metrics": analytics.rolling_metrics(
            returns, window=ROLLING_WINDOW, bars_per_year=BARS_PER_YEAR
        ),
        "correlation_matrix": analytics.correlation_matrix(asset_returns),
        "risk_contribution": analytics.risk_contribution(held_weights, asset_returns),
        "data_quality": data_quality,
        "rebalancing_frequency": request.rebalance_frequency,
        "execution_time": time.perf_counter() - started,
        "warnings": warnings,
        "errors": [],
        "chart_data": {"dates": dates, "values": equity_values},
    }
    return PortfolioRun(
        result=result,
        equity=equity,
        returns=returns,
        trades=outcome.trades,
        orders=outcome.orders,
        positions=outcome.positions,
        metrics=metrics,
        groups=groups,
        target_weights=weights,
        warnings=warnings,
        data_hash=str(prices.data_hash),
    )


def _withdrawal_warnings(
    planned: np.ndarray, actual: np.ndarray, run_index: pd.DatetimeIndex
) -> list[str]:
    """One warning when a withdrawal emptied the portfolio and the later ones were skipped."""
    short = np.flatnonzero((planned < 0) & (actual > planned))
    if not len(short):
        return []
    first = short[0]
    skipped = int(len(short) - 1)
    return [
        f"The withdrawal of {-planned[first]:,.2f} on {iso_date(run_index[first])} exceeded the "
        f"portfolio's value: it was emptied ({-actual[first]:,.2f} withdrawn) and the "
        f"{skipped} later withdrawal(s) were skipped"
    ]


def _asset_returns(close: pd.DataFrame, risky: list[str], run_index: pd.Index) -> pd.DataFrame:
    """``close[risky].pct_change(fill_method=None).loc[run_index]`` on arrays: the same
    arithmetic (p_t / p_{t-1} − 1, NaN on the first row) without pandas' per-call overhead."""
    values = close[risky].to_numpy(dtype=float)
    returns = np.full_like(values, np.nan)
    returns[1:] = values[1:] / values[:-1] - 1
    rows = close.index.get_indexer(run_index)
    return pd.DataFrame(returns[rows], index=run_index, columns=risky)


def _json_numbers(series: pd.Series) -> list[float | None]:
    """Floats for JSON, None where a value is NaN or infinite."""
    values = series.to_numpy(dtype=float)
    numbers = values.tolist()
    if np.isfinite(values).all():
        return numbers
    return [value if math.isfinite(value) else None for value in numbers]


def validation_score(completeness: dict[str, float], warnings: list[str]) -> float:
    """Mean data completeness minus 0.05 per warning, clamped to [0, 1] (SPEC §8)."""
    mean_completeness = float(np.mean(list(completeness.values()))) if completeness else 1.0
    return float(min(max(mean_completeness - 0.05 * len(warnings), 0.0), 1.0))


def fingerprint(request: PortfolioRequest, data_hash: str) -> str:
    """sha256 over the canonical request, the prices used, the engine and its library version,
    and the metrics spec version (SPEC §6): the same fingerprint gives the same numbers."""
    document = {
        "contract": "backfolio-portfolio-backtest-v2",
        "strategy": request.strategy,
        "config": request.canonical_config(),
        "data_hash": data_hash,
        "engine": request.engine,
        "libraries": library_versions(request.engine),
        "metrics_spec_version": METRICS_SPEC_VERSION,
    }
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()

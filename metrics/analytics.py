"""The Backfolio analytics blocks (SPEC §8, contracts/backfolio-portfolio-backtest-v2.md).

Each function takes plain pandas objects from one run and returns a JSON-ready dict (dates as
`YYYY-MM-DD`, None where a number is undefined). Conventions, where the contract leaves room:

- `returns` are the run's per-bar returns as SPEC §5 defines them (`returns_from_equity`):
  r_1 = E_1/C − 1, then E_t/E_{t−1} − 1. Units are fractions unless a key says percent.
- Allocation `groups` is the allocation log: the group chosen at each bar's close. A bar's return
  is earned by the group held *over* that bar, i.e. the previous bar's choice (the first bar's
  own choice for r_1, which carries the first fills' costs). `allocation_summary` and
  `allocation_efficiency` attribute returns and count days that way.
- `kurtosis` is *excess* kurtosis (normal = 0) with the sample adjustment, and `skewness` the
  adjusted sample skewness: pandas `Series.kurt()` / `Series.skew()`, equal to
  `scipy.stats.kurtosis(fisher=True, bias=False)` / `scipy.stats.skew(bias=False)`.
- `volatility_clustering` is the lag-1 autocorrelation of squared returns (pandas
  `Series.autocorr(1)` of r²): near 0 for independent returns, positive when big moves cluster.
- Drawdown periods are measured with C as the first peak, as `max_drawdown` is; a period's
  `start_date` is its peak's bar (the first bar when the peak is C itself), `end_date` its
  trough, `recovery_date` the first bar back at or above the peak (null if never).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from metrics.calculations import (
    DAYS_PER_YEAR,
    TRADING_DAYS_PER_YEAR,
    historical_var_cvar,
    longest_run,
    per_period_risk_free,
    traded_notional,
)
from metrics.jsonsafe import clean_number, clean_numbers, iso_date, iso_dates, json_safe

CASH_SYMBOL = "CASH"
DRAWDOWN_PERIOD_THRESHOLD = 0.05


# --- series as the contract shows them --------------------------------------------------------


def date_log(series: pd.Series) -> dict[str, object]:
    """`{"YYYY-MM-DD": value}` per bar: `portfolio_log`, `returns_log`, `allocation_log`."""
    return dict(zip(iso_dates(series.index), (json_safe(v) for v in series.tolist()), strict=True))


def chart_data(equity: pd.Series) -> dict[str, list]:
    """`{"dates": [...], "values": [...]}` for the contract's frontend guide."""
    return {"dates": iso_dates(equity.index), "values": clean_numbers(equity)}


# --- risk_metrics -----------------------------------------------------------------------------


def risk_metrics(returns: pd.Series) -> dict[str, float | int | None]:
    """VaR/CVaR (returns, negative for losses), skewness, excess kurtosis, longest losing
    streak (bars) and volatility clustering; see the module docstring for the conventions."""
    values = _finite(returns)
    var_95, cvar_95 = historical_var_cvar(values, 0.05)
    var_99, cvar_99 = historical_var_cvar(values, 0.01)
    squared = np.square(values)
    return {
        "var_95": clean_number(var_95),
        "cvar_95": clean_number(cvar_95),
        "var_99": clean_number(var_99),
        "cvar_99": clean_number(cvar_99),
        "skewness": _sample_skewness(values),
        "kurtosis": _sample_excess_kurtosis(values),
        "max_consecutive_losses": longest_run(values < 0),
        "volatility_clustering": _lag1_autocorrelation(squared),
    }


def _central_moments(values: np.ndarray) -> tuple[float, float, float]:
    deviations = values - values.mean()
    squared = np.square(deviations)
    return (
        float(squared.mean()),
        float((squared * deviations).mean()),
        float(np.square(squared).mean()),
    )


def _sample_skewness(values: np.ndarray) -> float | None:
    """Adjusted Fisher–Pearson skewness G1, as pandas `Series.skew()`."""
    n = len(values)
    if n < 3 or values.max() == values.min():
        return None
    m2, m3, _ = _central_moments(values)
    return clean_number(math.sqrt(n * (n - 1)) / (n - 2) * m3 / m2**1.5)


def _sample_excess_kurtosis(values: np.ndarray) -> float | None:
    """Adjusted excess kurtosis G2 (normal = 0), as pandas `Series.kurt()`."""
    n = len(values)
    if n < 4 or values.max() == values.min():
        return None
    m2, _, m4 = _central_moments(values)
    g2 = m4 / m2**2 - 3.0
    return clean_number(((n + 1) * g2 + 6.0) * (n - 1) / ((n - 2) * (n - 3)))


def _lag1_autocorrelation(values: np.ndarray) -> float | None:
    """Pearson correlation of x_t with x_{t−1}, as pandas `Series.autocorr(1)`."""
    if len(values) < 3:
        return None
    current, previous = values[1:], values[:-1]
    if current.max() == current.min() or previous.max() == previous.min():
        return None
    return clean_number(np.corrcoef(current, previous)[0, 1])


# --- benchmark_comparison ---------------------------------------------------------------------


def benchmark_returns_from_prices(prices: pd.Series, index: pd.Index) -> pd.Series:
    """Per-bar benchmark returns on the run's bars, bought at the first bar's close (r_1 = 0)."""
    aligned = prices.reindex(prices.index.union(index)).ffill().reindex(index)
    returns = aligned / aligned.shift(1) - 1.0
    if len(returns):
        returns.iloc[0] = 0.0
    return returns


def benchmark_comparison(
    returns: pd.Series,
    benchmark_returns: pd.Series,
    name: str,
    bars_per_year: float = TRADING_DAYS_PER_YEAR,
    risk_free_rate: float = 0.0,
) -> dict[str, dict[str, float | None]]:
    """`{name: {correlation, beta, alpha_annualized, information_ratio, tracking_error,
    up_capture, down_capture, benchmark_cagr, excess_return_cagr}}`.

    Paired bars only (both returns present). beta = cov(r, b)/var(b); alpha is the CAPM alpha
    per bar, mean(r − rf_p) − beta·mean(b − rf_p), times P; tracking error std(r − b)·√P and
    information ratio mean(r − b)·P / tracking error; capture ratios as empyrical's
    up_capture/down_capture (annualised compound return of the portfolio over that of the
    benchmark, on the bars where the benchmark rose / fell). CAGRs compound the returns over the
    calendar days from the first to the last bar (365.25-day years), as `compute_metrics` does.
    """
    benchmark = benchmark_returns.reindex(returns.index)
    paired = np.isfinite(returns.to_numpy(dtype=float)) & np.isfinite(
        benchmark.to_numpy(dtype=float)
    )
    portfolio = returns.to_numpy(dtype=float)[paired]
    bench = benchmark.to_numpy(dtype=float)[paired]
    rf = per_period_risk_free(risk_free_rate, bars_per_year)

    correlation = beta = alpha = tracking_error = information_ratio = None
    if len(portfolio) >= 2:
        bench_var = float(np.var(bench, ddof=1))
        covariance = float(np.cov(portfolio, bench, ddof=1)[0, 1])
        if bench_var > 0:
            beta = covariance / bench_var
            alpha = (float(np.mean(portfolio - rf)) - beta * float(np.mean(bench - rf))) * (
                bars_per_year
            )
            portfolio_var = float(np.var(portfolio, ddof=1))
            if portfolio_var > 0:
                correlation = covariance / math.sqrt(portfolio_var * bench_var)
        active = portfolio - bench
        if active.max() != active.min():
            active_std = float(np.std(active, ddof=1))
            tracking_error = active_std * math.sqrt(bars_per_year)
            information_ratio = float(np.mean(active)) * bars_per_year / tracking_error

    days = _calendar_days(returns.index)
    portfolio_cagr = _compound_cagr(returns.to_numpy(dtype=float), days)
    benchmark_cagr = _compound_cagr(np.nan_to_num(benchmark.to_numpy(dtype=float)), days)
    return {
        name: {
            "correlation": clean_number(correlation),
            "beta": clean_number(beta),
            "alpha_annualized": clean_number(alpha),
            "information_ratio": clean_number(information_ratio),
            "tracking_error": clean_number(tracking_error),
            "up_capture": _capture(portfolio, bench, bench > 0, bars_per_year),
            "down_capture": _capture(portfolio, bench, bench < 0, bars_per_year),
            "benchmark_cagr": clean_number(benchmark_cagr),
            "excess_return_cagr": (
                None
                if portfolio_cagr is None or benchmark_cagr is None
                else clean_number(portfolio_cagr - benchmark_cagr)
            ),
        }
    }


def _capture(
    portfolio: np.ndarray, bench: np.ndarray, mask: np.ndarray, bars_per_year: float
) -> float | None:
    if not mask.any():
        return None
    bench_annual = _annual_return(bench[mask], bars_per_year)
    if bench_annual == 0:
        return None
    return clean_number(_annual_return(portfolio[mask], bars_per_year) / bench_annual)


def _annual_return(returns: np.ndarray, bars_per_year: float) -> float:
    growth = float(np.prod(1.0 + returns))
    return growth ** (bars_per_year / len(returns)) - 1.0


def _compound_cagr(returns: np.ndarray, days: float) -> float | None:
    if days < 1 or not np.isfinite(returns).all():
        return None
    growth = float(np.prod(1.0 + returns))
    if growth < 0:
        return None
    return growth ** (DAYS_PER_YEAR / days) - 1.0


def _calendar_days(index: pd.Index) -> float:
    if len(index) == 0:
        return 0.0
    dates = pd.DatetimeIndex(index)
    return (dates[-1] - dates[0]).total_seconds() / 86_400


# --- transaction_analysis ---------------------------------------------------------------------


def transaction_analysis(
    orders: pd.DataFrame | None, equity: pd.Series, initial_capital: float
) -> dict[str, float | int | None]:
    """Costs and turnover of the run's orders (`size`, `price`, `fees` columns).

    A trade here is one order (fill). `cost_as_pct_of_portfolio` is total costs in percent of
    the initial capital; `turnover_ratio` is traded notional over mean equity (not annualised);
    `trading_frequency` is orders per bar.
    """
    if orders is None or len(orders) == 0:
        costs, n_orders, turnover = 0.0, 0, 0.0
    else:
        sizes = pd.to_numeric(orders["size"], errors="coerce").fillna(0).to_numpy(dtype=float)
        filled = orders[sizes != 0]
        costs = float(pd.to_numeric(filled["fees"], errors="coerce").fillna(0).sum())
        n_orders = len(filled)
        turnover = traded_notional(filled)
    mean_equity = float(equity.mean()) if len(equity) else math.nan
    return {
        "total_transaction_costs": clean_number(costs),
        "total_trades": n_orders,
        "total_turnover": clean_number(turnover),
        "avg_cost_per_trade": clean_number(costs / n_orders) if n_orders else None,
        "cost_as_pct_of_portfolio": clean_number(costs / initial_capital * 100),
        "turnover_ratio": clean_number(turnover / mean_equity) if mean_equity > 0 else None,
        "trading_frequency": clean_number(n_orders / len(equity)) if len(equity) else None,
    }


# --- drawdown_analysis ------------------------------------------------------------------------


@dataclass(frozen=True)
class UnderwaterStretches:
    """An equity curve's drawdown from its running peak (the initial capital included) and its
    underwater stretches: ``starts[i]`` is a stretch's first bar below the peak, ``stops[i]``
    the first bar back at it (or n), ``depths[i]`` its deepest drawdown."""

    dates: pd.DatetimeIndex
    drawdowns: np.ndarray
    starts: np.ndarray
    stops: np.ndarray
    depths: np.ndarray


def underwater_stretches(equity: pd.Series, initial_capital: float) -> UnderwaterStretches:
    values = equity.to_numpy(dtype=float)
    peaks = np.maximum.accumulate(np.concatenate(([float(initial_capital)], values)))[1:]
    drawdowns = values / peaks - 1.0
    underwater = drawdowns < 0
    if not underwater.any():
        empty = np.empty(0, dtype=np.int64)
        return UnderwaterStretches(
            pd.DatetimeIndex(equity.index), drawdowns, empty, empty, np.empty(0)
        )
    edges = np.flatnonzero(np.diff(np.concatenate(([0], underwater.astype(np.int8), [0]))))
    starts, stops = edges[::2], edges[1::2]
    # Bars between two underwater stretches have a drawdown of 0, so each reduceat slice's
    # minimum is the minimum of its stretch.
    depths = np.minimum.reduceat(drawdowns, starts)
    return UnderwaterStretches(pd.DatetimeIndex(equity.index), drawdowns, starts, stops, depths)


def drawdown_period(
    stretches: UnderwaterStretches, start: int, stop: int, depth: float
) -> dict[str, object]:
    """One underwater stretch as a drawdown period: peak, trough and recovery dates, its depth,
    and calendar days peak → trough and trough → recovery (null while unrecovered)."""
    dates, drawdowns = stretches.dates, stretches.drawdowns
    start, stop = int(start), int(stop)
    peak_date = dates[start - 1] if start > 0 else dates[0]
    trough_date = dates[start + int(np.argmin(drawdowns[start:stop]))]
    recovery_date = dates[stop] if stop < len(drawdowns) else None
    return {
        "start_date": iso_date(peak_date),
        "end_date": iso_date(trough_date),
        "recovery_date": iso_date(recovery_date),
        "max_drawdown": clean_number(depth),
        "duration_days": (trough_date - peak_date).days,
        "recovery_days": None if recovery_date is None else (recovery_date - trough_date).days,
    }


def drawdown_analysis(
    equity: pd.Series, initial_capital: float, threshold: float = DRAWDOWN_PERIOD_THRESHOLD
) -> dict[str, object]:
    """Drawdown periods deeper than `threshold` (5%) and their summary.

    Durations are calendar days: `duration_days` peak → trough, `recovery_days` trough →
    recovery (null while unrecovered). The summary's `max_drawdown` is the whole run's; the
    averages are over the listed periods (`avg_recovery_time` over the recovered ones).
    """
    stretches = underwater_stretches(equity, initial_capital)
    periods = [
        drawdown_period(stretches, start, stop, depth)
        for start, stop, depth in zip(
            stretches.starts, stretches.stops, stretches.depths, strict=True
        )
        if depth < -threshold
    ]

    recoveries = [p["recovery_days"] for p in periods if p["recovery_days"] is not None]
    drawdowns = stretches.drawdowns
    overall = min(float(drawdowns.min()), 0.0) + 0.0 if len(drawdowns) else None
    return {
        "summary": {
            "max_drawdown": clean_number(overall),
            "avg_drawdown": _mean_or_none(p["max_drawdown"] for p in periods),
            "drawdown_frequency": len(periods),
            "avg_drawdown_duration": _mean_or_none(p["duration_days"] for p in periods),
            "avg_recovery_time": _mean_or_none(recoveries),
            "max_recovery_time": max(recoveries) if recoveries else None,
        },
        "periods": periods,
    }


def _mean_or_none(values: Iterable[float]) -> float | None:
    items = list(values)
    return clean_number(sum(items) / len(items)) if items else None


# --- allocation_summary / allocation_efficiency -----------------------------------------------


def held_groups(groups: pd.Series) -> pd.Series:
    """The group held over each bar: the previous bar's choice (the first bar's own for r_1)."""
    held = groups.shift(1)
    if len(held):
        held.iloc[0] = groups.iloc[0]
    return held


def allocation_summary(groups: pd.Series, returns: pd.Series) -> list[dict[str, object]]:
    """One entry per group held, in order of first use: days held, mean and compound return."""
    return [
        {
            "allocation": name,
            "days": len(group_returns),
            "avg_daily_return": clean_number(group_returns.mean()),
            "total_return": clean_number(np.prod(1.0 + group_returns) - 1.0),
        }
        for name, group_returns in _returns_by_held_group(groups, returns)
    ]


def allocation_efficiency(
    groups: pd.Series, returns: pd.Series, bars_per_year: float = TRADING_DAYS_PER_YEAR
) -> dict[str, object]:
    """Switching counts, share of bars per group (percent) and per-group performance.

    `allocation_changes` counts bars whose choice differs from the previous bar's;
    `switching_frequency` is changes per bar. Per group: `avg_return` and `volatility` are per
    bar (mean, std ddof=1), `sharpe` is annualised: avg_return / volatility · √P.
    """
    choices = groups.to_numpy()
    changes = int((choices[1:] != choices[:-1]).sum()) if len(choices) > 1 else 0
    n_bars = len(choices)
    by_group = _returns_by_held_group(groups, returns)
    performance = {}
    for name, group_returns in by_group:
        volatility = float(np.std(group_returns, ddof=1)) if len(group_returns) > 1 else None
        mean = float(np.mean(group_returns))
        constant = len(group_returns) < 2 or group_returns.max() == group_returns.min()
        performance[name] = {
            "avg_return": clean_number(mean),
            "volatility": clean_number(volatility),
            "sharpe": None
            if constant
            else clean_number(mean / volatility * math.sqrt(bars_per_year)),
        }
    return {
        "allocation_changes": changes,
        "switching_frequency": clean_number(changes / n_bars) if n_bars else None,
        "allocation_percentages": {
            name: clean_number(len(group_returns) / n_bars * 100)
            for name, group_returns in by_group
        },
        "allocation_performance": performance,
    }


def _returns_by_held_group(groups: pd.Series, returns: pd.Series) -> list[tuple[str, np.ndarray]]:
    held = held_groups(groups.reindex(returns.index))
    codes, names = pd.factorize(held, use_na_sentinel=True)
    values = returns.to_numpy(dtype=float)
    return [(str(name), values[codes == code]) for code, name in enumerate(names)]


# --- rolling_metrics --------------------------------------------------------------------------


def rolling_metrics(
    returns: pd.Series,
    window: int = 63,
    bars_per_year: float = TRADING_DAYS_PER_YEAR,
    risk_free_rate: float = 0.0,
) -> dict[str, dict[str, float | None]]:
    """Trailing-window Sharpe, Sortino and volatility, sampled on each month's first bar.

    Same formulas as `compute_metrics` over the `window` bars ending at that bar; a month's first
    bar is included once the window is full.
    """
    if window < 2:
        raise ValueError(f"rolling window must be at least 2 bars, got {window}")
    rf = per_period_risk_free(risk_free_rate, bars_per_year)
    excess = returns.to_numpy(dtype=float) - rf
    dates = pd.DatetimeIndex(returns.index)
    months = dates.year * 12 + dates.month
    first_of_month = np.concatenate(([True], months[1:] != months[:-1]))
    sampled = np.flatnonzero(first_of_month[: len(excess)])
    sampled = sampled[sampled >= window - 1]
    if len(sampled) == 0:
        return {}

    # Only the sampled windows are computed, each exactly (no running-sum drift).
    windows = np.lib.stride_tricks.sliding_window_view(excess, window)[sampled - (window - 1)]
    mean = windows.mean(axis=1)
    std = windows.std(axis=1, ddof=1)
    constant = windows.max(axis=1) == windows.min(axis=1)
    downside = np.sqrt(np.mean(np.square(np.minimum(windows, 0.0)), axis=1))
    root_p = math.sqrt(bars_per_year)
    with np.errstate(divide="ignore", invalid="ignore"):
        sharpe = np.where(constant, np.nan, mean / std * root_p)
        sortino = np.where(downside == 0, np.nan, mean * bars_per_year / (downside * root_p))
    volatility = np.where(constant, 0.0, std * root_p)

    return {
        date: {
            "rolling_sharpe": sharpe_value,
            "rolling_sortino": sortino_value,
            "rolling_volatility": volatility_value,
        }
        for date, sharpe_value, sortino_value, volatility_value in zip(
            iso_dates(dates[sampled]),
            clean_numbers(sharpe),
            clean_numbers(sortino),
            clean_numbers(volatility),
            strict=True,
        )
    }


# --- correlation_matrix / risk_contribution ---------------------------------------------------


def correlation_matrix(asset_returns: pd.DataFrame) -> dict[str, dict[str, float | None]]:
    """Pearson correlation of the assets' per-bar returns; CASH (no variance) is left out."""
    frame = _risky_assets(asset_returns)
    names = [str(column) for column in frame.columns]
    correlations = frame.corr().to_numpy(dtype=float).tolist()
    return {
        row: {column: clean_number(value) for column, value in zip(names, values, strict=True)}
        for row, values in zip(names, correlations, strict=True)
    }


def risk_contribution(
    weights: pd.DataFrame, asset_returns: pd.DataFrame
) -> dict[str, float | None]:
    """Each asset's share of portfolio variance (Euler), at the average held weights.

    w̄ = mean weight per asset over the bars, Σ = sample covariance of the asset returns;
    contribution_i = w̄_i (Σ w̄)_i / w̄ᵀ Σ w̄, so the contributions sum to 1. CASH is excluded.
    """
    frame = _risky_assets(asset_returns)
    symbols = list(frame.columns)
    mean_weights = weights.reindex(columns=symbols).fillna(0.0).mean().to_numpy(dtype=float)
    covariance = frame.cov(ddof=1).to_numpy(dtype=float)
    if not np.isfinite(covariance).all():
        return dict.fromkeys(symbols)
    marginal = covariance @ mean_weights
    variance = float(mean_weights @ marginal)
    if not variance > 0:
        return dict.fromkeys(symbols)
    shares = mean_weights * marginal / variance
    return {symbol: clean_number(share) for symbol, share in zip(symbols, shares, strict=True)}


def _risky_assets(asset_returns: pd.DataFrame) -> pd.DataFrame:
    columns = [c for c in asset_returns.columns if str(c).upper() != CASH_SYMBOL]
    frame = asset_returns if len(columns) == asset_returns.shape[1] else asset_returns[columns]
    if all(dtype == np.float64 for dtype in frame.dtypes):
        return frame  # callers only read it
    return frame.astype(float)


# --- data_quality -----------------------------------------------------------------------------


def data_quality(
    *,
    symbols: Iterable[str],
    start_date: object,
    end_date: object,
    n_bars: int,
    completeness: Mapping[str, float],
    missing_data_issues: Iterable[str] = (),
) -> dict[str, object]:
    """The `data_quality` block. `date_range_days` counts the run's bars (trading days), as the
    contract's example (1008 for four years) does; `data_completeness` is the fraction of bars
    on which each symbol had its own row. Symbols below 1.0 get an issue line."""
    symbol_list = list(dict.fromkeys(symbols))
    issues = list(missing_data_issues)
    for symbol in symbol_list:
        share = completeness.get(symbol)
        if share is not None and share < 1.0:
            issues.append(
                f"{symbol}: {(1.0 - share) * 100:.1f}% of bars had no data (previous price carried)"
            )
    return {
        "total_symbols": len(symbol_list),
        "date_range_days": int(n_bars),
        "start_date": iso_date(start_date),
        "end_date": iso_date(end_date),
        "missing_data_issues": issues,
        "data_completeness": {
            symbol: clean_number(completeness.get(symbol)) for symbol in symbol_list
        },
    }


def _finite(returns: pd.Series | np.ndarray) -> np.ndarray:
    values = np.asarray(returns, dtype=float)
    return values[np.isfinite(values)]

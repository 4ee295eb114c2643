"""The one definition of every backtest metric (SPEC §5), whichever engine ran.

Inputs are the engine-agnostic outputs of a run: the equity curve E_t (one value per bar, after
that bar's fills), the initial capital C, and optionally the closed trades, the orders and the
positions. Output is a flat dict of plain Python numbers; anything undefined (NaN, ±inf, a ratio
with a zero denominator) is None so that it serialises as JSON `null`.

Sign conventions (the presenters convert to each contract's units):
- `max_drawdown`, `var_*`, `cvar_*` are returns: negative for losses.
- `avg_loss` is the mean pnl of the losing trades, so it is negative (currency).
- `max_drawdown_duration` and `bars_in_market` count bars.

The formulas follow SPEC §5 and agree with empyrical-reloaded (sharpe_ratio, sortino_ratio,
annual_volatility, max_drawdown, value_at_risk) and ffn.calc_cagr on the same returns; see
tests/metrics/test_calculations.py.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from metrics.jsonsafe import clean_number, iso_date

METRICS_SPEC_VERSION = "1.0"

DAYS_PER_YEAR = 365.25
# Trading days in a year: what a daily bar annualises with (SPEC §5), everywhere it is needed.
TRADING_DAYS_PER_YEAR = 252

METRIC_KEYS = (
    "total_return",
    "cagr",
    "volatility_annualised",
    "sharpe_ratio",
    "sortino_ratio",
    "max_drawdown",
    "calmar_ratio",
    "max_drawdown_duration",
    "var_95",
    "var_99",
    "cvar_95",
    "cvar_99",
    "win_rate",
    "profit_factor",
    "avg_win",
    "avg_loss",
    "expectancy",
    "turnover_annualised",
    "bars_in_market",
    "total_trades",
    "final_value",
    "start_date",
    "end_date",
    "n_bars",
    "metrics_spec_version",
)


# Added to a run's metrics when it has cash flows (SPEC §8.1): the contributions and the
# withdrawals (a positive amount) that actually flowed, and the annualised money-weighted return.
FLOW_METRIC_KEYS = ("total_contributions", "total_withdrawals", "money_weighted_return")


def returns_from_equity(equity: pd.Series, initial_capital: float) -> pd.Series:
    """Per-bar simple returns: r_1 = E_1/C − 1 (so the first fills' costs count), then
    r_t = E_t/E_{t−1} − 1."""
    _check_capital(initial_capital)
    values = equity.to_numpy(dtype=float)
    previous = np.concatenate(([float(initial_capital)], values[:-1]))
    with np.errstate(divide="ignore", invalid="ignore"):
        returns = values / previous - 1.0
    return pd.Series(returns, index=equity.index, name="returns")


def time_weighted_returns(
    equity: pd.Series, initial_capital: float, flows: np.ndarray
) -> pd.Series:
    """Returns that ignore cash flows (SPEC §8.1): r_1 = E_1/C − 1, then
    r_t = (E_t − F_t)/E_{t−1} − 1, F_t the flow added at bar t's close (negative: withdrawn).
    A bar after the portfolio was emptied (E_{t−1} = 0) has nothing invested: r_t = 0."""
    _check_capital(initial_capital)
    values = equity.to_numpy(dtype=float)
    previous = np.concatenate(([float(initial_capital)], values[:-1]))
    flows = np.asarray(flows, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        returns = np.where(previous > 0, (values - flows) / previous - 1.0, 0.0)
    return pd.Series(returns, index=equity.index, name="returns")


def time_weighted_equity(equity: pd.Series, initial_capital: float, flows: np.ndarray) -> pd.Series:
    """C·Π(1 + r_s) over the time-weighted returns: the curve the capital alone would have made,
    from which every return-based metric of a run with flows is computed."""
    returns = time_weighted_returns(equity, initial_capital, flows)
    growth = np.cumprod(1.0 + returns.to_numpy())
    return pd.Series(float(initial_capital) * growth, index=equity.index, name="equity")


def money_weighted_return(
    dates: pd.DatetimeIndex, initial_capital: float, flows: np.ndarray, final_value: float
) -> float | None:
    """The annualised internal rate of return r of the investor's cash flows: −C on the first
    bar, −F_t on each flow bar (a contribution is money in), +E_n on the last bar, discounted by
    (1 + r)^(days/365.25): the r where their present value is 0 (``scipy.optimize.brentq``).
    None when the run spans less than a day or no rate in (−100 %, 10⁶ %) balances them."""
    from scipy.optimize import brentq  # imported on use: most runs have no flows

    days = (dates - dates[0]).days.to_numpy(dtype=float)
    if len(days) == 0 or days[-1] < 1:
        return None
    amounts = -np.asarray(flows, dtype=float)
    amounts[0] -= float(initial_capital)
    amounts[-1] += float(final_value)
    moving = amounts != 0
    years, amounts = days[moving] / 365.25, amounts[moving]

    def present_value(rate: float) -> float:
        return float(np.sum(amounts * np.exp(-years * np.log1p(rate))))

    low, high = -1.0 + 1e-9, 1e4
    if present_value(low) * present_value(high) > 0:
        return None
    return float(brentq(present_value, low, high, xtol=1e-14, rtol=1e-12, maxiter=500))


def cash_flow_metrics(
    dates: pd.DatetimeIndex, initial_capital: float, flows: np.ndarray, final_value: float
) -> dict[str, float | None]:
    """``FLOW_METRIC_KEYS`` of a run whose flows per bar (what actually flowed, negative:
    withdrawn) are ``flows`` and whose last value is ``final_value`` (E_n)."""
    flows = np.asarray(flows, dtype=float)
    return {
        "total_contributions": clean_number(float(flows[flows > 0].sum())),
        "total_withdrawals": clean_number(float(-flows[flows < 0].sum()) + 0.0),  # never -0.0
        "money_weighted_return": clean_number(
            money_weighted_return(dates, initial_capital, flows, final_value)
        ),
    }


def per_period_risk_free(risk_free_rate: float, bars_per_year: float) -> float:
    """rf_p = (1 + rf)^(1/P) − 1: the annual rate compounded down to one bar."""
    return (1.0 + risk_free_rate) ** (1.0 / bars_per_year) - 1.0


def drawdown_series(equity: pd.Series, initial_capital: float) -> pd.Series:
    """E_t / max(C, E_1 … E_t) − 1 per bar (≤ 0); C counts as the first peak."""
    _check_capital(initial_capital)
    values = equity.to_numpy(dtype=float)
    return pd.Series(
        _drawdowns(values, float(initial_capital)), index=equity.index, name="drawdown"
    )


def compute_metrics(
    equity: pd.Series,
    *,
    initial_capital: float,
    trades: pd.DataFrame | None = None,
    positions: pd.DataFrame | pd.Series | None = None,
    orders: pd.DataFrame | None = None,
    bars_per_year: float = TRADING_DAYS_PER_YEAR,
    risk_free_rate: float = 0.0,
) -> dict[str, float | int | str | None]:
    """The SPEC §5 metrics of one run, keyed as `METRIC_KEYS`, NaN/±inf replaced by None.

    `trades` needs a `pnl` column (closed trades, net of costs; rows with a missing pnl are open
    and ignored); `orders` needs `size` and `price`; `positions` is shares per symbol per bar.
    Without trades the trade metrics are None and `total_trades` is 0; without orders
    `turnover_annualised` is None; without positions `bars_in_market` is None.
    """
    _check_capital(initial_capital)
    if len(equity) == 0:
        raise ValueError("equity curve is empty: a run has at least one bar")
    if bars_per_year <= 0:
        raise ValueError(f"bars_per_year must be positive, got {bars_per_year}")
    index = _bar_dates(equity.index)
    capital = float(initial_capital)
    values = equity.to_numpy(dtype=float)
    n_bars = len(values)
    with np.errstate(divide="ignore", invalid="ignore"):
        returns = values / np.concatenate(([capital], values[:-1])) - 1.0
    excess = returns - per_period_risk_free(risk_free_rate, bars_per_year)

    total_return = values[-1] / capital - 1.0
    cagr = _cagr(values[-1] / capital, index[0], index[-1])
    drawdowns = _drawdowns(values, capital)
    max_drawdown = min(float(drawdowns.min()), 0.0) + 0.0  # + 0.0 turns -0.0 into 0.0
    (var_95, cvar_95), (var_99, cvar_99) = _historical_var_cvar(returns, (0.05, 0.01))

    metrics: dict[str, float | int | str | None] = {
        "total_return": total_return,
        "cagr": cagr,
        "volatility_annualised": _volatility(returns, bars_per_year),
        "sharpe_ratio": _sharpe(excess, bars_per_year),
        "sortino_ratio": _sortino(excess, bars_per_year),
        "max_drawdown": max_drawdown,
        "calmar_ratio": None if cagr is None or max_drawdown == 0 else cagr / abs(max_drawdown),
        "max_drawdown_duration": _longest_true_run(drawdowns < 0),
        "var_95": var_95,
        "var_99": var_99,
        "cvar_95": cvar_95,
        "cvar_99": cvar_99,
        **trade_statistics(trades),
        "turnover_annualised": _turnover_annualised(orders, values, n_bars, bars_per_year),
        "bars_in_market": _bars_in_market(positions),
        "final_value": values[-1],
        "start_date": iso_date(index[0]),
        "end_date": iso_date(index[-1]),
        "n_bars": n_bars,
        "metrics_spec_version": METRICS_SPEC_VERSION,
    }
    return {
        key: value if isinstance(value, str) or value is None else clean_number(value)
        for key, value in ((key, metrics[key]) for key in METRIC_KEYS)
    }


# The metrics of ``compute_metrics`` that ``equity_metrics_by_column`` computes for many runs.
COLUMN_METRIC_KEYS = (
    "total_return",
    "final_value",
    "cagr",
    "volatility_annualised",
    "sharpe_ratio",
    "sortino_ratio",
    "max_drawdown",
    "calmar_ratio",
)


def equity_metrics_by_column(
    equity: np.ndarray,
    dates: pd.DatetimeIndex,
    *,
    initial_capital: float,
    bars_per_year: float = TRADING_DAYS_PER_YEAR,
    risk_free_rate: float = 0.0,
) -> dict[str, np.ndarray]:
    """``compute_metrics``' ``COLUMN_METRIC_KEYS`` for each column of a bars × runs equity
    matrix (runs on the same ``dates`` with the same capital), NaN where it gives None: the same
    definitions, each reduction along a run's own contiguous bars, so that a study ranking
    thousands of runs by one of them needs no call per run."""
    _check_capital(initial_capital)
    if bars_per_year <= 0:
        raise ValueError(f"bars_per_year must be positive, got {bars_per_year}")
    values = np.ascontiguousarray(np.asarray(equity, dtype=float).T)  # runs × bars
    n_runs, n_bars = values.shape
    if n_bars == 0:
        raise ValueError("equity curve is empty: a run has at least one bar")
    index = _bar_dates(dates)
    capital = float(initial_capital)
    previous = np.concatenate((np.full((n_runs, 1), capital), values[:, :-1]), axis=1)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        returns = values / previous - 1.0
        excess = returns - per_period_risk_free(risk_free_rate, bars_per_year)
        growth = values[:, -1] / capital
        days = (index[-1] - index[0]).total_seconds() / 86_400
        if days < 1:
            cagr = np.full(n_runs, np.nan)
        else:
            valid = np.isfinite(growth) & (growth >= 0)
            cagr = np.where(valid, np.abs(growth) ** (DAYS_PER_YEAR / days) - 1.0, np.nan)
        peaks = np.maximum.accumulate(
            np.concatenate((np.full((n_runs, 1), capital), values), axis=1), axis=1
        )[:, 1:]
        max_drawdown = np.minimum((values / peaks - 1.0).min(axis=1), 0.0) + 0.0
        if n_bars < 2:
            volatility = sharpe = sortino = np.full(n_runs, np.nan)
        else:
            root = math.sqrt(bars_per_year)
            volatility = np.std(returns, axis=1, ddof=1) * root
            spread = excess.max(axis=1) - excess.min(axis=1)
            constant = spread <= 1e-12 * np.abs(excess).max(axis=1)
            mean = excess.mean(axis=1)
            sharpe = np.where(constant, np.nan, mean / np.std(excess, axis=1, ddof=1) * root)
            downside = np.sqrt(np.mean(np.square(np.minimum(excess, 0.0)), axis=1))
            sortino = np.where(downside == 0, np.nan, mean * bars_per_year / (downside * root))
        calmar = np.where(max_drawdown == 0, np.nan, cagr / np.abs(max_drawdown))
    columns = {
        "total_return": growth - 1.0,
        "final_value": values[:, -1].copy(),
        "cagr": cagr,
        "volatility_annualised": volatility,
        "sharpe_ratio": sharpe,
        "sortino_ratio": sortino,
        "max_drawdown": max_drawdown,
        "calmar_ratio": calmar,
    }
    return {key: np.where(np.isfinite(column), column, np.nan) for key, column in columns.items()}


def metrics_by_column(
    equity: np.ndarray,
    dates: pd.DatetimeIndex,
    *,
    initial_capital: float,
    trade_pnl: Sequence[np.ndarray],
    traded_notional: np.ndarray,
    bars_held: np.ndarray,
    bars_per_year: float = TRADING_DAYS_PER_YEAR,
    risk_free_rate: float = 0.0,
) -> list[dict[str, float | int | str | None]]:
    """``compute_metrics`` of each column of a bars × runs equity matrix (runs on the same
    ``dates`` with the same capital), given for each run the pnl of its trades in trade order
    (``trade_pnl``; a NaN pnl is an open trade, as in a trades table), Σ|size·price| over its
    orders (``traded_notional``) and the bars it held a position on (``bars_held``).

    The same numbers, bit for bit, as one ``compute_metrics`` call per run with its trades,
    orders and positions: every reduction runs along a run's own contiguous bars (numpy reduces
    each row as it reduces a 1-D array), and what numpy computes differently on arrays than on
    scalars (``**``) is computed per run with the scalar formula.
    """
    _check_capital(initial_capital)
    if bars_per_year <= 0:
        raise ValueError(f"bars_per_year must be positive, got {bars_per_year}")
    matrix = np.asarray(equity, dtype=float)  # bars × runs
    n_bars, n_runs = matrix.shape
    if n_bars == 0:
        raise ValueError("equity curve is empty: a run has at least one bar")
    if not len(trade_pnl) == len(traded_notional) == len(bars_held) == n_runs:
        raise ValueError("trade_pnl, traded_notional and bars_held need one item per run")
    index = _bar_dates(dates)
    capital = float(initial_capital)
    # Maxima, minima and counts are exact in any order: along the bars of the bars × runs matrix.
    with np.errstate(divide="ignore", invalid="ignore"):
        drawdowns = matrix / np.maximum(np.maximum.accumulate(matrix, axis=0), capital) - 1.0
    lowest = drawdowns.min(axis=0)
    durations = _longest_true_runs(drawdowns < 0)
    del drawdowns
    # Sums depend on their order: along each run's own contiguous row, as for one run.
    values = np.ascontiguousarray(matrix.T)  # runs × bars
    previous = np.empty_like(values)
    previous[:, 0] = capital
    previous[:, 1:] = values[:, :-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        returns = values / previous - 1.0
    del previous
    excess = returns - per_period_risk_free(risk_free_rate, bars_per_year)
    mean_equity = values.mean(axis=1)
    finite = np.isfinite(returns).all(axis=1)
    tails = (0.05, 0.01)
    quantiles = np.full((len(tails), n_runs), np.nan)
    if finite.any():
        quantiles[:, finite] = np.percentile(
            returns[finite], [100 * tail for tail in tails], axis=1
        )
    if n_bars >= 2:
        volatility = np.std(returns, axis=1, ddof=1)
        spread = excess.max(axis=1) - excess.min(axis=1)
        largest = np.abs(excess).max(axis=1)
        mean_excess = excess.mean(axis=1)
        std_excess = np.std(excess, axis=1, ddof=1)
        downside = np.mean(np.square(np.minimum(excess, 0.0)), axis=1)
    root = math.sqrt(bars_per_year)
    years = n_bars / bars_per_year
    first, last = index[0], index[-1]
    start_date, end_date = iso_date(first), iso_date(last)
    results = []
    for run in range(n_runs):
        final = values[run, -1]
        cagr = _cagr(final / capital, first, last)
        max_drawdown = min(float(lowest[run]), 0.0) + 0.0
        if finite[run]:
            row = returns[run]
            (var_95, cvar_95), (var_99, cvar_99) = (
                (float(var), float(row[row <= var].mean())) for var in quantiles[:, run]
            )
        else:
            var_95 = cvar_95 = var_99 = cvar_99 = None
        sharpe = sortino = volatility_annualised = None
        if n_bars >= 2:
            volatility_annualised = float(volatility[run]) * root
            if not spread[run] <= 1e-12 * largest[run]:
                sharpe = float(mean_excess[run] / std_excess[run]) * root
            below = math.sqrt(float(downside[run]))
            if below != 0:
                sortino = float(mean_excess[run]) * bars_per_year / (below * root)
        pnl = np.asarray(trade_pnl[run], dtype=float)
        turnover = None
        if float(mean_equity[run]) > 0:
            turnover = float(traded_notional[run]) / float(mean_equity[run]) / years
        metrics: dict[str, float | int | str | None] = {
            "total_return": final / capital - 1.0,
            "cagr": cagr,
            "volatility_annualised": volatility_annualised,
            "sharpe_ratio": sharpe,
            "sortino_ratio": sortino,
            "max_drawdown": max_drawdown,
            "calmar_ratio": None if cagr is None or max_drawdown == 0 else cagr / abs(max_drawdown),
            "max_drawdown_duration": int(durations[run]),
            "var_95": var_95,
            "var_99": var_99,
            "cvar_95": cvar_95,
            "cvar_99": cvar_99,
            **pnl_statistics(pnl[np.isfinite(pnl)]),
            "turnover_annualised": turnover,
            "bars_in_market": int(bars_held[run]),
            "final_value": final,
            "start_date": start_date,
            "end_date": end_date,
            "n_bars": n_bars,
            "metrics_spec_version": METRICS_SPEC_VERSION,
        }
        results.append(
            {
                key: value if isinstance(value, str) or value is None else clean_number(value)
                for key, value in ((key, metrics[key]) for key in METRIC_KEYS)
            }
        )
    return results


def trade_statistics(trades: pd.DataFrame | None) -> dict[str, float | int | None]:
    """win_rate, profit_factor, avg_win, avg_loss (negative), expectancy, total_trades."""
    return pnl_statistics(closed_trade_pnl(trades))


def pnl_statistics(pnl: np.ndarray) -> dict[str, float | int | None]:
    """``trade_statistics`` of the closed trades' pnl (finite values, in trade order)."""
    if len(pnl) == 0:
        return {
            "win_rate": None,
            "profit_factor": None,
            "avg_win": None,
            "avg_loss": None,
            "expectancy": None,
            "total_trades": 0,
        }
    wins = pnl[pnl > 0]
    losses = pnl[pnl < 0]
    gross_loss = float(-losses.sum())
    return {
        "win_rate": len(wins) / len(pnl),
        "profit_factor": float(wins.sum()) / gross_loss if gross_loss > 0 else None,
        "avg_win": float(wins.mean()) if len(wins) else None,
        "avg_loss": float(losses.mean()) if len(losses) else None,
        "expectancy": float(pnl.mean()),
        "total_trades": len(pnl),
    }


def closed_trade_pnl(trades: pd.DataFrame | None) -> np.ndarray:
    """The pnl of every closed trade; a trade without a pnl is still open and does not count."""
    if trades is None or len(trades) == 0:
        return np.empty(0)
    pnl = pd.to_numeric(trades["pnl"], errors="coerce").to_numpy(dtype=float)
    return pnl[np.isfinite(pnl)]


def historical_var_cvar(returns: np.ndarray | pd.Series, tail: float) -> tuple[float, float]:
    """Historical VaR (the `tail` quantile, numpy linear interpolation) and CVaR (mean at or below).

    Both are returns (negative for losses); NaN when there are no returns.
    """
    values = np.asarray(returns, dtype=float)
    values = values[np.isfinite(values)]
    ((var, cvar),) = _historical_var_cvar(values, (tail,))
    return (math.nan if var is None else var, math.nan if cvar is None else cvar)


def longest_run(mask: np.ndarray | pd.Series) -> int:
    """Length of the longest run of consecutive True values."""
    return _longest_true_run(np.asarray(mask, dtype=bool))


# --- helpers --------------------------------------------------------------------------------


def _check_capital(initial_capital: float) -> None:
    if not initial_capital > 0:
        raise ValueError(f"initial_capital must be positive, got {initial_capital}")


def _bar_dates(index: pd.Index) -> pd.DatetimeIndex:
    if isinstance(index, pd.DatetimeIndex):
        return index
    # Integers would silently become nanoseconds since 1970 and make the CAGR meaningless.
    if pd.api.types.is_numeric_dtype(index):
        raise ValueError("equity curve must be indexed by bar dates")
    return pd.DatetimeIndex(pd.to_datetime(index))


def _drawdowns(values: np.ndarray, capital: float) -> np.ndarray:
    peaks = np.maximum.accumulate(np.concatenate(([capital], values)))[1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        return values / peaks - 1.0


def _cagr(growth: float, first: pd.Timestamp, last: pd.Timestamp) -> float | None:
    days = (last - first).total_seconds() / 86_400
    if days < 1 or not math.isfinite(growth) or growth < 0:
        return None
    return growth ** (DAYS_PER_YEAR / days) - 1.0


def _volatility(returns: np.ndarray, bars_per_year: float) -> float | None:
    if len(returns) < 2:
        return None
    return float(np.std(returns, ddof=1)) * math.sqrt(bars_per_year)


def _sharpe(excess: np.ndarray, bars_per_year: float) -> float | None:
    # Values equal up to rounding have a true deviation of zero; floating-point residue (≈1e-18)
    # would otherwise turn an undefined ratio into an arbitrary 1e15. Equality is judged relative
    # to the values' size, since returns computed from rescaled equity differ in the last bits.
    if len(excess) < 2 or excess.max() - excess.min() <= 1e-12 * np.abs(excess).max():
        return None
    return float(excess.mean() / np.std(excess, ddof=1)) * math.sqrt(bars_per_year)


def _sortino(excess: np.ndarray, bars_per_year: float) -> float | None:
    if len(excess) < 2:
        return None
    downside = math.sqrt(float(np.mean(np.square(np.minimum(excess, 0.0)))))
    if downside == 0:
        return None
    return float(excess.mean()) * bars_per_year / (downside * math.sqrt(bars_per_year))


def _historical_var_cvar(
    returns: np.ndarray, tails: tuple[float, ...]
) -> list[tuple[float | None, float | None]]:
    # A return after a wipe-out (0/0) is undefined, and so is any quantile that includes it.
    if len(returns) == 0 or not np.isfinite(returns).all():
        return [(None, None) for _ in tails]
    quantiles = np.percentile(returns, [100 * tail for tail in tails])
    return [(float(var), float(returns[returns <= var].mean())) for var in quantiles]


def _longest_true_run(mask: np.ndarray) -> int:
    if not mask.any():
        return 0
    edges = np.flatnonzero(np.diff(np.concatenate(([0], mask.astype(np.int8), [0]))))
    return int((edges[1::2] - edges[::2]).max())


def _longest_true_runs(mask: np.ndarray) -> np.ndarray:
    """``_longest_true_run`` of each column of a 2-D mask."""
    n_rows, n_columns = mask.shape
    if n_rows == 0:
        return np.zeros(n_columns, dtype=np.int64)
    positions = np.arange(n_rows, dtype=np.int64)[:, None]
    last_false = np.maximum.accumulate(np.where(mask, -1, positions), axis=0)
    return (positions - last_false).max(axis=0)


def _turnover_annualised(
    orders: pd.DataFrame | None, values: np.ndarray, n_bars: int, bars_per_year: float
) -> float | None:
    if orders is None:
        return None
    mean_equity = float(values.mean())
    if mean_equity <= 0:
        return None
    traded = traded_notional(orders)
    years = n_bars / bars_per_year
    return traded / mean_equity / years


def traded_notional(orders: pd.DataFrame | None) -> float:
    """Σ|size · price| over the orders."""
    if orders is None or len(orders) == 0:
        return 0.0
    size = pd.to_numeric(orders["size"], errors="coerce").to_numpy(dtype=float)
    price = pd.to_numeric(orders["price"], errors="coerce").to_numpy(dtype=float)
    return float(np.nansum(np.abs(size * price)))


def _bars_in_market(positions: pd.DataFrame | pd.Series | None) -> int | None:
    if positions is None:
        return None
    held = positions.fillna(0).to_numpy(dtype=float) != 0
    if held.ndim == 2:
        held = held.any(axis=1)
    return int(held.sum())

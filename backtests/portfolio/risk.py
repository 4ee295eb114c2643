"""Risk management and position sizing for the portfolio backtest (SPEC §8).

Both change the target weights the engine receives; the engine itself knows nothing about them.

**Position sizing** (when ``enable_risk_management`` is true or a ``target_volatility`` is set)
does not depend on the portfolio's path, so it is computed for all bars at once:

1. Position limits, per allocation group: a weight above ``max_position_size`` is cut to it, a
   weight below ``min_position_size`` is dropped. CASH is not a position and is never limited.
2. Volatility targeting: on every bar where the portfolio trades, the group's risky weights are
   scaled by ``min(1, target / realised)``, where *realised* is the annualised standard deviation
   of the group's (limited) weights applied to the assets' daily returns over the last 63 bars up
   to and including that bar: the volatility the allocation being entered has just shown. The
   exposure is never levered up.

Freed weight goes to CASH: the engine keeps it as cash (no commission, 0 % return).

**Risk exits** (when ``enable_risk_management`` is true and a threshold is set) depend on the
portfolio's own value path, which depends on earlier exits. They are decided in one pass over the
bars (``simulate_exits``, a numba kernel) that keeps the same book the engines keep — cash and
fractional shares, every fill at the bar's close, commission on traded notional, sells before
buys, a buy cut to what the cash pays for (see ``backtests.engines.base.EngineInput``) — so the
value it judges on each bar is the engine's E_t. On each bar:

- Holding the strategy's positions on a bar that is not a switch of group: the value at the close
  with the positions held, V_t, is checked against, in this order, stop_loss (V_t ≤ value at last
  entry × (1 − sl)), trailing_stop (V_t ≤ highest value since last entry × (1 − ts)),
  max_drawdown_limit (V_t ≤ highest value since the start, or since coming back from a risk exit,
  × (1 − limit); the initial capital counts as the first peak), volatility_exit_threshold
  (annualised standard deviation of the last 20 daily returns, ending with V_t's, above the
  threshold), take_profit (V_t ≥ value at last entry × (1 + tp)). The first that fires sells
  everything at that close: the portfolio is in CASH.
- In CASH after a risk exit: it stays there until the next bar on which the strategy trades (a
  switch of group or a scheduled rebalance), where it buys the target weights again.
- An *entry* is the first bar, every switch of group, and every return from CASH; it resets the
  entry value and the trailing peak to the value after that bar's fills. A scheduled rebalance
  within the same group is not an entry. A switch bar is not checked (it is a fresh entry).

**Cash flows** (SPEC §8.1) are kept in the same book as the engines keep them
(``backtests.engines.base.flow_trade``): on a flow bar the portfolio trades to w·V′, V′ the value
it keeps after the flow and that bar's commission, where w is the current target — the weights the
strategy last traded to while invested, all CASH (zeros) after a risk exit. So a contribution made
while the portfolio sits in CASH after an exit stays cash, and a withdrawal then comes out of the
cash. A flow bar is not an entry. Every decision is taken on returns, never on money moved in or
out: the exit checks run on the value at the close before that bar's flow, the 20-day volatility
on the time-weighted returns r_t = (E_t − F_t)/E_{t−1} − 1, and after a flow the value at the last
entry and both peaks are scaled by E_t/(E_t − F_t), so that a rule fires on the same returns with
or without flows. A withdrawal that empties the portfolio stops the later withdrawals (as the
engines do) and the checks (nothing is left to protect).

The pass returns the final target weights — the exits as rows of zeros, the bars spent in CASH as
rows of NaN (nothing traded) — which the engine then runs; the test suite proves that the pass's
value path equals the engine's equity curve, so every decision was taken on the values the run
reports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numba import njit

from backtests.portfolio.requests import TARGET_VOLATILITY_WINDOW, RiskSettings
from metrics.calculations import TRADING_DAYS_PER_YEAR
from metrics.jsonsafe import iso_date

VOLATILITY_EXIT_WINDOW = 20
BARS_PER_YEAR = TRADING_DAYS_PER_YEAR  # allocation runs are daily
RISK_EXIT_LABEL = "CASH (risk exit)"

NO_EXIT = 0
STOP_LOSS = 1
TRAILING_STOP = 2
MAX_DRAWDOWN = 3
VOLATILITY_EXIT = 4
TAKE_PROFIT = 5

EXIT_DESCRIPTIONS = {
    STOP_LOSS: "Stop loss",
    TRAILING_STOP: "Trailing stop",
    MAX_DRAWDOWN: "Max drawdown limit",
    VOLATILITY_EXIT: "Volatility exit",
    TAKE_PROFIT: "Take profit",
}


@dataclass(frozen=True)
class SizedWeights:
    """Target weights after position limits and volatility targeting, and what was done."""

    weights: pd.DataFrame
    warnings: list[str]
    exposure: pd.Series  # share of the portfolio in risky assets on each traded bar (NaN elsewhere)


@dataclass(frozen=True)
class ExitPlan:
    """The final target weights after risk exits, and the path the decisions were taken on."""

    weights: pd.DataFrame
    exit_codes: pd.Series  # one of the codes above per bar (NO_EXIT on most)
    in_market: pd.Series  # False on bars ending in CASH after a risk exit
    simulated_equity: pd.Series
    warnings: list[str]
    cash_flows: pd.Series | None = None  # the flows that actually happened (None: no flows)


# --- position sizing ----------------------------------------------------------------------------


def size_positions(
    weights: pd.DataFrame,
    groups: pd.Series,
    asset_returns: pd.DataFrame,
    risk: RiskSettings,
) -> SizedWeights:
    """Apply position limits and volatility targeting to ``weights`` (risky columns only, NaN
    rows where nothing trades). ``asset_returns``: daily returns of those columns on an index
    that includes the warm-up bars before the run (for the 63-bar window)."""
    result = weights.copy()
    traded = ~result.isna().all(axis=1).to_numpy()
    exposure = pd.Series(np.nan, index=weights.index)
    warnings: list[str] = []
    if not risk.sizing_active or result.shape[1] == 0:
        exposure[traded] = result[traded].sum(axis=1)
        return SizedWeights(result, warnings, exposure)

    values = result.to_numpy(dtype=float, copy=True)
    group_codes, group_names = pd.factorize(groups, sort=False)
    group_weights: dict[int, np.ndarray] = {}
    for code, name in enumerate(group_names):
        rows = np.flatnonzero((group_codes == code) & traded)
        if not len(rows):
            continue
        original = values[rows[0]].copy()
        limited = np.minimum(original, risk.max_position_size)
        limited[limited < risk.min_position_size] = 0.0
        values[rows] = limited
        group_weights[code] = limited
        minimum = f"{risk.min_position_size:.0%}"
        changes = [
            f"{symbol} capped at {new:.0%} (from {old:.0%})"
            if new > 0
            else f"{symbol} dropped (from {old:.0%}, below the {minimum} minimum)"
            for symbol, old, new in zip(result.columns, original, limited, strict=True)
            if not math.isclose(old, new, abs_tol=1e-12)
        ]
        if changes:
            warnings.append(
                f"Position limits in allocation '{name}': {'; '.join(changes)}; "
                "freed weight held in CASH"
            )

    if risk.target_volatility is not None:
        scale = np.ones(len(result))
        realised = np.full(len(result), np.nan)
        for code, limited in group_weights.items():
            # Only the held columns: a symbol this group does not hold may not have started yet
            # (NaN returns), and NaN × 0 would hide the group's volatility.
            held = limited > 0
            portfolio_returns = asset_returns.to_numpy(dtype=float)[:, held] @ limited[held]
            volatility = pd.Series(portfolio_returns, index=asset_returns.index).rolling(
                TARGET_VOLATILITY_WINDOW, min_periods=TARGET_VOLATILITY_WINDOW
            ).std(ddof=1).reindex(result.index).to_numpy() * math.sqrt(BARS_PER_YEAR)
            in_group = group_codes == code
            realised[in_group] = volatility[in_group]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = risk.target_volatility / realised
        scale = np.where(np.isfinite(ratio), np.minimum(ratio, 1.0), 1.0)
        scaled_rows = traded & (scale < 1.0)
        values[traded] *= scale[traded, None]
        unknown = traded & ~np.isfinite(realised)
        if unknown.any():
            warnings.append(
                f"Volatility targeting: realised volatility unknown on {int(unknown.sum())} "
                f"rebalance date(s) (first {iso_date(result.index[unknown][0])}: fewer than "
                f"{TARGET_VOLATILITY_WINDOW} bars of history); those kept full exposure"
            )
        if scaled_rows.any():
            dates = result.index[scaled_rows]
            lowest = int(np.argmin(np.where(scaled_rows, scale, np.inf)))
            warnings.append(
                f"Volatility targeting ({risk.target_volatility:.1%} target, "
                f"{TARGET_VOLATILITY_WINDOW}-day realised) scaled exposure down on "
                f"{len(dates)} of {int(traded.sum())} rebalance date(s), first on "
                f"{iso_date(dates[0])}, lowest {values[lowest].sum():.1%} on "
                f"{iso_date(result.index[lowest])}; freed weight held in CASH"
            )

    result = pd.DataFrame(values, index=result.index, columns=result.columns)
    exposure[traded] = values[traded].sum(axis=1)
    return SizedWeights(result, warnings, exposure)


# --- risk exits ----------------------------------------------------------------------------------


def plan_exits(
    close: pd.DataFrame,
    weights: pd.DataFrame,
    entry_mask: pd.Series,
    risk: RiskSettings,
    *,
    initial_capital: float,
    commission: float,
    cash_flows: np.ndarray | None = None,
) -> ExitPlan:
    """Decide the risk exits bar by bar on the portfolio's own value path (module docstring).

    ``weights``: target weights per bar of the risky columns of ``close`` (NaN rows: no trade,
    flow bars included: the pass gives each flow bar its complete row);
    ``entry_mask``: bars that start a new entry even while invested (the switches of group);
    ``cash_flows``: the amount added at each bar's close (negative: withdrawn; 0 on most bars,
    never on the first), as ``EngineInput.cash_flows``.
    """
    # C-contiguous inputs keep one compiled signature (numba compiles one per array layout).
    prices = np.ascontiguousarray(close.to_numpy(dtype=np.float64))
    target = np.ascontiguousarray(weights.to_numpy(dtype=np.float64))
    trade_rows = np.ascontiguousarray(~np.isnan(target).all(axis=1))
    flows = (
        np.zeros(len(prices))
        if cash_flows is None
        else np.ascontiguousarray(np.asarray(cash_flows, dtype=np.float64))
    )
    final, codes, in_market, equity, actual = _simulate_exits_nb(
        prices,
        target,
        trade_rows,
        np.ascontiguousarray(entry_mask.to_numpy(dtype=np.bool_)),
        flows,
        float(initial_capital),
        float(commission),
        _threshold(risk.stop_loss),
        _threshold(risk.take_profit),
        _threshold(risk.trailing_stop),
        _threshold(risk.max_drawdown_limit),
        _threshold(risk.volatility_exit_threshold),
        VOLATILITY_EXIT_WINDOW,
        float(BARS_PER_YEAR),
    )
    index = close.index
    warnings = [
        f"{EXIT_DESCRIPTIONS[int(code)]} triggered on {iso_date(index[bar])}: "
        f"{_exit_detail(int(code), risk)}; portfolio moved to CASH until the next switch or "
        "scheduled rebalance"
        for bar, code in zip(np.flatnonzero(codes), codes[codes != NO_EXIT], strict=True)
    ]
    return ExitPlan(
        weights=pd.DataFrame(final, index=index, columns=weights.columns),
        exit_codes=pd.Series(codes, index=index),
        in_market=pd.Series(in_market, index=index),
        simulated_equity=pd.Series(equity, index=index),
        warnings=warnings,
        cash_flows=None if cash_flows is None else pd.Series(actual, index=index),
    )


def _threshold(value: float | None) -> float:
    return np.nan if value is None else float(value)


def _exit_detail(code: int, risk: RiskSettings) -> str:
    if code == STOP_LOSS:
        return f"value fell {risk.stop_loss:.1%} below the value at the last entry"
    if code == TRAILING_STOP:
        return f"value fell {risk.trailing_stop:.1%} below its peak since the last entry"
    if code == MAX_DRAWDOWN:
        return f"drawdown reached the {risk.max_drawdown_limit:.1%} limit"
    if code == VOLATILITY_EXIT:
        return (
            f"{VOLATILITY_EXIT_WINDOW}-day annualised volatility exceeded "
            f"{risk.volatility_exit_threshold:.1%}"
        )
    return f"value rose {risk.take_profit:.1%} above the value at the last entry"


@njit(cache=True)
def _rebalance_nb(shares, cash, prices, weights, commission):
    """Trade to ``weights`` at ``prices`` exactly as the engines do; returns the new cash."""
    value = cash + np.sum(shares * prices)
    return _trade_to_value_nb(shares, cash, prices, weights, value, commission)


@njit(cache=True)
def _trade_to_value_nb(shares, cash, prices, weights, value, commission):
    """Trade each column to ``weights`` × ``value`` at ``prices``, sells first (the engines'
    order), a buy cut to what the cash pays for; returns the new cash."""
    deltas = weights * value - shares * prices
    order = np.argsort(deltas, kind="mergesort")  # sells first; ties keep column order
    for position in range(len(order)):
        column = order[position]
        target_shares = weights[column] * value / prices[column]
        size = target_shares - shares[column]
        if size < 0:
            proceeds = -size * prices[column]
            cash += proceeds - proceeds * commission
            shares[column] = target_shares
        elif size > 0:
            cost = size * prices[column] * (1.0 + commission)
            if cost > cash:
                size = max(cash, 0.0) / (prices[column] * (1.0 + commission))
                cost = size * prices[column] * (1.0 + commission)
            cash -= cost
            shares[column] += size
    return cash


@njit(cache=True)
def _flow_costs_nb(value, holdings, weights, commission):
    """Σ k·|w·V − h| and its slope in V (``backtests.engines.base.flow_trade``, no slippage)."""
    total = 0.0
    slope = 0.0
    for column in range(len(holdings)):
        trade = weights[column] * value - holdings[column]
        if trade > 0:
            total += commission * trade
            slope += commission * weights[column]
        elif trade < 0:
            total -= commission * trade
            slope -= commission * weights[column]
    return total, slope


@njit(cache=True)
def _flow_target_nb(cash, holdings, weights, flow, commission):
    """``backtests.engines.base.flow_trade`` without slippage: (V′, the flow that actually
    flows, whether a withdrawal emptied the portfolio)."""
    total = cash + np.sum(holdings) + flow
    if flow < 0:
        excess_at_zero = _flow_costs_nb(0.0, holdings, weights, commission)[0] - total
        if excess_at_zero >= 0:
            left = cash + np.sum(holdings * (1.0 - commission))
            return 0.0, -max(left, 0.0), True
    value = total
    for _ in range(2 * len(weights) + 8):
        costs, slope = _flow_costs_nb(value, holdings, weights, commission)
        step = (value + costs - total) / (1.0 + slope)
        value -= step
        if abs(step) <= 1e-15 * max(abs(value), 1.0):
            break
    return value, flow, False


@njit(cache=True)
def _trade_with_flow_nb(shares, cash, prices, weights, flow, commission):
    """A bar's trades to ``weights`` with ``flow`` added at its close, as the engines trade it
    (to w·V′ on a flow bar); returns (cash, the flow that flowed, emptied)."""
    if flow == 0.0:
        return _rebalance_nb(shares, cash, prices, weights, commission), 0.0, False
    target_value, actual, emptied = _flow_target_nb(
        cash, shares * prices, weights, flow, commission
    )
    cash += actual
    cash = _trade_to_value_nb(shares, cash, prices, weights, target_value, commission)
    return cash, actual, emptied


@njit(cache=True)
def _simulate_exits_nb(
    close,
    weights,
    trade_rows,
    entry_rows,
    flows,
    capital,
    commission,
    stop_loss,
    take_profit,
    trailing_stop,
    max_drawdown_limit,
    volatility_threshold,
    volatility_window,
    bars_per_year,
):
    n_bars, n_columns = close.shape
    final = np.full((n_bars, n_columns), np.nan)
    codes = np.zeros(n_bars, dtype=np.int8)
    in_market = np.zeros(n_bars, dtype=np.bool_)
    equity = np.empty(n_bars)
    returns = np.empty(n_bars)
    actual_flows = np.zeros(n_bars)
    shares = np.zeros(n_columns)
    current = np.zeros(n_columns)  # the weights last traded to while invested
    flat = np.zeros(n_columns)
    cash = capital
    invested = False
    emptied = False
    entry_value = capital
    trailing_peak = capital
    drawdown_peak = capital
    previous_value = capital
    for bar in range(n_bars):
        prices = close[bar]
        value = cash + np.sum(shares * prices)
        flow = flows[bar]
        if flow < 0 and emptied:
            flow = 0.0
        code = 0
        if invested and not emptied and not entry_rows[bar]:
            if not np.isnan(stop_loss) and value <= entry_value * (1.0 - stop_loss):
                code = 1
            elif not np.isnan(trailing_stop) and value <= trailing_peak * (1.0 - trailing_stop):
                code = 2
            elif not np.isnan(max_drawdown_limit) and value <= drawdown_peak * (
                1.0 - max_drawdown_limit
            ):
                code = 3
            elif not np.isnan(volatility_threshold) and bar + 1 >= volatility_window:
                window_returns = np.empty(volatility_window)
                window_returns[: volatility_window - 1] = returns[bar - volatility_window + 1 : bar]
                window_returns[volatility_window - 1] = value / previous_value - 1.0
                mean = window_returns.mean()
                variance = np.sum((window_returns - mean) ** 2) / (volatility_window - 1)
                if np.sqrt(variance) * np.sqrt(bars_per_year) > volatility_threshold:
                    code = 4
            if (
                code == 0
                and not np.isnan(take_profit)
                and value >= entry_value * (1.0 + take_profit)
            ):
                code = 5
        entering = False
        returning = False
        flowed = 0.0
        if code != 0:
            cash, flowed, gone = _trade_with_flow_nb(shares, cash, prices, flat, flow, commission)
            emptied = emptied or gone
            final[bar] = flat
            codes[bar] = code
            invested = False
        elif trade_rows[bar]:
            for column in range(n_columns):
                if not np.isnan(weights[bar, column]):
                    current[column] = weights[bar, column]
            cash, flowed, gone = _trade_with_flow_nb(
                shares, cash, prices, weights[bar], flow, commission
            )
            emptied = emptied or gone
            final[bar] = weights[bar]
            entering = (not invested) or entry_rows[bar]
            returning = (not invested) and bar > 0
            invested = True
        elif flow != 0.0:
            # A flow between the strategy's trades goes into the current target: the weights
            # last traded to, or all CASH after a risk exit.
            target = current.copy() if invested else flat
            cash, flowed, gone = _trade_with_flow_nb(shares, cash, prices, target, flow, commission)
            emptied = emptied or gone
            final[bar] = target
        value_after = cash + np.sum(shares * prices)
        actual_flows[bar] = flowed
        if flowed != 0.0 and value_after - flowed > 0:
            # The references follow the money moved in or out: the rules judge returns.
            scale = value_after / (value_after - flowed)
            entry_value *= scale
            trailing_peak *= scale
            drawdown_peak *= scale
        if entering:
            entry_value = value_after
            trailing_peak = value_after
            if returning:
                drawdown_peak = value_after
        if invested:
            trailing_peak = max(trailing_peak, value_after)
        drawdown_peak = max(drawdown_peak, value_after)
        equity[bar] = value_after
        returns[bar] = (value_after - flowed) / previous_value - 1.0 if previous_value > 0 else 0.0
        in_market[bar] = invested
        previous_value = value_after
    return final, codes, in_market, equity, actual_flows

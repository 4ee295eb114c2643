"""Properties every metric definition must keep, whatever the equity path (hypothesis)."""

import math

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from metrics.calculations import (
    compute_metrics,
    money_weighted_return,
    time_weighted_equity,
    time_weighted_returns,
)

# Returns on a 1-basis-point grid: distinct values stay distinct after the rounding a rescaled
# equity curve brings, so a quantile threshold (VaR/CVaR) cannot flip on a tie by one ulp.
daily_returns = st.lists(
    st.integers(min_value=-2000, max_value=2000).map(lambda bp: bp / 10_000),
    min_size=3,
    max_size=300,
)
distinct_daily_returns = st.lists(
    st.integers(min_value=-2000, max_value=2000).map(lambda bp: bp / 10_000),
    min_size=3,
    max_size=300,
    unique=True,
)
SCALE_INVARIANT = (
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
)


def equity_from(returns: list[float], capital: float) -> pd.Series:
    index = pd.bdate_range("2015-01-02", periods=len(returns))
    return pd.Series(capital * np.cumprod(1.0 + np.asarray(returns)), index=index)


def assert_close(left, right, key):
    if left is None or right is None:
        assert left is None and right is None, key
    else:
        assert math.isclose(left, right, rel_tol=1e-9, abs_tol=1e-9), (key, left, right)


@settings(
    max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(returns=distinct_daily_returns, factor=st.floats(min_value=0.01, max_value=1000))
def test_scaling_capital_and_equity_together_changes_no_ratio(returns, factor):
    base = compute_metrics(equity_from(returns, 10_000.0), initial_capital=10_000.0)
    scaled = compute_metrics(
        equity_from(returns, 10_000.0 * factor), initial_capital=10_000.0 * factor
    )
    for key in SCALE_INVARIANT:
        assert_close(base[key], scaled[key], key)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(returns=daily_returns, flat_bars=st.integers(min_value=1, max_value=50))
def test_a_flat_period_after_a_new_high_changes_no_drawdown(returns, flat_bars):
    # Append a rally to a fresh high, then a flat stretch at that high: no drawdown can deepen.
    growth = np.cumprod(1.0 + np.asarray(returns))
    rally = [max(1.0, growth.max()) / growth[-1] * 1.01 - 1.0]
    base_curve = equity_from([*returns, *rally], 10_000.0)
    flat_curve = equity_from([*returns, *rally, *([0.0] * flat_bars)], 10_000.0)
    base = compute_metrics(base_curve, initial_capital=10_000.0)
    flat = compute_metrics(flat_curve, initial_capital=10_000.0)
    assert_close(base["max_drawdown"], flat["max_drawdown"], "max_drawdown")
    assert base["max_drawdown_duration"] == flat["max_drawdown_duration"]


@settings(max_examples=60, deadline=None, derandomize=True)
@given(returns=daily_returns)
def test_metrics_are_finite_or_null_and_drawdown_is_never_positive(returns):
    metrics = compute_metrics(equity_from(returns, 10_000.0), initial_capital=10_000.0)
    for key, value in metrics.items():
        if isinstance(value, float):
            assert math.isfinite(value), key
    assert metrics["max_drawdown"] is None or metrics["max_drawdown"] <= 0
    if metrics["var_95"] is not None and metrics["cvar_95"] is not None:
        assert metrics["cvar_95"] <= metrics["var_95"] + 1e-15


# Contributions (positive) or withdrawals every `every` bars, never on the first bar.
cash_flows = st.tuples(
    st.integers(min_value=-500, max_value=5_000).filter(lambda amount: amount != 0),
    st.integers(min_value=1, max_value=60),
)


def flowing_equity(returns: list[float], capital: float, amount: float, every: int):
    """E_t = E_{t−1}·(1 + r_t) + F_t: the path the returns make with the flows added."""
    flows = np.zeros(len(returns))
    flows[every::every] = amount
    values = np.empty(len(returns))
    previous = capital
    for bar, (rate, flow) in enumerate(zip(returns, flows, strict=True)):
        previous = values[bar] = previous * (1.0 + rate) + flow
    index = pd.bdate_range("2015-01-02", periods=len(returns))
    return pd.Series(values, index=index), flows


@example(returns=[0.01, -0.02, 0.03, 0.0, 0.015], flows=(250, 2))
@example(returns=[0.001] * 40, flows=(-100, 10))
@settings(max_examples=60, deadline=None, derandomize=True)
@given(returns=daily_returns, flows=cash_flows)
def test_cash_flows_change_no_time_weighted_return(returns, flows):
    """SPEC §8.1: r_t = (E_t − F_t)/E_{t−1} − 1 recovers the returns whatever flowed, so every
    return-based metric of the curve with flows is the metric of the curve without them."""
    amount, every = flows
    equity, flow_array = flowing_equity(returns, 10_000.0, float(amount), every)
    if (equity <= 0).any():
        return  # a withdrawal larger than the portfolio: the engines stop withdrawing
    recovered = time_weighted_returns(equity, 10_000.0, flow_array).to_numpy()
    np.testing.assert_allclose(recovered, returns, rtol=0, atol=1e-9)
    plain = compute_metrics(equity_from(returns, 10_000.0), initial_capital=10_000.0)
    weighted = compute_metrics(
        time_weighted_equity(equity, 10_000.0, flow_array), initial_capital=10_000.0
    )
    for key in SCALE_INVARIANT:
        if key in ("var_95", "var_99", "cvar_95", "cvar_99", "max_drawdown_duration"):
            continue  # quantiles and durations can flip on a 1e-16 tie
        assert_close(plain[key], weighted[key], key)


@example(returns=[0.01, -0.02, 0.03, 0.0, 0.015] * 60, amount=0)
@settings(max_examples=60, deadline=None, derandomize=True)
@given(returns=daily_returns, amount=st.integers(min_value=0, max_value=1_000))
def test_the_money_weighted_return_discounts_every_flow_to_zero(returns, amount):
    """The IRR r makes −C, −F_t and +E_n worth 0 together at (1 + r)^(days/365.25); without
    flows it is the CAGR."""
    equity, flow_array = flowing_equity(returns, 10_000.0, float(amount), 20)
    dates = equity.index
    rate = money_weighted_return(dates, 10_000.0, flow_array, float(equity.iloc[-1]))
    years = (dates - dates[0]).days.to_numpy() / 365.25
    amounts = -flow_array.copy()
    amounts[0] -= 10_000.0
    amounts[-1] += float(equity.iloc[-1])

    def present_value(candidate: float) -> float:
        return float(np.sum(amounts * (1.0 + candidate) ** -years))

    if rate is None:
        # Only when no rate in (−100 %, 10⁶ %) balances them (a few days' gain annualised).
        assert present_value(-1 + 1e-9) * present_value(1e4) > 0
        return
    # A root: the present value changes sign across brentq's tolerance around the rate.
    step = 1e-14 + 4e-12 * abs(rate)
    low, high = max(rate - step, -1 + 1e-15), rate + step
    assert present_value(low) * present_value(high) <= 0
    if amount == 0:
        cagr = compute_metrics(equity, initial_capital=10_000.0)["cagr"]
        assert_close(rate, cagr, "cagr")

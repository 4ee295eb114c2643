"""Properties every metric definition must keep, whatever the equity path (hypothesis)."""

import math

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metrics.calculations import compute_metrics

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

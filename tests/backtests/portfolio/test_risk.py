"""Risk management and position sizing (SPEC §8), checked against the unmanaged run's own path.

Until the first exit a managed run holds exactly what the unmanaged run holds, so the first exit
must fall on the first bar where the unmanaged equity curve breaks the rule; the tests find that
bar with pandas and compare.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from backtests.portfolio.requests import parse_portfolio_request
from backtests.portfolio.risk import RISK_EXIT_LABEL, plan_exits

from .support import above, load_prices, payload, rule, run

PERIOD = {"start_date": "2019-06-01", "end_date": "2021-06-30"}
UNLIMITED = {"max_position_size": 1.0, "min_position_size": 0.0}
TAIL = "portfolio moved to CASH until the next switch or scheduled rebalance"


def leveraged_spy(**config):
    return payload({"g": {"SPY?L=2": 1.0}}, base_commission=0.0, **PERIOD, **config)


def managed(**thresholds):
    return run(leveraged_spy(enable_risk_management=True, **UNLIMITED, **thresholds))


@pytest.fixture(scope="module")
def unmanaged():
    return run(leveraged_spy())


def first(mask: pd.Series) -> pd.Timestamp:
    return mask.index[mask.to_numpy().argmax()]


def first_exit(outcome) -> pd.Timestamp:
    groups = pd.Series(outcome.result["allocation_log"])
    return pd.Timestamp(groups.index[(groups == RISK_EXIT_LABEL).to_numpy().argmax()])


def next_month_start(index: pd.DatetimeIndex, date: pd.Timestamp) -> pd.Timestamp:
    later = index[index > date]
    return later[later.to_period("M") != date.to_period("M")][0]


def check_cash_until_next_rebalance(outcome, exit_date: pd.Timestamp) -> None:
    index = outcome.equity.index
    back_in = next_month_start(index, exit_date)
    out = (index >= exit_date) & (index < back_in)
    assert (outcome.positions.loc[out].to_numpy() == 0).all()
    flat = outcome.equity[out]
    assert (flat == flat.iloc[0]).all()
    assert outcome.positions.loc[back_in].iloc[0] > 0
    groups = pd.Series(outcome.result["allocation_log"])
    assert (groups[[d.strftime("%Y-%m-%d") for d in index[out]]] == RISK_EXIT_LABEL).all()
    assert groups[back_in.strftime("%Y-%m-%d")] == "g"


def test_stop_loss_against_the_value_at_entry(unmanaged):
    outcome = managed(stop_loss=0.15)
    equity = unmanaged.equity
    expected = first(equity <= equity.iloc[0] * 0.85)
    assert first_exit(outcome) == expected == pd.Timestamp("2020-03-12")
    assert outcome.result["warnings"][0] == (
        "Stop loss triggered on 2020-03-12: value fell 15.0% below the value at the last "
        f"entry; {TAIL}"
    )
    check_cash_until_next_rebalance(outcome, expected)
    np.testing.assert_array_equal(
        outcome.equity[: expected - pd.Timedelta(days=1)],
        equity[: expected - pd.Timedelta(days=1)],
    )


def test_trailing_stop_against_the_peak_since_entry(unmanaged):
    outcome = managed(trailing_stop=0.1)
    equity = unmanaged.equity
    expected = first(equity <= equity.cummax() * 0.9)
    assert first_exit(outcome) == expected
    assert outcome.result["warnings"][0] == (
        f"Trailing stop triggered on {expected:%Y-%m-%d}: value fell 10.0% below its peak "
        f"since the last entry; {TAIL}"
    )
    check_cash_until_next_rebalance(outcome, expected)
    assert len(outcome.result["warnings"]) > 1
    assert outcome.result["validation_score"] == pytest.approx(
        1.0 - 0.05 * len(outcome.result["warnings"])
    )


def test_max_drawdown_limit_with_the_capital_as_first_peak(unmanaged):
    outcome = managed(max_drawdown_limit=0.2)
    equity = unmanaged.equity
    peaks = np.maximum.accumulate(np.maximum(equity.to_numpy(), 10_000.0))
    expected = first(pd.Series(equity.to_numpy() / peaks - 1 <= -0.2, index=equity.index))
    assert first_exit(outcome) == expected
    assert outcome.result["warnings"][0] == (
        f"Max drawdown limit triggered on {expected:%Y-%m-%d}: drawdown reached the 20.0% "
        f"limit; {TAIL}"
    )
    check_cash_until_next_rebalance(outcome, expected)


def test_volatility_exit_on_20_day_annualised_volatility(unmanaged):
    outcome = managed(volatility_exit_threshold=0.5)
    returns = unmanaged.returns
    volatility = returns.rolling(20).std(ddof=1) * math.sqrt(252)
    expected = first(volatility > 0.5)
    assert first_exit(outcome) == expected == pd.Timestamp("2020-03-02")
    assert outcome.result["warnings"][0] == (
        "Volatility exit triggered on 2020-03-02: 20-day annualised volatility exceeded 50.0%; "
        + TAIL
    )
    check_cash_until_next_rebalance(outcome, expected)


def test_take_profit_against_the_value_at_entry(unmanaged):
    outcome = managed(take_profit=0.3)
    equity = unmanaged.equity
    expected = first(equity >= equity.iloc[0] * 1.3)
    assert first_exit(outcome) == expected
    assert outcome.result["warnings"][0].startswith(
        f"Take profit triggered on {expected:%Y-%m-%d}: value rose 30.0% above"
    )
    check_cash_until_next_rebalance(outcome, expected)


def test_thresholds_do_nothing_without_enable_risk_management(unmanaged):
    outcome = run(leveraged_spy(stop_loss=0.05, trailing_stop=0.02))
    np.testing.assert_array_equal(outcome.equity, unmanaged.equity)
    reason = "exit rules apply only when enable_risk_management is true"
    assert outcome.result["warnings"] == [
        f"stop_loss is ignored: {reason}",
        f"trailing_stop is ignored: {reason}",
    ]


SWITCHING = payload(
    {"on": {"SPY?L=2": 0.6, "TLT": 0.4}, "off": {"IEF": 0.5, "GLD": 0.3, "CASH": 0.2}},
    fallback="off",
    rules=[
        rule(
            above(
                {"type": "Close", "symbol": "SPY"}, {"type": "SMA", "symbol": "SPY", "window": 50}
            ),
            "on",
        )
    ],
    enable_risk_management=True,
    stop_loss=0.06,
    trailing_stop=0.05,
    volatility_exit_threshold=0.3,
    **UNLIMITED,
    **PERIOD,
)


@pytest.mark.parametrize("engine", ["vectorbt", "backtrader"])
def test_the_exit_pass_decides_on_the_engines_own_value_path(engine):
    """The pass keeps the engines' book: its value path is the engine's equity curve, so every
    exit was decided on the values the run reports (commission, switches, several exits)."""
    outcome = run(SWITCHING, engine=engine)
    request = parse_portfolio_request(SWITCHING)
    prices = load_prices(request)
    index = outcome.equity.index
    switches = pd.Series(outcome.result["allocation_log"]).to_numpy()
    assert len(outcome.result["warnings"]) >= 3
    plan = plan_exits(
        prices.close.loc[index, list(outcome.target_weights.columns)],
        _unmanaged_weights(request, prices),
        pd.Series(_switch_mask(request, prices), index=index),
        request.risk,
        initial_capital=request.initial_capital,
        commission=request.base_commission,
    )
    np.testing.assert_allclose(plan.simulated_equity, outcome.equity, rtol=1e-9, atol=0)
    exits = pd.Series(plan.in_market.to_numpy(), index=index)
    assert ((switches == RISK_EXIT_LABEL) == ~exits.to_numpy()).all()


def _plan(request, prices):
    from strategies.language import compile_allocation_strategy

    return compile_allocation_strategy(request.strategy, prices, rebalance="monthly")


def _unmanaged_weights(request, prices):
    weights = _plan(request, prices).target_weights
    return weights[[c for c in weights.columns if c != "CASH"]]


def _switch_mask(request, prices):
    return _plan(request, prices).switch_mask.to_numpy()


def test_both_engines_agree_with_risk_management():
    vectorbt = run(SWITCHING, engine="vectorbt")
    backtrader = run(SWITCHING, engine="backtrader")
    np.testing.assert_allclose(backtrader.equity, vectorbt.equity, rtol=1e-6, atol=0)
    assert backtrader.result["warnings"] == vectorbt.result["warnings"]


def test_position_limits_free_weight_to_cash():
    document = payload(
        {"growth": {"SPY": 0.6, "QQQ": 0.37, "CASH": 0.03}},
        base_commission=0.0,
        enable_risk_management=True,
    )
    outcome = run(document)
    assert outcome.result["warnings"] == [
        "Position limits in allocation 'growth': SPY capped at 25% (from 60%); QQQ capped at "
        "25% (from 37%); freed weight held in CASH"
    ]
    index = outcome.equity.index
    prices = load_prices(document).close.loc[index]
    held = outcome.positions[["SPY", "QQQ"]] * prices[["SPY", "QQQ"]]
    weights = held.div(outcome.equity, axis=0)
    np.testing.assert_allclose(weights.iloc[0], [0.25, 0.25], rtol=1e-12)
    assert outcome.result["validation_score"] == pytest.approx(0.95)


def test_min_position_size_drops_small_positions():
    document = payload(
        {"mix": {"SPY": 0.2, "TLT": 0.2, "GLD": 0.03, "CASH": 0.57}},
        base_commission=0.0,
        enable_risk_management=True,
    )
    outcome = run(document)
    assert outcome.result["warnings"] == [
        "Position limits in allocation 'mix': GLD dropped (from 3%, below the 5% minimum); "
        "freed weight held in CASH"
    ]
    assert "GLD" not in set(outcome.orders["symbol"])


def test_volatility_targeting_scales_exposure_on_each_rebalance():
    document = payload(
        {"growth": {"SPY": 0.5, "QQQ": 0.5}},
        base_commission=0.0,
        target_volatility=0.12,
        **UNLIMITED,
    )
    outcome = run(document)
    prices = load_prices(document)
    asset_returns = prices.close[["SPY", "QQQ"]].pct_change()
    realised = (asset_returns @ np.array([0.5, 0.5])).rolling(63).std(ddof=1) * math.sqrt(252)
    index = outcome.equity.index
    rebalances = index.to_series().groupby(index.to_period("M")).min()
    expected = np.minimum(1.0, 0.12 / realised.loc[rebalances].to_numpy())
    held = outcome.positions[["SPY", "QQQ"]] * prices.close[["SPY", "QQQ"]].loc[index]
    exposure = held.sum(axis=1).div(outcome.equity).loc[rebalances].to_numpy()
    np.testing.assert_allclose(exposure, expected, rtol=1e-9)
    assert expected.min() < 0.3 and (expected == 1.0).any()
    scaled = rebalances[expected < 1.0]
    lowest = rebalances.iloc[int(expected.argmin())]
    assert outcome.result["warnings"] == [
        f"Volatility targeting (12.0% target, 63-day realised) scaled exposure down on "
        f"{len(scaled)} of {len(rebalances)} rebalance date(s), "
        f"first on {scaled.iloc[0]:%Y-%m-%d}, lowest {expected.min():.1%} on "
        f"{lowest:%Y-%m-%d}; freed weight held in CASH"
    ]

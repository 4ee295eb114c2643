"""Periodic contributions and withdrawals (SPEC §8.1): when they flow, how they trade, and the
time- and money-weighted returns, each against an independent computation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from backtests.portfolio.requests import InvalidPortfolioRequest, parse_portfolio_request

from .support import above, payload, rule, run

ENGINES = ("vectorbt", "backtrader")


def log_series(log: dict) -> pd.Series:
    return pd.Series(list(log.values()), index=pd.DatetimeIndex(list(log)))


def first_days(index: pd.DatetimeIndex, period: str) -> list[pd.Timestamp]:
    """The first trading day of each period after the first bar, by pandas' calendar."""
    firsts = pd.Series(index, index=index).groupby(index.to_period(period)).min()
    return [day for day in firsts if day != index[0]]


def test_contributions_into_cash_add_to_the_final_value_without_changing_any_return():
    document = payload({"all": {"CASH": 1.0}}, cashflow_amount=500, cashflow_frequency="monthly")
    outcome = run(document)
    result = outcome.result
    equity = log_series(result["portfolio_log"])
    flow_days = first_days(equity.index, "M")
    assert len(flow_days) == 23  # February 2020 … December 2021
    expected = pd.Series(10_000.0, index=equity.index)
    for day in flow_days:
        expected[expected.index >= day] += 500
    pd.testing.assert_series_equal(equity, expected, check_names=False)
    metrics = result["metrics"]
    assert metrics["final_value"] == 10_000 + 500 * 23
    assert metrics["total_contributions"] == 500 * 23 and metrics["total_withdrawals"] == 0
    assert set(log_series(result["returns_log"])) == {0.0}
    assert metrics["total_return"] == metrics["cagr"] == metrics["max_drawdown"] == 0
    assert metrics["money_weighted_return"] == pytest.approx(0.0, abs=1e-12)
    assert len(outcome.orders) == 0  # CASH is not traded


def test_pro_rata_withdrawals_on_rebalance_days_leave_the_time_weighted_return_unchanged():
    groups = {"mix": {"SPY": 0.5, "TLT": 0.3, "CASH": 0.2}}
    plain = run(payload(groups, base_commission=0.0, rebalance_frequency="quarterly"))
    flowing = run(
        payload(
            groups,
            base_commission=0.0,
            rebalance_frequency="quarterly",
            cashflow_amount=-400,
            cashflow_frequency="quarterly",
        )
    )
    np.testing.assert_allclose(flowing.returns, plain.returns, rtol=1e-9, atol=1e-12)
    for key in ("total_return", "cagr", "volatility", "sharpe_ratio", "max_drawdown"):
        assert flowing.result["metrics"][key] == pytest.approx(
            plain.result["metrics"][key], rel=1e-9
        )
    metrics = flowing.result["metrics"]
    assert metrics["total_withdrawals"] == 400 * 7
    assert metrics["final_value"] < plain.result["metrics"]["final_value"] - 2_800
    # Each withdrawal leaves exactly the flow: E_t − F_t is what the bar made without it.
    equity = flowing.equity
    for day in first_days(equity.index, "Q"):
        position = equity.index.get_loc(day)
        growth = 1 + plain.returns.iloc[position]
        assert equity.iloc[position] + 400 == pytest.approx(
            equity.iloc[position - 1] * growth, rel=1e-9
        )


def independent_irr(dates: pd.DatetimeIndex, amounts: np.ndarray) -> float:
    """Newton's method on Σ a_j·(1 + r)^(−d_j/365.25) = 0, written out here."""
    years = (dates - dates[0]).days.to_numpy(dtype=float) / 365.25
    rate = 0.05
    for _ in range(100):
        discount = (1 + rate) ** -years
        value = float(np.sum(amounts * discount))
        slope = float(np.sum(-years * amounts * discount / (1 + rate)))
        step = value / slope
        rate -= step
        if abs(step) < 1e-14:
            break
    return rate


@pytest.mark.parametrize(("amount", "frequency"), [(750, "monthly"), (-300, "semi-annually")])
def test_money_weighted_return_matches_an_independent_irr(amount, frequency):
    spy_close = {"type": "Close", "symbol": "SPY"}
    document = payload(
        {"on": {"SPY": 0.8, "CASH": 0.2}, "off": {"TLT": 1.0}},
        fallback="off",
        rules=[rule(above(spy_close, {"type": "SMA", "symbol": "SPY", "window": 100}), "on")],
        cashflow_amount=amount,
        cashflow_frequency=frequency,
        evaluation_frequency="monthly",
    )
    outcome = run(document)
    equity = outcome.equity
    period = {"monthly": "M", "semi-annually": "2Q"}[frequency]
    if frequency == "semi-annually":
        halves = equity.index.year * 2 + (equity.index.month - 1) // 6
        flow_days = [
            day for day, new in zip(equity.index[1:], np.diff(halves) != 0, strict=True) if new
        ]
    else:
        flow_days = first_days(equity.index, period)
    dates = pd.DatetimeIndex([equity.index[0], *flow_days, equity.index[-1]])
    amounts = np.array([-10_000.0, *[-float(amount)] * len(flow_days), equity.iloc[-1]])
    expected = independent_irr(dates, amounts)
    metrics = outcome.result["metrics"]
    assert metrics["money_weighted_return"] == pytest.approx(expected, rel=1e-8, abs=1e-12)
    # Time-weighted total return is the product of the flow-adjusted returns.
    flows = pd.Series(0.0, index=equity.index)
    flows[flow_days] = amount
    previous = equity.shift(1).fillna(10_000.0)
    twr = ((equity - flows) / previous).prod() - 1
    assert metrics["total_return"] == pytest.approx(twr, rel=1e-10)
    days = (equity.index[-1] - equity.index[0]).days
    assert metrics["cagr"] == pytest.approx((1 + twr) ** (365.25 / days) - 1, rel=1e-10)


@pytest.mark.parametrize("amount", [1_250, -35])
def test_both_engines_agree_with_cash_flows(amount):
    spy_close = {"type": "Close", "symbol": "SPY"}
    document = payload(
        {"on": {"QQQ?L=2": 0.5, "SPY": 0.3, "CASH": 0.2}, "off": {"TLT": 0.6, "GLD": 0.4}},
        fallback="off",
        rules=[rule(above(spy_close, {"type": "SMA", "symbol": "SPY", "window": 50}), "on")],
        cashflow_amount=amount,
        cashflow_frequency="weekly",
        rebalance_frequency="quarterly",
        target_volatility=0.12,
    )
    vectorbt, backtrader = (run(document, engine=engine) for engine in ENGINES)
    np.testing.assert_allclose(backtrader.equity, vectorbt.equity, rtol=1e-9, atol=0)
    assert len(vectorbt.orders) == len(backtrader.orders) > 100
    pd.testing.assert_frame_equal(
        vectorbt.trades[["symbol", "side", "entry_date", "exit_date"]],
        backtrader.trades[["symbol", "side", "entry_date", "exit_date"]],
    )
    for key, value in vectorbt.result["metrics"].items():
        assert backtrader.result["metrics"][key] == pytest.approx(value, rel=1e-9, abs=1e-9)
    # A flow bar trades into the target weights: the cash left is the CASH share of V′.
    fees = vectorbt.orders.groupby("date")["fees"].sum()
    first_flow = first_days(vectorbt.equity.index, "W")[0]
    assert fees.get(first_flow, 0) > 0


def test_a_withdrawal_larger_than_the_portfolio_empties_it_and_stops_withdrawals():
    document = payload(
        {"all": {"SPY": 1.0}},
        cashflow_amount=-4_000,
        cashflow_frequency="quarterly",
        start_date="2020-01-01",
        end_date="2021-06-30",
    )
    results = [run(document, engine=engine) for engine in ENGINES]
    for outcome in results:
        equity = outcome.equity
        flow_days = first_days(equity.index, "Q")
        assert equity[flow_days[0]] > 0 and equity[flow_days[1]] > 0
        assert (equity[equity.index >= flow_days[2]].abs() < 1e-6).all()
        metrics = outcome.result["metrics"]
        assert 8_000 < metrics["total_withdrawals"] < 12_000
        assert outcome.result["warnings"] == [
            f"The withdrawal of 4,000.00 on {flow_days[2].date().isoformat()} exceeded the "
            f"portfolio's value: it was emptied "
            f"({metrics['total_withdrawals'] - 8_000:,.2f} withdrawn) and the 2 later "
            "withdrawal(s) were skipped"
        ]
        assert math.isfinite(metrics["total_return"])
    np.testing.assert_allclose(results[0].equity, results[1].equity, rtol=1e-9, atol=1e-9 * 10_000)


def test_without_cash_flows_the_metrics_block_is_the_contracts():
    metrics = run(payload({"all": {"SPY": 1.0}})).result["metrics"]
    assert not {"total_contributions", "total_withdrawals", "money_weighted_return"} & set(metrics)


def problems_of(**config) -> list[str]:
    document = payload({"all": {"SPY": 1.0}}, **config)
    with pytest.raises(InvalidPortfolioRequest) as caught:
        parse_portfolio_request(document)
    return caught.value.messages


def test_bad_cash_flow_settings_are_each_named():
    assert problems_of(cashflow_amount=100) == [
        "cashflow_amount needs cashflow_frequency (give both or neither)"
    ]
    assert problems_of(cashflow_frequency="monthly") == [
        "cashflow_frequency needs cashflow_amount (give both or neither)"
    ]
    assert problems_of(cashflow_amount=100, cashflow_frequency="daily") == [
        "Invalid cashflow frequency 'daily' (must be one of: weekly, monthly, quarterly, "
        "semi-annually, annually)"
    ]
    assert problems_of(cashflow_amount=float("nan"), cashflow_frequency="monthly") == [
        "cashflow_amount must be a finite number, got nan"
    ]
    assert problems_of(cashflow_amount=float("-inf"), cashflow_frequency="monthly") == [
        "cashflow_amount must be a finite number, got -inf"
    ]
    assert problems_of(cashflow_amount="100", cashflow_frequency="monthly") == [
        "cashflow_amount must be a number, not string"
    ]
    assert problems_of(cashflow_amount=-2e15, cashflow_frequency="monthly") == [
        "cashflow_amount must be between -1e+15 and 1e+15, got -2e+15"
    ]
    assert problems_of(cashflow_amount=0, cashflow_frequency="monthly") == [
        "cashflow_amount must not be 0 (positive: a contribution, negative: a withdrawal)"
    ]
    assert problems_of(
        cashflow_amount=float("inf"), cashflow_frequency="fortnightly", signal_delay=3
    ) == [
        "signal_delay must be an integer from 0 to 2, got 3",
        "cashflow_amount must be a finite number, got inf",
        "Invalid cashflow frequency 'fortnightly' (must be one of: weekly, monthly, quarterly, "
        "semi-annually, annually)",
    ]


def test_cash_flows_combine_with_risk_exits():
    parsed = parse_portfolio_request(
        payload(
            {"all": {"SPY": 1.0}},
            cashflow_amount=100,
            cashflow_frequency="monthly",
            enable_risk_management=True,
            stop_loss=0.1,
        )
    )
    assert parsed.risk.exits_active and parsed.cashflow_amount == 100


def test_cash_flows_are_saved_in_the_canonical_config():
    parsed = parse_portfolio_request(
        payload({"all": {"SPY": 1.0}}, cashflow_amount=-50.5, cashflow_frequency="annually")
    )
    assert parsed.canonical_config()["cashflow_amount"] == -50.5
    assert parsed.canonical_config()["cashflow_frequency"] == "annually"
    assert (
        "cashflow_amount"
        not in parse_portfolio_request(payload({"all": {"SPY": 1.0}})).canonical_config()
    )

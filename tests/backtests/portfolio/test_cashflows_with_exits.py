"""Cash flows together with risk exits (SPEC §8, §8.1): the exit pass keeps the engines' book with
the flows in it, a flow made after an exit stays in CASH, and every rule judges returns, so flows
change neither the exits nor the time-weighted return."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backtests.portfolio.requests import parse_portfolio_request
from backtests.portfolio.risk import RISK_EXIT_LABEL, plan_exits
from strategies.language import compile_allocation_strategy

from .support import above, load_prices, payload, rule, run
from .test_cashflows import first_days, independent_irr

ENGINES = ("vectorbt", "backtrader")
PERIOD = {"start_date": "2019-06-01", "end_date": "2021-06-30"}
UNLIMITED = {"max_position_size": 1.0, "min_position_size": 0.0}
SPY_ABOVE_SMA = rule(
    above({"type": "Close", "symbol": "SPY"}, {"type": "SMA", "symbol": "SPY", "window": 50}),
    "on",
)


def switching(**config):
    return payload(
        {"on": {"SPY?L=2": 0.6, "TLT": 0.4}, "off": {"IEF": 0.5, "GLD": 0.3, "CASH": 0.2}},
        fallback="off",
        rules=[SPY_ABOVE_SMA],
        enable_risk_management=True,
        stop_loss=0.06,
        trailing_stop=0.05,
        volatility_exit_threshold=0.3,
        **UNLIMITED,
        **PERIOD,
        **config,
    )


def exit_warnings(outcome) -> list[str]:
    return [text for text in outcome.result["warnings"] if "triggered on" in text]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("amount", "frequency"), [(800, "weekly"), (-150, "monthly")])
def test_the_exit_pass_with_flows_decides_on_the_engines_own_value_path(engine, amount, frequency):
    """With flows the pass still keeps the engines' book: its value path is the engine's equity
    curve and its flows are the ones the engine made."""
    document = switching(cashflow_amount=amount, cashflow_frequency=frequency)
    outcome = run(document, engine=engine)
    assert len(exit_warnings(outcome)) >= 3
    request = parse_portfolio_request(document)
    prices = load_prices(request)
    index = outcome.equity.index
    plan = compile_allocation_strategy(request.strategy, prices, rebalance="monthly")
    risky = [column for column in plan.target_weights.columns if column != "CASH"]
    flows = np.where(index.isin(first_days(index, frequency[0].upper())), float(amount), 0.0)
    exits = plan_exits(
        prices.close.loc[index, risky],
        plan.target_weights[risky],
        plan.switch_mask,
        request.risk,
        initial_capital=request.initial_capital,
        commission=request.base_commission,
        cash_flows=flows,
    )
    np.testing.assert_allclose(exits.simulated_equity, outcome.equity, rtol=1e-9, atol=0)
    np.testing.assert_array_equal(exits.cash_flows.to_numpy(), flows)
    groups = pd.Series(outcome.result["allocation_log"]).to_numpy()
    assert ((groups == RISK_EXIT_LABEL) == ~exits.in_market.to_numpy()).all()
    # Every flow bar got a complete row of target weights: the engine trades it.
    assert not exits.weights[flows != 0].isna().any().any()


@pytest.mark.parametrize("amount", [1_250, -60])
def test_both_engines_agree_with_flows_and_risk_exits(amount):
    document = switching(
        cashflow_amount=amount,
        cashflow_frequency="weekly",
        max_drawdown_limit=0.12,
        take_profit=0.25,
        base_commission=0.002,
    )
    vectorbt, backtrader = (run(document, engine=engine) for engine in ENGINES)
    assert len(exit_warnings(vectorbt)) >= 3
    np.testing.assert_allclose(backtrader.equity, vectorbt.equity, rtol=1e-9, atol=0)
    assert backtrader.result["warnings"] == vectorbt.result["warnings"]
    assert backtrader.result["allocation_log"] == vectorbt.result["allocation_log"]
    columns = ["symbol", "side", "entry_date", "exit_date", "exit_reason"]
    pd.testing.assert_frame_equal(vectorbt.trades[columns], backtrader.trades[columns])
    for key, value in vectorbt.result["metrics"].items():
        assert backtrader.result["metrics"][key] == pytest.approx(value, rel=1e-9, abs=1e-9)


def test_a_contribution_after_a_risk_exit_stays_in_cash_until_the_next_entry():
    leveraged = {"g": {"SPY?L=2": 1.0}}
    settings = {
        "base_commission": 0.0,
        "enable_risk_management": True,
        "stop_loss": 0.15,
        **UNLIMITED,
        **PERIOD,
    }
    plain = run(payload(leveraged, **settings))
    outcome = run(payload(leveraged, cashflow_amount=500, cashflow_frequency="weekly", **settings))
    # Flows change no decision: the stop fires on the same bar, on the same return.
    assert exit_warnings(outcome) == exit_warnings(plain)
    assert exit_warnings(outcome)[0].startswith("Stop loss triggered on 2020-03-12")
    equity, positions = outcome.equity, outcome.positions.iloc[:, 0]
    out = (equity.index >= "2020-03-12") & (equity.index < "2020-04-01")
    assert (positions[out] == 0).all()
    flow_days = [day for day in first_days(equity.index, "W") if out[equity.index.get_loc(day)]]
    assert [day.date().isoformat() for day in flow_days] == [
        "2020-03-16",
        "2020-03-23",
        "2020-03-30",
    ]
    # In CASH each contribution adds exactly its amount and nothing else moves the value.
    steps = equity[out].diff().dropna()
    np.testing.assert_array_equal(steps[flow_days].to_numpy(), [500.0, 500.0, 500.0])
    assert (steps.drop(flow_days) == 0).all()
    assert positions["2020-04-01"] > 0  # back in at the next scheduled rebalance
    np.testing.assert_allclose(outcome.returns, plain.returns, rtol=1e-9, atol=1e-12)


def test_pro_rata_withdrawals_on_rebalance_days_leave_the_exits_and_the_twr_unchanged():
    settings = {"base_commission": 0.0, "rebalance_frequency": "quarterly"}
    plain = run(switching(**settings))
    flowing = run(switching(cashflow_amount=-300, cashflow_frequency="quarterly", **settings))
    assert len(exit_warnings(plain)) >= 3
    assert exit_warnings(flowing) == exit_warnings(plain)
    assert flowing.result["allocation_log"] == plain.result["allocation_log"]
    np.testing.assert_allclose(flowing.returns, plain.returns, rtol=1e-9, atol=1e-12)
    for key in ("total_return", "cagr", "volatility", "sharpe_ratio", "max_drawdown"):
        assert flowing.result["metrics"][key] == pytest.approx(
            plain.result["metrics"][key], rel=1e-9
        )
    assert flowing.result["metrics"]["total_withdrawals"] == 300 * len(
        first_days(flowing.equity.index, "Q")
    )


def test_money_weighted_return_with_risk_exits_matches_an_independent_irr():
    outcome = run(switching(cashflow_amount=400, cashflow_frequency="monthly"))
    assert exit_warnings(outcome)
    equity = outcome.equity
    flow_days = first_days(equity.index, "M")
    dates = pd.DatetimeIndex([equity.index[0], *flow_days, equity.index[-1]])
    amounts = np.array([-10_000.0, *[-400.0] * len(flow_days), equity.iloc[-1]])
    metrics = outcome.result["metrics"]
    assert metrics["money_weighted_return"] == pytest.approx(
        independent_irr(dates, amounts), rel=1e-8, abs=1e-12
    )
    assert metrics["total_contributions"] == 400 * len(flow_days)
    assert metrics["total_withdrawals"] == 0


@pytest.mark.parametrize("engine", ENGINES)
def test_a_withdrawal_that_empties_the_portfolio_ends_the_exit_checks(engine):
    document = payload(
        {"all": {"SPY?L=2": 1.0}},
        cashflow_amount=-3_000,
        cashflow_frequency="quarterly",
        enable_risk_management=True,
        trailing_stop=0.3,
        volatility_exit_threshold=0.9,
        **UNLIMITED,
        start_date="2020-01-01",
        end_date="2021-06-30",
    )
    outcome = run(document, engine=engine)
    equity = outcome.equity
    emptied = equity.index[np.argmax(equity.to_numpy() < 1e-6)]
    assert (equity[equity.index >= emptied].abs() < 1e-6).all()
    warnings = outcome.result["warnings"]
    assert any(text.startswith("The withdrawal of 3,000.00 on ") for text in warnings)
    dates = [text.split("triggered on ")[1][:10] for text in exit_warnings(outcome)]
    assert all(date < emptied.date().isoformat() for date in dates)

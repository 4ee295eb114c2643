"""At exactly zero cost the engines agree as at any other cost, and a refused order is reported.

At zero cost every rebalance ends with a buy that spends exactly all the cash; backtrader's strict
cash check refused it whenever its own float summation rounded a hair below the cost, so the
curves parted silently. These are the cases that showed it, run through the Backfolio runner on
both engines, plus the dual-momentum rules recomputed independently with pandas.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backtests.engines import EngineInput, get_engine
from backtests.engines.backtrader_engine import BacktraderEngine
from backtests.portfolio.requests import parse_portfolio_request
from backtests.portfolio.runner import run_portfolio
from tests.backtests.portfolio.support import load_prices, payload, rule, run

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("warm_vectorbt")]

ENGINES = ("vectorbt", "backtrader")
PARITY = 1e-9


def momentum(symbol):
    return {"type": "Momentum", "symbol": symbol, "window": 252}


def beats(left, right):
    return {"left": momentum(left), "comparison": ">", "right": momentum(right)}


DUAL_MOMENTUM = {
    "strategy": {
        "allocations": {"us": {"SPY": 1.0}, "intl": {"EFA": 1.0}, "bonds": {"AGG": 1.0}},
        "fallback_allocation": "bonds",
        "switching_logic": [
            rule({"op": "and", "conditions": [beats("SPY", "EFA"), beats("SPY", "SHY")]}, "us"),
            rule(beats("EFA", "SHY"), "intl"),
        ],
    },
    "config": {
        "start_date": "2005-01-01",
        "end_date": "2024-12-01",
        "initial_capital": 10000,
        "rebalance_frequency": "monthly",
        "base_commission": 0,
    },
}


def dual_momentum_by_pandas() -> pd.Series:
    """The dual-momentum rules on the bundled closes, with pandas alone: 252-bar returns decide
    the group each day; the whole equity moves into it on a switch and on each month's first
    trading day (at zero cost a rebalance into a one-symbol group changes nothing)."""
    request = parse_portfolio_request(DUAL_MOMENTUM)
    close = load_prices(request).close[["SPY", "EFA", "AGG", "SHY"]]
    change = close / close.shift(252) - 1
    spy_leads = (change["SPY"] > change["EFA"]) & (change["SPY"] > change["SHY"])
    group = pd.Series("AGG", index=close.index).mask(change["EFA"] > change["SHY"], "EFA")
    group = group.mask(spy_leads, "SPY")
    in_run = close.index >= pd.Timestamp(request.start_date)
    close, group = close.loc[in_run], group.loc[in_run]
    equity, held, shares = [], None, 0.0
    cash = float(request.initial_capital)
    for day, symbol in group.items():
        if symbol != held:
            cash += shares * close.at[day, held] if held else 0.0
            held, shares, cash = symbol, cash / close.at[day, symbol], 0.0
        equity.append(cash + shares * close.at[day, held])
    return pd.Series(equity, index=close.index)


def assert_engines_agree(document) -> dict:
    runs = {engine: run(document, engine=engine) for engine in ENGINES}
    vectorbt_run, backtrader_run = runs["vectorbt"], runs["backtrader"]
    np.testing.assert_allclose(
        backtrader_run.equity.to_numpy(), vectorbt_run.equity.to_numpy(), rtol=PARITY, atol=0
    )
    assert len(backtrader_run.orders) == len(vectorbt_run.orders)
    np.testing.assert_allclose(
        backtrader_run.orders["size"], vectorbt_run.orders["size"], rtol=PARITY
    )
    for column in ("symbol", "entry_date", "exit_date"):
        assert backtrader_run.trades[column].tolist() == vectorbt_run.trades[column].tolist()
    assert backtrader_run.warnings == vectorbt_run.warnings == []
    return runs


def test_dual_momentum_at_zero_cost_agrees_on_both_engines_and_with_pandas():
    runs = assert_engines_agree(DUAL_MOMENTUM)
    expected = dual_momentum_by_pandas()
    for engine in ENGINES:
        equity = runs[engine].equity
        assert equity.index.equals(expected.index)
        np.testing.assert_allclose(equity.to_numpy(), expected.to_numpy(), rtol=PARITY, atol=0)
    backtrader_run = runs["backtrader"]
    # The one-day switch into "us" on 2007-05-10 whose buy leg the strict broker refused.
    assert backtrader_run.groups.loc["2007-05-09":"2007-05-11"].tolist() == ["intl", "us", "intl"]
    assert backtrader_run.positions.loc["2007-05-10", "SPY"] > 0
    assert backtrader_run.metrics["cagr"] == pytest.approx(0.0696, abs=5e-5)


def test_sixty_forty_daily_at_zero_cost_agrees():
    document = payload(
        {"balanced": {"SPY": 0.6, "AGG": 0.4}},
        start_date="2012-01-01",
        end_date="2016-12-31",
        rebalance_frequency="daily",
        base_commission=0,
    )
    runs = assert_engines_agree(document)
    assert len(runs["vectorbt"].orders) > 2 * 1000  # both legs traded on (nearly) every day


def test_groups_holding_cash_at_zero_cost_agree():
    document = payload(
        {
            "risk_on": {"SPY": 0.5, "QQQ?L=2": 0.2, "CASH": 0.3},
            "risk_off": {"TLT": 0.4, "GLD": 0.2, "CASH": 0.4},
        },
        fallback="risk_off",
        rules=[
            rule(
                {
                    "left": {"type": "SMA", "symbol": "SPY", "window": 20},
                    "comparison": ">",
                    "right": {"type": "SMA", "symbol": "SPY", "window": 100},
                },
                "risk_on",
            )
        ],
        start_date="2010-01-01",
        end_date="2020-12-31",
        rebalance_frequency="weekly",
        base_commission=0,
    )
    runs = assert_engines_agree(document)
    assert set(runs["vectorbt"].groups) == {"risk_on", "risk_off"}


def sixty_forty_daily_input(commission: float) -> EngineInput:
    from tests.backtests.engines.conftest import load_adjusted_closes

    close = load_adjusted_closes(["SPY", "AGG"], "2012-01-01", "2012-12-31")
    weights = pd.DataFrame(0.0, index=close.index, columns=close.columns)
    weights[:] = [0.6, 0.4]
    return EngineInput(
        close=close,
        initial_capital=10_000.0,
        commission=commission,
        slippage=0.0,
        kind="allocation",
        target_weights=weights,
    )


def test_a_broker_that_refuses_an_order_reports_date_symbol_and_reason():
    """backtrader's strict cash rule (no float tolerance) refuses some all-the-cash buys at zero
    cost: each refusal comes back with its date, symbol and reason, never silently."""
    data = sixty_forty_daily_input(0.0)
    strict = BacktraderEngine(cash_tolerance=0.0).run(data)
    assert strict.refused_orders
    refused = strict.refused_orders[0]
    assert refused.reason == "not enough cash (Margin)"
    assert refused.side == "buy" and refused.symbol in ("SPY", "AGG")
    assert refused.date in data.close.index
    assert refused.describe() == (
        f"{refused.date.date().isoformat()}: the buy order of {refused.size:.6g} "
        f"{refused.symbol} was refused by the broker: not enough cash (Margin)"
    )
    assert len(strict.orders) + len(strict.refused_orders) == len(
        get_engine("vectorbt").run(data).orders
    )
    assert get_engine("backtrader").run(data).refused_orders == ()


def test_a_refused_order_becomes_a_warning_of_the_portfolio_run():
    document = payload(
        {"balanced": {"SPY": 0.6, "AGG": 0.4}},
        start_date="2012-01-01",
        end_date="2012-12-31",
        rebalance_frequency="daily",
        base_commission=0,
    )
    request = parse_portfolio_request(document)
    strict = run_portfolio(request, load_prices(request), engine=BacktraderEngine(cash_tolerance=0))
    refusals = [warning for warning in strict.warnings if "refused by the broker" in warning]
    assert refusals and strict.result["warnings"] == strict.warnings
    assert all(warning.endswith("not enough cash (Margin)") for warning in refusals)
    assert strict.result["validation_score"] < 1.0


def test_a_refused_order_fails_a_v1_run_with_its_date_symbol_and_reason(monkeypatch):
    """The v1 contract carries no warnings: the run fails and its error names the refusals."""
    from backtests.engines import registry
    from backtests.pipeline import RunError, run_backtest
    from backtests.run_config import parse_run_config

    spec, problems = parse_run_config(
        {"start_date": "2012-01-01", "end_date": "2012-12-31", "rebalance_frequency": "daily"},
        strategy_kind="allocation",
        strategy_definition={
            "allocations": {"balanced": {"SPY": 0.6, "AGG": 0.4}},
            "fallback_allocation": "balanced",
            "switching_logic": [],
        },
        strategy_timeframe=None,
        engine="backtrader",
        initial_capital=10_000.0,
        commission=0.0,
        slippage=0.0,
    )
    assert problems == []
    assert run_backtest(spec).equity.iloc[-1] > 0
    monkeypatch.setitem(registry._ENGINES, "backtrader", BacktraderEngine(cash_tolerance=0.0))
    with pytest.raises(RunError) as failure:
        run_backtest(spec)
    message = str(failure.value)
    assert message.startswith("2012-") and message.endswith("not enough cash (Margin).")
    assert "refused by the broker" in message

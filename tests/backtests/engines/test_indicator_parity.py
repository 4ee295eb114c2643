"""ChaikinMoneyFlow, Correlation and MarketRegime drive both engines alike: the language computes
the signals once and hands the same entries, exits or target weights to either engine."""

import pytest

from backtests.pipeline import run_backtest
from backtests.run_config import parse_run_config
from tests.backtests.engines.test_parity import assert_same_run

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("warm_vectorbt")]

CORRELATION = {"type": "Correlation", "other": "TLT", "window": 63}
SIGNAL_DEFINITION = {
    "entry": {
        "op": "and",
        "conditions": [
            {"left": {"type": "CMF", "window": 20}, "comparison": ">", "right": 0},
            {"left": CORRELATION, "comparison": "<", "right": 0},
        ],
    },
    "exit": {"left": {"type": "MarketRegime"}, "comparison": "<", "right": 0},
}
ALLOCATION_DEFINITION = {
    "allocations": {
        "risk_on": {"SPY": 0.7, "QQQ": 0.3},
        "hedged": {"SPY": 0.5, "TLT": 0.5},
        "defensive": {"TLT": 0.6, "CASH": 0.4},
    },
    "fallback_allocation": "defensive",
    "switching_logic": [
        {
            "name": "quiet bull",
            "condition": {
                "left": {"type": "MarketRegime", "symbol": "SPY"},
                "comparison": "==",
                "right": 2,
            },
            "target_allocation": "risk_on",
        },
        {
            "name": "bonds still hedge",
            "condition": {
                "op": "and",
                "conditions": [
                    {
                        "left": {"type": "MarketRegime", "symbol": "SPY"},
                        "comparison": ">",
                        "right": 0,
                    },
                    {"left": {**CORRELATION, "symbol": "SPY"}, "comparison": "<", "right": -0.2},
                ],
            },
            "target_allocation": "hedged",
        },
    ],
}


def run_on(engine: str, kind: str, definition: dict, config: dict):
    spec, problems = parse_run_config(
        config,
        strategy_kind=kind,
        strategy_definition=definition,
        strategy_timeframe=None,
        engine=engine,
        initial_capital=100_000.0,
        commission=0.001,
        slippage=0.0005,
    )
    assert problems == []
    return run_backtest(spec)


@pytest.mark.parametrize(
    ("kind", "definition", "config"),
    [
        (
            "signal",
            SIGNAL_DEFINITION,
            {"symbol": "SPY", "start_date": "2012-01-01", "end_date": "2022-12-31"},
        ),
        (
            "allocation",
            ALLOCATION_DEFINITION,
            {
                "start_date": "2012-01-01",
                "end_date": "2022-12-31",
                "rebalance_frequency": "monthly",
            },
        ),
    ],
    ids=["signal", "allocation"],
)
def test_both_engines_agree_on_strategies_built_from_the_new_indicators(kind, definition, config):
    vectorbt_run = run_on("vectorbt", kind, definition, config)
    backtrader_run = run_on("backtrader", kind, definition, config)

    assert len(vectorbt_run.trades) >= 4, "the indicators should make the strategy trade"
    assert_same_run(vectorbt_run, backtrader_run)
    assert vectorbt_run.metrics["total_return"] == pytest.approx(
        backtrader_run.metrics["total_return"], rel=1e-6
    )

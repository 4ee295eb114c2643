"""The pure run pipeline: SPEC §3 config parsing and one run end to end (no database)."""

import numpy as np
import pandas as pd
import pytest

from backtests.pipeline import RunError, run_backtest
from backtests.run_config import parse_run_config, stored_run_spec, validate_run_settings
from metrics.calculations import compute_metrics

BASE = {"symbol": "SPY", "start_date": "2019-01-01", "end_date": "2020-12-31"}
SMA = {"type": "SMA", "window": 50}
DEFINITION = {
    "entry": {"left": {"type": "Close"}, "comparison": ">", "right": SMA},
    "exit": {"left": {"type": "Close"}, "comparison": "<", "right": SMA},
}


def parse(config, *, kind="signal", definition=None, timeframe=None, engine="backtrader"):
    return parse_run_config(
        config,
        strategy_kind=kind,
        strategy_definition=definition,
        strategy_timeframe=timeframe,
        engine=engine,
        initial_capital=100_000.0,
        commission=0.001,
        slippage=0.0005,
    )


def paths(problems):
    return [problem.path for problem in problems]


def test_defaults_are_filled_in():
    spec, problems = parse(BASE)
    assert problems == []
    assert spec.driver == "buy_and_hold" and spec.definition is None
    assert (spec.timeframe, spec.bars_per_year, spec.risk_free_rate) == ("1d", 252.0, 0.0)
    assert (spec.size_type, spec.size, spec.direction, spec.signal_delay) == (
        "percent",
        1.0,
        "long",
        0,
    )
    assert spec.price_adjustment == "total_return"
    assert spec.config["symbols"] == ["SPY"]


def test_timeframe_comes_from_the_strategy_and_sets_bars_per_year():
    spec, _ = parse(BASE, timeframe="1wk")
    assert (spec.timeframe, spec.bars_per_year) == ("1wk", 52.0)
    spec, _ = parse({**BASE, "timeframe": "1mo"}, timeframe="1wk")
    assert (spec.timeframe, spec.bars_per_year) == ("1mo", 12.0)


def test_precedence_signal_then_plugin_then_strategy():
    plugin = {"signal_plugin_key": "sma_crossover", "signal_plugin_params": {"fast": 5}}
    inline = {"entry": {"left": {"type": "RSI"}, "comparison": "<", "right": 30}}
    spec, _ = parse({**BASE, **plugin, "signal": inline}, definition=DEFINITION)
    assert (spec.driver, spec.definition) == ("signal", inline)
    spec, _ = parse({**BASE, **plugin}, definition=DEFINITION)
    assert spec.driver == "signal_plugin" and spec.definition != DEFINITION
    spec, _ = parse(BASE, definition=DEFINITION)
    assert (spec.driver, spec.definition) == ("strategy", DEFINITION)


def test_every_problem_is_reported_at_once():
    _spec, problems = parse(
        {
            "symbol": "SPY",
            "start_date": "2020-05-01",
            "end_date": "2020-01-01",
            "sizee": 1,
            "direction": "up",
            "signal_delay": 1.5,
        }
    )
    assert paths(problems) == ["sizee", "end_date", "direction", "signal_delay"]


def test_symbol_and_symbols_are_exclusive_and_one_is_required():
    assert paths(parse({**BASE, "symbols": ["QQQ"]})[1]) == ["symbols"]
    config = {key: value for key, value in BASE.items() if key != "symbol"}
    assert paths(parse(config)[1]) == ["symbol"]


def test_uncovered_range_names_the_symbol_and_its_coverage():
    _spec, problems = parse({**BASE, "start_date": "1990-01-01"})
    assert paths(problems) == ["symbol"]
    assert "SPY has data from 1993-01-29" in problems[0].message


def test_unknown_symbol_in_a_definition_is_reported():
    definition = {
        "entry": {"left": {"type": "Close", "symbol": "ZZZZ"}, "comparison": ">", "right": 1}
    }
    _spec, problems = parse(BASE, definition=definition)
    assert paths(problems) == ["definition"]
    assert "ZZZZ" in problems[0].message


def test_correlations_other_symbol_is_loaded_and_checked():
    correlation = {"type": "Correlation", "other": "BND", "window": 20}
    definition = {"entry": {"left": correlation, "comparison": "<", "right": 0}}

    spec, problems = parse(BASE, definition=definition)
    assert problems == [] and spec.data_symbols == ("SPY", "BND")
    assert run_backtest(spec).equity.index[0] == pd.Timestamp("2019-01-02")

    _spec, problems = parse({**BASE, "signal": definition, "start_date": "2006-01-03"})
    assert paths(problems) == ["signal"]
    assert problems[0].message.startswith("Symbol BND data not available")


def test_allocation_strategies_take_rebalance_frequency_not_signal_keys():
    allocation = {
        "allocations": {"all": {"SPY": 0.6, "TLT": 0.4}},
        "fallback_allocation": "all",
        "switching_logic": [],
    }
    spec, problems = parse(
        {"start_date": "2019-01-01", "end_date": "2020-12-31", "rebalance_frequency": "quarterly"},
        kind="allocation",
        definition=allocation,
    )
    assert problems == []
    assert (spec.kind, spec.rebalance_frequency, spec.data_symbols) == (
        "allocation",
        "quarterly",
        ("SPY", "TLT"),
    )
    _spec, problems = parse({**BASE, "stop_loss": 0.1}, kind="allocation", definition=allocation)
    assert paths(problems) == ["stop_loss", "symbol"]


def test_settings_validation():
    problems = validate_run_settings(engine="nope", initial_capital=0, commission=0.2, slippage=-1)
    assert paths(problems) == ["engine", "initial_capital", "commission", "slippage"]


def test_a_stored_configuration_is_its_spec_or_a_run_error_naming_every_problem():
    snapshot = {"kind": "signal", "definition": DEFINITION, "timeframe": "1wk"}
    settings = {"engine": "backtrader", "initial_capital": 100_000.0, "commission": 0.001}
    spec = stored_run_spec(BASE, snapshot=snapshot, **settings, slippage=0.0005)
    assert spec == parse(BASE, definition=DEFINITION, timeframe="1wk")[0]
    assert (spec.driver, spec.timeframe) == ("strategy", "1wk")
    bad = {**BASE, "size": 5.0, "signal_delay": -1}
    with pytest.raises(RunError) as raised:
        stored_run_spec(bad, snapshot=snapshot, **settings, slippage=0.0005)
    assert str(raised.value) == (
        "Invalid configuration: size: Must be at most 1.; signal_delay: Must be at least 0."
    )


def test_run_uses_warmup_and_recomputes_metrics_from_the_curve():
    spec, _ = parse(BASE, definition=DEFINITION)
    result = run_backtest(spec)

    assert result.equity.index[0] == result.start == result.equity.index.min()
    assert str(result.start.date()) == "2019-01-02" and str(result.end.date()) == "2020-12-31"
    # Without warm-up history the 50-day SMA would not exist before mid-March 2019.
    assert result.trades["entry_date"].iloc[0] < pd.Timestamp("2019-03-01")
    again = compute_metrics(
        result.equity,
        initial_capital=100_000.0,
        trades=result.trades,
        positions=result.positions,
        orders=result.orders,
    )
    assert again == result.metrics


def test_fingerprint_is_stable_and_changes_with_inputs():
    spec, _ = parse(BASE)
    first, second = run_backtest(spec), run_backtest(spec)
    assert first.fingerprint == second.fingerprint and len(first.fingerprint) == 64
    other, _ = parse({**BASE, "end_date": "2020-12-30"})
    assert run_backtest(other).fingerprint != first.fingerprint


def test_several_symbols_split_the_capital():
    spec, _ = parse({**{k: v for k, v in BASE.items() if k != "symbol"}, "symbols": ["SPY", "TLT"]})
    result = run_backtest(spec)
    assert set(result.trades["symbol"]) == {"SPY", "TLT"}
    assert result.equity.iloc[0] == pytest.approx(100_000, rel=0.01)


SWITCHING_ALLOCATION = {
    "allocations": {"stocks": {"SPY": 1.0}, "bonds": {"TLT": 1.0}},
    "fallback_allocation": "bonds",
    "switching_logic": [
        {
            "condition": {
                "left": {"type": "Close", "symbol": "SPY"},
                "comparison": ">",
                "right": {"type": "SMA", "symbol": "SPY", "window": 50},
            },
            "target_allocation": "stocks",
        }
    ],
}
ALLOCATION_DATES = {"start_date": "2019-01-01", "end_date": "2020-12-31"}


def test_allocation_runs_take_evaluation_frequency_and_signal_delay():
    spec, problems = parse(
        {**ALLOCATION_DATES, "evaluation_frequency": "monthly", "signal_delay": 1},
        kind="allocation",
        definition=SWITCHING_ALLOCATION,
    )
    assert problems == []
    assert (spec.evaluation_frequency, spec.signal_delay) == ("monthly", 1)
    assert spec.config["evaluation_frequency"] == "monthly" and spec.config["signal_delay"] == 1
    plain, _ = parse(ALLOCATION_DATES, kind="allocation", definition=SWITCHING_ALLOCATION)
    assert "evaluation_frequency" not in plain.config and "signal_delay" not in plain.config
    result = run_backtest(spec)
    buys = result.orders[result.orders["side"] == "buy"]
    index = result.equity.index
    # Switch buys come the bar after a month's last trading day (the first bar aside).
    for day in buys["date"]:
        position = index.get_loc(day)
        if position == 0:
            continue
        assert index[position - 1].month != day.month, day


@pytest.mark.parametrize(
    ("changes", "messages"),
    [
        (
            {"evaluation_frequency": "yearly"},
            {"evaluation_frequency": "Must be one of: daily, weekly, monthly, quarterly."},
        ),
        ({"signal_delay": 3}, {"signal_delay": "Must be at most 2."}),
        ({"signal_delay": -1}, {"signal_delay": "Must be at least 0."}),
        ({"signal_delay": 0.5}, {"signal_delay": "Must be an integer."}),
    ],
)
def test_bad_evaluation_frequency_and_delay_of_an_allocation(changes, messages):
    _spec, problems = parse(
        {**ALLOCATION_DATES, **changes}, kind="allocation", definition=SWITCHING_ALLOCATION
    )
    assert {problem.path: problem.message for problem in problems} == messages


def test_allocation_runs_with_cash_flows_report_time_weighted_metrics():
    allocation = {
        "allocations": {"all": {"SPY": 0.6, "CASH": 0.4}},
        "fallback_allocation": "all",
        "switching_logic": [],
    }
    common = {**ALLOCATION_DATES, "rebalance_frequency": "monthly"}
    flowing, problems = parse(
        {**common, "cashflow_amount": -1_000, "cashflow_frequency": "monthly"},
        kind="allocation",
        definition=allocation,
        engine="vectorbt",
    )
    assert problems == []
    assert flowing.config["cashflow_amount"] == -1_000
    plain, _ = parse(common, kind="allocation", definition=allocation, engine="vectorbt")
    with_flows = run_backtest(flowing)
    without = run_backtest(plain)
    # 0.001 commission: the withdrawals' own sales cost a little, so the returns differ by
    # little; the final value by the money withdrawn.
    assert with_flows.metrics["total_return"] == pytest.approx(
        without.metrics["total_return"], abs=2e-3
    )
    assert with_flows.metrics["final_value"] == with_flows.equity.iloc[-1]
    assert with_flows.metrics["final_value"] < without.metrics["final_value"] - 23_000
    backtrader, _ = parse(
        {**common, "cashflow_amount": -1_000, "cashflow_frequency": "monthly"},
        kind="allocation",
        definition=allocation,
    )
    np.testing.assert_allclose(run_backtest(backtrader).equity, with_flows.equity, rtol=1e-9)


@pytest.mark.parametrize(
    ("changes", "messages"),
    [
        (
            {"cashflow_amount": 10},
            {"cashflow_amount": "Needs cashflow_frequency (give both or neither)."},
        ),
        (
            {"cashflow_frequency": "monthly"},
            {"cashflow_frequency": "Needs cashflow_amount (give both or neither)."},
        ),
        (
            {"cashflow_amount": 10, "cashflow_frequency": "daily"},
            {
                "cashflow_frequency": "Must be one of: weekly, monthly, quarterly, "
                "semi-annually, annually."
            },
        ),
        (
            {"cashflow_amount": 0, "cashflow_frequency": "weekly"},
            {
                "cashflow_amount": "Must not be 0 (positive: a contribution, "
                "negative: a withdrawal)."
            },
        ),
        (
            {"cashflow_amount": 2e15, "cashflow_frequency": "weekly"},
            {"cashflow_amount": "Must be at most 1e+15."},
        ),
        (
            {"cashflow_amount": float("inf"), "cashflow_frequency": "weekly"},
            {"cashflow_amount": "Must be a number."},
        ),
    ],
)
def test_bad_cash_flows_of_an_allocation(changes, messages):
    _spec, problems = parse(
        {**ALLOCATION_DATES, **changes}, kind="allocation", definition=SWITCHING_ALLOCATION
    )
    assert {problem.path: problem.message for problem in problems} == messages

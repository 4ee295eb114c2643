"""Definition validation in the contract's words, required symbols and warm-up lengths."""

import numpy as np
import pytest

from strategies.language import (
    Problem,
    compute_signal,
    required_symbols,
    validate_definition,
    warmup_bars,
)
from tests.strategies.conftest import build_prices


def leaf(left, comparison, right):
    return {"left": left, "comparison": comparison, "right": right}


COMPOSITE_EXAMPLE = {
    "allocations": {"GROWTH": {"QQQ?L=3": 1.0}, "DEFENSIVE": {"SPY": 0.7, "CASH": 0.3}},
    "fallback_allocation": "DEFENSIVE",
    "switching_logic": [
        {
            "condition": {
                "op": "and",
                "conditions": [
                    leaf(
                        {"type": "Momentum", "symbol": "SPY", "window": 120},
                        ">",
                        {"type": "constant", "value": 0.0},
                    ),
                    leaf(
                        {
                            "type": "RollingSharpe",
                            "symbol": "SPY",
                            "window": 252,
                            "trading_days": 252,
                            "risk_free_rate": 0.02,
                        },
                        ">",
                        {"type": "constant", "value": 0.5},
                    ),
                    leaf(
                        {"type": "SMA", "symbol": "SPY", "window": 200},
                        ">",
                        {"type": "constant", "value": 0.0},
                    ),
                ],
            },
            "target_allocation": "GROWTH",
        }
    ],
}


def messages(problems):
    return [str(problem) for problem in problems]


def test_contract_examples_are_valid():
    assert validate_definition("allocation", COMPOSITE_EXAMPLE) == []
    buy_and_hold = {
        "allocations": {"stocks": {"SPY": 1.0}},
        "fallback_allocation": "stocks",
        "switching_logic": [],
    }
    assert validate_definition("allocation", buy_and_hold) == []


def test_missing_fields_in_the_contracts_words():
    problems = validate_definition("allocation", {})
    assert messages(problems) == [
        "Missing required field: allocations",
        "Missing required field: fallback_allocation",
        "Missing required field: switching_logic",
    ]
    assert [p.path for p in problems] == ["allocations", "fallback_allocation", "switching_logic"]
    assert messages(validate_definition("allocation", [])) == ["Invalid strategy format"]


def test_every_allocation_problem_is_listed():
    definition = {
        "allocations": {
            "growth": {"SPY": 0.6, "QQQ": 0.3, "IWM": 0.15},
            "wild": {"SPY": 1.5, "BND": -0.5},
            "empty": {},
            "levered": {"QQQ?L=abc": 1.0},
            "typed": {"SPY": "half", "BND": 0.5},
        },
        "fallback_allocation": "nowhere",
        "switching_logic": [
            {
                "condition": leaf({"type": "SMA", "window": 200}, ">", 0),
                "target_allocation": "moon",
            },
            {"name": 3, "target_allocation": "growth", "priority": 1},
        ],
        "benchmark": "SPY",
    }
    problems = validate_definition("allocation", definition)
    groups = "growth, wild, empty, levered, typed"
    found = messages(problems)
    # The leverage wording belongs to the symbol parser; its start is the contract's.
    assert found[5].startswith("Allocation 'levered': Invalid leverage format in 'QQQ?L=abc'")
    found[5] = "LEVERAGE"
    assert found == [
        "Unknown field: benchmark (known: allocations, fallback_allocation, switching_logic)",
        "Allocation 'growth' weights sum to 1.05, not 1.0",
        "Allocation 'wild' weight for SPY is 1.5, outside [0, 1]",
        "Allocation 'wild' weight for BND is -0.5, outside [0, 1]",
        "Allocation 'empty' is empty",
        "LEVERAGE",
        "Allocation 'typed' weight for SPY must be a number",
        f"Unknown fallback allocation 'nowhere' (allocation groups: {groups})",
        "switching_logic[0].condition.left.symbol: is required (allocation strategies name the "
        "symbol of every signal)",
        f"Unknown target allocation 'moon' in switching_logic[0] (allocation groups: {groups})",
        "switching_logic[1].priority: unknown field (known: name, condition, target_allocation)",
        "switching_logic[1].name: must be a string",
        "switching_logic[1].condition: is required",
    ]
    assert problems[1] == Problem(
        "allocations.growth", "Allocation 'growth' weights sum to 1.05, not 1.0"
    )


def test_weight_sum_tolerance_is_a_thousandth():
    def group(weights):
        return {"allocations": {"g": weights}, "fallback_allocation": "g", "switching_logic": []}

    assert validate_definition("allocation", group({"SPY": 0.6, "BND": 0.4009})) == []
    assert messages(validate_definition("allocation", group({"SPY": 0.6, "BND": 0.3985}))) == [
        "Allocation 'g' weights sum to 0.9985, not 1.0"
    ]


def test_leverage_format_is_checked():
    definition = {
        "allocations": {"g": {"SPY?L=20": 0.5, "CASH?L=2": 0.5}},
        "fallback_allocation": "g",
        "switching_logic": [],
    }
    found = messages(validate_definition("allocation", definition))
    assert len(found) == 2
    assert found[0].startswith("Allocation 'g': Invalid leverage format in 'SPY?L=20'")
    assert (
        found[1]
        == "Allocation 'g': Invalid leverage format in 'CASH?L=2': CASH cannot be leveraged"
    )


def test_switching_logic_must_be_a_list():
    definition = {
        "allocations": {"g": {"SPY": 1}},
        "fallback_allocation": "g",
        "switching_logic": {},
    }
    assert messages(validate_definition("allocation", definition)) == [
        "switching_logic must be a list (it may be empty)"
    ]


def test_signal_definitions():
    assert validate_definition("signal", None) == []
    entry = leaf({"type": "Close"}, ">", {"type": "SMA", "window": 20})
    assert validate_definition("signal", {"entry": entry, "exit": entry}) == []
    assert validate_definition("signal", {"short_entry": entry}) == []
    assert validate_definition("signal", {"exit": entry, "enter": entry}) == [
        Problem("enter", "unknown field (known: entry, exit, short_entry, short_exit)"),
        Problem("entry", "is required (or short_entry for a short-only strategy)"),
    ]
    bad = {"entry": leaf({"type": "SMA", "window": "x"}, ">", 1)}
    assert validate_definition("signal", bad) == [
        Problem("entry.left.window", "must be a positive integer")
    ]
    assert validate_definition("signal", "buy") == [
        Problem("", "a signal strategy definition must be an object with 'entry'")
    ]
    assert validate_definition("options", {}) == [
        Problem("kind", "must be one of: signal, allocation")
    ]


def test_required_symbols():
    assert required_symbols(COMPOSITE_EXAMPLE) == ["QQQ?L=3", "SPY", "CASH"]
    signal = {
        "entry": leaf({"type": "Close"}, ">", {"type": "SMA", "window": 20, "symbol": "QQQ"}),
        "exit": leaf({"type": "constant", "value": 1}, ">", 0),
    }
    assert required_symbols(signal, "SPY") == ["SPY", "QQQ"]
    assert required_symbols(None, "SPY") == []


@pytest.mark.parametrize(
    ("spec", "bars"),
    [
        ({"type": "SMA", "window": 200}, 200),
        ({"type": "EMA", "window": 26}, 26),
        ({"type": "MACD"}, 26 + 9 - 1),
        ({"type": "RollingSharpe", "window": 252}, 253),
        ({"type": "Momentum", "window": 120}, 121),
        ({"type": "RSI"}, 15),
        ({"type": "ATR"}, 15),
        ({"type": "BB"}, 20),
        ({"type": "StochasticOscillator"}, 16),
        ({"type": "Highest", "window": 20, "lag": 1}, 21),
        ({"type": "Close"}, 1),
        ({"type": "talib", "function": "WILLR", "timeperiod": 10}, 10),
        ({"type": "Drawdown"}, 1),
    ],
)
def test_warmup_bars(spec, bars):
    assert warmup_bars({"entry": leaf(spec, ">", 0)}) == bars
    assert warmup_bars({"entry": leaf(spec, ">", 0)}, signal_delay=2) == bars + 2


def test_warmup_of_a_definition_is_its_longest_lookback():
    assert warmup_bars(COMPOSITE_EXAMPLE) == 253
    assert warmup_bars(None) == 0
    assert warmup_bars({"entry": leaf(1, ">", 0)}) == 0


@pytest.mark.parametrize(
    "spec",
    [
        {"type": "SMA", "window": 200},
        {"type": "MACD"},
        {"type": "RollingSortino", "window": 63},
        {"type": "StochasticOscillator"},
        {"type": "talib", "function": "ADX"},
        {"type": "Volatility", "window": 20},
    ],
)
def test_warmup_gives_a_value_on_the_first_bar_and_the_one_before(spec):
    bars = warmup_bars({"entry": leaf(spec, ">", 0)})
    full = build_prices(["SPY"], "2015-01-01", "2015-12-31")
    start = full.close.index.get_loc(full.start)
    history_start = full.close.index[start - bars]
    prices = build_prices(
        ["SPY"], "2015-01-01", "2015-12-31", history_start=str(history_start.date())
    )
    values = compute_signal(spec, prices, "SPY")
    assert not np.isnan(values.iloc[bars - 1]) and not np.isnan(values.iloc[bars])
    assert values.index[bars] == prices.start

"""Built-in strategies: each builds a valid, inspectable definition that compiles and trades."""

import json

import numpy as np
import pytest

from strategies.language import (
    PLUGINS,
    Problem,
    build_plugin,
    compile_signal_strategy,
    validate_definition,
    validate_plugin,
)

SPEC_PLUGINS = {
    "buy_and_hold",
    "sma_crossover",
    "ema_crossover",
    "rsi_reversion",
    "macd_cross",
    "bollinger_reversion",
    "breakout",
    "momentum",
}


def test_registry_holds_the_spec_plugins_with_their_defaults():
    assert set(PLUGINS) >= SPEC_PLUGINS
    assert PLUGINS["sma_crossover"].defaults() == {"fast": 10, "slow": 50}
    assert PLUGINS["ema_crossover"].defaults() == {"fast": 12, "slow": 26}
    assert PLUGINS["rsi_reversion"].defaults() == {"window": 14, "lower": 30, "upper": 70}
    assert PLUGINS["macd_cross"].defaults() == {"fast": 12, "slow": 26, "signal": 9}
    assert PLUGINS["bollinger_reversion"].defaults() == {"window": 20, "num_std": 2}
    assert PLUGINS["breakout"].defaults() == {"window": 20}
    assert PLUGINS["momentum"].defaults() == {"window": 126, "threshold": 0}
    for plugin in PLUGINS.values():
        assert plugin.description


@pytest.mark.parametrize("key", sorted(SPEC_PLUGINS))
def test_each_plugin_builds_a_valid_json_definition_that_trades(spy_prices, key):
    assert validate_plugin(key, {}) == []
    definition = build_plugin(key)
    assert json.loads(json.dumps(definition)) == definition
    assert validate_definition("signal", definition) == []
    plan = compile_signal_strategy(definition, spy_prices, "SPY", direction="both")
    assert plan.entries["SPY"].any()
    if key != "buy_and_hold":
        assert plan.exits["SPY"].any() and plan.short_entries["SPY"].any()


def test_crossover_is_a_state_rule(spy_prices):
    definition = build_plugin("sma_crossover", {"fast": 20, "slow": 100})
    assert definition == {
        "entry": {
            "left": {"type": "SMA", "window": 20},
            "comparison": ">",
            "right": {"type": "SMA", "window": 100},
        },
        "exit": {
            "left": {"type": "SMA", "window": 20},
            "comparison": "<",
            "right": {"type": "SMA", "window": 100},
        },
    }
    close = spy_prices.close["SPY"]
    plan = compile_signal_strategy(definition, spy_prices, "SPY")
    fast, slow = close.rolling(20).mean(), close.rolling(100).mean()
    run = close.index >= spy_prices.start
    np.testing.assert_array_equal(plan.entries["SPY"], (fast > slow)[run])


def test_breakout_uses_the_previous_windows_extremes(spy_prices):
    close = spy_prices.close["SPY"]
    plan = compile_signal_strategy(build_plugin("breakout", {"window": 55}), spy_prices, "SPY")
    run = close.index >= spy_prices.start
    previous_high = close.rolling(55).max().shift(1)
    previous_low = close.rolling(55).min().shift(1)
    np.testing.assert_array_equal(plan.entries["SPY"], (close > previous_high)[run])
    np.testing.assert_array_equal(plan.exits["SPY"], (close < previous_low)[run])


def test_momentum_and_rsi_thresholds(spy_prices):
    close = spy_prices.close["SPY"]
    run = close.index >= spy_prices.start
    momentum = build_plugin("momentum", {"window": 63, "threshold": 0.05})
    plan = compile_signal_strategy(momentum, spy_prices, "SPY")
    np.testing.assert_array_equal(plan.entries["SPY"], (close / close.shift(63) - 1 > 0.05)[run])
    rsi = build_plugin("rsi_reversion", {"lower": 25, "upper": 75.5})
    assert rsi["entry"]["right"] == {"type": "constant", "value": 25.0}
    assert rsi["exit"]["right"] == {"type": "constant", "value": 75.5}


def test_float_valued_integers_are_accepted():
    assert build_plugin("sma_crossover", {"fast": 5.0, "slow": 20})["entry"]["left"]["window"] == 5


@pytest.mark.parametrize(
    ("key", "params", "problems"),
    [
        ("sma_cross", {}, [("signal_plugin_key", "unknown plugin 'sma_cross' (known: ")]),
        (None, {}, [("signal_plugin_key", "unknown plugin None")]),
        (
            "sma_crossover",
            {"fast": 50, "slow": 20},
            [("signal_plugin_params.fast", "must be less than slow (20)")],
        ),
        (
            "sma_crossover",
            {"fast": 60},
            [("signal_plugin_params.fast", "must be less than slow (50)")],
        ),
        ("ema_crossover", {"fast": 2.5}, [("signal_plugin_params.fast", "must be an integer")]),
        ("macd_cross", {"signal": 0}, [("signal_plugin_params.signal", "must be at least 1")]),
        (
            "rsi_reversion",
            {"lower": 80},
            [("signal_plugin_params.lower", "must be less than upper (70)")],
        ),
        ("rsi_reversion", {"upper": 101}, [("signal_plugin_params.upper", "must be at most 100")]),
        (
            "bollinger_reversion",
            {"num_std": "2"},
            [("signal_plugin_params.num_std", "must be a number")],
        ),
        ("breakout", {"window": 0}, [("signal_plugin_params.window", "must be at least 1")]),
        (
            "momentum",
            {"lookback": 5},
            [
                (
                    "signal_plugin_params.lookback",
                    "unknown parameter for momentum (known: window, threshold)",
                )
            ],
        ),
        (
            "buy_and_hold",
            {"x": 1},
            [("signal_plugin_params.x", "unknown parameter for buy_and_hold (known: none)")],
        ),
        ("momentum", [5], [("signal_plugin_params", "must be an object of parameter values")]),
    ],
)
def test_plugin_validation_messages(key, params, problems):
    found = validate_plugin(key, params)
    assert len(found) == len(problems)
    for problem, (path, message) in zip(found, problems, strict=True):
        assert problem.path == path and problem.message.startswith(message), problem


def test_build_rejects_invalid_parameters():
    with pytest.raises(ValueError, match=r"signal_plugin_params\.fast: must be less than slow"):
        build_plugin("sma_crossover", {"fast": 80})
    assert validate_plugin("momentum", None) == []
    assert validate_plugin("breakout", {"window": True}) == [
        Problem("signal_plugin_params.window", "must be an integer")
    ]

"""A sweep over plugin parameters as one vectorised engine call gives each entry exactly the
results of its own run (no database: the pure pipeline)."""

import numpy as np
import pandas as pd
import pytest

from backtests.engines import EngineLimitationError, get_engine
from backtests.pipeline import RunError, parse_run_config, run_backtest, run_backtest_batch

BASE = {
    "symbol": "SPY",
    "start_date": "2010-01-01",
    "end_date": "2016-12-31",
    "signal_plugin_key": "sma_crossover",
}
GRID = [{"fast": 5, "slow": 60}, {"fast": 20, "slow": 100}, {"fast": 50, "slow": 200}]


def spec_for(config, *, engine="vectorbt"):
    spec, problems = parse_run_config(
        config,
        strategy_kind="signal",
        strategy_definition=None,
        strategy_timeframe=None,
        engine=engine,
        initial_capital=100_000.0,
        commission=0.001,
        slippage=0.0005,
    )
    assert problems == []
    return spec


def assert_same_run(batched, single):
    assert batched.equity.index.equals(single.equity.index)
    np.testing.assert_allclose(
        batched.equity.to_numpy(), single.equity.to_numpy(), rtol=0, atol=1e-9
    )
    assert batched.metrics.keys() == single.metrics.keys()
    for key, value in single.metrics.items():
        if isinstance(value, float):
            assert batched.metrics[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key
        else:
            assert batched.metrics[key] == value, key
    pd.testing.assert_frame_equal(batched.trades, single.trades, rtol=1e-12)
    pd.testing.assert_frame_equal(batched.orders, single.orders, rtol=1e-12)
    pd.testing.assert_frame_equal(batched.positions, single.positions, rtol=1e-12)
    assert batched.fingerprint == single.fingerprint


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"direction": "both"},
        {"direction": "short", "stop_loss": 0.05, "take_profit": 0.1},
        {"size": 0.5, "trailing_stop": 0.08},
    ],
)
def test_one_engine_call_matches_one_run_per_entry(settings):
    specs = [spec_for({**BASE, **settings, "signal_plugin_params": params}) for params in GRID]
    engine = get_engine("vectorbt")
    calls = []
    original = engine.run_signal_batch

    def counting(inputs):
        calls.append(len(inputs))
        return original(inputs)

    engine.run_signal_batch = counting
    try:
        batched = run_backtest_batch(specs)
    finally:
        del engine.run_signal_batch
    assert calls == [len(GRID)]
    for result, spec in zip(batched, specs, strict=True):
        assert_same_run(result, run_backtest(spec))
    # Different parameters give different runs: the columns are not one run copied.
    assert len({round(result.metrics["final_value"], 6) for result in batched}) == len(GRID)


def test_runs_that_need_callbacks_or_differ_in_settings_run_one_by_one():
    timed = [
        spec_for({**BASE, "max_holding_bars": 30, "signal_plugin_params": params})
        for params in GRID[:2]
    ]
    inputs_differ = [
        spec_for({**BASE, "signal_plugin_params": GRID[0]}),
        spec_for({**BASE, "end_date": "2015-12-31", "signal_plugin_params": GRID[1]}),
    ]
    for specs in (timed, inputs_differ):
        results = run_backtest_batch(specs)
        for result, spec in zip(results, specs, strict=True):
            assert_same_run(result, run_backtest(spec))


def test_the_engine_refuses_a_batch_it_cannot_run_as_one_call():
    from backtests import pipeline
    from marketdata.store import get_store
    from strategies.language import compile_signal_strategy

    engine = get_engine("vectorbt")
    spec = spec_for({**BASE, "max_holding_bars": 30, "signal_plugin_params": GRID[0]})
    prices = get_store().load(["SPY"], spec.start, spec.end, warmup_bars=200)
    plan = compile_signal_strategy(spec.definition, prices, "SPY")
    close = prices.window().close[["SPY"]]
    data = pipeline._signal_input(spec, close, plan, None)
    with pytest.raises(EngineLimitationError):
        engine.run_signal_batch([data, data])


def test_a_failing_entry_fails_alone():
    good = spec_for({**BASE, "signal_plugin_params": GRID[0]})
    bad = spec_for({**BASE, "signal_plugin_params": GRID[1]})
    bad = type(bad)(**{**bad.__dict__, "start": pd.Timestamp("1990-01-01").date()})
    results = run_backtest_batch([good, bad, spec_for({**BASE, "signal_plugin_params": GRID[2]})])
    assert isinstance(results[1], RunError)
    assert_same_run(results[0], run_backtest(good))

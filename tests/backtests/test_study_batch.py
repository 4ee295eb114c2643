"""A study's runs as matrices (``run_study_batch``): each distinct price window compiled once,
one engine call, every column's metrics computed at once from the equity matrix and the order
records — and each entry's numbers exactly those of its own run (no database: the pure
pipeline)."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from backtests.engines import get_engine
from backtests.pipeline import (
    RunError,
    StudyRun,
    run_backtest,
    run_backtest_batch,
    run_study,
    run_study_batch,
)
from backtests.research import runner
from backtests.run_config import parse_run_config
from metrics.calculations import METRIC_KEYS, returns_from_equity, traded_notional

BASE = {
    "symbol": "SPY",
    "start_date": "2008-01-01",
    "end_date": "2016-12-31",
    "signal_plugin_key": "sma_crossover",
}
# Different slow windows: different warm-ups, so several price windows share one engine call.
GRID = [
    {"fast": fast, "slow": slow}
    for fast, slow in ((5, 50), (10, 50), (5, 60), (20, 100), (35, 150), (50, 200), (15, 120))
]


def spec_for(config, *, engine="vectorbt"):
    spec, problems = parse_run_config(
        config,
        strategy_kind="signal",
        strategy_definition=None,
        strategy_timeframe=None,
        engine=engine,
        initial_capital=100_000.0,
        commission=0.0005,
        slippage=0.0005,
    )
    assert problems == []
    return spec


def specs_for(settings):
    return [spec_for({**BASE, **settings, "signal_plugin_params": params}) for params in GRID]


def assert_same_numbers(study, single):
    """Every metric key, bit for bit; the equity curve and the fingerprint too."""
    assert isinstance(study, StudyRun)
    assert list(study.metrics) == list(METRIC_KEYS)
    assert study.metrics == single.metrics  # exact: == on every float, None where None
    assert study.equity.dates.equals(single.equity.index)
    np.testing.assert_array_equal(study.equity.values[:, study.column], single.equity.to_numpy())
    assert study.fingerprint == single.fingerprint


def counting_matrix_calls(monkeypatch):
    engine = get_engine("vectorbt")
    calls = []
    original = engine.run_signal_matrix

    def counting(data, signals):
        run = original(data, signals)  # counted when it simulated (not when it refused)
        calls.append(signals.long_entries.shape[1])
        return run

    monkeypatch.setattr(engine, "run_signal_matrix", counting)
    return calls


SETTINGS = [
    {},
    {"direction": "both"},  # reversals: read the long way, still one engine call
    {"direction": "short", "stop_loss": 0.05, "take_profit": 0.1},
    {"size": 0.5, "trailing_stop": 0.08},
    {"signal_delay": 2},
    {"size_type": "shares", "size": 300},
    {"risk_free_rate": 0.02, "bars_per_year": 260},
]


@pytest.mark.parametrize("settings", SETTINGS)
def test_every_entry_has_exactly_the_metrics_of_its_own_run(settings, monkeypatch):
    specs = specs_for(settings)
    calls = counting_matrix_calls(monkeypatch)
    studied = run_study_batch(specs)
    assert calls == [len(GRID)]
    per_entry = run_backtest_batch(specs)  # the per-entry path: a trades table per entry
    for study, batched in zip(studied, per_entry, strict=True):
        assert_same_numbers(study, batched)
    for position in (0, 3, len(GRID) - 1):  # and a full v1 run of the same spec
        assert_same_numbers(studied[position], run_backtest(specs[position]))
    # Different parameters give different runs: the columns are not one run copied.
    assert len({study.metrics["final_value"] for study in studied}) == len(GRID)


def test_a_whole_sweep_grid_sample_over_twenty_years_is_exact():
    # The benchmark's grid (fast 5..100 × slow 50..295, fast < slow) over SPY 2005–2024,
    # costs 0.0005 each: one column in eleven, every metric key of each against its own run.
    pairs = [(fast, slow) for fast in range(5, 101, 5) for slow in range(50, 296, 5) if fast < slow]
    config = {**BASE, "start_date": "2005-01-01", "end_date": "2024-12-06"}
    specs = [
        spec_for({**config, "signal_plugin_params": {"fast": fast, "slow": slow}})
        for fast, slow in pairs[::11]
    ]
    studied = run_study_batch(specs)
    for study, single in zip(studied, run_backtest_batch(specs), strict=True):
        assert_same_numbers(study, single)


def test_trade_pnl_and_turnover_come_from_the_order_records_as_the_trades_table_has_them():
    from backtests import pipeline

    for settings, whole in (({}, True), ({"direction": "both"}, False)):
        specs = specs_for(settings)
        _failed, compiled, _shared, close, signals = pipeline._compile_signal_matrix(
            specs, pipeline.get_store()
        )
        data = pipeline._signal_settings(specs[0], close, None)
        run = get_engine("vectorbt").run_signal_matrix(data, signals)
        trades = run.trade_columns()
        held = run.bars_held()
        for column in range(len(compiled)):
            result = run.result(column)
            assert held[column] == int((result.positions.to_numpy() != 0).sum())
            if trades.pnl[column] is None:
                continue
            np.testing.assert_array_equal(trades.pnl[column], result.trades["pnl"].to_numpy())
            assert trades.traded_notional[column] == traded_notional(result.orders)
        read = [pnl is not None for pnl in trades.pnl]
        if whole:
            assert all(read)
        else:  # a reversal is one order that closes and opens: those columns are read the long way
            assert not all(read)


def test_runs_that_end_flat_keep_their_numbers():
    specs = [replace(spec, close_at_end=True) for spec in specs_for({})]
    for study, spec in zip(run_study_batch(specs), specs, strict=True):
        assert_same_numbers(study, run_backtest(spec))


def test_runs_that_cannot_share_a_call_run_one_by_one_with_the_same_numbers(monkeypatch):
    calls = counting_matrix_calls(monkeypatch)
    timed = [
        spec_for({**BASE, "max_holding_bars": 30, "signal_plugin_params": params})
        for params in GRID[:2]
    ]  # a time exit needs the per-bar callbacks
    backtrader = [spec_for({**BASE, "signal_plugin_params": GRID[0]}, engine="backtrader")]
    alone = [spec_for({**BASE, "end_date": "2015-12-31", "signal_plugin_params": GRID[1]})]
    for specs in (timed, backtrader, alone):
        for study, spec in zip(run_study_batch(specs), specs, strict=True):
            assert_same_numbers(study, run_backtest(spec))
    assert calls == []


@pytest.mark.parametrize("settings", [{}, {"direction": "both"}, {"stop_loss": 0.05}])
def test_one_run_alone_takes_the_matrix_path_with_its_own_numbers(settings, monkeypatch):
    calls = counting_matrix_calls(monkeypatch)
    for spec in specs_for(settings)[:3]:
        assert_same_numbers(run_study(spec), run_backtest(spec))
    assert calls == [1, 1, 1]
    ended_flat = replace(specs_for({})[4], close_at_end=True)
    assert_same_numbers(run_study(ended_flat), run_backtest(ended_flat))


def test_one_run_alone_without_a_matrix_path_or_data_is_its_own_run_or_error(monkeypatch):
    calls = counting_matrix_calls(monkeypatch)
    backtrader = spec_for({**BASE, "signal_plugin_params": GRID[0]}, engine="backtrader")
    assert_same_numbers(run_study(backtrader), run_backtest(backtrader))
    assert calls == []
    bad = replace(specs_for({})[0], start=pd.Timestamp("1990-01-01").date())
    with pytest.raises(RunError) as raised:
        run_backtest(bad)
    failed = run_study(bad)
    assert isinstance(failed, RunError)
    assert str(failed) == str(raised.value)


def test_a_failing_entry_fails_alone():
    good = spec_for({**BASE, "signal_plugin_params": GRID[0]})
    bad = spec_for({**BASE, "signal_plugin_params": GRID[1]})
    bad = replace(bad, start=pd.Timestamp("1990-01-01").date())
    results = run_study_batch([good, bad, spec_for({**BASE, "signal_plugin_params": GRID[2]})])
    assert isinstance(results[1], RunError)
    assert_same_numbers(results[0], run_backtest(good))


def test_entry_outcomes_are_the_core_metrics_and_returns_of_each_run():
    specs = specs_for({"direction": "both"})[:3] + specs_for({})
    outcomes = runner.run_entries(specs)
    for outcome, spec in zip(outcomes, specs, strict=True):
        single = run_backtest(spec)
        assert outcome.completed and outcome.error == ""
        assert outcome.metrics == single.metrics  # the core's, as a run's row keeps them
        assert outcome.fingerprint == single.fingerprint
        expected = returns_from_equity(single.equity, spec.initial_capital)
        assert outcome.returns.index.equals(expected.index)
        np.testing.assert_array_equal(outcome.returns.to_numpy(), expected.to_numpy())
    frame = runner.returns_frame(outcomes, range(len(outcomes)))
    assert list(frame.columns) == [str(number) for number in range(len(outcomes))]
    assert frame.index.name == "date" and frame.dtypes.eq("float64").all()
    for number, outcome in enumerate(outcomes):
        np.testing.assert_array_equal(frame[str(number)].to_numpy(), outcome.returns.to_numpy())


def test_runs_without_trades_or_with_a_trade_left_open_keep_their_numbers(monkeypatch):
    # Different plugins share one call too: an RSI that never reaches its bounds (no trade),
    # buy and hold (one trade, open at the end: valued at the last close), ordinary trading.
    configs = [
        {"signal_plugin_key": "rsi_reversion", "signal_plugin_params": {"lower": 1, "upper": 99}},
        {"signal_plugin_key": "buy_and_hold"},
        {"signal_plugin_key": "rsi_reversion"},
        {"signal_plugin_key": "sma_crossover", "signal_plugin_params": GRID[0]},
    ]
    specs = [spec_for({**BASE, **config}) for config in configs]
    calls = counting_matrix_calls(monkeypatch)
    studied = run_study_batch(specs)
    assert calls == [len(configs)]
    for study, spec in zip(studied, specs, strict=True):
        assert_same_numbers(study, run_backtest(spec))
    assert studied[0].metrics["total_trades"] == 0 and studied[0].metrics["win_rate"] is None
    assert studied[0].metrics["turnover_annualised"] == 0.0
    assert studied[1].metrics["total_trades"] == 1
    assert studied[1].metrics["bars_in_market"] == studied[1].metrics["n_bars"]

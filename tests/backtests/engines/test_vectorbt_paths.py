"""The Rust path (plain vectorbt arguments, no compiling) and the numba callback path give the
same numbers, and each run takes the path it should."""

import numpy as np
import pandas as pd
import pytest

from backtests.engines import EngineInput, get_engine
from backtests.engines.vectorbt_engine import VectorbtEngine, signal_callback_reasons
from tests.backtests.engines.conftest import load_adjusted_closes
from tests.backtests.engines.test_parity import month_starts, rsi_reversion, sma_crossover

pytestmark = pytest.mark.usefixtures("warm_vectorbt")

EXACT = 1e-12
RUST = VectorbtEngine(kernel="rust")
PREVIOUS_NUMBA_PATH = VectorbtEngine(kernel="numba", always_use_callbacks=True)


@pytest.fixture(scope="module")
def spy():
    return load_adjusted_closes(["SPY"], "2005-01-01", "2024-12-31")


def signal_input(close, rule, **options) -> EngineInput:
    entries, exits = rule(close)
    if options.get("direction") == "both":
        options = {"short_entries": exits, "short_exits": entries, **options}
    defaults = dict(
        close=close,
        initial_capital=100_000.0,
        commission=0.001,
        slippage=0.0005,
        kind="signal",
        entries=entries,
        exits=exits,
    )
    return EngineInput(**{**defaults, **options})


def assert_identical(ours, theirs):
    assert ours.equity.index.equals(theirs.equity.index)
    np.testing.assert_allclose(ours.equity, theirs.equity, rtol=EXACT)
    np.testing.assert_allclose(ours.positions, theirs.positions, rtol=EXACT, atol=1e-12)
    pd.testing.assert_frame_equal(ours.orders, theirs.orders, check_exact=False, rtol=EXACT)
    pd.testing.assert_frame_equal(ours.trades, theirs.trades, check_exact=False, rtol=EXACT)


@pytest.fixture
def rust_kernel_calls(monkeypatch):
    """Count the calls into vectorbt-rust's simulators (vectorbt imports them per call)."""
    import vectorbt_rust.portfolio as rust_portfolio

    calls = []
    for name in ("simulate_from_signals_rs", "simulate_from_orders_rs"):
        kernel = getattr(rust_portfolio, name)

        def counted(*args, _kernel=kernel, _name=name, **kwargs):
            calls.append(_name)
            return _kernel(*args, **kwargs)

        monkeypatch.setattr(rust_portfolio, name, counted)
    return calls


REPRESENTATIVE_CASES = [
    ("sma", {}),
    ("sma", {"stop_loss": 0.04, "take_profit": 0.15}),
    ("sma", {"direction": "both", "trailing_stop": 0.05, "stop_loss": 0.08}),
    ("rsi", {"direction": "short", "take_profit": 0.05, "trailing_stop": 0.05, "size": 0.5}),
    ("rsi", {"size_type": "shares", "size": 300.0, "stop_loss": 0.06}),
]
RULES = {"sma": sma_crossover, "rsi": rsi_reversion}


@pytest.mark.slow
@pytest.mark.parametrize(("rule", "options"), REPRESENTATIVE_CASES)
def test_rust_path_reproduces_the_numba_callback_path(spy, rule, options, rust_kernel_calls):
    data = signal_input(spy, RULES[rule], **options)
    assert signal_callback_reasons(data) == []
    ours = RUST.run(data)
    assert rust_kernel_calls == ["simulate_from_signals_rs"]
    assert len(ours.trades) >= 5
    assert_identical(ours, PREVIOUS_NUMBA_PATH.run(data))


def test_exit_reasons_of_every_stop_on_the_rust_path_match_the_callback_path(spy):
    data = signal_input(
        spy, sma_crossover, direction="both", stop_loss=0.06, trailing_stop=0.04, take_profit=0.1
    )
    ours = RUST.run(data)
    assert {"stop_loss", "trailing_stop", "take_profit", "opposite_signal"} <= set(
        ours.trades["exit_reason"]
    )
    assert ours.trades["exit_reason"].tolist() == (
        PREVIOUS_NUMBA_PATH.run(data).trades["exit_reason"].tolist()
    )


def test_allocations_on_rust_equal_numba_to_1e_12(rust_kernel_calls):
    close = load_adjusted_closes(["SPY", "TLT", "GLD"], "2005-01-01", "2024-12-31")
    weights = pd.DataFrame(np.nan, index=close.index, columns=close.columns)
    weights.loc[month_starts(close.index)] = [0.5, 0.3, 0.2]
    weights.iloc[::63, 2] = np.nan  # quarterly: hold gold where it is
    data = EngineInput(
        close=close,
        initial_capital=100_000.0,
        commission=0.0035,
        slippage=0.001,
        kind="allocation",
        target_weights=weights,
    )
    ours = RUST.run(data)
    assert rust_kernel_calls == ["simulate_from_orders_rs"]
    assert len(ours.orders) > 500
    assert_identical(ours, VectorbtEngine(kernel="numba").run(data))


def test_runs_with_path_dependent_rules_take_the_callback_path(spy, rust_kernel_calls):
    plain = signal_input(spy, sma_crossover, stop_loss=0.1, trailing_stop=0.05)
    assert signal_callback_reasons(plain) == []
    timed = signal_input(spy, sma_crossover, max_holding_bars=30)
    assert signal_callback_reasons(timed) == ["time exit (max_holding_bars)"]
    both_stops = signal_input(spy, sma_crossover, stop_loss=0.03, trailing_stop=0.05)
    assert signal_callback_reasons(both_stops) == ["stop loss tighter than the trailing stop"]
    rising = spy.diff() > 0
    overlapping = signal_input(spy, lambda close: (rising, rising | (spy > spy.shift(5))))
    assert signal_callback_reasons(overlapping) == ["an entry and an exit on the same bar"]

    get_engine("vectorbt").run(timed)
    assert rust_kernel_calls == []


def test_entry_and_exit_on_one_bar_open_when_flat_and_close_when_in(rust_kernel_calls):
    index = pd.bdate_range("2024-01-01", periods=5)
    close = pd.DataFrame({"AAA": [100.0, 101.0, 102.0, 103.0, 104.0]}, index=index)
    both = pd.DataFrame({"AAA": [True, True, False, True, False]}, index=index)
    data = EngineInput(
        close=close,
        initial_capital=1_000.0,
        commission=0.0,
        slippage=0.0,
        kind="signal",
        entries=both,
        exits=both,
    )
    for engine in ("vectorbt", "backtrader"):
        trades = get_engine(engine).run(data).trades
        assert trades["entry_date"].tolist() == [index[0], index[3]], engine
        assert trades["exit_date"].tolist() == [index[1], index[4]], engine
        assert trades["exit_reason"].tolist() == ["opposite_signal", "end_of_data"], engine
    assert rust_kernel_calls == []


def test_long_and_short_entry_together_do_nothing_flat_and_reverse_a_position(rust_kernel_calls):
    index = pd.bdate_range("2024-01-01", periods=5)
    close = pd.DataFrame({"AAA": [100.0, 101.0, 99.0, 98.0, 97.0]}, index=index)
    longs = pd.DataFrame({"AAA": [True, True, False, True, False]}, index=index)
    shorts = pd.DataFrame({"AAA": [True, False, False, True, False]}, index=index)
    never = pd.DataFrame({"AAA": [False] * 5}, index=index)
    data = EngineInput(
        close=close,
        initial_capital=1_000.0,
        commission=0.001,
        slippage=0.001,
        kind="signal",
        direction="both",
        entries=longs,
        exits=never,
        short_entries=shorts,
        short_exits=never,
    )
    ours = get_engine("vectorbt").run(data)
    assert rust_kernel_calls == ["simulate_from_signals_rs"]
    assert ours.trades["side"].tolist() == ["long", "short"]
    assert ours.trades["entry_date"].tolist() == [index[1], index[3]]
    assert ours.trades["exit_reason"].tolist() == ["opposite_signal", "end_of_data"]
    assert_identical(ours, PREVIOUS_NUMBA_PATH.run(data))
    np.testing.assert_allclose(ours.equity, get_engine("backtrader").run(data).equity, rtol=1e-9)

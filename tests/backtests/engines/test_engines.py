"""The trading rules every engine shares (``EngineInput``'s docstring), checked by hand on a few
bars for each registered engine, and what each engine cannot do."""

import numpy as np
import pandas as pd
import pytest

from backtests.engines import (
    EngineError,
    EngineInput,
    EngineLimitationError,
    available_engines,
    get_engine,
    registry,
)
from backtests.engines.registry import runs_signal_batches


@pytest.fixture(params=["backtrader", "vectorbt"])
def engine(request):
    if request.param == "vectorbt":
        request.getfixturevalue("warm_vectorbt")
    return get_engine(request.param)


def three_bars(**options) -> EngineInput:
    index = pd.bdate_range("2024-01-01", periods=3)
    close = pd.DataFrame({"AAA": [100.0, 105.0, 110.0]}, index=index)
    entries = pd.DataFrame({"AAA": [True, False, False]}, index=index)
    exits = pd.DataFrame({"AAA": [False, False, True]}, index=index)
    defaults = dict(
        close=close,
        initial_capital=1_000.0,
        commission=0.001,
        slippage=0.01,
        kind="signal",
        entries=entries,
        exits=exits,
    )
    return EngineInput(**{**defaults, **options})


def test_registry_lists_both_engines_and_rejects_unknown_names():
    assert available_engines() == ["backtrader", "vectorbt"]
    with pytest.raises(EngineError, match="Unknown engine 'zipline'"):
        get_engine("zipline")


def test_the_registry_says_which_engines_batch_signal_runs():
    assert runs_signal_batches("vectorbt")
    assert not runs_signal_batches("backtrader")
    assert not runs_signal_batches("no-such-engine")


def test_the_registry_answers_every_other_question_about_engines():
    assert registry.engines_default_first() == ("vectorbt", "backtrader")
    assert registry.other_engine("vectorbt") == "backtrader"
    assert registry.other_engine("backtrader") == "vectorbt"
    assert registry.distribution("vectorbt") == "vectorbt"
    assert registry.distribution("backtrader") == "backtrader"
    assert registry.distribution("no-such-engine") == "no-such-engine"
    assert registry.runs_quickly("vectorbt")
    assert not registry.runs_quickly("backtrader")
    assert not registry.runs_quickly("no-such-engine")


def test_fills_at_close_with_slippage_and_commission_by_hand(engine):
    result = engine.run(three_bars())
    shares = 1_000.0 / 1.001 / 101.0
    exit_price = 110.0 * 0.99
    final_cash = shares * exit_price * (1 - 0.001)
    np.testing.assert_allclose(result.equity, [shares * 100, shares * 105, final_cash], rtol=1e-12)
    trade = result.trades.iloc[0]
    assert (trade["side"], trade["exit_reason"]) == ("long", "opposite_signal")
    np.testing.assert_allclose(trade["pnl"], final_cash - 1_000.0, rtol=1e-12)
    np.testing.assert_allclose(trade["entry_price"], 101.0)
    assert list(result.orders["side"]) == ["buy", "sell"]
    np.testing.assert_allclose(result.positions["AAA"], [shares, shares, 0.0])


def test_open_position_at_the_end_is_an_end_of_data_trade_marked_to_market(engine):
    index = pd.bdate_range("2024-01-01", periods=3)
    no_exit = pd.DataFrame({"AAA": [False, False, False]}, index=index)
    result = engine.run(three_bars(exits=no_exit, commission=0.0, slippage=0.0))
    trade = result.trades.iloc[0]
    assert trade["exit_reason"] == "end_of_data"
    assert trade["exit_price"] == pytest.approx(110.0, rel=1e-12)
    np.testing.assert_allclose(trade["pnl"], 100.0, rtol=1e-12)
    np.testing.assert_allclose(result.equity.iloc[-1], 1_100.0, rtol=1e-12)


def test_stop_loss_exits_at_the_close_that_breaches_it(engine):
    index = pd.bdate_range("2024-01-01", periods=4)
    close = pd.DataFrame({"AAA": [100.0, 97.0, 94.0, 99.0]}, index=index)
    entries = pd.DataFrame({"AAA": [True, False, False, False]}, index=index)
    data = three_bars(
        close=close, entries=entries, exits=None, commission=0.0, slippage=0.0, stop_loss=0.05
    )
    trade = engine.run(data).trades.iloc[0]
    assert trade["exit_reason"] == "stop_loss"
    assert trade["exit_date"] == index[2]
    assert trade["exit_price"] == 94.0


def test_several_symbols_in_a_signal_backtest_are_refused(engine):
    data = three_bars()
    close = data.close.assign(BBB=data.close["AAA"])
    with pytest.raises(EngineLimitationError, match="exactly one symbol"):
        engine.run(three_bars(close=close, entries=None, exits=None))


def test_bad_prices_are_refused_with_the_symbol_named(engine):
    data = three_bars()
    bad = data.close.copy()
    bad.iloc[1, 0] = np.nan
    with pytest.raises(EngineError, match="AAA"):
        engine.run(three_bars(close=bad))


def test_progress_is_reported_from_zero_to_one(engine):
    seen = []
    engine.run(three_bars(progress=seen.append))
    assert seen[0] == 0.0 and seen[-1] == 1.0


def test_fractional_reversal_runs_on_backtrader():
    index = pd.bdate_range("2024-01-01", periods=3)
    shorts = pd.DataFrame({"AAA": [False, True, False]}, index=index)
    data = three_bars(direction="both", size=0.5, short_entries=shorts, exits=None)
    result = get_engine("backtrader").run(data)
    assert list(result.trades["side"]) == ["long", "short"]
    assert result.trades["exit_reason"].tolist() == ["opposite_signal", "end_of_data"]


@pytest.mark.usefixtures("warm_vectorbt")
def test_fractional_reversal_is_a_documented_vectorbt_limitation():
    with pytest.raises(EngineLimitationError, match="cannot reverse"):
        get_engine("vectorbt").run(three_bars(direction="both", size=0.5))

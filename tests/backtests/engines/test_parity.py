"""Both engines, same backtest, same numbers (SPEC §6), on real bundled prices."""

import numpy as np
import pandas as pd
import pytest
import talib

from backtests.engines import EngineInput, get_engine
from tests.backtests.engines.conftest import load_adjusted_closes

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("warm_vectorbt")]

RELATIVE = 1e-9


def run_both(data: EngineInput):
    return get_engine("vectorbt").run(data), get_engine("backtrader").run(data)


def assert_same_run(vectorbt_result, backtrader_result):
    np.testing.assert_allclose(
        backtrader_result.equity.to_numpy(), vectorbt_result.equity.to_numpy(), rtol=RELATIVE
    )
    assert backtrader_result.equity.index.equals(vectorbt_result.equity.index)
    np.testing.assert_allclose(
        backtrader_result.positions.to_numpy(),
        vectorbt_result.positions.to_numpy(),
        rtol=RELATIVE,
        atol=1e-9,
    )
    ours, theirs = vectorbt_result.trades, backtrader_result.trades
    assert len(ours) == len(theirs)
    for column in ("symbol", "side", "entry_date", "exit_date", "exit_reason"):
        assert ours[column].tolist() == theirs[column].tolist(), column
    for column in ("size", "entry_price", "exit_price", "fees"):
        np.testing.assert_allclose(theirs[column], ours[column], rtol=RELATIVE, err_msg=column)
    np.testing.assert_allclose(theirs["pnl"], ours["pnl"], rtol=RELATIVE, atol=1e-6)
    assert len(vectorbt_result.orders) == len(backtrader_result.orders)
    assert (vectorbt_result.orders["date"] == backtrader_result.orders["date"]).all()
    assert (vectorbt_result.orders["side"] == backtrader_result.orders["side"]).all()
    np.testing.assert_allclose(
        backtrader_result.orders["size"], vectorbt_result.orders["size"], rtol=RELATIVE
    )


@pytest.fixture(scope="module")
def spy():
    return load_adjusted_closes(["SPY"], "2013-01-01", "2024-12-31")


def sma_crossover(close):
    fast, slow = close.rolling(50).mean(), close.rolling(200).mean()
    return fast > slow, fast < slow


def rsi_reversion(close):
    rsi = close.apply(lambda column: pd.Series(talib.RSI(column.to_numpy(), 14), close.index))
    return rsi < 30, rsi > 70


def momentum(close):
    change = close / close.shift(60) - 1
    return change > 0.05, change < -0.02


RULES = {"sma": sma_crossover, "rsi": rsi_reversion, "momentum": momentum}

SIGNAL_CASES = [
    ("sma", {}),
    ("sma", {"stop_loss": 0.04, "take_profit": 0.15}),
    ("sma", {"direction": "both", "trailing_stop": 0.06, "max_holding_bars": 60}),
    ("rsi", {"max_holding_bars": 20, "stop_loss": 0.08}),
    ("rsi", {"direction": "short", "take_profit": 0.05, "trailing_stop": 0.05}),
    ("momentum", {"size": 0.5, "trailing_stop": 0.08, "stop_loss": 0.05}),
    ("momentum", {"direction": "both", "size_type": "shares", "size": 40.0, "stop_loss": 0.1}),
]


@pytest.mark.parametrize(("rule", "options"), SIGNAL_CASES)
def test_signal_strategies_agree(spy, rule, options):
    entries, exits = RULES[rule](spy)
    shorts = {}
    if options.get("direction") == "both":
        shorts = {"short_entries": exits, "short_exits": entries}
    data = EngineInput(
        close=spy,
        initial_capital=100_000.0,
        commission=0.001,
        slippage=0.0005,
        kind="signal",
        entries=entries,
        exits=exits,
        **shorts,
        **options,
    )
    vectorbt_result, backtrader_result = run_both(data)
    assert len(vectorbt_result.trades) >= 5
    assert_same_run(vectorbt_result, backtrader_result)


def test_stop_exits_of_every_kind_happen_and_agree(spy):
    entries, exits = sma_crossover(spy)
    data = EngineInput(
        close=spy,
        initial_capital=100_000.0,
        commission=0.001,
        slippage=0.0005,
        kind="signal",
        entries=entries,
        exits=exits,
        short_entries=exits,
        short_exits=entries,
        direction="both",
        stop_loss=0.03,
        trailing_stop=0.05,
        take_profit=0.08,
        max_holding_bars=40,
    )
    vectorbt_result, backtrader_result = run_both(data)
    assert_same_run(vectorbt_result, backtrader_result)
    reasons = set(vectorbt_result.trades["exit_reason"])
    assert {"stop_loss", "trailing_stop", "take_profit", "time_exit"} <= reasons


def month_starts(index: pd.DatetimeIndex) -> np.ndarray:
    periods = index.to_period("M")
    return np.r_[True, periods[1:] != periods[:-1]]


def test_sixty_forty_monthly_agrees():
    close = load_adjusted_closes(["SPY", "AGG"], "2012-01-01", "2024-12-31")
    weights = pd.DataFrame(np.nan, index=close.index, columns=close.columns)
    weights.loc[month_starts(close.index)] = [0.6, 0.4]
    data = EngineInput(
        close=close,
        initial_capital=100_000.0,
        commission=0.0035,
        slippage=0.0005,
        kind="allocation",
        target_weights=weights,
    )
    assert_same_run(*run_both(data))


def test_switching_portfolio_with_cash_agrees():
    close = load_adjusted_closes(["SPY", "TLT", "GLD"], "2012-01-01", "2024-12-31")
    close["CASH"] = 1.0
    sma = close["SPY"].rolling(100).mean()
    risk_on = (close["SPY"] > sma).to_numpy()
    weights = np.where(risk_on[:, None], [0.7, 0.2, 0.1, 0.0], [0.0, 0.3, 0.3, 0.4])
    switches = np.r_[True, risk_on[1:] != risk_on[:-1]]
    rebalance = switches | month_starts(close.index)
    target = pd.DataFrame(np.where(rebalance[:, None], weights, np.nan), close.index, close.columns)
    target.iloc[:100] = np.nan
    target.iloc[100] = [0.25, 0.25, 0.25, 0.25]
    data = EngineInput(
        close=close,
        initial_capital=100_000.0,
        commission=0.0035,
        slippage=0.001,
        kind="allocation",
        target_weights=target,
    )
    vectorbt_result, backtrader_result = run_both(data)
    assert (vectorbt_result.orders["symbol"] == "CASH").any()
    assert_same_run(vectorbt_result, backtrader_result)


def test_sixty_forty_without_costs_matches_the_bt_library():
    import bt

    close = load_adjusted_closes(["SPY", "AGG"], "2010-01-01", "2024-12-31")
    strategy = bt.Strategy(
        "60/40",
        [bt.algos.RunMonthly(), bt.algos.WeighSpecified(SPY=0.6, AGG=0.4), bt.algos.Rebalance()],
    )
    reference = bt.run(
        bt.Backtest(strategy, close, initial_capital=100_000.0, integer_positions=False)
    )
    reference_values = reference["60/40"].prices * 1_000.0  # bt's index starts at 100

    # bt's RunMonthly also trades on the first row (bt adds its own valuation row before it,
    # which the reindexing below drops), then on each month's first trading day.
    weights = pd.DataFrame(np.nan, index=close.index, columns=close.columns)
    weights.loc[month_starts(close.index)] = [0.6, 0.4]
    data = EngineInput(
        close=close,
        initial_capital=100_000.0,
        commission=0.0,
        slippage=0.0,
        kind="allocation",
        target_weights=weights,
    )
    ours = get_engine("vectorbt").run(data).equity
    aligned = reference_values.reindex(ours.index)
    assert aligned.notna().all()
    np.testing.assert_allclose(ours.to_numpy(), aligned.to_numpy(), rtol=1e-6)

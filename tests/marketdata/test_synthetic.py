import numpy as np
import pandas as pd
import pytest

from marketdata.base import MarketDataError
from marketdata.synthetic import (
    WIPEOUT_RESIDUAL,
    SymbolSpec,
    leveraged_prices,
    parse_symbol,
)


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("SPY", SymbolSpec("SPY")),
        (" spy ", SymbolSpec("SPY")),
        ("^GSPC", SymbolSpec("GSPC")),
        ("CASH", SymbolSpec("CASH")),
        ("QQQ?L=3", SymbolSpec("QQQ", leverage=3.0)),
        ("spy?l=0.5", SymbolSpec("SPY", leverage=0.5)),
        ("QQQ?L=3&E=0.95&SP=0.5", SymbolSpec("QQQ", leverage=3.0, expense=0.95, spread=0.5)),
        ("SPY?SP=1&L=10", SymbolSpec("SPY", leverage=10.0, spread=1.0)),
    ],
)
def test_parse_symbol_accepts_the_documented_forms(text, spec):
    assert parse_symbol(text) == spec


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("SPY?L=abc", "Invalid leverage format in 'SPY?L=abc': L must be a number, got 'abc'"),
        (
            "SPY?L=0",
            "Invalid leverage format in 'SPY?L=0': leverage must be greater than 0 and at most 10,"
            " got 0",
        ),
        (
            "SPY?L=11",
            "Invalid leverage format in 'SPY?L=11': leverage must be greater than 0 and at most "
            "10, got 11",
        ),
        ("SPY?X=1", "Invalid leverage format in 'SPY?X=1': unknown key 'X' (allowed: L, E, SP)"),
        (
            "SPY?E=1",
            "Invalid leverage format in 'SPY?E=1': L (the leverage multiplier) is required, "
            "e.g. SPY?L=2",
        ),
        ("SPY?L", "Invalid leverage format in 'SPY?L': expected KEY=VALUE, got 'L'"),
        ("SPY?L=2&L=3", "Invalid leverage format in 'SPY?L=2&L=3': L is given more than once"),
        ("SPY?L=inf", "Invalid leverage format in 'SPY?L=inf': L must be a number, got 'inf'"),
        (
            "SPY?L=2&E=-1",
            "Invalid leverage format in 'SPY?L=2&E=-1': E is an annual percentage between 0 and "
            "100, got -1",
        ),
        ("CASH?L=2", "Invalid leverage format in 'CASH?L=2': CASH cannot be leveraged"),
        (
            "S P Y",
            "Invalid symbol 'S P Y': a symbol is 1 to 20 letters, digits, '.', '-', '_' or '=' "
            "(a leveraged symbol adds ?L=x, e.g. SPY?L=2)",
        ),
        ("", "Invalid symbol '': a symbol is required"),
    ],
)
def test_parse_symbol_refuses_bad_formats_with_the_reason(text, message):
    with pytest.raises(MarketDataError) as raised:
        parse_symbol(text)
    assert str(raised.value) == message


def daily_returns(frame: pd.DataFrame, symbol: str) -> np.ndarray:
    close = frame[symbol].to_numpy()
    return close[1:] / close[:-1] - 1


def test_two_times_leverage_doubles_every_daily_return(store):
    prices = store.load(["SPY", "SPY?L=2"], "2015-01-01", "2020-12-31")

    spy, leveraged = daily_returns(prices.close, "SPY"), daily_returns(prices.close, "SPY?L=2")
    np.testing.assert_allclose(leveraged, 2 * spy, rtol=0, atol=1e-12)
    for field in ("open", "high", "low"):
        pd.testing.assert_series_equal(
            getattr(prices, field)["SPY?L=2"], prices.close["SPY?L=2"], check_names=False
        )
    assert (prices.volume["SPY?L=2"] == 0).all()
    assert prices.completeness["SPY?L=2"] == 1.0


def test_expense_and_spread_are_deducted_daily(store):
    prices = store.load(["QQQ", "QQQ?L=3&E=0.95&SP=0.5"], "2018-01-01", "2020-12-31")

    underlying = daily_returns(prices.close, "QQQ")
    leveraged = daily_returns(prices.close, "QQQ?L=3&E=0.95&SP=0.5")
    daily_cost = 0.0095 / 252 + 2 * 0.005 / 252
    np.testing.assert_allclose(leveraged, 3 * underlying - daily_cost, rtol=0, atol=1e-12)


def test_spread_is_not_charged_without_borrowing(store):
    prices = store.load(["SPY", "SPY?L=0.5&SP=3"], "2019-01-01", "2019-12-31")

    np.testing.assert_allclose(
        daily_returns(prices.close, "SPY?L=0.5&SP=3"),
        0.5 * daily_returns(prices.close, "SPY"),
        rtol=0,
        atol=1e-12,
    )


def test_leveraged_series_starts_at_the_underlyings_first_close(store):
    prices = store.load(["SPY?L=3"], "1993-01-29", "1993-03-01")
    raw = prices.close["SPY?L=3"]

    adjusted_spy = store.load("SPY", "1993-01-29", "1993-03-01").close["SPY"]
    assert raw.iloc[0] == adjusted_spy.iloc[0]
    # The same day in a later window carries the same price: it does not restart at the window.
    later = store.load(["SPY?L=3"], "1993-02-10", "1993-03-01").close["SPY?L=3"]
    assert later.loc["1993-02-10"] == raw.loc["1993-02-10"]


def test_a_wiped_out_series_stays_at_a_tiny_positive_price():
    underlying = np.array([100.0, 110.0, 50.0, 60.0, 70.0])
    spec = SymbolSpec("X", leverage=3.0)

    prices = leveraged_prices(underlying, spec)

    assert prices[1] == pytest.approx(130.0)  # +10 % × 3
    assert prices[2] == pytest.approx(130.0 * WIPEOUT_RESIDUAL)  # −54.5 % × 3 is below −100 %
    assert prices[3] == prices[4] == prices[2]
    assert (prices > 0).all()


def test_cash_is_constant_with_zero_returns_and_needs_no_data(store):
    mixed = store.load(["SPY", "CASH"], "2020-01-01", "2020-12-31")
    assert (mixed.close["CASH"] == 1.0).all()
    assert (mixed.volume["CASH"] == 0).all()
    assert (daily_returns(mixed.close, "CASH") == 0).all()
    assert mixed.close.index.equals(store.load("SPY", "2020-01-01", "2020-12-31").close.index)
    assert mixed.completeness["CASH"] == 1.0

    alone = store.load(["CASH"], "1850-01-01", "2150-12-31")
    assert alone.start == pd.Timestamp("1900-01-01")
    assert (alone.open["CASH"] == 1.0).all()

    holiday_week = store.load("CASH", "2020-12-21", "2020-12-31", warmup_bars=2)
    assert list(holiday_week.close.index.strftime("%Y-%m-%d")) == [
        "2020-12-17",
        "2020-12-18",
        "2020-12-21",
        "2020-12-22",
        "2020-12-23",
        "2020-12-24",
        "2020-12-28",
        "2020-12-29",
        "2020-12-30",
        "2020-12-31",
    ]

import time
from datetime import date

import numpy as np
import pandas as pd
import pytest

from marketdata.sources import BundledSource, InMemorySource
from marketdata.store import (
    PRICE_FIELDS,
    BatchLookups,
    MarketDataError,
    PriceFrame,
    PriceStore,
    get_store,
)


def bundled_history(symbol: str) -> pd.DataFrame:
    return BundledSource().load(symbol)


# -- alignment, completeness, warm-up --------------------------------------------------------------


def test_alignment_starts_at_bnd_inception_with_earlier_bars_as_warmup(store):
    prices = store.load(["SPY", "BND", "QQQ"], "2007-04-10", "2007-06-29", warmup_bars=3)

    assert list(prices.close.columns) == ["SPY", "BND", "QQQ"]
    assert prices.start == pd.Timestamp("2007-04-10")
    assert prices.end == pd.Timestamp("2007-06-29")
    # Three bars before BND's first day: SPY and QQQ traded, BND did not exist yet.
    warmup = prices.close.loc[:"2007-04-09"]
    assert list(warmup.index.date) == [date(2007, 4, 4), date(2007, 4, 5), date(2007, 4, 9)]
    assert warmup["BND"].isna().all()
    assert warmup[["SPY", "QQQ"]].notna().all().all()
    window = prices.close.loc["2007-04-10":]
    spy_dates = bundled_history("SPY").loc["2007-04-10":"2007-06-29"].index
    assert window.index.equals(spy_dates.rename("date"))
    assert window.notna().all().all()
    assert prices.completeness == {"SPY": 1.0, "BND": 1.0, "QQQ": 1.0}
    assert prices.warmup_bars == 3


def test_gaps_are_carried_forward_and_lower_completeness(store):
    bnd = bundled_history("BND")
    dropped = pd.to_datetime(["2020-03-10", "2020-03-11", "2020-03-20"])
    store.register_source("gappy", InMemorySource({"BNDGAP": bnd.drop(index=dropped)}))

    prices = store.load(["SPY", "BNDGAP"], "2020-03-01", "2020-03-31", adjustment="split_only")

    spy_march = bundled_history("SPY").loc["2020-03-01":"2020-03-31"]
    assert prices.close.index.equals(spy_march.index.rename("date"))  # union keeps SPY's days
    carried_close = bnd.loc["2020-03-09", "close"]
    for day in ("2020-03-10", "2020-03-11"):
        assert prices.close.loc[day, "BNDGAP"] == carried_close
        assert prices.open.loc[day, "BNDGAP"] == carried_close
        assert prices.high.loc[day, "BNDGAP"] == carried_close
        assert prices.low.loc[day, "BNDGAP"] == carried_close
        assert prices.volume.loc[day, "BNDGAP"] == 0
    assert prices.close.loc["2020-03-20", "BNDGAP"] == bnd.loc["2020-03-19", "close"]
    assert prices.close.loc["2020-03-12", "BNDGAP"] == bnd.loc["2020-03-12", "close"]
    bars = len(spy_march)
    assert prices.completeness["BNDGAP"] == pytest.approx((bars - 3) / bars, abs=1e-15)
    assert prices.completeness["SPY"] == 1.0


def test_gap_on_the_first_window_day_is_filled_from_history_before_the_window(store):
    bnd = bundled_history("BND")
    store.register_source("gappy", InMemorySource({"BNDGAP": bnd.drop(index=["2020-03-02"])}))

    prices = store.load(["SPY", "BNDGAP"], "2020-03-02", "2020-03-31", adjustment="split_only")

    assert prices.start == pd.Timestamp("2020-03-02")
    assert prices.close.loc["2020-03-02", "BNDGAP"] == bnd.loc["2020-02-28", "close"]


def test_warmup_gives_200_daily_bars_before_the_start(store):
    prices = store.load("SPY", "2020-01-02", "2020-12-31", warmup_bars=200)

    spy = bundled_history("SPY")
    expected_warmup = spy.loc[:"2019-12-31"].index[-200:]
    assert prices.warmup_bars == 200
    assert prices.close.index[:200].equals(expected_warmup.rename("date"))
    assert prices.close.index[200] == prices.start == pd.Timestamp("2020-01-02")
    assert prices.window().close.index[0] == pd.Timestamp("2020-01-02")
    assert len(prices.window().close) == len(spy.loc["2020-01-02":"2020-12-31"])


def test_warmup_is_shorter_when_the_data_does_not_reach_back(store):
    prices = store.load("SPY", "1993-02-05", "1993-12-31", warmup_bars=200)

    assert prices.warmup_bars == 5  # SPY starts 1993-01-29
    assert prices.close.index[0] == pd.Timestamp("1993-01-29")


def test_weekly_warmup_counts_weeks(store):
    prices = store.load("SPY", "2020-01-06", "2020-06-30", timeframe="1wk", warmup_bars=4)

    assert list(prices.close.index[:5].date) == [
        date(2019, 12, 13),
        date(2019, 12, 20),
        date(2019, 12, 27),
        date(2020, 1, 3),
        date(2020, 1, 10),
    ]
    assert prices.start == pd.Timestamp("2020-01-10")


# -- price adjustment ------------------------------------------------------------------------------


def test_total_return_of_spy_in_2020_matches_the_published_figure(store):
    prices = store.load("SPY", "2019-12-31", "2020-12-31")

    close = prices.close["SPY"]
    total_return = close.iloc[-1] / close.iloc[0] - 1
    # SPY's published 2020 total return (dividends reinvested) is about 18.4 %.
    assert total_return == pytest.approx(0.184, abs=0.002)
    spy = bundled_history("SPY")
    assert close.to_numpy() == pytest.approx(
        spy.loc["2019-12-31":"2020-12-31", "adj_close"].to_numpy(), rel=0, abs=0
    )


def test_total_return_scales_every_ohlc_field_by_adj_close_over_close(store):
    prices = store.load(["SPY", "AAPL"], "2015-01-01", "2020-12-31")

    for symbol in ("SPY", "AAPL"):
        raw = bundled_history(symbol).loc["2015-01-01":"2020-12-31"]
        factor = (raw["adj_close"] / raw["close"]).to_numpy()
        for field in ("open", "high", "low"):
            adjusted = getattr(prices, field)[symbol].to_numpy()
            np.testing.assert_allclose(adjusted / raw[field].to_numpy(), factor, rtol=1e-14)
        np.testing.assert_array_equal(prices.volume[symbol].to_numpy(), raw["volume"].to_numpy())


def test_split_only_keeps_the_stored_prices(store):
    prices = store.load(["SPY", "AAPL"], "2020-01-01", "2020-01-31", adjustment="split_only")

    assert prices.close.loc["2020-01-02", "SPY"] == 324.87
    assert prices.close.loc["2020-01-02", "AAPL"] == pytest.approx(75.0875, rel=1e-6)
    assert prices.adjustment == "split_only"


# -- coverage and errors ---------------------------------------------------------------------------


def test_unknown_symbol_names_what_is_available(store):
    with pytest.raises(MarketDataError) as raised:
        store.load(["SPY", "XYZ"], "2020-01-01", "2020-12-31")

    available = ", ".join(coverage.symbol for coverage in store.symbols())
    assert str(raised.value) == (
        "Symbol XYZ data not available for requested date range "
        f"(no data for XYZ; available symbols: {available})"
    )
    assert raised.value.symbol == "XYZ"
    assert raised.value.coverage is None
    assert available.startswith("AAPL, AGG, AMZN, BND")


def test_range_before_the_data_names_the_coverage(store):
    with pytest.raises(MarketDataError) as raised:
        store.load(["SPY", "BND"], "2005-01-01", "2010-01-01")

    assert str(raised.value) == (
        "Symbol BND data not available for requested date range 2005-01-01 to 2010-01-01 "
        "(BND has data from 2007-04-10 to 2024-12-06)"
    )
    assert raised.value.symbol == "BND"
    assert raised.value.coverage == store.coverage("BND")


def test_range_after_the_data_is_refused(store):
    with pytest.raises(MarketDataError, match=r"BND has data from 2007-04-10 to 2024-12-06"):
        store.load("BND", "2024-01-01", "2024-12-31")


def test_range_may_start_and_end_on_non_trading_days(store):
    # 2007-04-10 is BND's first day; 2024-12-06 (a Friday) its last.
    prices = store.load("BND", "2007-04-10", "2024-12-08")
    assert prices.end == pd.Timestamp("2024-12-06")
    # SPY data begins 1993-01-29 (a Friday): a request from Saturday 1993-01-23 is not covered,
    # but one from 1993-01-29 is.
    store.load("SPY", "1993-01-29", "1993-03-01")
    # New Year's Day is a holiday: data from 2020-01-02 covers a request from 2020-01-01.
    later_series = bundled_history("SPY").loc["2020-01-02":]
    store.register_source("memory", InMemorySource({"NEW": later_series}))
    prices = store.load("NEW", "2020-01-01", "2020-02-01")
    assert prices.start == pd.Timestamp("2020-01-02")
    with pytest.raises(MarketDataError, match="NEW has data from 2020-01-02"):
        store.load("NEW", "2019-12-31", "2020-02-01")


def test_leveraged_symbol_errors_name_the_requested_symbol_and_the_underlying(store):
    with pytest.raises(MarketDataError) as raised:
        store.load("BND?L=2", "2005-01-01", "2010-01-01")
    assert str(raised.value) == (
        "Symbol BND?L=2 data not available for requested date range 2005-01-01 to 2010-01-01 "
        "(BND has data from 2007-04-10 to 2024-12-06)"
    )
    assert raised.value.symbol == "BND?L=2"


def test_start_not_before_end_is_refused(store):
    with pytest.raises(MarketDataError) as raised:
        store.load("SPY", "2020-01-01", "2020-01-01")
    assert str(raised.value) == "Start date 2020-01-01 must be before end date 2020-01-01"
    with pytest.raises(MarketDataError, match="Start date 2021-01-01 must be before end date"):
        store.load("SPY", date(2021, 1, 1), date(2020, 1, 1))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"start": "2020-13-01"}, "Invalid start date '2020-13-01': expected YYYY-MM-DD"),
        ({"adjustment": "dividends"}, "Unknown price adjustment 'dividends'"),
        ({"timeframe": "1h"}, "Unknown timeframe '1h'; expected one of 1d, 1wk, 1mo"),
        ({"warmup_bars": -1}, "warmup_bars must not be negative, got -1"),
        ({"symbols": []}, "At least one symbol is required"),
        ({"symbols": ["SPY?L=abc"]}, "Invalid leverage format in 'SPY?L=abc'"),
    ],
)
def test_bad_arguments_are_refused_with_a_clear_message(store, arguments, message):
    call = {"symbols": ["SPY"], "start": "2020-01-01", "end": "2020-12-31", **arguments}
    symbols, start, end = call.pop("symbols"), call.pop("start"), call.pop("end")
    with pytest.raises(MarketDataError) as raised:
        store.load(symbols, start, end, **call)
    assert str(raised.value).startswith(message)


def test_a_window_without_trading_days_is_refused(store):
    with pytest.raises(MarketDataError, match="No trading days between 2020-01-04 and 2020-01-05"):
        store.load("SPY", "2020-01-04", "2020-01-05")


def test_coverage_problems_lists_every_bad_symbol(store):
    problems = store.coverage_problems(
        ["SPY", "XYZ", "BND", "QQQ?L=11", "CASH"], "2005-01-01", "2010-01-01"
    )

    assert [problem.symbol for problem in problems] == ["XYZ", "BND", "QQQ?L=11"]
    assert store.coverage_problems(["SPY", "CASH", "QQQ?L=3"], "2010-01-01", "2020-01-01") == []


def test_symbols_lists_the_bundled_coverage(store):
    coverage = {item.symbol: item for item in store.symbols()}

    assert len(coverage) == 20
    assert coverage["GSPC"].first_date == date(1927, 12, 30)
    assert coverage["GSPC"].rows == 24748
    assert coverage["SPY"].last_date == date(2025, 9, 26)
    assert coverage["BND"].source == "bundled"
    assert store.coverage("^GSPC").symbol == "GSPC"
    assert store.coverage("QQQ?L=3").source == "synthetic"
    assert store.coverage("QQQ?L=3").first_date == date(1999, 3, 10)


# -- sources ---------------------------------------------------------------------------------------


def test_registered_source_adds_symbols_and_changes_are_noticed():
    memory = InMemorySource()
    store = PriceStore([("bundled", BundledSource()), ("uploaded", memory)])
    series = bundled_history("SPY").loc["2020-01-02":"2020-12-31"]
    memory.put("MYSPY", series)

    first = store.load("MYSPY", "2020-01-01", "2020-12-31", adjustment="split_only")
    assert first.close["MYSPY"].iloc[0] == 324.87
    assert store.coverage("MYSPY").source == "memory"

    memory.put("MYSPY", series * 2)
    second = store.load("MYSPY", "2020-01-01", "2020-12-31", adjustment="split_only")
    assert second.close["MYSPY"].iloc[0] == 649.74
    assert first.data_hash != second.data_hash


def test_the_first_registered_source_wins_for_a_symbol():
    fake_spy = bundled_history("SPY") * 3
    uploaded = InMemorySource({"SPY": fake_spy})
    store = PriceStore([("bundled", BundledSource()), ("uploaded", uploaded)])

    prices = store.load("SPY", "2020-01-01", "2020-01-31", adjustment="split_only")

    assert prices.close.loc["2020-01-02", "SPY"] == 324.87


def test_a_source_without_the_protocol_is_refused(store):
    with pytest.raises(TypeError, match="has no symbols"):
        store.register_source("broken", object())


def test_get_store_is_one_process_wide_store_with_bundled_data():
    assert get_store() is get_store()
    assert "bundled" in get_store().source_names
    assert get_store().load("SPY", "2020-01-01", "2020-01-10").close.shape == (7, 1)


# -- cache -----------------------------------------------------------------------------------------


def assert_same_frames(first: PriceFrame, second: PriceFrame) -> None:
    for field in ("open", "high", "low", "close", "volume"):
        pd.testing.assert_frame_equal(getattr(first, field), getattr(second, field))
    assert (first.start, first.end, first.completeness, first.data_hash) == (
        second.start,
        second.end,
        second.completeness,
        second.data_hash,
    )


def test_cache_hit_returns_an_equal_frame_that_callers_cannot_corrupt(store):
    arguments = (["SPY", "QQQ?L=3", "CASH"], "2015-01-01", "2020-12-31")
    first = store.load(*arguments, warmup_bars=50)
    original_close = first.close.copy(deep=True)

    first.close.iloc[0, 0] = -1.0
    first.close["EXTRA"] = 1.0
    first.completeness["SPY"] = 0.0

    second = store.load(*arguments, warmup_bars=50)
    pd.testing.assert_frame_equal(second.close, original_close)
    assert second.completeness["SPY"] == 1.0
    uncached = PriceStore([("bundled", BundledSource())]).load(*arguments, warmup_bars=50)
    assert_same_frames(second, uncached)


def test_data_hash_follows_the_values(store):
    base = store.load("SPY", "2020-01-01", "2020-12-31")
    assert base.data_hash == store.load("SPY", date(2020, 1, 1), date(2020, 12, 31)).data_hash
    assert len(base.data_hash) == 64
    others = {
        store.load("SPY", "2020-01-01", "2020-12-30").data_hash,
        store.load("SPY", "2020-01-01", "2020-12-31", adjustment="split_only").data_hash,
        store.load("SPY", "2020-01-01", "2020-12-31", warmup_bars=1).data_hash,
        store.load("QQQ", "2020-01-01", "2020-12-31").data_hash,
    }
    assert base.data_hash not in others
    assert len(others) == 4


def test_loads_are_fast_cold_and_cached():
    arguments = (["SPY", "TLT", "GLD"], "2010-01-01", "2019-12-31")
    get_store().load(*arguments)  # imports and the trading calendar, once per process

    cold = []
    for _ in range(3):
        fresh = PriceStore([("bundled", BundledSource())])
        started = time.perf_counter()
        fresh.load(*arguments)
        cold.append(time.perf_counter() - started)
    cached = []
    for _ in range(50):
        started = time.perf_counter()
        fresh.load(*arguments)
        cached.append(time.perf_counter() - started)

    # Targets are ~20 ms cold and well under 1 ms cached; the bounds leave room for a busy machine.
    assert min(cold) < 0.100
    assert np.median(cached) < 0.001


def test_the_frame_cache_is_bounded_by_bytes_as_well_as_by_count():
    one_year = PriceStore([("bundled", BundledSource())]).load("SPY", "2020-01-01", "2020-12-31")
    size = sum(getattr(one_year, name).to_numpy().nbytes for name in PRICE_FIELDS)
    store = PriceStore([("bundled", BundledSource())], frame_cache_bytes=int(2.5 * size))

    for warmup in range(4):  # four frames of (nearly) one year each: two and a half fit
        store.load("SPY", "2020-01-01", "2020-12-31", warmup_bars=warmup)

    kept = [key[5] for key in store._frames.entries]
    assert kept == [2, 3]
    assert store._frames.total_bytes <= 2.5 * size
    many = PriceStore([("bundled", BundledSource())], frame_cache_size=3)
    for warmup in range(5):
        many.load("SPY", "2020-01-01", "2020-12-31", warmup_bars=warmup)
    assert [key[5] for key in many._frames.entries] == [2, 3, 4]
    assert_same_frames(
        many.load("SPY", "2020-01-01", "2020-12-31", warmup_bars=3),
        store.load("SPY", "2020-01-01", "2020-12-31", warmup_bars=3),
    )


def test_a_frame_larger_than_the_budget_is_still_served_and_kept_alone():
    store = PriceStore([("bundled", BundledSource())], frame_cache_bytes=1)
    first = store.load("SPY", "2020-01-01", "2020-12-31")
    second = store.load("SPY", "2021-01-01", "2021-12-31")
    assert len(first.close) == 253 and len(second.close) == 252
    assert [key[1].year for key in store._frames.entries] == [2021]


class _CountingStore:
    """A store that counts the questions it is asked."""

    def __init__(self, store):
        self.store = store
        self.asked = []

    def coverage_problems(self, symbols, start, end):
        self.asked.append("coverage")
        return self.store.coverage_problems(symbols, start, end)

    def history_bars(self, symbols, end, *, timeframe="1d"):
        self.asked.append("history")
        return self.store.history_bars(symbols, end, timeframe=timeframe)

    def bar_count(self, start, end, *, timeframe="1d"):
        self.asked.append("bars")
        return self.store.bar_count(start, end, timeframe=timeframe)


def test_batch_lookups_ask_the_store_each_question_once_and_answer_as_it_does(store):
    counting = _CountingStore(store)
    lookups = BatchLookups(counting)
    symbols = ["SPY", "XYZ", "QQQ?L=11"]

    for _ in range(3):
        problems = lookups.coverage_problems(iter(symbols), "2005-01-01", "2010-01-01")
        assert [problem.symbol for problem in problems] == ["XYZ", "QQQ?L=11"]
        problems.clear()  # an answer is a copy: changing it changes nothing kept
        histories = lookups.history_bars(["SPY", "QQQ"], "2020-01-01")
        assert histories == store.history_bars(["SPY", "QQQ"], "2020-01-01")
        histories.clear()
        assert lookups.bar_count("2020-01-01", "2020-12-31") == store.bar_count(
            "2020-01-01", "2020-12-31"
        )
    assert sorted(counting.asked) == ["bars", "coverage", "history"]
    # Another question is asked again.
    lookups.coverage_problems(["SPY"], "2005-01-01", "2010-01-01")
    lookups.history_bars(["SPY", "QQQ"], "2020-01-01", timeframe="1wk")
    assert sorted(counting.asked) == ["bars", "coverage", "coverage", "history", "history"]

import numpy as np
import pandas as pd
import pytest

from marketdata.resample import resample_ohlcv
from marketdata.sources import BundledSource

# SPY rows from the bundled data (split-only prices), copied by hand.
WEEK_OF_2020_01_06 = [  # date, open, high, low, close, volume
    ("2020-01-06", 320.49, 323.73, 320.36, 323.64, 55653900),
    ("2020-01-07", 323.02, 323.54, 322.24, 322.73, 40496400),
    ("2020-01-08", 322.94, 325.78, 322.67, 324.45, 68296000),
    ("2020-01-09", 326.16, 326.73, 325.52, 326.65, 48473300),
    ("2020-01-10", 327.29, 327.46, 325.20, 325.71, 53029300),
]
# Good Friday 2020-04-10 was a holiday: the week ends on Thursday.
WEEK_OF_2020_04_06 = [
    ("2020-04-06", 257.84, 267.00, 248.17, 264.86, 188061200),
    ("2020-04-07", 274.21, 275.03, 264.89, 265.13, 201427200),
    ("2020-04-08", 267.96, 276.00, 265.25, 274.03, 153774500),
    ("2020-04-09", 277.58, 281.20, 275.47, 278.20, 189999200),
]


@pytest.mark.parametrize("rows", [WEEK_OF_2020_01_06, WEEK_OF_2020_04_06])
def test_weekly_bar_matches_a_hand_computation(store, rows):
    prices = store.load("SPY", "2020-01-01", "2020-06-30", timeframe="1wk", adjustment="split_only")
    label = rows[-1][0]

    assert prices.open.loc[label, "SPY"] == rows[0][1]
    assert prices.high.loc[label, "SPY"] == max(row[2] for row in rows)
    assert prices.low.loc[label, "SPY"] == min(row[3] for row in rows)
    assert prices.close.loc[label, "SPY"] == rows[-1][4]
    assert prices.volume.loc[label, "SPY"] == sum(row[5] for row in rows)


def test_weekly_labels_are_each_weeks_last_trading_day(store):
    prices = store.load("SPY", "2020-01-01", "2020-04-30", timeframe="1wk")

    labels = list(prices.close.index.strftime("%Y-%m-%d"))
    assert labels[:3] == ["2020-01-03", "2020-01-10", "2020-01-17"]
    assert "2020-04-09" in labels and "2020-04-10" not in labels
    assert labels[-1] == "2020-04-30"  # the window ends on a Thursday: a shorter last week
    assert prices.start == pd.Timestamp("2020-01-03")


def test_monthly_bars_match_an_independent_groupby(store):
    prices = store.load(
        ["SPY", "TLT"], "2015-01-01", "2020-12-31", timeframe="1mo", adjustment="split_only"
    )

    for symbol in ("SPY", "TLT"):
        daily = BundledSource().load(symbol).loc["2015-01-01":"2020-12-31"]
        groups = daily.groupby(daily.index.to_period("M"))
        expected = pd.DataFrame(
            {
                "date": groups.apply(lambda month: month.index[-1]),
                "open": groups["open"].nth(0).to_numpy(),
                "high": groups["high"].max(),
                "low": groups["low"].min(),
                "close": groups["close"].nth(-1).to_numpy(),
                "volume": groups["volume"].sum(),
            }
        ).set_index("date")
        assert prices.close.index.equals(pd.DatetimeIndex(expected.index, name="date"))
        for field in ("open", "high", "low", "close", "volume"):
            np.testing.assert_array_equal(
                getattr(prices, field)[symbol].to_numpy(), expected[field].to_numpy()
            )
    assert prices.close.index[1] == pd.Timestamp("2015-02-27")
    assert prices.completeness == {"SPY": 1.0, "TLT": 1.0}


def test_total_return_weekly_close_is_the_adjusted_daily_close(store):
    weekly = store.load("SPY", "2020-01-01", "2020-12-31", timeframe="1wk")
    daily = store.load("SPY", "2020-01-01", "2020-12-31")

    assert weekly.close.loc["2020-01-10", "SPY"] == daily.close.loc["2020-01-10", "SPY"]
    assert weekly.timeframe == "1wk"


def test_resample_ohlcv_handles_a_series_that_starts_mid_week():
    index = pd.to_datetime(["2020-01-08", "2020-01-09", "2020-01-10", "2020-01-13"])
    frame = pd.DataFrame(
        {
            "open": [10.0, 11.0, 12.0, 13.0],
            "high": [10.5, 11.5, 12.5, 13.5],
            "low": [9.5, 10.5, 11.5, 12.5],
            "close": [10.2, 11.2, 12.2, 13.2],
            "volume": [100.0, np.nan, 300.0, np.nan],
        },
        index=index,
    )

    weekly = resample_ohlcv(frame, "1wk")

    assert list(weekly.index.strftime("%Y-%m-%d")) == ["2020-01-10", "2020-01-13"]
    assert weekly.iloc[0].tolist() == [10.0, 12.5, 9.5, 12.2, 400.0]
    assert weekly.iloc[1, :4].tolist() == [13.0, 13.5, 12.5, 13.2]
    assert np.isnan(weekly.iloc[1]["volume"])  # no volume known in that week

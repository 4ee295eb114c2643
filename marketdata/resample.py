"""Aligned bar arrays and the resampling of daily bars into weekly and monthly bars (pure numpy).

A week runs Monday to Sunday and a month is a calendar month; each resampled bar is labelled with
the last trading day it contains (so a week whose Friday is a holiday ends on Thursday). Open is the
first open, high the highest high, low the lowest low, close the last close, volume the sum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

TIMEFRAMES = ("1d", "1wk", "1mo")

# 1970-01-01 was a Thursday: shifting by three days makes weeks start on Monday.
_EPOCH_WEEKDAY_SHIFT = 3


@dataclass(frozen=True)
class BarArrays:
    """Bars of several symbols on one shared index.

    ``dates``: datetime64[ns], strictly ascending, shape (n,). ``open``/``high``/``low``/``close``/
    ``volume``: float64, shape (n, k), NaN before a symbol's first bar (and for unknown volume).
    ``own``: bool, shape (n, k), whether the symbol had its own data in that bar (False where a
    value was carried forward from an earlier bar).
    """

    dates: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    own: np.ndarray

    def __len__(self) -> int:
        return len(self.dates)

    def rows(self, start: int, stop: int) -> BarArrays:
        return BarArrays(
            self.dates[start:stop],
            self.open[start:stop],
            self.high[start:stop],
            self.low[start:stop],
            self.close[start:stop],
            self.volume[start:stop],
            self.own[start:stop],
        )

    @staticmethod
    def concatenate(first: BarArrays, second: BarArrays) -> BarArrays:
        if not len(first):
            return second
        return BarArrays(
            *(
                np.concatenate([getattr(first, name), getattr(second, name)])
                for name in ("dates", "open", "high", "low", "close", "volume", "own")
            )
        )


def period_keys(dates: np.ndarray, timeframe: str) -> np.ndarray:
    """An integer per date, equal for dates in the same bar of ``timeframe``."""
    if timeframe == "1wk":
        days = dates.astype("datetime64[D]").astype(np.int64)
        return (days + _EPOCH_WEEKDAY_SHIFT) // 7
    if timeframe == "1mo":
        return dates.astype("datetime64[M]").astype(np.int64)
    if timeframe == "1d":
        return dates.astype("datetime64[D]").astype(np.int64)
    raise ValueError(f"unknown timeframe {timeframe!r}; expected one of {', '.join(TIMEFRAMES)}")


def period_starts(dates: np.ndarray, timeframe: str) -> np.ndarray:
    """Row positions where a new ``timeframe`` bar begins."""
    if not len(dates):
        return np.zeros(0, dtype=np.intp)
    keys = period_keys(dates, timeframe)
    return np.concatenate([[0], np.flatnonzero(np.diff(keys)) + 1]).astype(np.intp)


def resample_bars(bars: BarArrays, timeframe: str) -> BarArrays:
    """Aggregate daily ``bars`` into ``timeframe`` bars; ``1d`` returns ``bars`` unchanged."""
    if timeframe == "1d" or not len(bars):
        if timeframe not in TIMEFRAMES:
            raise ValueError(f"unknown timeframe {timeframe!r}")
        return bars
    starts = period_starts(bars.dates, timeframe)
    ends = np.concatenate([starts[1:], [len(bars)]]) - 1

    close = bars.close[ends]
    started = ~np.isnan(close)
    # NaN appears only before a symbol's first bar, so the first non-NaN open of a period is
    # the next non-NaN open from the period's first row, provided the symbol started by its end.
    open_ = np.where(started, _backfill(bars.open)[starts], np.nan)
    high = np.fmax.reduceat(bars.high, starts, axis=0)
    low = np.fmin.reduceat(bars.low, starts, axis=0)
    known_volume = ~np.isnan(bars.volume)
    volume_sum = np.add.reduceat(np.where(known_volume, bars.volume, 0.0), starts, axis=0)
    volume_known = np.logical_or.reduceat(known_volume, starts, axis=0)
    volume = np.where(volume_known, volume_sum, np.nan)
    own = np.logical_or.reduceat(bars.own, starts, axis=0)
    return BarArrays(bars.dates[ends], open_, high, low, close, volume, own)


def _backfill(values: np.ndarray) -> np.ndarray:
    rows = np.arange(len(values))[:, None]
    next_valid = np.where(np.isnan(values), len(values), rows)
    next_valid = np.minimum.accumulate(next_valid[::-1], axis=0)[::-1]
    padded = np.vstack([values, np.full((1, values.shape[1]), np.nan)])
    return np.take_along_axis(padded, next_valid, axis=0)


def resample_ohlcv(frame: pd.DataFrame, timeframe: str) -> pd.DataFrame:
    """Resample one symbol's daily ``open, high, low, close, volume`` frame (DatetimeIndex)."""
    columns = ["open", "high", "low", "close", "volume"]
    values = {name: frame[name].to_numpy(dtype=np.float64)[:, None] for name in columns}
    daily = BarArrays(
        dates=frame.index.to_numpy(dtype="datetime64[ns]"),
        own=np.ones((len(frame), 1), dtype=bool),
        **values,
    )
    bars = resample_bars(daily, timeframe)
    return pd.DataFrame(
        {name: getattr(bars, name)[:, 0] for name in columns},
        index=pd.DatetimeIndex(bars.dates, name="date"),
    )

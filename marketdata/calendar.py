"""The trading calendar used to decide whether a requested date range is covered.

Sessions are the dates of the bundled S&P 500 index history (``GSPC``: every US trading day from
1927-12-30), extended with Monday-to-Friday dates before and after it, where no real calendar is
bundled.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd

from marketdata.sources.bundled import BUNDLED_DATA_DIRECTORY, BundledSource

REFERENCE_SYMBOL = "GSPC"
_EXTENSION_START = pd.Timestamp("1900-01-01")
_EXTENSION_END = pd.Timestamp("2100-12-31")


class TradingCalendar:
    def __init__(self, sessions: np.ndarray) -> None:
        sessions = np.asarray(sessions, dtype="datetime64[ns]")
        if len(sessions) > 1 and not (np.diff(sessions) > np.timedelta64(0)).all():
            raise ValueError("trading sessions must be strictly ascending")
        self.sessions = sessions

    @classmethod
    def from_reference(cls, reference: np.ndarray) -> TradingCalendar:
        """``reference`` sessions, with weekdays outside their range (1900 to 2100)."""
        reference = np.asarray(reference, dtype="datetime64[ns]")
        if not len(reference):
            return cls(pd.bdate_range(_EXTENSION_START, _EXTENSION_END).to_numpy())
        first, last = pd.Timestamp(reference[0]), pd.Timestamp(reference[-1])
        before = pd.bdate_range(_EXTENSION_START, first - pd.Timedelta(days=1)).to_numpy()
        after = pd.bdate_range(last + pd.Timedelta(days=1), _EXTENSION_END).to_numpy()
        return cls(np.concatenate([before, reference, after]))

    def first_session_on_or_after(self, day: pd.Timestamp) -> pd.Timestamp | None:
        position = np.searchsorted(self.sessions, np.datetime64(day, "ns"), side="left")
        return pd.Timestamp(self.sessions[position]) if position < len(self.sessions) else None

    def last_session_on_or_before(self, day: pd.Timestamp) -> pd.Timestamp | None:
        position = np.searchsorted(self.sessions, np.datetime64(day, "ns"), side="right") - 1
        return pd.Timestamp(self.sessions[position]) if position >= 0 else None

    def sessions_through(
        self, end: pd.Timestamp, *, first: pd.Timestamp, earlier: int = 0
    ) -> np.ndarray:
        """Sessions from ``first`` to ``end`` inclusive, preceded by up to ``earlier`` more."""
        low = np.searchsorted(self.sessions, np.datetime64(first, "ns"), side="left")
        high = np.searchsorted(self.sessions, np.datetime64(end, "ns"), side="right")
        return self.sessions[max(low - earlier, 0) : high]


@functools.cache
def us_trading_calendar(directory: Path = BUNDLED_DATA_DIRECTORY) -> TradingCalendar:
    """The calendar of US trading days, from the bundled ``GSPC`` history (read once)."""
    frame = BundledSource(directory).load(REFERENCE_SYMBOL)
    reference = frame.index.to_numpy() if frame is not None else np.array([], "datetime64[ns]")
    return TradingCalendar.from_reference(reference)

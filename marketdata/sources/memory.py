"""A source holding frames in memory: for tests, notebooks and callers that build series."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Mapping

import pandas as pd

from marketdata.base import SOURCE_COLUMNS, SymbolCoverage

_versions = itertools.count(1)


class InMemorySource:
    """Symbols mapped to frames shaped like ``PriceSource.load``'s result.

    ``put``/``remove`` change the version, so a store notices the change on its next load.
    """

    def __init__(self, frames: Mapping[str, pd.DataFrame] | None = None, *, name: str = "memory"):
        self.name = name
        self._lock = threading.Lock()
        self._frames: dict[str, pd.DataFrame] = {}
        self._version = next(_versions)
        for symbol, frame in (frames or {}).items():
            self.put(symbol, frame)

    def put(self, symbol: str, frame: pd.DataFrame) -> None:
        missing = [column for column in SOURCE_COLUMNS if column not in frame.columns]
        if missing:
            raise ValueError(f"frame for {symbol} lacks columns {missing}")
        with self._lock:
            self._frames[symbol.upper()] = frame.loc[:, list(SOURCE_COLUMNS)].copy()
            self._version = next(_versions)

    def remove(self, symbol: str) -> None:
        with self._lock:
            self._frames.pop(symbol.upper(), None)
            self._version = next(_versions)

    def version(self) -> int:
        return self._version

    def symbols(self) -> list[SymbolCoverage]:
        with self._lock:
            return [
                SymbolCoverage(
                    symbol=symbol,
                    first_date=frame.index[0].date(),
                    last_date=frame.index[-1].date(),
                    rows=len(frame),
                    source=self.name,
                )
                for symbol, frame in sorted(self._frames.items())
                if len(frame)
            ]

    def load(self, symbol: str) -> pd.DataFrame | None:
        with self._lock:
            frame = self._frames.get(symbol)
        return None if frame is None else frame.copy()

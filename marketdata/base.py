"""Types shared by the price store, its sources and the synthetic symbols (no Django)."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from datetime import date
from typing import Protocol, runtime_checkable

import pandas as pd

#: Columns of a source frame (``PriceSource.load``), indexed by a DatetimeIndex named ``date``.
SOURCE_COLUMNS = ("open", "high", "low", "close", "adj_close", "volume")


@dataclass(frozen=True)
class SymbolCoverage:
    """Dates a symbol's own data covers, and which source holds it."""

    symbol: str
    first_date: date
    last_date: date
    rows: int
    source: str


class MarketDataError(ValueError):
    """Prices cannot be served as asked: unknown symbol, range not covered, bad request.

    ``symbol`` is the symbol as requested (None when the problem is not about one symbol);
    ``coverage`` is the data that does exist for it (None when there is none).
    """

    def __init__(
        self,
        message: str,
        *,
        symbol: str | None = None,
        coverage: SymbolCoverage | None = None,
    ) -> None:
        super().__init__(message)
        self.symbol = symbol
        self.coverage = coverage

    @property
    def message(self) -> str:
        return str(self.args[0])


@runtime_checkable
class PriceSource(Protocol):
    """Where daily bars come from; registered on a ``PriceStore`` by name.

    - ``symbols()`` lists every symbol the source holds with its coverage (symbols upper case).
    - ``load(symbol)`` returns that symbol's whole history, or None when the source does not hold
      it: a frame indexed by a tz-naive, strictly ascending DatetimeIndex of dates named ``date``,
      columns ``SOURCE_COLUMNS``: OHLC split-adjusted, ``adj_close`` split- and dividend-adjusted
      (equal to close when the series pays nothing), ``volume`` (may hold missing values).
    - ``version()`` is a cheap hashable token that changes whenever any of the source's data
      changes; the store calls it on every ``load`` to decide whether its cache is still valid.
    """

    def symbols(self) -> list[SymbolCoverage]: ...

    def load(self, symbol: str) -> pd.DataFrame | None: ...

    def version(self) -> Hashable: ...

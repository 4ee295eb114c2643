"""Real daily prices for the strategy-language tests, without a database.

Prefers the market-data store (split-adjusted prices, all history loaded as warm-up, then cut at
``history_start``); without it, reads the bundled Parquet files (or the shared CSVs) into a frame
shaped like ``marketdata.store.PriceFrame``: the union of the symbols' dates, NaN where a symbol
has no row, ``CASH`` at a constant 1.0.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

try:
    from marketdata.store import get_store
except ImportError:  # the language is tested on its own when market data is not there
    get_store = None

BUNDLED = Path(__file__).resolve().parents[2] / "marketdata" / "data"
# The delivered CSVs, beside the repository (a fallback only: the Parquet copy is bundled).
SHARED_CSV = Path(__file__).resolve().parents[3] / "shared" / "data" / "prices"
FIELDS = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class Prices:
    open: pd.DataFrame
    high: pd.DataFrame
    low: pd.DataFrame
    close: pd.DataFrame
    volume: pd.DataFrame
    start: pd.Timestamp
    end: pd.Timestamp


def _read_symbol(symbol: str) -> pd.DataFrame:
    parquet = BUNDLED / f"{symbol}.parquet"
    frame = (
        pd.read_parquet(parquet) if parquet.exists() else pd.read_csv(SHARED_CSV / f"{symbol}.csv")
    )
    frame["date"] = pd.to_datetime(frame["date"])
    return frame.set_index("date").sort_index()


_CACHE: dict[str, pd.DataFrame] = {}


def build_prices(symbols, start: str, end: str, *, history_start: str | None = None) -> Prices:
    """A PriceFrame-like object: bars from ``history_start`` (default: all history) to ``end``;
    ``start``/``end`` are the first/last bars of the run."""
    if get_store is not None:
        return _from_store(symbols, start, end, history_start)
    stored = [symbol for symbol in symbols if symbol != "CASH"]
    for symbol in stored:
        if symbol not in _CACHE:
            _CACHE[symbol] = _read_symbol(symbol)
    index = pd.DatetimeIndex(sorted(set().union(*(_CACHE[s].index for s in stored))))
    index = index[index <= pd.Timestamp(end)]
    if history_start is not None:
        index = index[index >= pd.Timestamp(history_start)]
    fields = {}
    for field_name in FIELDS:
        columns = {}
        for symbol in symbols:
            if symbol == "CASH":
                columns[symbol] = np.full(len(index), 0.0 if field_name == "volume" else 1.0)
            else:
                columns[symbol] = _CACHE[symbol][field_name].astype(float).reindex(index).to_numpy()
        fields[field_name] = pd.DataFrame(columns, index=index)
    run = index[index >= pd.Timestamp(start)]
    return Prices(**fields, start=run[0], end=run[-1])


def _from_store(symbols, start: str, end: str, history_start: str | None):
    frame = get_store().load(
        list(symbols), start, end, adjustment="split_only", warmup_bars=100_000
    )
    if history_start is None:
        return frame
    keep = frame.close.index >= pd.Timestamp(history_start)
    return dataclasses.replace(
        frame, **{field_name: getattr(frame, field_name)[keep] for field_name in FIELDS}
    )


@pytest.fixture(scope="session")
def spy_prices() -> Prices:
    """SPY from 1993 to 2023, run from 2004-01-02 (11 years of history before it)."""
    return build_prices(["SPY"], "2004-01-01", "2023-12-31")


@pytest.fixture(scope="session")
def portfolio_prices() -> Prices:
    """SPY, QQQ, BND and CASH; run 2020–2023 with history from 2015."""
    return build_prices(
        ["SPY", "QQQ", "BND", "CASH"], "2020-01-01", "2023-12-31", history_start="2015-01-01"
    )

"""The price history shipped with the project: ``marketdata/data/<SYMBOL>.parquet``."""

from __future__ import annotations

import functools
import os
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from marketdata.base import SOURCE_COLUMNS, SymbolCoverage

BUNDLED_DATA_DIRECTORY = Path(__file__).resolve().parent.parent / "data"


class BundledSource:
    """Reads the Parquet files written by ``scripts/build_market_data.py``.

    The file name is the symbol (``GSPC.parquet`` holds Yahoo's ``^GSPC``). Coverage comes from
    the Parquet footers (row count, min/max statistics of ``date``), so listing symbols reads no
    price data.
    """

    name = "bundled"

    def __init__(self, directory: Path | str = BUNDLED_DATA_DIRECTORY) -> None:
        self.directory = Path(directory)
        self._lock = threading.Lock()
        self._coverage_version: int | None = None
        self._coverage: dict[str, SymbolCoverage] = {}

    def version(self) -> int:
        # The directory's modification time: the build script writes each file under a temporary
        # name and renames it, so rebuilding, adding or removing a file changes the token. One
        # stat keeps this cheap enough to check on every load.
        try:
            return os.stat(self.directory).st_mtime_ns
        except FileNotFoundError:
            return 0

    def symbols(self) -> list[SymbolCoverage]:
        return sorted(self._coverage_by_symbol().values(), key=lambda coverage: coverage.symbol)

    def load(self, symbol: str) -> pd.DataFrame | None:
        path = self._path(symbol)
        if path is None:
            return None
        # ParquetFile.read skips the dataset layer of pq.read_table: about twice as fast here.
        table = pq.ParquetFile(path).read(columns=["date", *SOURCE_COLUMNS])
        dates = table.column("date").to_numpy().astype("datetime64[ns]")
        return pd.DataFrame(
            {
                # Missing volumes (nulls) arrive as NaN in a float64 column.
                column: table.column(column).to_numpy().astype(np.float64, copy=False)
                for column in SOURCE_COLUMNS
            },
            index=pd.DatetimeIndex(dates, name="date"),
        )

    def _path(self, symbol: str) -> Path | None:
        if symbol not in self._coverage_by_symbol():
            return None
        return self.directory / f"{symbol}.parquet"

    def _coverage_by_symbol(self) -> dict[str, SymbolCoverage]:
        version = self.version()
        with self._lock:
            if version != self._coverage_version:
                self._coverage = _read_directory_coverage(self.directory, version, self.name)
                self._coverage_version = version
            return self._coverage


@functools.lru_cache(maxsize=8)
def _read_directory_coverage(directory: Path, version: int, source_name: str) -> dict:
    """Coverage of every file in ``directory``, shared by every source reading it (``version``
    is part of the key so that a rebuilt directory is read again)."""
    paths = sorted(directory.glob("*.parquet")) if version else []
    return {path.stem: _read_coverage(path, source_name) for path in paths}


def _read_coverage(path: Path, source_name: str) -> SymbolCoverage:
    metadata = pq.read_metadata(path)
    date_column = metadata.schema.names.index("date")
    first_dates, last_dates = [], []
    for group in range(metadata.num_row_groups):
        statistics = metadata.row_group(group).column(date_column).statistics
        first_dates.append(statistics.min)
        last_dates.append(statistics.max)
    return SymbolCoverage(
        symbol=path.stem,
        first_date=min(first_dates),
        last_date=max(last_dates),
        rows=metadata.num_rows,
        source=source_name,
    )

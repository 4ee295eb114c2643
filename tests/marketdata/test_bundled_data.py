"""The bundled Parquet files are the delivered data, and SOURCES.md describes them."""

import re
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from marketdata.sources import BUNDLED_DATA_DIRECTORY, BundledSource

# The delivered CSVs live beside the repository (``../shared``), where CI puts them too.
DELIVERED_CSV_DIRECTORY = Path(__file__).resolve().parents[3] / "shared" / "data" / "prices"


def sources_table() -> dict[str, tuple[date, date, int]]:
    text = (BUNDLED_DATA_DIRECTORY / "SOURCES.md").read_text()
    rows = re.findall(
        r"^\| (\w+)\.csv \|.*?\| (\d{4}-\d\d-\d\d) \| (\d{4}-\d\d-\d\d) \| (\d+) \|", text, re.M
    )
    return {
        symbol: (date.fromisoformat(first), date.fromisoformat(last), int(count))
        for symbol, first, last, count in rows
    }


def test_every_symbol_in_sources_md_is_bundled_with_that_coverage():
    table = sources_table()
    coverage = {item.symbol: item for item in BundledSource().symbols()}

    assert len(table) == 20
    assert set(coverage) == set(table)
    for symbol, (first, last, rows) in table.items():
        assert (coverage[symbol].first_date, coverage[symbol].last_date) == (first, last)
        assert coverage[symbol].rows == rows
    assert (
        "## How the bundled Parquet files were produced"
        in (BUNDLED_DATA_DIRECTORY / "SOURCES.md").read_text()
    )


def test_parquet_schema_is_compact_and_typed():
    schema = pq.read_schema(BUNDLED_DATA_DIRECTORY / "GSPC.parquet")
    assert schema.field("date").type == pa.date32()
    for name in ("open", "high", "low", "close", "adj_close"):
        assert schema.field(name).type == pa.float64()
    assert schema.field("volume").type == pa.int64()
    metadata = pq.ParquetFile(BUNDLED_DATA_DIRECTORY / "GSPC.parquet").metadata
    assert metadata.row_group(0).column(1).compression == "ZSTD"


def test_known_prices_and_unknown_volumes_survive():
    spy = BundledSource().load("SPY")
    assert spy.loc["2020-01-02", "close"] == 324.87
    assert spy.loc["2023-12-29", "close"] == 475.31
    gspc = BundledSource().load("GSPC")
    assert np.isnan(gspc.loc["2026-07-13", "volume"])
    assert gspc.loc[:"1949-12-31", "volume"].isna().all()


@pytest.mark.skipif(
    not DELIVERED_CSV_DIRECTORY.is_dir(), reason="the delivered CSV files are not on this machine"
)
@pytest.mark.parametrize("symbol", ["SPY", "BND", "GSPC", "NVDA"])
def test_round_trip_against_the_delivered_csv_is_exact(symbol):
    delivered = pd.read_csv(
        DELIVERED_CSV_DIRECTORY / f"{symbol}.csv",
        index_col="date",
        parse_dates=True,
    )
    bundled = BundledSource().load(symbol)

    assert bundled.index.equals(pd.DatetimeIndex(delivered.index, name="date"))
    for column in ("open", "high", "low", "close", "adj_close", "volume"):
        np.testing.assert_array_equal(
            bundled[column].to_numpy(), delivered[column].to_numpy(dtype=float)
        )

"""Convert the delivered price CSV files into the Parquet files bundled in ``marketdata/data/``.

Usage (from the repository root)::

    .venv/bin/python scripts/build_market_data.py /path/to/prices [--out marketdata/data]

``/path/to/prices`` holds ``<SYMBOL>.csv`` files (``date,open,high,low,close,adj_close,volume``)
and their ``SOURCES.md``. Each CSV becomes ``<SYMBOL>.parquet`` (zstd): ``date`` as a calendar date,
OHLC and ``adj_close`` as float64, ``volume`` as nullable int64 (an empty cell stays unknown).
After writing, every file is read back and compared with an independent parse of the CSV text
(Python's ``float``/``int`` on each cell); any difference aborts the build, so the bundled data is
exactly the delivered data. ``SOURCES.md`` is copied next to the Parquet files with a paragraph
saying how they were produced.

The script needs only pyarrow and is safe to rerun: files are written to a temporary name and then
renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import itertools
import math
import os
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

COLUMNS = ("date", "open", "high", "low", "close", "adj_close", "volume")
PRICE_COLUMNS = ("open", "high", "low", "close", "adj_close")
SCHEMA = pa.schema(
    [pa.field("date", pa.date32(), nullable=False)]
    + [pa.field(name, pa.float64(), nullable=False) for name in PRICE_COLUMNS]
    + [pa.field("volume", pa.int64(), nullable=True)]
)
ZSTD_LEVEL = 19

PROVENANCE_PARAGRAPH = """
## How the bundled Parquet files were produced

`marketdata/data/<SYMBOL>.parquet` holds exactly the values of `<SYMBOL>.csv` above (GSPC stays
`GSPC`). They are written by `scripts/build_market_data.py` (rerun it with the directory of the
CSV files as its argument): one file per symbol, zstd-compressed (level 19, plain encoding),
columns `date` (calendar date), `open, high, low, close, adj_close` (float64, each cell parsed
exactly from the decimal text of the CSV) and `volume` (nullable int64; an empty CSV cell stays
null). After writing, the script reads every file back and compares it with an independent parse
of the CSV text; the build fails on any difference, so the round trip is exact. The SHA-256 list
above is that of the CSV files the Parquet was built from.
"""


class BuildError(RuntimeError):
    pass


def parse_csv(path: Path) -> dict[str, list]:
    """Parse one price CSV with plain Python, independent of pandas and pyarrow's CSV reader."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        if tuple(header) != COLUMNS:
            raise BuildError(f"{path.name}: header {header} is not {list(COLUMNS)}")
        columns: dict[str, list] = {name: [] for name in COLUMNS}
        for line_number, row in enumerate(reader, start=2):
            if len(row) != len(COLUMNS):
                raise BuildError(f"{path.name} line {line_number}: expected 7 cells, got {row}")
            columns["date"].append(dt.date.fromisoformat(row[0]))
            for name, cell in zip(PRICE_COLUMNS, row[1:6], strict=True):
                value = float(cell)
                if not math.isfinite(value) or value <= 0:
                    raise BuildError(f"{path.name} line {line_number}: {name} {cell!r}")
                columns[name].append(value)
            columns["volume"].append(int(row[6]) if row[6] != "" else None)
    dates = columns["date"]
    if any(later <= earlier for earlier, later in itertools.pairwise(dates)):
        raise BuildError(f"{path.name}: dates are not strictly ascending")
    return columns


def write_parquet(columns: dict[str, list], destination: Path) -> None:
    table = pa.Table.from_pydict(columns, schema=SCHEMA)
    temporary = destination.with_name(destination.name + ".tmp")
    pq.write_table(
        table,
        temporary,
        compression="zstd",
        compression_level=ZSTD_LEVEL,
        # Plain (not dictionary) encoding: prices rarely repeat, and plain float64 columns
        # compress about a third smaller under zstd than dictionary pages do.
        use_dictionary=False,
        column_encoding={"date": "DELTA_BINARY_PACKED", "volume": "DELTA_BINARY_PACKED"},
        write_statistics=True,
    )
    os.replace(temporary, destination)


def check_round_trip(columns: dict[str, list], destination: Path) -> None:
    table = pq.read_table(destination)
    if table.schema.remove_metadata() != SCHEMA:
        raise BuildError(f"{destination.name}: schema {table.schema} differs from {SCHEMA}")
    for name in COLUMNS:
        stored = table.column(name).to_pylist()
        expected = columns[name]
        if stored != expected:
            first_difference = next(
                index for index, (a, b) in enumerate(zip(stored, expected, strict=True)) if a != b
            )
            raise BuildError(
                f"{destination.name}: column {name} differs at row {first_difference + 1}: "
                f"{stored[first_difference]!r} != {expected[first_difference]!r}"
            )


def build(source_directory: Path, output_directory: Path) -> list[tuple[str, int, int]]:
    csv_files = sorted(source_directory.glob("*.csv"))
    if not csv_files:
        raise BuildError(f"no CSV files in {source_directory}")
    output_directory.mkdir(parents=True, exist_ok=True)
    built = []
    for csv_path in csv_files:
        symbol = csv_path.stem.upper()
        columns = parse_csv(csv_path)
        destination = output_directory / f"{symbol}.parquet"
        write_parquet(columns, destination)
        check_round_trip(columns, destination)
        built.append((symbol, len(columns["date"]), destination.stat().st_size))
    sources_text = (source_directory / "SOURCES.md").read_text(encoding="utf-8")
    (output_directory / "SOURCES.md").write_text(
        sources_text.rstrip("\n") + "\n" + PROVENANCE_PARAGRAPH, encoding="utf-8"
    )
    return built


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="directory holding <SYMBOL>.csv and SOURCES.md")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent.parent / "marketdata" / "data",
        help="output directory (default: marketdata/data of this repository)",
    )
    arguments = parser.parse_args(argv)
    try:
        built = build(arguments.source, arguments.out)
    except (BuildError, OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    total_bytes = sum(size for _, _, size in built)
    for symbol, rows, size in built:
        print(f"{symbol:6} {rows:6} rows  {size / 1024:7.1f} KiB  round trip exact")
    print(f"{len(built)} files, {total_bytes / 1024 / 1024:.2f} MiB in {arguments.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A research sweep's returns files in storage (Parquet): each chunk's, and the sweep's matrix.

A chunk's file holds its completed entries' per-bar returns (a ``date`` index and one float64
column per entry, named by its number) and, in its metadata, the entries' overfitting statistics.
The sweep's matrix, ``returns.parquet``, is the chunks' files side by side. It is derived, never
the only copy, so it is not written while the sweep's completion waits: ``write_returns_matrix``
builds it when it is first asked for (``services.research_sweep_returns_parquet``).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import math
import tempfile

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from django.core.files import File
from django.core.files.storage import default_storage

from backtests import artifacts

DATE_COLUMN = "date"
# A sweep's returns files (its chunks' and its matrix) are written in row groups of the same bars,
# as many bars as make about this many bytes of the whole matrix, so that the matrix is written a
# row group at a time from the chunks' files. Few row groups read and write fastest: 20 years of
# daily bars are one row group up to ~1,600 entries.
RETURNS_ROW_GROUP_BYTES = 64 * 2**20
# Returns are floats with few repeats: dictionary encoding only costs time (and size), and only
# the dates have statistics worth keeping. A chunk's file is read once more, by the finishing
# step, and the matrix is written from the chunks' files when it is first asked for: both are
# lz4, which writes and reads fastest (934 entries × 20 years: the matrix in 0.18 s against
# 0.23 s with zstd, for a file ~10 % larger).
_PLAIN_FLOATS = {"use_dictionary": False, "write_statistics": [DATE_COLUMN]}
CHUNK_FILE_OPTIONS = {"compression": "lz4", **_PLAIN_FLOATS}
MATRIX_FILE_OPTIONS = CHUNK_FILE_OPTIONS
# The metadata key of a chunk's returns file that carries its entries' overfitting statistics.
STATISTICS_KEY = b"backfolio.trial_statistics"


def sweep_folder(sweep_id) -> str:
    """Where a sweep's files are kept: ``chunks/<number>-<attempt>.parquet`` and its matrix."""
    return f"research/sweeps/{sweep_id}"


def chunk_uris(sweep) -> list[str]:
    """The URIs of a sweep's chunks' returns files, in chunk order (a chunk whose returns could
    not be stored has only failed entries, and no file)."""
    uris = sweep.chunks.order_by("number").values_list("returns_uri", flat=True)
    return [uri for uri in uris if uri]


def returns_row_group(total: int) -> int:
    """Bars per row group of the returns files of a sweep of ``total`` entries."""
    return max(256, RETURNS_ROW_GROUP_BYTES // (8 * max(total, 1)))


def returns_to_parquet(
    frame: pd.DataFrame, statistics: bytes | None = None, *, row_group: int | None = None
) -> bytes:
    """A chunk's returns file: a date index and one float64 column per entry (named by its
    number), in row groups of ``row_group`` bars; its trial statistics ride in the metadata."""
    table = pa.Table.from_pandas(frame, preserve_index=True)
    if statistics is not None:
        table = table.replace_schema_metadata(
            {**(table.schema.metadata or {}), STATISTICS_KEY: statistics}
        )
    buffer = io.BytesIO()
    pq.write_table(table, buffer, row_group_size=row_group, **CHUNK_FILE_OPTIONS)
    return buffer.getvalue()


def read_returns(uri: str) -> pd.DataFrame:
    return pq.read_table(io.BytesIO(artifacts.read_bytes(uri))).to_pandas()


def bars_key(dates: pd.DatetimeIndex) -> str:
    """A fingerprint of the bars a chunk's statistics are over (chunks join theirs when equal)."""
    return hashlib.sha256(np.ascontiguousarray(dates.asi8).tobytes()).hexdigest()


def encode_statistics(bars: str, statistics) -> bytes:
    """A chunk's ``metrics.research.TrialStatistics`` over the bars ``bars`` names, as bytes."""
    buffer = io.BytesIO()
    np.savez(
        buffer,
        bars=np.array(bars),
        sums=statistics.blocks.sums,
        sums_of_squares=statistics.blocks.sums_of_squares,
        counts=statistics.blocks.counts,
        sharpes=statistics.sharpes,
        spa_observed=np.array(statistics.spa.observed),
        spa_resampled=statistics.spa.resampled,
        spa_block_size=np.array(statistics.spa.block_size),
        spa_seed=np.array(statistics.spa.seed),
    )
    return buffer.getvalue()


def decode_statistics(data: bytes | None):
    """(bars key, ``TrialStatistics``) from ``encode_statistics``' bytes, or None."""
    from metrics.research import BlockStatistics, SpaMaxima, TrialStatistics

    if data is None:
        return None
    with np.load(io.BytesIO(data)) as arrays:
        return str(arrays["bars"]), TrialStatistics(
            BlockStatistics(arrays["sums"], arrays["sums_of_squares"], arrays["counts"]),
            arrays["sharpes"],
            SpaMaxima(
                float(arrays["spa_observed"]),
                arrays["spa_resampled"],
                int(arrays["spa_block_size"]),
                int(arrays["spa_seed"]),
            ),
        )


class ChunkReturns:
    """A completed chunk's returns file, opened lazily: its entries' column names, its bars and
    the statistics it carries (footer and date column only, not the returns)."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        with _opened(uri) as handle:
            file = pq.ParquetFile(handle)
            schema = file.schema_arrow
            self.names = [name for name in schema.names if name != DATE_COLUMN]
            self.statistics = decode_statistics((schema.metadata or {}).get(STATISTICS_KEY))
            self.dates = pd.DatetimeIndex(file.read(columns=[DATE_COLUMN]).column(0).to_numpy())
            metadata = file.metadata
            self.row_groups = [
                metadata.row_group(group).num_rows for group in range(metadata.num_row_groups)
            ]

    def frame(self) -> pd.DataFrame:
        return read_returns(self.uri)


def chunk_returns(sweep) -> list[ChunkReturns]:
    """The sweep's chunks' returns files, in chunk order (``chunk_uris``)."""
    return [ChunkReturns(uri) for uri in chunk_uris(sweep)]


@contextlib.contextmanager
def _opened(uri: str):
    try:
        handle = default_storage.open(uri, "rb")
    except (FileNotFoundError, OSError) as exc:
        raise artifacts.ArtifactMissing(f"artifact {uri} cannot be read") from exc
    with handle:
        yield handle


def write_returns_matrix(path: str, chunks: list[ChunkReturns]) -> str:
    """The chunks' returns side by side as one Parquet file (a ``date`` index, as pandas writes
    it, and one column per entry), stored at ``path`` (or a free name next to it); its URI.

    Written a row group of bars at a time through a temporary file: when the chunks share their
    bars (the usual sweep), each row group is read from the chunks' own row groups, so neither
    the matrix nor the file is ever whole in memory. Otherwise the matrix over the union of the
    bars (NaN where an entry has no bar) is assembled first."""
    names = [name for chunk in chunks for name in chunk.names]
    dates = chunks[0].dates if chunks else pd.DatetimeIndex([])
    matrix = None
    if not chunks or not all(
        chunk.dates.equals(dates) and chunk.row_groups == chunks[0].row_groups for chunk in chunks
    ):
        dates, names, matrix = assemble_returns([chunk.uri for chunk in chunks])
    dates = pd.DatetimeIndex(dates, name=DATE_COLUMN)
    head = pd.DataFrame(np.zeros((min(len(dates), 1), len(names))), index=dates[:1], columns=names)
    # The schema pandas would write (with its metadata), without converting the columns.
    schema = pa.Schema.from_pandas(head, preserve_index=True)
    date_type = schema.field(DATE_COLUMN).type
    with tempfile.TemporaryFile() as output:
        with pq.ParquetWriter(output, schema, **MATRIX_FILE_OPTIONS) as writer:
            if matrix is not None:
                row_group = returns_row_group(len(names))
                for start in range(0, len(dates), row_group):
                    rows = slice(start, start + row_group)
                    arrays = [pa.array(matrix[rows, column]) for column in range(len(names))]
                    arrays.append(pa.array(dates[rows].to_numpy(), type=date_type))
                    writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
            else:
                _write_shared_rows(writer, schema, chunks, dates)
        del matrix
        output.seek(0)
        return default_storage.save(path, File(output))


def _write_shared_rows(writer, schema, chunks: list[ChunkReturns], dates) -> None:
    date_type = schema.field(DATE_COLUMN).type
    with contextlib.ExitStack() as stack:
        files = [pq.ParquetFile(stack.enter_context(_opened(chunk.uri))) for chunk in chunks]
        start = 0
        for group, rows in enumerate(chunks[0].row_groups):
            arrays = []
            for file, chunk in zip(files, chunks, strict=True):
                table = file.read_row_group(group, columns=chunk.names)
                for name in chunk.names:
                    # A chunk's file keeps a missing return as null; the matrix as NaN.
                    column = table.column(name).combine_chunks()
                    arrays.append(pc.fill_null(column, math.nan) if column.null_count else column)
            arrays.append(pa.array(dates[start : start + rows].to_numpy(), type=date_type))
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
            start += rows


def assemble_returns(uris: list[str]) -> tuple[pd.DatetimeIndex, list[str], np.ndarray]:
    """The chunks' returns side by side: (dates, column names, T×N float64 matrix in column-major
    order) over the union of their bars, NaN where an entry has no bar. Built in one pass over
    the chunks after reading only their dates, so a worker holds the matrix and one chunk at a
    time."""
    chunk_dates, names = [], []
    for uri in uris:
        file = pq.ParquetFile(io.BytesIO(artifacts.read_bytes(uri)))
        names.extend(name for name in file.schema_arrow.names if name != DATE_COLUMN)
        chunk_dates.append(pd.DatetimeIndex(file.read(columns=[DATE_COLUMN]).column(0).to_numpy()))
    dates = chunk_dates[0] if chunk_dates else pd.DatetimeIndex([])
    for other in chunk_dates[1:]:
        if not other.equals(dates):
            dates = dates.union(other)
    dates = pd.DatetimeIndex(dates, name=DATE_COLUMN)
    matrix = np.empty((len(dates), len(names)), dtype="float64", order="F")
    column = 0
    for uri, own_dates in zip(uris, chunk_dates, strict=True):
        table = pq.read_table(io.BytesIO(artifacts.read_bytes(uri)))
        rows = None if own_dates.equals(dates) else dates.get_indexer(own_dates)
        for name in table.schema.names:
            if name == DATE_COLUMN:
                continue
            values = table.column(name).to_numpy()
            if rows is None:
                matrix[:, column] = values
            else:
                matrix[:, column] = np.nan
                matrix[rows, column] = values
            column += 1
        del table
    return dates, names, matrix

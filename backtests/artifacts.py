"""Run artifacts (equity curve, trades, reports) as files in Django's storage.

Every run writes into its own folder, ``runs/<backtest id>/<run number>/``, so a re-run never
overwrites what an earlier response pointed at. Storage is whatever ``STORAGES["default"]`` says:
the local filesystem in the embedded mode, S3 through django-storages in production.
"""

import contextlib
import io
import posixpath

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from django.core.exceptions import SuspiciousOperation
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from backfolio.common.renderers import dumps
from backtests.engines.base import TRADE_COLUMNS


class ArtifactMissing(LookupError):
    """An artifact a completed run points at cannot be read."""


def run_folder(backtest_id, run_number: int) -> str:
    return f"{storage_area(backtest_id)}/{run_number}"


def storage_area(backtest_id) -> str:
    """The folder holding every run of one backtest; its artifacts live nowhere else."""
    return f"runs/{backtest_id}"


def is_own_artifact(backtest_id, uri: str) -> bool:
    """Whether ``uri`` names a file inside ``backtest_id``'s own storage area.

    Only a plain relative path under the area counts: no ``..`` or ``.`` segments, no absolute
    path, no backslash, no empty segment. Anything else could make one backtest serve another
    run's (or any file's) contents as its own.
    """
    area = storage_area(backtest_id) + "/"
    return (
        isinstance(uri, str)
        and uri.startswith(area)
        and len(uri) > len(area)
        and "\\" not in uri
        and "\x00" not in uri
        and posixpath.normpath(uri) == uri
        and ".." not in uri.split("/")
    )


def _parquet_bytes(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()


def equity_to_parquet(equity: pd.Series) -> bytes:
    """A date index and one ``equity`` column (the v1 contract's shape)."""
    frame = pd.DataFrame({"equity": equity.astype("float64").to_numpy()})
    frame.index = pd.DatetimeIndex(equity.index, name="date")
    return _parquet_bytes(pa.Table.from_pandas(frame, preserve_index=True))


def trades_to_parquet(trades: pd.DataFrame) -> bytes:
    """The trades table without an index."""
    frame = trades.reindex(columns=[*TRADE_COLUMNS, *[c for c in trades if c not in TRADE_COLUMNS]])
    return _parquet_bytes(pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False))


def save_bytes(path: str, content: bytes) -> str:
    """Write ``content`` at ``path`` and return the name storage gave it (the artifact URI)."""
    if default_storage.exists(path):
        default_storage.delete(path)
    return default_storage.save(path, ContentFile(content))


def save_json(path: str, data) -> str:
    return save_bytes(path, dumps(data))


def read_bytes(uri: str | None) -> bytes:
    if not uri:
        raise ArtifactMissing("the run has no such artifact")
    try:
        with default_storage.open(uri, "rb") as handle:
            return handle.read()
    except (FileNotFoundError, OSError, SuspiciousOperation) as exc:
        # SuspiciousOperation: a stored path that leaves storage is as unreadable as a lost file.
        raise ArtifactMissing(f"artifact {uri} cannot be read") from exc


def read_equity(uri: str | None) -> pd.Series:
    """The ``equity`` column on its ``date`` index: those two columns only, straight to numpy
    (no pandas metadata to rebuild)."""
    table = pq.read_table(
        io.BytesIO(read_bytes(uri)), columns=["date", "equity"], use_pandas_metadata=False
    )
    return pd.Series(
        table.column("equity").to_numpy(),
        index=pd.DatetimeIndex(table.column("date").to_numpy(), name="date"),
        name="equity",
    )


def read_trades(uri: str | None) -> pd.DataFrame:
    return pq.read_table(io.BytesIO(read_bytes(uri))).to_pandas()


class ArtifactWriteError(OSError):
    """A run's artifacts could not be stored; nothing of that run is left referenced."""


def write_run_artifacts(
    backtest_id, run_number: int, equity: pd.Series, trades: pd.DataFrame
) -> tuple[str, str]:
    """Write one run's equity curve and trades into its own folder; returns their URIs.

    Both files are written before anything points at them; when the second write fails the first
    is removed (best effort) and ``ArtifactWriteError`` says why.
    """
    folder = run_folder(backtest_id, run_number)
    written: list[str] = []
    try:
        written.append(save_bytes(f"{folder}/equity.parquet", equity_to_parquet(equity)))
        written.append(save_bytes(f"{folder}/trades.parquet", trades_to_parquet(trades)))
    except Exception as error:
        for uri in written:
            # The original failure is what the run reports.
            with contextlib.suppress(Exception):
                default_storage.delete(uri)
        raise ArtifactWriteError(f"Could not store the run's artifacts: {error}") from error
    return written[0], written[1]


REPORT_NAME = "analysis.json"


def write_run_report(backtest_id, run_number: int, report) -> str:
    """Write a run's analytics (JSON) into its folder next to its equity curve and trades;
    returns the URI. Raises ``ArtifactWriteError`` when it cannot be stored."""
    try:
        return save_json(f"{run_folder(backtest_id, run_number)}/{REPORT_NAME}", report)
    except Exception as error:
        raise ArtifactWriteError(f"Could not store the run's analytics: {error}") from error

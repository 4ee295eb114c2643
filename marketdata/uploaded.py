"""The ``uploaded`` price source: series users imported, kept as Parquet in the database.

The database is shared by the web process and every worker machine, so an import is visible to
all of them. ``version()`` asks the database (one small aggregate query) so that every process's
store notices an import, a re-import or a deletion; the answer is remembered for
``MARKETDATA_VERSION_TTL_SECONDS`` (default 1 s) so that a request that loads prices several times
asks once. A save or delete in this process forgets it at once (``forget_version``); other
processes see the change within that second.
"""

from __future__ import annotations

import io
import logging
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count, Max

from marketdata.base import SOURCE_COLUMNS, SymbolCoverage

logger = logging.getLogger(__name__)

SOURCE_NAME = "uploaded"


def frame_to_parquet(frame: pd.DataFrame) -> bytes:
    """A validated frame (``validate_price_frame``'s shape) as Parquet: ``date`` + the source
    columns, the layout of the bundled files."""
    table = pa.table(
        {
            "date": pa.array(pd.DatetimeIndex(frame.index).date, type=pa.date32()),
            **{
                column: pa.array(
                    frame[column].to_numpy(dtype="float64", na_value=np.nan), type=pa.float64()
                )
                for column in SOURCE_COLUMNS
            },
        }
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()


def parquet_to_frame(data: bytes) -> pd.DataFrame:
    table = pq.read_table(io.BytesIO(bytes(data)), columns=["date", *SOURCE_COLUMNS])
    dates = table.column("date").to_numpy().astype("datetime64[ns]")
    return pd.DataFrame(
        {
            column: table.column(column).to_numpy(zero_copy_only=False).astype(np.float64)
            for column in SOURCE_COLUMNS
        },
        index=pd.DatetimeIndex(dates, name="date"),
    )


class UploadedSource:
    """``PriceSource`` over the ``PriceSeries`` table.

    When the database cannot be read (not migrated yet, unreachable, or a test without database
    access) the source holds nothing rather than breaking the bundled data for everyone.
    """

    name = SOURCE_NAME

    def __init__(self) -> None:
        self._remembered: tuple[float, object] | None = None

    def forget_version(self) -> None:
        self._remembered = None

    def version(self):
        ttl = getattr(settings, "MARKETDATA_VERSION_TTL_SECONDS", 1.0)
        now = time.monotonic()
        if self._remembered is not None and now - self._remembered[0] < ttl:
            return self._remembered[1]
        value = self._read_version()
        self._remembered = (now, value)
        return value

    def _read_version(self):
        from marketdata.models import PriceSeries

        try:
            state = PriceSeries.objects.aggregate(count=Count("id"), changed=Max("updated_at"))
        except (DatabaseError, RuntimeError) as error:
            # RuntimeError: pytest-django refuses database access to tests not marked for it.
            logger.debug("Uploaded price series cannot be read: %s", error)
            return None
        return (state["count"], state["changed"])

    def symbols(self) -> list[SymbolCoverage]:
        from marketdata.models import PriceSeries

        try:
            rows = list(
                PriceSeries.objects.values_list("symbol", "first_date", "last_date", "rows")
            )
        except (DatabaseError, RuntimeError):
            return []
        return [
            SymbolCoverage(
                symbol=symbol, first_date=first, last_date=last, rows=rows, source=self.name
            )
            for symbol, first, last, rows in rows
        ]

    def load(self, symbol: str) -> pd.DataFrame | None:
        from marketdata.models import PriceSeries

        try:
            data = (
                PriceSeries.objects.filter(symbol=symbol.upper())
                .values_list("data", flat=True)
                .first()
            )
        except (DatabaseError, RuntimeError):
            return None
        return None if data is None else parquet_to_frame(data)

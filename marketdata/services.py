"""Writes to market data: importing a user's daily price series (SPEC §7).

All or nothing: the file is read and every row validated before anything is written, and the
row is written in one transaction, so a bad file leaves no trace and a good one replaces the
previous series of that symbol whole.
"""

from __future__ import annotations

import hashlib

from django.core.exceptions import ValidationError
from django.db import transaction

from marketdata.base import MarketDataError
from marketdata.models import PriceSeries
from marketdata.synthetic import parse_symbol
from marketdata.uploaded import SOURCE_NAME, frame_to_parquet
from marketdata.validation import PriceValidationError, read_price_file, validate_price_frame


def _file_bytes(file) -> bytes:
    if isinstance(file, bytes | bytearray):
        return bytes(file)
    if hasattr(file, "chunks"):  # Django's UploadedFile
        return b"".join(file.chunks())
    return file.read()


def _checked_symbol(symbol: str) -> str:
    try:
        spec = parse_symbol(symbol)
    except MarketDataError as error:
        raise ValidationError({"symbol": error.message}) from None
    if spec.is_cash or spec.is_leveraged:
        raise ValidationError(
            {"symbol": f"{symbol} is computed from other data and cannot be imported."}
        )
    from marketdata.store import get_store

    # The bundled source is registered first and wins, so an upload of a bundled symbol would
    # be stored and never used; refuse it instead of pretending.
    for coverage in get_store().symbols():
        if coverage.symbol == spec.base and coverage.source != SOURCE_NAME:
            raise ValidationError(
                {"symbol": f"{spec.base} is bundled with Backfolio; import it under another name."}
            )
    return spec.base


def price_series_import(
    *, symbol: str, file, filename: str, user=None, description: str = ""
) -> PriceSeries:
    """Validate ``file`` (CSV or Parquet bytes, a file object or an upload) and store it as the
    series of ``symbol``, replacing any earlier import of that symbol.

    Raises ``ValidationError`` with ``symbol`` or ``file`` errors; the file error names the bad
    row (``row 17 (2020-01-24): high 10.0 is below close 11.0``).
    """
    clean_symbol = _checked_symbol(symbol)
    content = _file_bytes(file)
    try:
        frame = validate_price_frame(read_price_file(content, filename))
    except PriceValidationError as error:
        raise ValidationError({"file": str(error)}) from None
    data = frame_to_parquet(frame)
    fields = {
        "description": description,
        "first_date": frame.index[0].date(),
        "last_date": frame.index[-1].date(),
        "rows": len(frame),
        "data": data,
        "sha256": hashlib.sha256(data).hexdigest(),
        "uploaded_by": user if user is not None and user.is_authenticated else None,
    }
    with transaction.atomic():
        series, _ = PriceSeries.objects.update_or_create(symbol=clean_symbol, defaults=fields)
    return series

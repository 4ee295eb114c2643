"""Validation of user-supplied daily price files (CSV or Parquet) before they are imported.

All or nothing: ``validate_price_frame`` checks every row and either returns a clean frame or raises
``PriceValidationError`` naming the first bad row; nothing is returned half-checked.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

REQUIRED_COLUMNS = ("date", "open", "high", "low", "close")
OPTIONAL_COLUMNS = ("adj_close", "volume")
PRICE_COLUMNS = ("open", "high", "low", "close", "adj_close")
READABLE_SUFFIXES = (".csv", ".parquet", ".pq")


class PriceValidationError(ValueError):
    """A price file cannot be imported. ``row`` is the 1-based data row (None when the problem
    is the file or its columns), ``date`` that row's date text when it has one."""

    def __init__(self, message: str, *, row: int | None = None, date: str | None = None):
        super().__init__(message)
        self.row = row
        self.date = date


def read_price_file(source: str | Path | bytes, filename: str | None = None) -> pd.DataFrame:
    """Read a CSV or Parquet price file into a frame of its raw columns (not yet validated).

    ``source`` is a path, or the file's bytes with ``filename`` giving its name; the extension
    (``.csv``, ``.parquet``, ``.pq``) decides the format. CSV cells are kept as text so that
    validation can quote them.
    """
    if isinstance(source, bytes | bytearray):
        if not filename:
            raise PriceValidationError("a file name is needed to tell CSV from Parquet")
        name, payload = filename, io.BytesIO(bytes(source))
    else:
        name, payload = str(filename or source), Path(source)
    suffix = Path(name).suffix.lower()
    if suffix not in READABLE_SUFFIXES:
        raise PriceValidationError(
            f"{Path(name).name}: unsupported file type '{suffix or '(none)'}'; "
            "upload a .csv or .parquet file"
        )
    try:
        if suffix == ".csv":
            frame = pd.read_csv(
                payload,
                dtype=str,
                keep_default_na=False,
                encoding="utf-8-sig",
                skipinitialspace=True,
            )
        else:
            frame = pd.read_parquet(payload)
    except FileNotFoundError:
        raise PriceValidationError(f"{Path(name).name}: file not found") from None
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as error:
        kind = "CSV" if suffix == ".csv" else "Parquet"
        raise PriceValidationError(
            f"{Path(name).name}: not a readable {kind} file ({error})"
        ) from None
    if "date" not in {str(column).strip().lower() for column in frame.columns} and (
        str(frame.index.name or "").strip().lower() == "date"
    ):
        frame = frame.reset_index()
    return frame


def validate_price_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Check a raw price frame and return it clean, or raise ``PriceValidationError``.

    Input columns (names case-insensitive; spaces become underscores, so Yahoo's "Adj Close"
    works): ``date, open, high, low, close`` and optionally ``adj_close, volume``; no others.
    Rules, checked for every row: the date parses (YYYY-MM-DD, no time of day) and is after the
    previous row's; prices are numbers, finite and positive; high ≥ max(open, close) and
    low ≤ min(open, close); volume, where given, is a whole number ≥ 0 (an empty cell means
    unknown). A missing ``adj_close`` column means adj_close = close.

    Returns a frame indexed by ``date`` (DatetimeIndex) with float64 ``open, high, low, close,
    adj_close`` and nullable Int64 ``volume`` — the shape ``PriceSource.load`` returns. The error
    names the first bad row: ``"row 17 (2020-01-24): high 10.0 is below close 11.0"``.
    """
    columns = _normalised_columns(frame)
    data = frame.set_axis(columns, axis=1)
    if not len(data):
        raise PriceValidationError("the file has no data rows")

    date_text = data["date"].map(_cell_text)
    dates = pd.to_datetime(date_text, format="ISO8601", errors="coerce")
    values = {name: _numbers(data[name]) for name in PRICE_COLUMNS if name in data}
    if "adj_close" not in values:
        values["adj_close"] = values["close"]
    volume_given = "volume" in data
    volume = _numbers(data["volume"]) if volume_given else pd.Series(np.nan, index=data.index)

    problems = _find_problems(data, date_text, dates, values, volume, volume_given)
    if problems is not None:
        position, reason = problems
        row_date = dates.iloc[position]
        label = row_date.date().isoformat() if not pd.isna(row_date) else date_text.iloc[position]
        raise PriceValidationError(
            f"row {position + 1} ({label}): {reason}" if label else f"row {position + 1}: {reason}",
            row=position + 1,
            date=label or None,
        )

    clean = pd.DataFrame(
        {name: values[name].to_numpy(dtype=np.float64) for name in PRICE_COLUMNS},
        index=pd.DatetimeIndex(dates.to_numpy(dtype="datetime64[ns]"), name="date"),
    )
    clean["volume"] = pd.array(volume.to_numpy(), dtype="Float64").astype("Int64")
    return clean


def _normalised_columns(frame: pd.DataFrame) -> list[str]:
    columns = [str(column).strip().lower().replace(" ", "_") for column in frame.columns]
    duplicated = sorted({column for column in columns if columns.count(column) > 1})
    if duplicated:
        raise PriceValidationError(f"column {', '.join(duplicated)} appears more than once")
    missing = [column for column in REQUIRED_COLUMNS if column not in columns]
    if missing:
        raise PriceValidationError(
            f"missing required column{'s' if len(missing) > 1 else ''}: {', '.join(missing)} "
            f"(expected {', '.join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)})"
        )
    unknown = [column for column in columns if column not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if unknown:
        raise PriceValidationError(
            f"unknown column{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)} "
            f"(expected {', '.join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)})"
        )
    return columns


def _cell_text(value) -> str:
    if pd.api.types.is_scalar(value) and pd.isna(value):
        return ""
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return str(value).strip()


def _numbers(column: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(column.dtype):
        return column.astype("float64")
    text = column.map(_cell_text)
    return pd.to_numeric(text.where(text != ""), errors="coerce").astype("float64")


def _find_problems(data, date_text, dates, values, volume, volume_given):
    """(position, reason) of the first bad row; within a row, the first failed check below."""
    checks: list[tuple[np.ndarray, Callable[[int], str]]] = []

    def check(mask: np.ndarray, reason: Callable[[int], str]) -> None:
        checks.append((np.asarray(mask, dtype=bool), reason))

    bad_date = dates.isna().to_numpy()
    check(bad_date, lambda i: f"date '{date_text.iloc[i]}' is not a valid date (use YYYY-MM-DD)")
    if dates.dt.tz is not None:
        check(~bad_date, lambda i: f"date '{date_text.iloc[i]}' has a time zone; use plain dates")
    else:
        has_time = ~bad_date & (dates != dates.dt.normalize()).to_numpy()
        check(has_time, lambda i: f"date '{date_text.iloc[i]}' has a time of day; daily bars only")
        day_values = dates.to_numpy(dtype="datetime64[ns]")
        not_after = np.zeros(len(data), dtype=bool)
        not_after[1:] = ~bad_date[1:] & ~bad_date[:-1] & (day_values[1:] <= day_values[:-1])

        def order_reason(i: int) -> str:
            previous = dates.iloc[i - 1].date().isoformat()
            if dates.iloc[i] == dates.iloc[i - 1]:
                return f"date repeats row {i} ({previous})"
            return f"date is before the previous row's date {previous} (dates must ascend)"

        check(not_after, order_reason)

    for name in PRICE_COLUMNS:
        if name not in data:
            continue
        number = values[name].to_numpy()
        missing = np.isnan(number)
        finite = np.isfinite(number)
        check(missing, _missing_reason(name, data[name]))
        check(~missing & ~finite, lambda i, n=name: f"{n} {_show(values[n].iloc[i])} is not finite")
        with np.errstate(invalid="ignore"):
            not_positive = finite & (number <= 0)
        check(not_positive, lambda i, n=name: f"{n} {_show(values[n].iloc[i])} is not positive")

    high, low = values["high"].to_numpy(), values["low"].to_numpy()
    for other in ("open", "close"):
        other_values = values[other].to_numpy()
        with np.errstate(invalid="ignore"):
            high_below, low_above = high < other_values, low > other_values

        def high_reason(i: int, other=other, other_values=other_values) -> str:
            return f"high {_show(high[i])} is below {other} {_show(other_values[i])}"

        def low_reason(i: int, other=other, other_values=other_values) -> str:
            return f"low {_show(low[i])} is above {other} {_show(other_values[i])}"

        check(high_below, high_reason)
        check(low_above, low_reason)

    if volume_given:
        raw_volume = data["volume"]
        amount = volume.to_numpy()
        given = (raw_volume.map(_cell_text) != "").to_numpy()
        known = ~np.isnan(amount)
        with np.errstate(invalid="ignore"):
            negative = known & (amount < 0)
            fractional = np.isfinite(amount) & (amount != np.round(amount))
        check(
            given & ~known, lambda i: f"volume '{_cell_text(raw_volume.iloc[i])}' is not a number"
        )
        check(known & ~np.isfinite(amount), lambda i: f"volume {_show(amount[i])} is not finite")
        check(negative, lambda i: f"volume {_show_count(amount[i])} is negative")
        check(fractional, lambda i: f"volume {_show(amount[i])} is not a whole number")

    first_bad = [
        (int(np.flatnonzero(mask)[0]), order, reason)
        for order, (mask, reason) in enumerate(checks)
        if mask.any()
    ]
    if not first_bad:
        return None
    position, _, reason = min(first_bad, key=lambda item: item[:2])
    return position, reason(position)


def _missing_reason(name: str, raw: pd.Series):
    def reason(i: int) -> str:
        text = _cell_text(raw.iloc[i])
        return f"{name} is missing" if not text else f"{name} '{text}' is not a number"

    return reason


def _show(value: float) -> str:
    """Numbers as Python writes them: ``10.0``, ``-1.5``, ``inf``."""
    return repr(float(value))


def _show_count(value: float) -> str:
    """Volumes as whole numbers when they are (``-5``), else as floats (``1.5``)."""
    return str(int(value)) if np.isfinite(value) and value == int(value) else _show(value)

"""Turn metric values into plain JSON: no numpy types, no NaN, no ±Infinity, dates as strings.

Every presenter in the core passes its output through `json_safe`, so a contract can hand the
result straight to a JSON renderer. JSON has no NaN or Infinity; an undefined number is `null`.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

JsonValue = None | bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"]


def clean_number(value: Any) -> int | float | None:
    """A finite Python int/float, or None for None, NaN, ±inf, pd.NA and NaT."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, bool | np.bool_):
        return int(value)
    if isinstance(value, int | np.integer):
        return int(value)
    number = float(value)
    if not math.isfinite(number):
        return None
    return number


def iso_date(value: Any) -> str | None:
    """`YYYY-MM-DD` for a date at midnight, full ISO 8601 when it carries a time of day."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp | dt.datetime):
        stamp = pd.Timestamp(value)
        if stamp is pd.NaT:
            return None
        if stamp.tzinfo is None and stamp == stamp.normalize():
            return stamp.date().isoformat()
        return stamp.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, np.datetime64):
        return iso_date(pd.Timestamp(value))
    return str(value)


def iso_dates(index: pd.Index | pd.Series) -> list[str | None]:
    """`iso_date` of every element, fast for the common case of a daily, tz-naive index."""
    dates = pd.DatetimeIndex(index)
    # NaT is never equal to itself normalised, so an index with gaps takes the slow path.
    if dates.tz is None and (dates == dates.normalize()).all():
        return np.datetime_as_string(dates.to_numpy(dtype="datetime64[ns]"), unit="D").tolist()
    return [iso_date(date) for date in dates]


def clean_numbers(values: np.ndarray | pd.Series | list) -> list[float | None]:
    """`clean_number` of every element of a numeric array, as Python floats."""
    return [
        number if math.isfinite(number) else None
        for number in np.asarray(values, dtype=float).tolist()
    ]


def _json_key(key: Any) -> str:
    if isinstance(key, pd.Timestamp | dt.date | np.datetime64):
        return iso_date(key)  # type: ignore[return-value]
    if isinstance(key, np.generic):
        key = key.item()
    return str(key)


def json_safe(value: Any) -> JsonValue:
    """Recursively convert `value` into something `json.dumps(..., allow_nan=False)` accepts.

    Series become `{index: value}` (dates as `YYYY-MM-DD` keys), DataFrames a list of records,
    arrays/tuples/sets lists; numpy scalars Python numbers; NaN/±inf/NaT/NA None.
    """
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | float | np.integer | np.floating):
        return clean_number(value)
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp | dt.date | np.datetime64):
        return iso_date(value)
    if isinstance(value, pd.Timedelta | dt.timedelta):
        return clean_number(pd.Timedelta(value).total_seconds())
    if isinstance(value, Mapping):
        return {_json_key(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, pd.Series):
        return {_json_key(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, pd.DataFrame):
        return [json_safe(record) for record in value.to_dict(orient="records")]
    if isinstance(value, np.ndarray):
        return [json_safe(item) for item in value.tolist()]
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if isinstance(value, set | frozenset):
        # Sorted so that the same set always serialises the same way.
        return [json_safe(item) for item in sorted(value, key=str)]
    if isinstance(value, np.generic):
        return json_safe(value.item())
    raise TypeError(f"cannot make a value of type {type(value).__name__} JSON-safe")

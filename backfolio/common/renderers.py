"""A JSON renderer that is fast and never emits NaN or Infinity.

orjson serialises float NaN and ±Infinity as ``null`` (the SPEC's rule for every contract), knows
UUIDs, datetimes and numpy values, and is several times faster than the standard library on the
large equity curves and analytics blocks this service returns.
"""

import decimal

import orjson
from rest_framework.renderers import JSONRenderer

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS | orjson.OPT_UTC_Z


def _fallback(value):
    if isinstance(value, decimal.Decimal):
        return float(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


def dumps(data) -> bytes:
    return orjson.dumps(data, default=_fallback, option=_OPTIONS)


class FastJSONRenderer(JSONRenderer):
    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        return dumps(data)

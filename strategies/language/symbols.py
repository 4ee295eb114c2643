"""Symbol *format* checks for the strategy language.

Whether data exists for a symbol is the market-data store's business (it needs dates); here only
the spelling is judged, so that a definition can be validated without touching any data:

- a plain ticker: letters, digits and ``. - _ ^`` (``SPY``, ``BRK.B``, ``^GSPC``);
- ``CASH``;
- a leveraged synthetic ``TICKER?L=x`` with 0 < x ≤ 10, optionally followed by ``&E=`` (annual
  expense ratio, percent) and ``&SP=`` (annual financing spread, percent), both ≥ 0, each at most
  once, in any order after ``L``.
"""

from __future__ import annotations

import math
import re

MAX_LEVERAGE = 10.0
_TICKER = re.compile(r"^[A-Za-z0-9^][A-Za-z0-9.\-_^]{0,31}$")
_OPTIONAL_KEYS = {"E": "expense ratio", "SP": "financing spread"}


def _parse_number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def symbol_format_problem(symbol: object) -> str | None:
    """Return why ``symbol`` is not a well-formed symbol, or None when it is."""
    if not isinstance(symbol, str) or not symbol.strip():
        return "must be a non-empty symbol string"
    if symbol != symbol.strip():
        return f"symbol '{symbol}' must not have surrounding spaces"
    ticker, separator, query = symbol.partition("?")
    if not _TICKER.match(ticker):
        return f"invalid symbol '{symbol}'"
    if not separator:
        return None
    if ticker.upper() == "CASH":
        return f"invalid leverage format in symbol '{symbol}': CASH cannot be leveraged"
    parts = query.split("&")
    seen: set[str] = set()
    for index, part in enumerate(parts):
        key, equals, raw_value = part.partition("=")
        if not equals:
            return f"invalid leverage format in symbol '{symbol}': expected KEY=value, got '{part}'"
        if index == 0 and key != "L":
            return f"invalid leverage format in symbol '{symbol}': expected ?L=x first"
        if index > 0 and key not in _OPTIONAL_KEYS:
            return (
                f"invalid leverage format in symbol '{symbol}': unknown key '{key}' "
                "(known: L, E, SP)"
            )
        if key in seen:
            return f"invalid leverage format in symbol '{symbol}': '{key}' given twice"
        seen.add(key)
        value = _parse_number(raw_value)
        if key == "L":
            if value is None or not 0 < value <= MAX_LEVERAGE:
                return (
                    f"invalid leverage format in symbol '{symbol}': leverage must be a number "
                    f"greater than 0 and at most {MAX_LEVERAGE:g}"
                )
        elif value is None or value < 0:
            return (
                f"invalid leverage format in symbol '{symbol}': {_OPTIONAL_KEYS[key]} "
                f"'{key}' must be a number ≥ 0 (annual percent)"
            )
    return None

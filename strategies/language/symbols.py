"""Symbol *format* checks for the strategy language.

Whether data exists for a symbol is the market-data store's business (it needs dates); here only
the spelling is judged, so that a definition can be validated without touching any data.
The market-data package owns the symbol grammar (``marketdata.synthetic.parse_symbol``) and is
used when importable, so there is one definition; the local parser below, which accepts the same
grammar, keeps the language usable on its own:

- a plain ticker: letters, digits and ``. - _ = ^`` (``SPY``, ``BRK.B``, ``^GSPC``);
- ``CASH``;
- a leveraged synthetic ``TICKER?L=x`` with 0 < x ≤ 10, optionally followed by ``&E=`` (annual
  expense ratio, percent) and ``&SP=`` (annual financing spread, percent), both ≥ 0, each at most
  once, in any order after ``L``.
"""

from __future__ import annotations

import math
import re

try:
    from marketdata.synthetic import parse_symbol as _parse_symbol
except ImportError:  # the language stays usable without the market-data package
    _parse_symbol = None

MAX_LEVERAGE = 10.0
_TICKER = re.compile(r"^\^?[A-Za-z0-9][A-Za-z0-9.\-_=]{0,19}$")
_OPTIONAL_KEYS = {"E": "expense ratio", "SP": "financing spread"}


def _parse_number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def symbol_format_problem(symbol: object) -> str | None:
    """Return why ``symbol`` is not a well-formed symbol, or None when it is."""
    if _parse_symbol is not None:
        try:
            _parse_symbol(symbol)
        except ValueError as error:
            return str(error)
        return None
    return local_symbol_format_problem(symbol)


def local_symbol_format_problem(symbol: object) -> str | None:
    """The language's own format check (see the module docstring)."""
    if not isinstance(symbol, str) or not symbol.strip():
        return f"Invalid symbol {symbol!r}: a symbol is required"
    ticker, separator, query = symbol.strip().partition("?")
    if not _TICKER.match(ticker):
        return f"Invalid symbol '{symbol}'"
    if not separator:
        return None
    if ticker.upper() == "CASH":
        return f"Invalid leverage format in '{symbol}': CASH cannot be leveraged"
    values: dict[str, float | None] = {}
    for part in query.split("&"):
        key, equals, raw_value = part.partition("=")
        key = key.strip().upper()
        if not equals or not key:
            return f"Invalid leverage format in '{symbol}': expected KEY=VALUE, got '{part}'"
        if key not in ("L", *_OPTIONAL_KEYS):
            return f"Invalid leverage format in '{symbol}': unknown key '{key}' (allowed: L, E, SP)"
        if key in values:
            return f"Invalid leverage format in '{symbol}': {key} is given more than once"
        values[key] = _parse_number(raw_value)
        if values[key] is None:
            return f"Invalid leverage format in '{symbol}': {key} must be a number"
    leverage = values.get("L")
    if leverage is None:
        return f"Invalid leverage format in '{symbol}': L (the leverage multiplier) is required"
    if not 0 < leverage <= MAX_LEVERAGE:
        return (
            f"Invalid leverage format in '{symbol}': leverage must be greater than 0 and at "
            f"most {MAX_LEVERAGE:g}"
        )
    for key, name in _OPTIONAL_KEYS.items():
        if key in values and not 0 <= values[key] <= 100:
            return (
                f"Invalid leverage format in '{symbol}': {key} ({name}) is an annual percentage "
                "between 0 and 100"
            )
    return None

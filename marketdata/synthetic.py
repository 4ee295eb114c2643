"""Symbols that are computed rather than stored: leveraged ``SYM?L=x`` and ``CASH``.

Symbol text: ``SYM`` (a stored series), ``CASH``, or ``SYM?L=x[&E=e][&SP=s]`` where

- ``L``: leverage multiplier, 0 < x ≤ 10 (required);
- ``E``: annual expense ratio in percent (default 0), charged every trading day as e/100/252;
- ``SP``: annual financing spread in percent (default 0) paid on the borrowed part
  (``x − 1``; nothing when x ≤ 1), charged every trading day as s/100/252.

Keys are case-insensitive, each may appear once, and a leading ``^`` on ``SYM`` is ignored
(``^GSPC`` is ``GSPC``).

A leveraged series resets its leverage daily. With r_t the underlying's close-to-close return
(under the requested price adjustment, so dividend-inclusive by default)::

    r_L,t = x·r_t − e/100/252 − max(x − 1, 0)·s/100/252,   floored at −100 %

Its price starts at the underlying's first close (same adjustment) on the underlying's first date
and compounds r_L from there, so a window's prices do not depend on the requested start. Open, high
and low equal the close (no intraday path is modelled) and volume is 0.

Wipe-out: engines need positive prices, so a day with r_L ≤ −100 % leaves ``WIPEOUT_RESIDUAL``
(1e-12) of the previous price (a return of −99.9999999999 %), and the price stays at that level
for the rest of the series: a product that lost everything does not come back.

``CASH`` has price ``CASH_PRICE`` (1.0) on every bar, volume 0 and a 0 % return; it needs no data
and covers any range.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from marketdata.base import MarketDataError
from metrics.calculations import TRADING_DAYS_PER_YEAR

CASH_SYMBOL = "CASH"
CASH_PRICE = 1.0
MAX_LEVERAGE = 10.0
MAX_ANNUAL_PERCENT = 100.0
WIPEOUT_RESIDUAL = 1e-12

_BASE_SYMBOL = re.compile(r"^[A-Z0-9][A-Z0-9._=-]{0,19}$")
_PARAMETER_NAMES = {"L": "leverage", "E": "expense", "SP": "spread"}


@dataclass(frozen=True)
class SymbolSpec:
    """A parsed symbol. ``leverage`` is None for a plain stored series (and for CASH)."""

    base: str
    leverage: float | None = None
    expense: float = 0.0
    spread: float = 0.0

    @property
    def is_cash(self) -> bool:
        return self.base == CASH_SYMBOL

    @property
    def is_leveraged(self) -> bool:
        return self.leverage is not None

    @property
    def daily_cost(self) -> float:
        """Return deducted each trading day for the expense ratio and the financing spread."""
        borrowed = max((self.leverage or 1.0) - 1.0, 0.0)
        return (self.expense + borrowed * self.spread) / 100.0 / TRADING_DAYS_PER_YEAR


def parse_symbol(text: str) -> SymbolSpec:
    """Parse symbol text (see the module docstring); raises ``MarketDataError`` with the reason.

    Needs no data, so request validators can check a symbol's format up front.
    """
    if not isinstance(text, str) or not text.strip():
        raise MarketDataError(f"Invalid symbol {text!r}: a symbol is required", symbol=None)
    stripped = text.strip()
    base_text, separator, query = stripped.partition("?")
    base = base_text.upper().removeprefix("^")
    if not _BASE_SYMBOL.match(base):
        raise MarketDataError(
            f"Invalid symbol '{text}': a symbol is 1 to 20 letters, digits, '.', '-', '_' or '=' "
            "(a leveraged symbol adds ?L=x, e.g. SPY?L=2)",
            symbol=text,
        )
    if not separator:
        return SymbolSpec(base=base)
    if base == CASH_SYMBOL:
        raise MarketDataError(
            f"Invalid leverage format in '{text}': CASH cannot be leveraged", symbol=text
        )

    values: dict[str, float] = {}
    for part in query.split("&"):
        key, equals, value_text = part.partition("=")
        key = key.strip().upper()
        if not equals or not key:
            raise _format_error(text, f"expected KEY=VALUE, got '{part}'")
        if key not in _PARAMETER_NAMES:
            raise _format_error(text, f"unknown key '{key}' (allowed: L, E, SP)")
        if key in values:
            raise _format_error(text, f"{key} is given more than once")
        try:
            value = float(value_text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise _format_error(text, f"{key} must be a number, got '{value_text}'")
        values[key] = value

    if "L" not in values:
        raise _format_error(text, "L (the leverage multiplier) is required, e.g. SPY?L=2")
    leverage = values["L"]
    if not 0 < leverage <= MAX_LEVERAGE:
        raise _format_error(
            text, f"leverage must be greater than 0 and at most 10, got {_number_text(leverage)}"
        )
    for key in ("E", "SP"):
        if key in values and not 0 <= values[key] <= MAX_ANNUAL_PERCENT:
            raise _format_error(
                text,
                f"{key} is an annual percentage between 0 and 100, got {_number_text(values[key])}",
            )
    return SymbolSpec(
        base=base,
        leverage=leverage,
        expense=values.get("E", 0.0),
        spread=values.get("SP", 0.0),
    )


def _number_text(value: float) -> str:
    """``3.0`` → ``3``, ``2.5`` → ``2.5``: numbers as a user would write them."""
    return f"{value:g}"


def _format_error(text: str, reason: str) -> MarketDataError:
    return MarketDataError(f"Invalid leverage format in '{text}': {reason}", symbol=text)


def leveraged_prices(underlying_close: np.ndarray, spec: SymbolSpec) -> np.ndarray:
    """Daily-reset leveraged price series over the underlying's closes (see module docstring)."""
    if spec.leverage is None:
        raise ValueError(f"{spec.base} is not a leveraged symbol")
    close = np.asarray(underlying_close, dtype=np.float64)
    if not len(close):
        return close.copy()
    underlying_returns = close[1:] / close[:-1] - 1.0
    leveraged_returns = spec.leverage * underlying_returns - spec.daily_cost
    growth = 1.0 + leveraged_returns
    wiped_out = np.flatnonzero(growth <= 0.0)
    if len(wiped_out):
        first = wiped_out[0]
        growth[first] = WIPEOUT_RESIDUAL
        growth[first + 1 :] = 1.0
    prices = np.empty_like(close)
    prices[0] = close[0]
    np.cumprod(growth, out=prices[1:])
    prices[1:] *= close[0]
    return prices

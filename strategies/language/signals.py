"""Signals: the operands of conditions (SPEC §4.1), their validation and their computation.

A signal is a JSON object ``{"type": ..., "symbol"?: ..., <params>}``. Types are matched
case-insensitively, aliases included; missing parameters take the defaults below; unknown keys
are problems (a typo must not silently run another indicator). A bare JSON number is shorthand for
``{"type": "constant", "value": number}``.

Every indicator is computed on the *full* loaded index (warm-up history included) and returned as
a float64 Series on that index. It is computed over the bars where the symbol has all the fields
it reads (a symbol that starts trading later has NaN before its first bar; a bar without a price
yields NaN there and does not poison later values), and NaN wherever it is undefined (warm-up,
zero denominators). Conditions treat NaN as false.

Units and conventions (TA-Lib is the reference where it has the indicator):

- ``SMA`` rolling mean of close; ``EMA`` α = 2/(n+1), seeded with the SMA of the first n closes
  (TA-Lib's EMA); ``RSI`` and ``ATR`` are Wilder's (TA-Lib's), RSI 0–100, ATR in price units.
- ``MACD`` is TA-Lib's MACD (its two EMAs start on the same bar, so the fast EMA is seeded
  ``slow - fast`` bars later than a stand-alone EMA would be); ``output`` histogram/macd/signal.
- ``Momentum``/``RollingReturn``: close/close[−n] − 1 (fraction); ``ROC``: 100 × that (percent).
- ``Volatility``/``HV``: sample std (ddof=1) of the last n daily simple returns × √252.
- ``BollingerBands``/``BB``: TA-Lib BBANDS, i.e. middle = SMA(n), bands = middle ± k·σ with the
  *population* std (ddof=0) of the last n closes; ``percent_b`` = (close − lower)/(upper − lower),
  NaN when the bands coincide.
- ``StochasticOscillator``: TA-Lib STOCH slow-%K: raw %K = 100·(close − lowest low)/(highest high −
  lowest low) over ``window`` bars, smoothed by an SMA of ``smooth_window``. TA-Lib gives 0 when
  the range is zero.
- ``RollingSharpe``/``RollingSortino`` over the last ``window`` daily returns r, with P =
  ``trading_days`` and rf_p = (1 + risk_free_rate)^(1/P) − 1, exactly SPEC §5's definitions on that
  window: Sharpe = mean(r − rf_p)/std(r − rf_p, ddof=1)·√P; Sortino = mean(r − rf_p)·P /
  (√mean(min(r − rf_p, 0)²)·√P). An undefined or infinite ratio (no variation, no downside) is NaN.
- ``Drawdown``: close / running max − 1 (≤ 0). Without ``window`` the running max starts at the
  run's first bar (``prices.start``), so the value does not depend on how much history was loaded,
  and warm-up bars are NaN; with ``window`` it is the max of the last ``window`` closes.
- ``ChaikinMoneyFlow``/``CMF``: Σ MFV / Σ volume over the last ``window`` bars, MFV = ((close −
  low) − (high − close)) / (high − low) × volume, 0 on a bar where high = low; −1…1, NaN when the
  window traded no volume.
- ``Correlation``: the Pearson correlation of the daily close-to-close returns of ``symbol`` and
  ``other`` over the last ``window`` returns, on the bars where both have a close; −1…1, NaN when
  either return series is constant over the window.
- ``MarketRegime``: trend × volatility: bull when close > SMA(``window``), volatile when
  ``Volatility(vol_window)`` is above its rolling median over the last ``vol_lookback`` bars;
  +2 quiet bull, +1 volatile bull, −1 quiet bear, −2 volatile bear; NaN until all three are known.
- ``Highest``/``Lowest`` (added for the breakout plugin): the max/min of ``field`` (close) over
  the ``window`` bars that end ``lag`` bars before the current one (``lag`` 0 includes the
  current bar, 1 is the prior window).
- ``talib``: any TA-Lib function by name, fed the symbol's open/high/low/close/volume, with the
  function's own parameter names and defaults, ``output`` naming one of its outputs (default: the
  first).
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd
import talib
from talib import abstract as talib_abstract

from backfolio.deadline import check_deadline
from metrics.calculations import TRADING_DAYS_PER_YEAR
from strategies.language.problems import Problem, join_path
from strategies.language.symbols import symbol_format_problem

PRICE_FIELDS = ("open", "high", "low", "close", "volume")
_MAX_WINDOW = 100_000


class PriceFrameLike(Protocol):
    """What the language needs of ``marketdata.store.PriceFrame``."""

    open: pd.DataFrame
    high: pd.DataFrame
    low: pd.DataFrame
    close: pd.DataFrame
    volume: pd.DataFrame
    start: pd.Timestamp


_REQUIRED = object()


@dataclass(frozen=True)
class Param:
    """One parameter of a signal type: how to check it and its default (``_REQUIRED`` if none)."""

    kind: str  # "int" | "number" | "choice" | "symbol"
    default: Any = _REQUIRED
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    choices: tuple[str, ...] = ()
    nullable: bool = False

    @property
    def required(self) -> bool:
        return self.default is _REQUIRED

    def check(self, value: Any) -> tuple[Any, str | None]:
        """Return ``(normalised value, None)`` or ``(None, message)``."""
        if value is None and self.nullable:
            return None, None
        if self.kind == "symbol":
            message = symbol_format_problem(value)
            return (None, message) if message else (value, None)
        if self.kind == "choice":
            if isinstance(value, str) and value.lower() in self.choices:
                return value.lower(), None
            return None, f"must be one of: {', '.join(self.choices)}"
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        if not is_number or not math.isfinite(value):
            return None, self._type_message()
        if self.kind == "int":
            if value != int(value):
                return None, self._type_message()
            value = int(value)
        if self.minimum is not None:
            if self.exclusive_minimum and value <= self.minimum:
                return None, f"must be greater than {self.minimum:g}"
            if value < self.minimum:
                if self.kind == "int" and value < min(self.minimum, 1):
                    return None, self._type_message()
                return None, f"must be at least {self.minimum:g}"
        if self.maximum is not None and value > self.maximum:
            return None, f"must be at most {self.maximum:g}"
        return value, None

    def _type_message(self) -> str:
        if self.kind == "int":
            if self.minimum is not None and self.minimum >= 1:
                return "must be a positive integer"
            if self.minimum == 0:
                return "must be a non-negative integer"
            return "must be an integer"
        return "must be a number"


def _window(default: Any = _REQUIRED, minimum: int = 1) -> Param:
    return Param("int", default, minimum=minimum, maximum=_MAX_WINDOW)


@dataclass(frozen=True)
class Bars:
    """One symbol's fields as float64 contiguous arrays over its valid rows."""

    fields: Mapping[str, np.ndarray]
    start_offset: int  # position of the run's first bar (prices.start) within these rows

    def __getitem__(self, name: str) -> np.ndarray:
        return self.fields[name]


@dataclass(frozen=True)
class SignalType:
    name: str
    aliases: tuple[str, ...]
    params: Mapping[str, Param]
    fields: tuple[str, ...]  # price fields read; empty = needs no symbol
    compute: Callable[[Mapping[str, Any], Bars], np.ndarray]
    lookback: Callable[[Mapping[str, Any]], int]  # bars before the first defined value
    check: Callable[[Mapping[str, Any]], list[tuple[str, str]]] = field(default=lambda p: [])
    # price fields read from the symbol named by the ``other`` parameter, handed to ``compute``
    # as ``other_<field>`` (cross-asset signals)
    other_fields: tuple[str, ...] = ()


# --- computations --------------------------------------------------------------------------


def _field(name: str) -> Callable[[Mapping[str, Any], Bars], np.ndarray]:
    return lambda params, bars: bars[name].copy()


def _shift(values: np.ndarray, periods: int) -> np.ndarray:
    shifted = np.full_like(values, np.nan)
    if periods < len(values):
        shifted[periods:] = values[: len(values) - periods]
    return shifted


def _momentum(params, bars) -> np.ndarray:
    close = bars["close"]
    with np.errstate(divide="ignore", invalid="ignore"):
        return close / _shift(close, params["window"]) - 1.0


def _roc(params, bars) -> np.ndarray:
    return 100.0 * _momentum(params, bars)


def _daily_returns(close: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return close / _shift(close, 1) - 1.0


def _volatility(params, bars) -> np.ndarray:
    returns = pd.Series(_daily_returns(bars["close"]))
    std = returns.rolling(params["window"], min_periods=params["window"]).std(ddof=1)
    return std.to_numpy() * math.sqrt(TRADING_DAYS_PER_YEAR)


def _excess_returns(params, bars) -> tuple[pd.Series, int]:
    periods = params["trading_days"]
    per_period_rf = (1.0 + params["risk_free_rate"]) ** (1.0 / periods) - 1.0
    return pd.Series(_daily_returns(bars["close"]) - per_period_rf), params["window"]


def _finite_or_nan(values: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(values), values, np.nan)


def _rolling_sharpe(params, bars) -> np.ndarray:
    excess, window = _excess_returns(params, bars)
    rolling = excess.rolling(window, min_periods=window)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = rolling.mean().to_numpy() / rolling.std(ddof=1).to_numpy()
    return _finite_or_nan(ratio * math.sqrt(params["trading_days"]))


def _rolling_sortino(params, bars) -> np.ndarray:
    excess, window = _excess_returns(params, bars)
    periods = params["trading_days"]
    mean = excess.rolling(window, min_periods=window).mean().to_numpy()
    downside = excess.clip(upper=0.0) ** 2
    downside_deviation = np.sqrt(downside.rolling(window, min_periods=window).mean().to_numpy())
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = mean * periods / (downside_deviation * math.sqrt(periods))
    return _finite_or_nan(ratio)


def _drawdown(params, bars) -> np.ndarray:
    close = bars["close"]
    window = params["window"]
    if window is None:
        result = np.full_like(close, np.nan)
        since_start = close[bars.start_offset :]
        result[bars.start_offset :] = since_start / np.maximum.accumulate(since_start) - 1.0
        return result
    peak = pd.Series(close).rolling(window, min_periods=window).max().to_numpy()
    return close / peak - 1.0


def _extreme(kind: str) -> Callable[[Mapping[str, Any], Bars], np.ndarray]:
    def compute(params, bars) -> np.ndarray:
        rolling = pd.Series(bars[params["field"]]).rolling(params["window"])
        values = (rolling.max() if kind == "max" else rolling.min()).to_numpy()
        return _shift(values, params["lag"]) if params["lag"] else values

    return compute


def _macd(params, bars) -> np.ndarray:
    macd, signal, histogram = talib.MACD(
        bars["close"],
        fastperiod=params["fast"],
        slowperiod=params["slow"],
        signalperiod=params["signal"],
    )
    return {"macd": macd, "signal": signal, "histogram": histogram}[params["output"]]


def _bollinger(params, bars) -> np.ndarray:
    close = bars["close"]
    upper, middle, lower = talib.BBANDS(
        close,
        timeperiod=params["window"],
        nbdevup=params["num_std"],
        nbdevdn=params["num_std"],
        matype=0,
    )
    output = params["output"]
    if output == "percent_b":
        width = upper - lower
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(width > 0, (close - lower) / width, np.nan)
    return {"upper": upper, "middle": middle, "lower": lower}[output]


def _stochastic(params, bars) -> np.ndarray:
    slow_k, _slow_d = talib.STOCH(
        bars["high"],
        bars["low"],
        bars["close"],
        fastk_period=params["window"],
        slowk_period=params["smooth_window"],
        slowk_matype=0,
        slowd_period=1,
        slowd_matype=0,
    )
    return slow_k


def _chaikin_money_flow(params, bars) -> np.ndarray:
    high, low, close, volume = bars["high"], bars["low"], bars["close"], bars["volume"]
    spread = high - low
    with np.errstate(divide="ignore", invalid="ignore"):
        multiplier = np.where(spread > 0, ((close - low) - (high - close)) / spread, 0.0)
    window = params["window"]
    flow = pd.Series(multiplier * volume).rolling(window, min_periods=window).sum().to_numpy()
    traded = pd.Series(volume).rolling(window, min_periods=window).sum().to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(traded > 0, flow / traded, np.nan)


def _correlation(params, bars) -> np.ndarray:
    window = params["window"]
    returns = pd.Series(_daily_returns(bars["close"]))
    other_returns = pd.Series(_daily_returns(bars["other_close"]))
    correlation = returns.rolling(window, min_periods=window).corr(other_returns).to_numpy()
    # A constant series over the window has no correlation; rounding can leave a variance of
    # ~1e-20 where it is truly 0, so a window is constant when its range is 0.
    flat = (_rolling_range(returns, window) == 0) | (_rolling_range(other_returns, window) == 0)
    return np.where(flat, np.nan, _finite_or_nan(correlation))


def _rolling_range(values: pd.Series, window: int) -> np.ndarray:
    rolling = values.rolling(window, min_periods=window)
    return (rolling.max() - rolling.min()).to_numpy()


def _market_regime(params, bars) -> np.ndarray:
    close = bars["close"]
    trend = talib.SMA(close, timeperiod=params["window"])
    volatility = pd.Series(_volatility({"window": params["vol_window"]}, bars))
    lookback = params["vol_lookback"]
    typical = volatility.rolling(lookback, min_periods=lookback).median().to_numpy()
    volatility = volatility.to_numpy()
    bull = close > trend
    volatile = volatility > typical
    regime = np.where(bull, np.where(volatile, 1.0, 2.0), np.where(volatile, -2.0, -1.0))
    known = ~(np.isnan(trend) | np.isnan(volatility) | np.isnan(typical))
    return np.where(known, regime, np.nan)


def _macd_check(params) -> list[tuple[str, str]]:
    if params["fast"] >= params["slow"]:
        return [("fast", f"must be less than slow ({params['slow']})")]
    return []


_OHLCV = ("open", "high", "low", "close", "volume")
_WINDOW_RETURNS_LOOKBACK = lambda p: p["window"]  # noqa: E731 - n returns need n + 1 closes

SIGNAL_TYPES: tuple[SignalType, ...] = (
    *(
        SignalType(name, aliases, {}, (name.lower(),), _field(name.lower()), lambda p: 0)
        for name, aliases in (
            ("Close", ("price",)),
            ("Open", ()),
            ("High", ()),
            ("Low", ()),
            ("Volume", ()),
        )
    ),
    SignalType(
        "SMA",
        (),
        {"window": _window(minimum=1)},
        ("close",),
        lambda p, b: talib.SMA(b["close"], timeperiod=p["window"]),
        lambda p: p["window"] - 1,
    ),
    SignalType(
        "EMA",
        (),
        {"window": _window(minimum=1)},
        ("close",),
        lambda p, b: talib.EMA(b["close"], timeperiod=p["window"]),
        lambda p: p["window"] - 1,
    ),
    SignalType(
        "RSI",
        (),
        {"window": _window(14, minimum=2)},
        ("close",),
        lambda p, b: talib.RSI(b["close"], timeperiod=p["window"]),
        lambda p: p["window"],
    ),
    SignalType(
        "MACD",
        (),
        {
            "fast": _window(12, minimum=2),
            "slow": _window(26, minimum=2),
            "signal": _window(9, minimum=1),
            "output": Param("choice", "histogram", choices=("histogram", "macd", "signal")),
        },
        ("close",),
        _macd,
        lambda p: p["slow"] - 1 + p["signal"] - 1,
        _macd_check,
    ),
    SignalType(
        "Momentum", (), {"window": _window()}, ("close",), _momentum, _WINDOW_RETURNS_LOOKBACK
    ),
    SignalType("ROC", (), {"window": _window()}, ("close",), _roc, _WINDOW_RETURNS_LOOKBACK),
    SignalType(
        "RollingReturn",
        (),
        {"window": _window()},
        ("close",),
        _momentum,
        _WINDOW_RETURNS_LOOKBACK,
    ),
    SignalType(
        "Volatility",
        ("hv",),
        {"window": _window(minimum=2)},
        ("close",),
        _volatility,
        _WINDOW_RETURNS_LOOKBACK,
    ),
    SignalType(
        "ATR",
        (),
        {"window": _window(14, minimum=1)},
        ("high", "low", "close"),
        lambda p, b: talib.ATR(b["high"], b["low"], b["close"], timeperiod=p["window"]),
        lambda p: p["window"],
    ),
    SignalType(
        "BollingerBands",
        ("bb",),
        {
            "window": _window(20, minimum=2),
            "num_std": Param("number", 2.0, minimum=0, exclusive_minimum=True),
            "output": Param(
                "choice", "percent_b", choices=("percent_b", "upper", "middle", "lower")
            ),
        },
        ("close",),
        _bollinger,
        lambda p: p["window"] - 1,
    ),
    SignalType(
        "StochasticOscillator",
        ("stochastic",),
        {"window": _window(14, minimum=1), "smooth_window": _window(3, minimum=1)},
        ("high", "low", "close"),
        _stochastic,
        lambda p: p["window"] - 1 + p["smooth_window"] - 1,
    ),
    *(
        SignalType(
            name,
            (),
            {
                "window": _window(minimum=2),
                "trading_days": _window(TRADING_DAYS_PER_YEAR, minimum=1),
                "risk_free_rate": Param("number", 0.0, minimum=-1, exclusive_minimum=True),
            },
            ("close",),
            compute,
            _WINDOW_RETURNS_LOOKBACK,
        )
        for name, compute in (
            ("RollingSharpe", _rolling_sharpe),
            ("RollingSortino", _rolling_sortino),
        )
    ),
    SignalType(
        "Drawdown",
        (),
        {"window": Param("int", None, minimum=1, maximum=_MAX_WINDOW, nullable=True)},
        ("close",),
        _drawdown,
        lambda p: 0 if p["window"] is None else p["window"] - 1,
    ),
    SignalType(
        "ChaikinMoneyFlow",
        ("cmf",),
        {"window": _window(20, minimum=1)},
        ("high", "low", "close", "volume"),
        _chaikin_money_flow,
        lambda p: p["window"] - 1,
    ),
    SignalType(
        "Correlation",
        (),
        {"other": Param("symbol"), "window": _window(63, minimum=2)},
        ("close",),
        _correlation,
        _WINDOW_RETURNS_LOOKBACK,
        other_fields=("close",),
    ),
    SignalType(
        "MarketRegime",
        (),
        {
            "window": _window(200, minimum=1),
            "vol_window": _window(63, minimum=2),
            "vol_lookback": _window(756, minimum=1),
        },
        ("close",),
        _market_regime,
        lambda p: max(p["window"] - 1, p["vol_window"] + p["vol_lookback"] - 1),
    ),
    *(
        SignalType(
            name,
            (),
            {
                "window": _window(minimum=1),
                "lag": Param("int", 0, minimum=0, maximum=_MAX_WINDOW),
                "field": Param("choice", "close", choices=_OHLCV),
            },
            (),  # reads the field named by its params; see _fields_of
            _extreme(kind),
            lambda p: p["window"] - 1 + p["lag"],
        )
        for name, kind in (("Highest", "max"), ("Lowest", "min"))
    ),
    SignalType(
        "constant",
        ("value",),
        {"value": Param("number")},
        (),
        lambda p, b: np.array([]),  # never called: _compute_values fills the constant
        lambda p: 0,
    ),
)

TALIB_TYPE = "talib"
_BY_NAME: dict[str, SignalType] = {}
for _signal_type in SIGNAL_TYPES:
    for _key in (_signal_type.name, *_signal_type.aliases):
        _BY_NAME[_key.lower()] = _signal_type
_TALIB_FUNCTIONS = frozenset(talib.get_functions())


def known_signal_types() -> list[str]:
    """Canonical type names (aliases excluded), in the SPEC's order, then ``talib``."""
    return [signal_type.name for signal_type in SIGNAL_TYPES] + [TALIB_TYPE]


def talib_function_names() -> list[str]:
    """The TA-Lib functions a ``talib`` signal may name, sorted."""
    return sorted(_TALIB_FUNCTIONS)


# TA-Lib's optional-input kinds (TA_OptInputParameterType): real or integer, a range or a list.
_TALIB_REAL_KINDS = (0, 1)
_TALIB_LIST_KINDS = (1, 3)


@functools.cache
def talib_functions() -> list[dict[str, Any]]:
    """Every TA-Lib function a ``talib`` signal may name, as TA-Lib's abstract API describes
    it: name, group, display name, outputs (the first is the default ``output``) and parameters
    (name, display name, help, ``int`` or ``number``, default, and for a list-valued parameter
    such as ``matype`` its choices as ``[value, label]``). Sorted by name."""
    return [_talib_description(name) for name in talib_function_names()]


def _talib_description(name: str) -> dict[str, Any]:
    function = _talib_function(name)
    info = function.info
    params = []
    for index, (param, default) in enumerate(function.parameters.items()):
        details = _talib_parameter_info(name, index)
        kind = details.get("type")
        whole = kind not in _TALIB_REAL_KINDS if kind is not None else isinstance(default, int)
        choices = (
            [[value, label] for value, label in talib.MA_Type._lookup.items()]
            if kind in _TALIB_LIST_KINDS and param.endswith("matype")
            else []
        )
        params.append(
            {
                "name": param,
                "display_name": details.get("display_name") or param,
                "help": details.get("help") or "",
                "kind": "int" if whole else "number",
                "default": int(default) if whole else float(default),
                "choices": choices,
            }
        )
    return {
        "name": name,
        "group": info.get("group") or "",
        "display_name": info.get("display_name") or name,
        "outputs": list(function.output_names),
        "params": params,
    }


def _talib_parameter_info(name: str, index: int) -> dict[str, Any]:
    """TA-Lib's own description of a function's ``index``-th parameter (display name, help,
    kind); empty when the library does not say (its abstract layer keeps this lookup private)."""
    lookup = getattr(talib._ta_lib, "_ta_getOptInputParameterInfo", None)
    if lookup is None:
        return {}
    try:
        return dict(lookup(name.encode(), index))
    except Exception:  # a library without the lookup in this form: names and defaults suffice
        return {}


def _is_plain_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _talib_function(name: str) -> talib_abstract.Function:
    return talib_abstract.Function(name)


def _talib_input_fields(function: talib_abstract.Function) -> tuple[str, ...]:
    names: list[str] = []
    for value in function.input_names.values():
        for name in [value] if isinstance(value, str) else value:
            if name not in names:
                names.append(name)
    return tuple(names)


def _talib_problems(spec: Mapping[str, Any], path: str) -> list[Problem]:
    problems: list[Problem] = []
    name = spec.get("function")
    if not isinstance(name, str) or name.upper() not in _TALIB_FUNCTIONS:
        message = (
            "is required: the name of a TA-Lib function, e.g. WILLR"
            if name is None
            else f"unknown TA-Lib function {name!r} (see talib.get_functions())"
        )
        return [Problem(join_path(path, "function"), message)]
    function = _talib_function(name.upper())
    defaults = function.parameters
    allowed = {"type", "function", "symbol", "output", *defaults}
    for key in spec:
        if key not in allowed:
            problems.append(
                Problem(
                    join_path(path, key),
                    f"unknown parameter for TA-Lib {name.upper()} "
                    f"(known: {', '.join(['symbol', 'output', *defaults]) or 'none'})",
                )
            )
    chosen: dict[str, Any] = {}
    for key, default in defaults.items():
        if key not in spec:
            continue
        value = spec[key]
        wants_int = isinstance(default, int)
        if not _is_plain_number(value) or not math.isfinite(value):
            problems.append(Problem(join_path(path, key), "must be a number"))
        elif wants_int and value != int(value):
            problems.append(Problem(join_path(path, key), "must be an integer"))
        else:
            chosen[key] = int(value) if wants_int else float(value)
    output = spec.get("output")
    if output is not None and output not in function.output_names:
        problems.append(
            Problem(
                join_path(path, "output"),
                f"must be one of: {', '.join(function.output_names)}",
            )
        )
    if not problems and chosen:
        # TA-Lib knows each parameter's range; a dry run on a few bars asks it cheaply. When it
        # refuses, each parameter is tried alone (the others at their defaults) so that the
        # problem lands on the one it refuses.
        error = _talib_refusal(name.upper(), chosen)
        if error is not None:
            refused = [
                key for key, value in chosen.items() if _talib_refusal(name.upper(), {key: value})
            ]
            for key in refused:
                problems.append(
                    Problem(
                        join_path(path, key),
                        f"TA-Lib {name.upper()} refuses {key} = {chosen[key]:g} "
                        f"(default {defaults[key]:g})",
                    )
                )
            if not refused:
                problems.append(
                    Problem(path, f"invalid parameters for TA-Lib {name.upper()}: {error}")
                )
    return problems


def _talib_refusal(name: str, params: Mapping[str, Any]) -> str | None:
    """TA-Lib's error for these parameters on a few bars, or None when it accepts them."""
    function = _talib_function(name)
    probe = np.linspace(10.0, 11.0, 8)
    try:
        function.set_parameters(dict(params))
        function.run({field_name: probe.copy() for field_name in PRICE_FIELDS})
    except Exception as error:
        return str(error)
    return None


def validate_signal(spec: Any, path: str, *, symbol_required: bool) -> list[Problem]:
    """Every problem with one signal. ``symbol_required`` when the context has no default symbol
    (allocation strategies); signal strategies default to the run's symbol."""
    if _is_plain_number(spec):
        if not math.isfinite(spec):
            return [Problem(path, "must be a finite number")]
        return []
    if not isinstance(spec, Mapping):
        return [Problem(path, "must be a signal object with a 'type', or a number")]
    raw_type = spec.get("type")
    if raw_type is None:
        return [Problem(join_path(path, "type"), "is required")]
    if not isinstance(raw_type, str):
        return [Problem(join_path(path, "type"), "must be a string")]
    problems: list[Problem] = []
    if raw_type.lower() == TALIB_TYPE:
        problems.extend(_talib_problems(spec, path))
        needs_symbol = True
    else:
        signal_type = _BY_NAME.get(raw_type.lower())
        if signal_type is None:
            return [
                Problem(
                    join_path(path, "type"),
                    f"unknown signal type '{raw_type}' (known: {', '.join(known_signal_types())})",
                )
            ]
        needs_symbol = signal_type.name != "constant"
        allowed = {"type", *signal_type.params, *(["symbol"] if needs_symbol else [])}
        for key in spec:
            if key not in allowed:
                known = ", ".join(sorted(allowed - {"type"})) or "none"
                problems.append(
                    Problem(
                        join_path(path, key),
                        f"unknown parameter for {signal_type.name} (known: {known})",
                    )
                )
        checked: dict[str, Any] = {}
        for name, param in signal_type.params.items():
            if name not in spec:
                if param.required:
                    problems.append(Problem(join_path(path, name), "is required"))
                else:
                    checked[name] = param.default
                continue
            value, message = param.check(spec[name])
            if message:
                problems.append(Problem(join_path(path, name), message))
            else:
                checked[name] = value
        if len(checked) == len(signal_type.params):
            problems.extend(
                Problem(join_path(path, name), message)
                for name, message in signal_type.check(checked)
            )
    if needs_symbol:
        symbol = spec.get("symbol")
        if symbol is None:
            if symbol_required:
                problems.append(
                    Problem(
                        join_path(path, "symbol"),
                        "is required (allocation strategies name the symbol of every signal)",
                    )
                )
        else:
            message = symbol_format_problem(symbol)
            if message:
                problems.append(Problem(join_path(path, "symbol"), message))
    return problems


# Canonical forms already worked out, by the signal's JSON and default symbol: a sweep or a
# walk-forward asks for the same few signals thousands of times (validating, warming up,
# compiling), and validation is most of the cost. Cleared when full, so it stays small.
_CANONICAL_BY_SPEC: dict[tuple[Any, str | None], dict[str, Any]] = {}
_CANONICAL_CACHE_SIZE = 4096
_SCALARS = (str, int, float, bool, type(None))


def _spec_key(spec: Any) -> Any:
    """The signal as written, as the key of its memos: each value with its type (5, 5.0 and True
    are different signals to validation); None when it has no key (never a valid signal)."""
    if isinstance(spec, _SCALARS):
        return (type(spec), spec)
    if isinstance(spec, Mapping) and all(
        isinstance(key, str) and isinstance(value, _SCALARS) for key, value in spec.items()
    ):
        return tuple(sorted((key, type(value), value) for key, value in spec.items()))
    try:
        return json.dumps(spec, sort_keys=True)
    except (TypeError, ValueError):
        return None


def normalize_signal(spec: Any, default_symbol: str | None) -> dict[str, Any]:
    """The canonical form of a valid signal: canonical type name, resolved symbol, every
    parameter with its default. Raises ValueError for an invalid signal (validate first)."""
    spec_key = _spec_key(spec)
    if spec_key is not None:
        known = _CANONICAL_BY_SPEC.get((spec_key, default_symbol))
        if known is not None:
            return dict(known)
    canonical = _normalize_signal(spec, default_symbol)
    if spec_key is not None:
        if len(_CANONICAL_BY_SPEC) >= _CANONICAL_CACHE_SIZE:
            _CANONICAL_BY_SPEC.clear()
        _CANONICAL_BY_SPEC[(spec_key, default_symbol)] = canonical
    return dict(canonical)


def _normalize_signal(spec: Any, default_symbol: str | None) -> dict[str, Any]:
    problems = validate_signal(spec, "signal", symbol_required=default_symbol is None)
    if problems:
        raise ValueError("; ".join(str(problem) for problem in problems))
    if _is_plain_number(spec):
        return {"type": "constant", "value": float(spec)}
    raw_type = spec["type"].lower()
    if raw_type == TALIB_TYPE:
        function_name = spec["function"].upper()
        function = _talib_function(function_name)
        canonical: dict[str, Any] = {"type": TALIB_TYPE, "function": function_name}
        for key, default in function.parameters.items():
            value = spec.get(key, default)
            canonical[key] = int(value) if isinstance(default, int) else float(value)
        canonical["output"] = spec.get("output", function.output_names[0])
        canonical["symbol"] = spec.get("symbol", default_symbol)
        return canonical
    signal_type = _BY_NAME[raw_type]
    canonical = {"type": signal_type.name}
    for name, param in signal_type.params.items():
        value, _ = param.check(spec[name]) if name in spec else (param.default, None)
        canonical[name] = float(value) if param.kind == "number" else value
    if signal_type.name != "constant":
        canonical["symbol"] = spec.get("symbol", default_symbol)
    return canonical


def signal_lookback(canonical: Mapping[str, Any]) -> int:
    """Bars of history before a canonical signal's first defined value."""
    if canonical["type"] == TALIB_TYPE:
        function = _talib_function(canonical["function"])
        function.set_parameters(_talib_params(canonical, function))
        return int(function.lookback)
    signal_type = _BY_NAME[canonical["type"].lower()]
    return int(signal_type.lookback(canonical))


def signal_symbols(canonical: Mapping[str, Any]) -> list[str]:
    """Every symbol whose prices a canonical signal reads: its own, then ``other`` for a
    cross-asset signal (Correlation)."""
    symbols = [canonical["symbol"]] if "symbol" in canonical else []
    if canonical["type"] != TALIB_TYPE and _BY_NAME[canonical["type"].lower()].other_fields:
        symbols.append(canonical["other"])
    return symbols


def _talib_params(canonical: Mapping[str, Any], function) -> dict[str, Any]:
    return {key: canonical[key] for key in function.parameters}


def _fields_of(canonical: Mapping[str, Any]) -> tuple[str, ...]:
    if canonical["type"] == TALIB_TYPE:
        return _talib_input_fields(_talib_function(canonical["function"]))
    if canonical["type"] in ("Highest", "Lowest"):
        return (canonical["field"],)
    return _BY_NAME[canonical["type"].lower()].fields


def _compute_talib(canonical: Mapping[str, Any], bars: Bars) -> np.ndarray:
    function = _talib_function(canonical["function"])
    function.set_parameters(_talib_params(canonical, function))
    outputs = function.run(dict(bars.fields))
    if isinstance(outputs, list):
        outputs = outputs[function.output_names.index(canonical["output"])]
    return np.asarray(outputs, dtype=np.float64)


class SignalCache:
    """Computed signals and per-symbol arrays for one PriceFrame, so that a signal used twice in
    one compile (or by two rules) is computed once. Keyed by the canonical spec."""

    def __init__(self, prices: PriceFrameLike):
        self.prices = prices
        self._series: dict[str, pd.Series] = {}
        # The same values by the signal as written (its JSON and default symbol), so that
        # compiling many definitions looks a repeated signal up without normalising it again.
        self._values: dict[tuple[Any, str | None], np.ndarray] = {}
        self._derived: dict[str, Any] = {}
        self._columns: dict[tuple[str, str], np.ndarray] = {}
        self._start_position: int | None = None

    @property
    def index(self) -> pd.Index:
        return self.prices.close.index

    def start_position(self) -> int:
        if self._start_position is None:
            self._start_position = int(self.index.searchsorted(self.prices.start, side="left"))
        return self._start_position

    def column(self, field_name: str, symbol: str) -> np.ndarray:
        key = (field_name, symbol)
        if key not in self._columns:
            frame: pd.DataFrame = getattr(self.prices, field_name)
            if symbol not in frame.columns:
                raise KeyError(f"no {field_name} prices for symbol {symbol!r} in this frame")
            self._columns[key] = np.ascontiguousarray(frame[symbol].to_numpy(dtype=np.float64))
        return self._columns[key]

    def derived(self, name: str, build: Callable[[], Any]) -> Any:
        """``build()`` once per cache: something every compile on these prices needs alike."""
        if name not in self._derived:
            self._derived[name] = build()
        return self._derived[name]

    def values_of(self, spec_key: Any, default_symbol: str | None) -> np.ndarray | None:
        return self._values.get((spec_key, default_symbol))

    def keep_values(self, spec_key: Any, default_symbol: str | None, values: np.ndarray) -> None:
        self._values[(spec_key, default_symbol)] = values

    def get(self, key: str) -> pd.Series | None:
        return self._series.get(key)

    def put(self, key: str, series: pd.Series) -> None:
        self._series[key] = series


def _compute_values(canonical: Mapping[str, Any], cache: SignalCache) -> np.ndarray:
    length = len(cache.index)
    if canonical["type"] == "constant":
        return np.full(length, canonical["value"], dtype=np.float64)
    symbol = canonical["symbol"]
    field_names = _fields_of(canonical)
    columns = {name: cache.column(name, symbol) for name in field_names}
    if canonical["type"] != TALIB_TYPE:
        for name in _BY_NAME[canonical["type"].lower()].other_fields:
            columns[f"other_{name}"] = cache.column(name, canonical["other"])
    valid = np.ones(length, dtype=bool)
    for values in columns.values():
        valid &= ~np.isnan(values)
    start = cache.start_position()
    if valid.all():
        bars = Bars(columns, start)
    else:
        bars = Bars(
            {name: np.ascontiguousarray(values[valid]) for name, values in columns.items()},
            int(valid[:start].sum()),
        )
    if len(next(iter(bars.fields.values()))) == 0:
        return np.full(length, np.nan)
    if canonical["type"] == TALIB_TYPE:
        computed = _compute_talib(canonical, bars)
    else:
        computed = _BY_NAME[canonical["type"].lower()].compute(canonical, bars)
    computed = np.asarray(computed, dtype=np.float64)
    if valid.all():
        return computed
    result = np.full(length, np.nan)
    result[valid] = computed
    return result


def compute_signal(
    spec: Any,
    prices: PriceFrameLike,
    default_symbol: str | None = None,
    *,
    cache: SignalCache | None = None,
) -> pd.Series:
    """One signal as a float64 Series on ``prices``' full index (warm-up included).

    Raises ValueError for an invalid spec and KeyError for a symbol the frame does not hold:
    callers validate user input first, so either is a programming error.
    """
    if cache is None or cache.prices is not prices:
        cache = SignalCache(prices)
    canonical = normalize_signal(spec, default_symbol)
    key = json.dumps(canonical, sort_keys=True)
    cached = cache.get(key)
    if cached is not None:
        return cached
    check_deadline()  # one indicator can take a while: each starts only within the time limit
    series = pd.Series(_compute_values(canonical, cache), index=cache.index, dtype=np.float64)
    cache.put(key, series)
    return series


def signal_values(
    spec: Any, prices: PriceFrameLike, default_symbol: str | None, *, cache: SignalCache
) -> np.ndarray:
    """``compute_signal``'s values as an array (read only), looked up in ``cache`` by the signal
    as written, for compiling many definitions on the same prices."""
    if cache.prices is not prices:
        raise ValueError("a shared SignalCache must belong to the prices being evaluated")
    spec_key = _spec_key(spec)
    if spec_key is not None:
        known = cache.values_of(spec_key, default_symbol)
        if known is not None:
            return known
    canonical = normalize_signal(spec, default_symbol)
    key = json.dumps(canonical, sort_keys=True)
    series = cache.get(key)
    if series is not None:
        values = series.to_numpy()
    else:
        check_deadline()  # as compute_signal: each indicator starts only within the time limit
        values = _compute_values(canonical, cache)
    if spec_key is not None:
        cache.keep_values(spec_key, default_symbol, values)
    return values

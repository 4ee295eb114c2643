"""Built-in strategies (SPEC §4.4): named, parameterised builders of plain §4.3 definitions.

Each plugin's ``build`` returns an ordinary signal-strategy definition (inspectable JSON) whose
signals carry no ``symbol``, so they read the run's symbol. Rules are *states*, not edges
("fast above slow"), which is enough because the engines enter only when flat: a crossover
strategy enters on the first bar where fast > slow and leaves on the first where fast < slow.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from strategies.language.problems import Problem, join_path

PLUGIN_KEY_PATH = "signal_plugin_key"
PLUGIN_PARAMS_PATH = "signal_plugin_params"


@dataclass(frozen=True)
class ParamSpec:
    """A plugin parameter: ``type`` is ``"int"`` or ``"float"``; bounds are inclusive."""

    type: str
    default: float
    min: float | None = None
    max: float | None = None
    description: str = ""

    def problem(self, value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "must be an integer" if self.type == "int" else "must be a number"
        if not math.isfinite(value):
            return "must be a finite number"
        if self.type == "int" and value != int(value):
            return "must be an integer"
        if self.min is not None and value < self.min:
            return f"must be at least {self.min:g}"
        if self.max is not None and value > self.max:
            return f"must be at most {self.max:g}"
        return None

    def normalise(self, value: float) -> float | int:
        return int(value) if self.type == "int" else float(value)


@dataclass(frozen=True)
class Plugin:
    name: str
    description: str
    params: Mapping[str, ParamSpec]
    build: Callable[[Mapping[str, Any]], dict[str, Any]]
    # Checks across parameters: (param name, message) for each violated relation.
    relations: Callable[[Mapping[str, Any]], list[tuple[str, str]]] = field(
        default=lambda params: []
    )

    def defaults(self) -> dict[str, Any]:
        return {name: spec.default for name, spec in self.params.items()}


def _compare(left: Any, comparison: str, right: Any) -> dict[str, Any]:
    return {"left": left, "comparison": comparison, "right": right}


def _constant(value: float) -> dict[str, Any]:
    return {"type": "constant", "value": value}


def _buy_and_hold(params) -> dict[str, Any]:
    # Always true: the engines enter on the first bar (flat) and nothing ever exits.
    return {"entry": _compare(_constant(1), ">", _constant(0))}


def _crossover(indicator: str) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    def build(params) -> dict[str, Any]:
        fast = {"type": indicator, "window": params["fast"]}
        slow = {"type": indicator, "window": params["slow"]}
        return {"entry": _compare(fast, ">", slow), "exit": _compare(fast, "<", slow)}

    return build


def _fast_below_slow(params) -> list[tuple[str, str]]:
    if params["fast"] >= params["slow"]:
        return [("fast", f"must be less than slow ({params['slow']})")]
    return []


def _rsi_reversion(params) -> dict[str, Any]:
    rsi = {"type": "RSI", "window": params["window"]}
    return {
        "entry": _compare(rsi, "<", _constant(params["lower"])),
        "exit": _compare(rsi, ">", _constant(params["upper"])),
    }


def _lower_below_upper(params) -> list[tuple[str, str]]:
    if params["lower"] >= params["upper"]:
        return [("lower", f"must be less than upper ({params['upper']:g})")]
    return []


def _macd_cross(params) -> dict[str, Any]:
    histogram = {
        "type": "MACD",
        "fast": params["fast"],
        "slow": params["slow"],
        "signal": params["signal"],
        "output": "histogram",
    }
    return {
        "entry": _compare(histogram, ">", _constant(0)),
        "exit": _compare(histogram, "<", _constant(0)),
    }


def _bollinger_reversion(params) -> dict[str, Any]:
    def band(output: str) -> dict[str, Any]:
        return {
            "type": "BollingerBands",
            "window": params["window"],
            "num_std": params["num_std"],
            "output": output,
        }

    close = {"type": "Close"}
    return {
        "entry": _compare(close, "<", band("lower")),
        "exit": _compare(close, ">", band("middle")),
    }


def _breakout(params) -> dict[str, Any]:
    window = params["window"]
    close = {"type": "Close"}
    return {
        "entry": _compare(close, ">", {"type": "Highest", "window": window, "lag": 1}),
        "exit": _compare(close, "<", {"type": "Lowest", "window": window, "lag": 1}),
    }


def _momentum(params) -> dict[str, Any]:
    momentum = {"type": "Momentum", "window": params["window"]}
    threshold = _constant(params["threshold"])
    return {
        "entry": _compare(momentum, ">", threshold),
        "exit": _compare(momentum, "<", threshold),
    }


def _window(default: int, minimum: int = 2, description: str = "") -> ParamSpec:
    return ParamSpec("int", default, minimum, 10_000, description)


_PLUGIN_LIST = (
    Plugin("buy_and_hold", "Buy on the first bar and hold to the end.", {}, _buy_and_hold),
    Plugin(
        "sma_crossover",
        "Long while the fast SMA of close is above the slow SMA; flat when below.",
        {"fast": _window(10), "slow": _window(50)},
        _crossover("SMA"),
        _fast_below_slow,
    ),
    Plugin(
        "ema_crossover",
        "Long while the fast EMA of close is above the slow EMA; flat when below.",
        {"fast": _window(12), "slow": _window(26)},
        _crossover("EMA"),
        _fast_below_slow,
    ),
    Plugin(
        "rsi_reversion",
        "Buy when Wilder RSI falls below `lower`; sell when it rises above `upper`.",
        {
            "window": _window(14),
            "lower": ParamSpec("float", 30.0, 0.0, 100.0),
            "upper": ParamSpec("float", 70.0, 0.0, 100.0),
        },
        _rsi_reversion,
        _lower_below_upper,
    ),
    Plugin(
        "macd_cross",
        "Long while the MACD line is above its signal line (histogram > 0); flat when below.",
        {"fast": _window(12), "slow": _window(26), "signal": _window(9, minimum=1)},
        _macd_cross,
        _fast_below_slow,
    ),
    Plugin(
        "bollinger_reversion",
        "Buy when close falls below the lower Bollinger band; sell when it rises above the "
        "middle band (the SMA).",
        {"window": _window(20), "num_std": ParamSpec("float", 2.0, 0.1, 10.0)},
        _bollinger_reversion,
    ),
    Plugin(
        "breakout",
        "Buy when close rises above the highest close of the previous `window` bars; sell when "
        "it falls below their lowest close.",
        {"window": _window(20, minimum=1)},
        _breakout,
    ),
    Plugin(
        "momentum",
        "Long while the `window`-bar return (fraction) is above `threshold`; flat when below.",
        {
            "window": _window(126, minimum=1),
            "threshold": ParamSpec("float", 0.0, -1.0, 10.0),
        },
        _momentum,
    ),
)

PLUGINS: dict[str, Plugin] = {plugin.name: plugin for plugin in _PLUGIN_LIST}


def validate_plugin(key: Any, params: Any = None) -> list[Problem]:
    """Every problem with a plugin key and its parameters (missing ones take their defaults)."""
    plugin = PLUGINS.get(key) if isinstance(key, str) else None
    if plugin is None:
        return [Problem(PLUGIN_KEY_PATH, f"unknown plugin {key!r} (known: {', '.join(PLUGINS)})")]
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        return [Problem(PLUGIN_PARAMS_PATH, "must be an object of parameter values")]
    problems: list[Problem] = []
    for name in params:
        if name not in plugin.params:
            known = ", ".join(plugin.params) or "none"
            problems.append(
                Problem(
                    join_path(PLUGIN_PARAMS_PATH, str(name)),
                    f"unknown parameter for {plugin.name} (known: {known})",
                )
            )
    merged = plugin.defaults()
    for name, spec in plugin.params.items():
        if name in params:
            message = spec.problem(params[name])
            if message:
                problems.append(Problem(join_path(PLUGIN_PARAMS_PATH, name), message))
            else:
                merged[name] = spec.normalise(params[name])
    if not problems:
        problems.extend(
            Problem(join_path(PLUGIN_PARAMS_PATH, name), message)
            for name, message in plugin.relations(merged)
        )
    return problems


def build_plugin(key: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The §4.3 definition of a plugin with ``params`` over its defaults.

    Raises ValueError listing the problems when the key or parameters are invalid.
    """
    problems = validate_plugin(key, params)
    if problems:
        raise ValueError("; ".join(str(problem) for problem in problems))
    plugin = PLUGINS[key]
    merged = plugin.defaults()
    for name, value in (params or {}).items():
        merged[name] = plugin.params[name].normalise(value)
    for name, spec in plugin.params.items():
        merged[name] = spec.normalise(merged[name])
    return plugin.build(merged)

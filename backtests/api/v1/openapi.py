"""The v1 run configuration (SPEC §3) as an OpenAPI schema, from the parser's own constants.

``backtests.run_config.parse_run_config`` checks a configuration against its strategy; this
schema says the same thing to clients: the keys, their types, choices and bounds. What depends on
the strategy or the data (signal-only keys refused for an allocation strategy, either ``symbol``
or ``symbols``, the start before the end, prices covering the range, a plugin's own parameters)
is reported by the parser as a 400 naming the key.
"""

from __future__ import annotations

from typing import Any

from backfolio.common.openapi import add_components, component_ref
from backfolio.limits import MAX_CASHFLOW_AMOUNT
from backtests import run_config
from strategies.language import PLUGINS
from strategies.language.compiler import (
    CASHFLOW_FREQUENCIES,
    EVALUATION_FREQUENCIES,
    MAX_ALLOCATION_SIGNAL_DELAY,
)
from strategies.language.schema import SYMBOL


def _number(
    *, minimum=None, maximum=None, exclusive_minimum=False, exclusive_maximum=False, **extra
) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "number", **extra}
    if minimum is not None:
        schema["minimum"] = minimum
        if exclusive_minimum:
            schema["exclusiveMinimum"] = True
    if maximum is not None:
        schema["maximum"] = maximum
        if exclusive_maximum:
            schema["exclusiveMaximum"] = True
    return schema


def _fraction_below_one(**extra) -> dict[str, Any]:
    return _number(
        minimum=0, exclusive_minimum=True, maximum=1, exclusive_maximum=True, nullable=True, **extra
    )


def run_config_schema() -> dict[str, Any]:
    date = {"type": "string", "format": "date", "description": "YYYY-MM-DD"}
    allocation_keys = set(run_config.ALLOCATION_ONLY_KEYS)
    signal_only = ", ".join(k for k in run_config.SIGNAL_ONLY_KEYS if k not in allocation_keys)
    allocation_only = ", ".join(k for k in run_config.ALLOCATION_ONLY_KEYS)
    return {
        "type": "object",
        "description": (
            "A run's configuration. Signal strategies trade `symbol` (or `symbols`); allocation "
            f"strategies trade the symbols of their groups and accept {allocation_only} but not "
            f"the signal-only keys ({signal_only}). `signal` (an inline definition) or "
            "`signal_plugin_key` (a built-in strategy) replace the strategy's own definition."
        ),
        "properties": {
            "symbol": SYMBOL,
            "symbols": {
                "type": "array",
                "items": SYMBOL,
                "minItems": 1,
                "maxItems": run_config.MAX_SYMBOLS,
            },
            "start_date": date,
            "end_date": {**date, "description": "YYYY-MM-DD, after start_date"},
            "timeframe": {"type": "string", "enum": list(run_config.TIMEFRAMES), "default": "1d"},
            "bars_per_year": _number(
                minimum=0,
                exclusive_minimum=True,
                maximum=run_config.MAX_BARS_PER_YEAR,
                description="Defaults to the timeframe's (252, 52, 12).",
            ),
            "risk_free_rate": _number(minimum=-1, maximum=1, default=0.0),
            "price_adjustment": {
                "type": "string",
                "enum": list(run_config.PRICE_ADJUSTMENTS),
                "default": "total_return",
            },
            "signal": {
                "anyOf": [
                    component_ref("SignalDefinition"),
                    component_ref("AllocationDefinition"),
                ],
                "nullable": True,
                "description": "An inline definition of the strategy's kind.",
            },
            "size_type": {"type": "string", "enum": list(run_config.SIZE_TYPES)},
            "size": _number(
                minimum=0,
                exclusive_minimum=True,
                maximum=run_config.MAX_SHARES,
                description="A fraction of cash (at most 1) unless size_type is shares.",
            ),
            "direction": {"type": "string", "enum": list(run_config.DIRECTIONS), "default": "long"},
            "signal_plugin_key": {"type": "string", "enum": list(PLUGINS)},
            "signal_plugin_params": {**component_ref("PluginParams"), "nullable": True},
            "stop_loss": _fraction_below_one(),
            "take_profit": _number(
                minimum=0, exclusive_minimum=True, maximum=run_config.MAX_TAKE_PROFIT, nullable=True
            ),
            "trailing_stop": _fraction_below_one(),
            "max_holding_bars": {
                "type": "integer",
                "minimum": 1,
                "maximum": run_config.MAX_HOLDING_BARS,
                "nullable": True,
            },
            "signal_delay": {
                "type": "integer",
                "minimum": 0,
                "maximum": run_config.MAX_SIGNAL_DELAY,
                "default": 0,
                "description": "Bars between a signal and its trade: at most "
                f"{run_config.MAX_SIGNAL_DELAY} for a signal strategy, "
                f"{MAX_ALLOCATION_SIGNAL_DELAY} for an allocation strategy.",
            },
            "rebalance_frequency": {
                "type": "string",
                "enum": list(run_config.REBALANCE_FREQUENCIES),
                "default": "monthly",
            },
            "evaluation_frequency": {
                "type": "string",
                "enum": list(EVALUATION_FREQUENCIES),
                "default": "daily",
                "description": "How often an allocation strategy's rules are evaluated.",
            },
            "cashflow_amount": {
                "type": "number",
                "minimum": -MAX_CASHFLOW_AMOUNT,
                "maximum": MAX_CASHFLOW_AMOUNT,
                "description": "Allocation strategies: added (positive) or withdrawn (negative) "
                "each period, not 0; needs cashflow_frequency.",
            },
            "cashflow_frequency": {
                "type": "string",
                "enum": list(CASHFLOW_FREQUENCIES),
                "description": "Allocation strategies: flows on the first trading day of each "
                "period after the first bar; needs cashflow_amount.",
            },
        },
        "additionalProperties": False,
    }


def add_run_config_components(result, generator, request, public):
    """drf-spectacular postprocessing hook: the ``RunConfig`` schema."""
    return add_components(result, {"RunConfig": run_config_schema()})

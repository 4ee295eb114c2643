"""The strategy language as OpenAPI 3.0 schemas, built from the same tables that validate it.

``language_components()`` returns named schemas (``Signal``, ``Condition``,
``SignalDefinition``, ``AllocationDefinition``, ...) that refer to each other through
``#/components/schemas/<name>``; the API documents strategy definitions and conditions with them.
Each signal type's parameters, bounds and defaults come from ``SIGNAL_TYPES``; comparisons and
logical operators from the condition module; plugins from ``PLUGINS``. What a schema cannot say
(the weights of a group summing to 1, a rule naming an existing group, a fast window below a slow
one, the depth limit of nested conditions) is still checked by ``validate_definition`` and
reported as a 400 naming the path.
"""

from __future__ import annotations

from typing import Any

from strategies.language.conditions import COMPARISONS, LOGICAL_OPS
from strategies.language.definitions import RULE_FIELDS, SIGNAL_RULES
from strategies.language.plugins import PLUGINS, ParamSpec
from strategies.language.signals import (
    SIGNAL_TYPES,
    TALIB_TYPE,
    Param,
    SignalType,
    talib_function_names,
)


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


SYMBOL = {
    "type": "string",
    "minLength": 1,
    "description": "A symbol: `SPY`, `CASH`, or a synthetic `QQQ?L=3[&E=0.95][&SP=0.5]`.",
}


def _param_schema(param: Param) -> dict[str, Any]:
    if param.kind == "choice":
        schema: dict[str, Any] = {"type": "string", "enum": list(param.choices)}
    else:
        schema = {"type": "integer" if param.kind == "int" else "number"}
        if param.minimum is not None:
            schema["minimum"] = param.minimum
            if param.exclusive_minimum:
                schema["exclusiveMinimum"] = True
        if param.maximum is not None:
            schema["maximum"] = param.maximum
    if param.nullable:
        schema["nullable"] = True
    if not param.required and param.default is not None:
        schema["default"] = param.default
    return schema


def _signal_type_schema(signal_type: SignalType) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "type": {"type": "string", "enum": [signal_type.name, *signal_type.aliases]}
    }
    if signal_type.name != "constant":
        properties["symbol"] = {
            **SYMBOL,
            "description": "Defaults to the run's symbol in a signal strategy; required in an "
            "allocation strategy.",
        }
    properties.update({name: _param_schema(param) for name, param in signal_type.params.items()})
    required = ["type", *(name for name, param in signal_type.params.items() if param.required)]
    return {
        "type": "object",
        "title": signal_type.name,
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def _talib_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "title": "TA-Lib function",
        "description": "Any TA-Lib function by name; its parameters (numbers) keep TA-Lib's "
        "defaults unless given, `output` picks one of several outputs.",
        "properties": {
            "type": {"type": "string", "enum": [TALIB_TYPE]},
            "function": {"type": "string", "enum": talib_function_names()},
            "symbol": SYMBOL,
            "output": {"type": "string"},
        },
        "required": ["type", "function"],
        "additionalProperties": {"type": "number"},
    }


def _plugin_param_text(name: str, spec: ParamSpec) -> str:
    bounds = f"{spec.min:g}..{spec.max:g}" if spec.min is not None and spec.max is not None else ""
    kind = "integer" if spec.type == "int" else "number"
    return f"{name} ({kind} {bounds}, default {spec.default:g})".replace(" ,", ",")


def plugin_params_schema() -> dict[str, Any]:
    """Parameters of one plugin. Plugins share parameter names with different bounds (a
    breakout ``window`` may be 1, a crossover's may not), so the bounds are listed per plugin
    and checked against the plugin the run names."""
    listing = "; ".join(
        f"{plugin.name}: "
        + (", ".join(_plugin_param_text(n, s) for n, s in plugin.params.items()) or "none")
        for plugin in PLUGINS.values()
    )
    return {
        "type": "object",
        "description": f"Parameters of the plugin named by `signal_plugin_key`. {listing}.",
        "additionalProperties": {"type": "number"},
    }


def language_components() -> dict[str, dict[str, Any]]:
    """The language's named schemas, keyed by component name."""
    signal_rules = {rule: ref("Condition") for rule in SIGNAL_RULES}
    return {
        "Signal": {
            "description": "An indicator or price series of one symbol, or a bare number "
            "(a constant).",
            "anyOf": [
                {"type": "number"},
                *(_signal_type_schema(signal_type) for signal_type in SIGNAL_TYPES),
                _talib_schema(),
            ],
        },
        "Comparison": {
            "type": "object",
            "properties": {
                "left": ref("Signal"),
                "comparison": {"type": "string", "enum": list(COMPARISONS)},
                "right": ref("Signal"),
            },
            "required": ["left", "comparison", "right"],
            "additionalProperties": False,
        },
        "CompositeCondition": {
            "type": "object",
            "properties": {
                "op": {"type": "string", "enum": list(LOGICAL_OPS)},
                "conditions": {"type": "array", "items": ref("Condition"), "minItems": 1},
            },
            "required": ["op", "conditions"],
            "additionalProperties": False,
        },
        "Condition": {
            "description": "A comparison of two signals, or `and`/`or` of conditions.",
            "anyOf": [ref("Comparison"), ref("CompositeCondition")],
        },
        "SignalDefinition": {
            "type": "object",
            "description": "A signal strategy: rules are states; `entry` (or `short_entry` for a "
            "short-only strategy) is required.",
            "properties": signal_rules,
            "anyOf": [{"required": ["entry"]}, {"required": ["short_entry"]}],
            "additionalProperties": False,
        },
        "AllocationGroup": {
            "type": "object",
            "description": "Symbol → weight in [0, 1]; the weights sum to 1.",
            "additionalProperties": {"type": "number", "minimum": 0, "maximum": 1},
            "minProperties": 1,
        },
        "SwitchingRule": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "condition": ref("Condition"),
                "target_allocation": {"type": "string", "description": "An allocation group."},
            },
            "required": [field for field in RULE_FIELDS if field != "name"],
            "additionalProperties": False,
        },
        "AllocationDefinition": {
            "type": "object",
            "description": "An allocation strategy: the first rule whose condition holds picks "
            "its group, else the fallback group.",
            "properties": {
                "allocations": {
                    "type": "object",
                    "additionalProperties": ref("AllocationGroup"),
                    "minProperties": 1,
                },
                "fallback_allocation": {
                    "type": "string",
                    "description": "The group held when no rule holds.",
                },
                "switching_logic": {"type": "array", "items": ref("SwitchingRule")},
            },
            "required": ["allocations", "fallback_allocation", "switching_logic"],
            "additionalProperties": False,
        },
        "PluginParams": plugin_params_schema(),
    }

"""The strategy builder's server side (SPEC §11): the form around a definition, the catalogue the
page's builder draws its choices from, and the problems of a definition keyed by their path.

The definition itself is edited on the page (a builder and a JSON view of the same document) and
sent whole; ``strategies.services`` validates and writes it, so nothing invalid is ever saved.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms

from strategies.language import PLUGINS
from strategies.language.conditions import COMPARISONS, LOGICAL_OPS
from strategies.language.definitions import SIGNAL_RULES
from strategies.language.signals import SIGNAL_TYPES, TALIB_TYPE, talib_functions
from strategies.models import Strategy


def catalogue() -> dict[str, Any]:
    """What the builder offers: signal types with their typed parameters, the TA-Lib functions
    with theirs (``signals.talib_functions``: TA-Lib's own names, kinds and defaults),
    comparisons, logical operators, rules, built-in strategies and the bundled symbols."""
    from marketdata.selectors import symbol_list

    def param(spec) -> dict[str, Any]:
        return {
            "kind": spec.kind,
            "required": spec.required,
            "default": None if spec.required else spec.default,
            "min": spec.minimum,
            "max": spec.maximum,
            "choices": list(spec.choices),
        }

    return {
        "signals": [
            {"name": signal.name, "params": {name: param(p) for name, p in signal.params.items()}}
            for signal in SIGNAL_TYPES
        ],
        "talib_type": TALIB_TYPE,
        "talib_functions": talib_functions(),
        "comparisons": list(COMPARISONS),
        "logical_ops": list(LOGICAL_OPS),
        "signal_rules": list(SIGNAL_RULES),
        "plugins": [
            {
                "name": plugin.name,
                "description": plugin.description,
                "params": {
                    name: {
                        "kind": spec.type,
                        "default": spec.default,
                        "min": spec.min,
                        "max": spec.max,
                        "description": spec.description,
                    }
                    for name, spec in plugin.params.items()
                },
            }
            for plugin in PLUGINS.values()
        ],
        "symbols": [coverage.symbol for coverage in symbol_list()],
    }


STARTERS = {
    Strategy.Kind.SIGNAL: {
        "entry": {
            "left": {"type": "Close"},
            "comparison": ">",
            "right": {"type": "SMA", "window": 200},
        },
        "exit": {
            "left": {"type": "Close"},
            "comparison": "<",
            "right": {"type": "SMA", "window": 200},
        },
    },
    Strategy.Kind.ALLOCATION: {
        "allocations": {"stocks": {"SPY": 1.0}, "defensive": {"TLT": 0.5, "CASH": 0.5}},
        "fallback_allocation": "defensive",
        "switching_logic": [
            {
                "name": "uptrend",
                "condition": {
                    "left": {"type": "Close", "symbol": "SPY"},
                    "comparison": ">",
                    "right": {"type": "SMA", "symbol": "SPY", "window": 200},
                },
                "target_allocation": "stocks",
            }
        ],
    },
}


class DefinitionField(forms.CharField):
    """The definition as the JSON text the page keeps in sync with its builder."""

    def to_python(self, value):
        text = super().to_python(value)
        if not text.strip():
            return None
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise forms.ValidationError(
                f"The definition is not valid JSON: {error.msg} (line {error.lineno}, "
                f"column {error.colno})."
            ) from None

    def prepare_value(self, value):
        if isinstance(value, str):
            return value
        return "" if value is None else json.dumps(value, indent=2)


class StrategyForm(forms.Form):
    name = forms.CharField(max_length=Strategy._meta.get_field("name").max_length)
    kind = forms.ChoiceField(choices=Strategy.Kind.choices, initial=Strategy.Kind.SIGNAL)
    timeframe = forms.ChoiceField(choices=Strategy.Timeframe.choices, initial="1d")
    status = forms.ChoiceField(choices=Strategy.Status.choices, initial=Strategy.Status.DRAFT)
    universe = forms.CharField(
        required=False,
        help_text="Symbols separated by commas (SPY, TLT, QQQ?L=2, CASH).",
    )
    description = forms.CharField(
        required=False,
        max_length=Strategy._meta.get_field("description").max_length,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    definition = DefinitionField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 18, "spellcheck": "false", "class": "code"}),
    )

    def clean_universe(self) -> list[str]:
        text = self.cleaned_data.get("universe") or ""
        return [symbol.strip() for symbol in text.split(",") if symbol.strip()]

    @staticmethod
    def initial_for(strategy: Strategy) -> dict[str, Any]:
        return {
            "name": strategy.name,
            "kind": strategy.kind,
            "timeframe": strategy.timeframe,
            "status": strategy.status,
            "universe": ", ".join(strategy.universe or []),
            "description": strategy.description,
            "definition": strategy.definition,
        }

    def definition_text(self) -> str:
        return (
            self["definition"].value()
            if self.is_bound
            else self.fields["definition"].prepare_value(self.initial.get("definition"))
        )

    def service_fields(self) -> dict[str, Any]:
        return dict(self.cleaned_data)


def definition_problems(errors: dict[str, Any]) -> list[dict[str, str]]:
    """``strategy_problems``' ``definition`` entry as a list of ``{path, message}``."""
    problems = []
    for path, messages in (errors.get("definition") or {}).items():
        for message in messages:
            problems.append(
                {"path": "" if path == "non_field_errors" else path, "message": message}
            )
    return problems

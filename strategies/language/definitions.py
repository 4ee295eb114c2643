"""Strategy definitions (SPEC §4.3): validation and what a definition needs from market data.

- ``signal`` kind: ``{"entry": Condition, "exit"?: Condition, "short_entry"?: Condition,
  "short_exit"?: Condition}``; at least ``entry`` or ``short_entry``. ``None`` means buy-and-hold.
  Signals without a ``symbol`` read the run's symbol.
- ``allocation`` kind (Backfolio): ``{"allocations": {group: {symbol: weight}},
  "fallback_allocation": group, "switching_logic": [{"name"?, "condition", "target_allocation"}]}``.
  Every signal names its symbol. Problems about the strategy's shape use the contract's wording.

Nothing here raises on bad user input: ``validate_definition`` returns every problem it finds.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

from backfolio.limits import MAX_CONDITIONS_PER_STRATEGY
from strategies.language.conditions import iter_leaves, iter_signals, validate_condition
from strategies.language.problems import Problem, join_path
from strategies.language.signals import normalize_signal, signal_lookback, signal_symbols
from strategies.language.symbols import symbol_format_problem

STRATEGY_KINDS = ("signal", "allocation")
SIGNAL_RULES = ("entry", "exit", "short_entry", "short_exit")
ALLOCATION_FIELDS = ("allocations", "fallback_allocation", "switching_logic")
RULE_FIELDS = ("name", "condition", "target_allocation")
WEIGHT_SUM_TOLERANCE = 0.001


def _standalone(path: str, message: str) -> Problem:
    return Problem(path, message, standalone=True)


def validate_definition(kind: str, definition: Any) -> list[Problem]:
    """Every problem with a strategy definition of the given kind (empty list when valid)."""
    if kind == "signal":
        problems = _validate_signal_definition(definition)
    elif kind == "allocation":
        problems = _validate_allocation_definition(definition)
    else:
        return [Problem("kind", f"must be one of: {', '.join(STRATEGY_KINDS)}")]
    comparisons = count_comparisons(definition)
    if comparisons > MAX_CONDITIONS_PER_STRATEGY:
        problems.append(
            _standalone(
                "",
                f"Too many conditions: {comparisons} comparisons in the strategy "
                f"(at most {MAX_CONDITIONS_PER_STRATEGY})",
            )
        )
    return problems


def _validate_signal_definition(definition: Any) -> list[Problem]:
    if definition is None:
        return []
    if not isinstance(definition, Mapping):
        return [Problem("", "a signal strategy definition must be an object with 'entry'")]
    problems: list[Problem] = []
    for key in definition:
        if key not in SIGNAL_RULES:
            problems.append(Problem(str(key), f"unknown field (known: {', '.join(SIGNAL_RULES)})"))
    if "entry" not in definition and "short_entry" not in definition:
        problems.append(Problem("entry", "is required (or short_entry for a short-only strategy)"))
    for rule in SIGNAL_RULES:
        if rule in definition:
            problems.extend(validate_condition(definition[rule], rule, symbol_required=False))
    return problems


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _validate_allocation_definition(definition: Any) -> list[Problem]:
    if not isinstance(definition, Mapping):
        return [_standalone("", "Invalid strategy format")]
    problems: list[Problem] = []
    for key in definition:
        if key not in ALLOCATION_FIELDS:
            problems.append(
                _standalone(
                    str(key),
                    f"Unknown field: {key} (known: {', '.join(ALLOCATION_FIELDS)})",
                )
            )
    for key in ALLOCATION_FIELDS:
        if key not in definition:
            problems.append(_standalone(key, f"Missing required field: {key}"))

    groups = _validate_allocations(definition.get("allocations"), problems)

    fallback = definition.get("fallback_allocation")
    if "fallback_allocation" in definition:
        if not isinstance(fallback, str):
            problems.append(
                _standalone("fallback_allocation", "fallback_allocation must be a group name")
            )
        elif groups is not None and fallback not in groups:
            problems.append(
                _standalone(
                    "fallback_allocation",
                    f"Unknown fallback allocation '{fallback}' "
                    f"(allocation groups: {_group_list(groups)})",
                )
            )

    if "switching_logic" in definition:
        _validate_switching_logic(definition["switching_logic"], groups, problems)
    return problems


def _group_list(groups: Mapping[str, Any]) -> str:
    return ", ".join(groups) or "none"


def _validate_allocations(allocations: Any, problems: list[Problem]) -> Mapping | None:
    """Check the groups; return them when they are a mapping (so names can be checked)."""
    if allocations is None:
        return None
    if not isinstance(allocations, Mapping):
        problems.append(
            _standalone("allocations", "allocations must be an object of allocation groups")
        )
        return None
    if not allocations:
        problems.append(_standalone("allocations", "At least one allocation must be specified"))
    for group, weights in allocations.items():
        group_path = join_path("allocations", str(group))
        if not isinstance(weights, Mapping):
            problems.append(
                _standalone(group_path, f"Allocation '{group}' must map symbols to weights")
            )
            continue
        if not weights:
            problems.append(_standalone(group_path, f"Allocation '{group}' is empty"))
            continue
        total = 0.0
        weights_are_numbers = True
        for symbol, weight in weights.items():
            weight_path = join_path(group_path, str(symbol))
            symbol_problem = symbol_format_problem(symbol)
            if symbol_problem:
                problems.append(_standalone(weight_path, f"Allocation '{group}': {symbol_problem}"))
            if not _is_number(weight):
                problems.append(
                    _standalone(
                        weight_path,
                        f"Allocation '{group}' weight for {symbol} must be a number",
                    )
                )
                weights_are_numbers = False
                continue
            if not 0.0 <= weight <= 1.0:
                problems.append(
                    _standalone(
                        weight_path,
                        f"Allocation '{group}' weight for {symbol} is {weight:g}, outside [0, 1]",
                    )
                )
            total += weight
        if weights_are_numbers and abs(total - 1.0) > WEIGHT_SUM_TOLERANCE:
            problems.append(
                _standalone(group_path, f"Allocation '{group}' weights sum to {total:g}, not 1.0")
            )
    return allocations


def _validate_switching_logic(rules: Any, groups: Mapping | None, problems: list[Problem]) -> None:
    if not isinstance(rules, list):
        problems.append(
            _standalone("switching_logic", "switching_logic must be a list (it may be empty)")
        )
        return
    for index, rule in enumerate(rules):
        rule_path = join_path("switching_logic", index)
        if not isinstance(rule, Mapping):
            problems.append(
                Problem(rule_path, "must be an object with 'condition' and 'target_allocation'")
            )
            continue
        for key in rule:
            if key not in RULE_FIELDS:
                problems.append(
                    Problem(
                        join_path(rule_path, str(key)),
                        f"unknown field (known: {', '.join(RULE_FIELDS)})",
                    )
                )
        if "name" in rule and not isinstance(rule["name"], str):
            problems.append(Problem(join_path(rule_path, "name"), "must be a string"))
        if "condition" not in rule:
            problems.append(Problem(join_path(rule_path, "condition"), "is required"))
        else:
            problems.extend(
                validate_condition(
                    rule["condition"], join_path(rule_path, "condition"), symbol_required=True
                )
            )
        target_path = join_path(rule_path, "target_allocation")
        target = rule.get("target_allocation")
        if "target_allocation" not in rule:
            problems.append(Problem(target_path, "is required"))
        elif not isinstance(target, str):
            problems.append(Problem(target_path, "must be a group name"))
        elif groups is not None and target not in groups:
            problems.append(
                _standalone(
                    target_path,
                    f"Unknown target allocation '{target}' in {rule_path} "
                    f"(allocation groups: {_group_list(groups)})",
                )
            )


def is_allocation_definition(definition: Any) -> bool:
    return isinstance(definition, Mapping) and "allocations" in definition


def iter_conditions(definition: Any) -> Iterator[tuple[str, Any]]:
    """``(path, condition)`` for every condition of a definition of either kind."""
    if not isinstance(definition, Mapping):
        return
    if is_allocation_definition(definition):
        rules = definition.get("switching_logic")
        for index, rule in enumerate(rules if isinstance(rules, list) else []):
            if isinstance(rule, Mapping) and "condition" in rule:
                yield f"switching_logic[{index}].condition", rule["condition"]
        return
    for rule in SIGNAL_RULES:
        if rule in definition:
            yield rule, definition[rule]


def iter_comparisons(definition: Any) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """``(path, comparison)`` for every comparison (leaf condition) of a definition."""
    for path, condition in iter_conditions(definition):
        yield from iter_leaves(condition, path)


def count_comparisons(definition: Any) -> int:
    """Comparisons (leaf conditions) in a definition of either kind."""
    return sum(1 for _ in iter_comparisons(definition))


def _canonical_signals(definition: Any, default_symbol: str | None) -> Iterator[dict[str, Any]]:
    for _path, condition in iter_conditions(definition):
        for spec in iter_signals(condition):
            yield normalize_signal(spec, default_symbol)


def allocation_symbols(definition: Any) -> list[str]:
    """The symbols an allocation definition holds: its groups' symbols in first-seen order
    (``CASH`` included); empty for anything that is not an allocation definition."""
    if not is_allocation_definition(definition) or not isinstance(
        definition["allocations"], Mapping
    ):
        return []
    symbols: list[str] = []
    for weights in definition["allocations"].values():
        if isinstance(weights, Mapping):
            symbols.extend(str(symbol) for symbol in weights)
    return list(dict.fromkeys(symbols))


_RUN_SYMBOL = "\0run-symbol"  # stands for the run's symbol while walking the signals


def required_symbols(definition: Any, default_symbol: str | None = None) -> list[str]:
    """Every symbol a valid definition needs prices for, in first-seen order: the allocation
    groups' symbols (``CASH`` included), then the symbols its signals read (``default_symbol``,
    the run's symbol, for a signal strategy's symbol-less signals)."""
    symbols: list[str] = allocation_symbols(definition)
    for canonical in _canonical_signals(definition, _RUN_SYMBOL):
        for symbol in signal_symbols(canonical):
            symbols.append(default_symbol if symbol == _RUN_SYMBOL else symbol)
    return [symbol for symbol in dict.fromkeys(symbols) if symbol]


def warmup_bars(definition: Any, *, signal_delay: int = 0) -> int:
    """Bars of history to load before the first bar so that every indicator of a valid
    definition has a value on the first bar and on the bar before it (which a ``signal_delay``
    of 1 reads): the longest lookback + 1 + ``signal_delay``. 200 for SMA 200, slow + signal − 1
    for MACD, 253 for RollingSharpe 252, 1 for a bare price; 0 when no signal reads prices
    (buy-and-hold, constants)."""
    lookbacks = [
        signal_lookback(canonical)
        for canonical in _canonical_signals(definition, _RUN_SYMBOL)
        if "symbol" in canonical
    ]
    if not lookbacks:
        return 0
    return max(lookbacks) + 1 + signal_delay

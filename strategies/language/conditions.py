"""Conditions (SPEC §4.2): leaves compare two signals, composites combine conditions.

- Leaf: ``{"left": Signal, "comparison": ">"|"<"|">="|"<="|"==", "right": Signal}``.
- Composite: ``{"op": "and"|"or", "conditions": [Condition, ...]}``, ``op`` case-insensitive,
  a non-empty list, nested to any depth.

A condition evaluates to a bool Series on the prices' full index. A comparison with NaN on either
side (warm-up, missing data) is False; ``and``/``or`` then combine plain booleans, so a NaN never
turns into True through a negation-free language. ``==`` is exact float equality.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd

from backfolio.limits import MAX_CONDITION_DEPTH
from strategies.language.problems import Problem, join_path
from strategies.language.signals import (
    PriceFrameLike,
    SignalCache,
    signal_values,
    validate_signal,
)

COMPARISONS = {
    ">": operator.gt,
    "<": operator.lt,
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
}
LOGICAL_OPS = ("and", "or")
_LEAF_KEYS = ("left", "comparison", "right")
_COMPOSITE_KEYS = ("op", "conditions")


def _is_composite(doc: Mapping[str, Any]) -> bool:
    return "op" in doc or "conditions" in doc


def validate_condition(
    doc: Any, path: str = "condition", *, symbol_required: bool = False, depth: int = 0
) -> list[Problem]:
    """Every problem in a condition tree, each with its path.

    ``symbol_required`` is True where the context has no default symbol (allocation strategies).
    Trees deeper than ``MAX_CONDITION_DEPTH`` are refused: nobody writes them by hand, and every
    later step (evaluation, storage, JSON) walks the tree recursively.
    """
    if not isinstance(doc, Mapping):
        return [Problem(path, "must be a condition object")]
    if depth > MAX_CONDITION_DEPTH:
        return [Problem(path, f"conditions are nested more than {MAX_CONDITION_DEPTH} levels deep")]
    problems: list[Problem] = []
    if _is_composite(doc):
        for key in doc:
            if key not in _COMPOSITE_KEYS:
                problems.append(
                    Problem(join_path(path, key), "unknown field in a composite condition")
                )
        op = doc.get("op")
        if op is None:
            problems.append(Problem(join_path(path, "op"), "is required"))
        elif not isinstance(op, str) or op.lower() not in LOGICAL_OPS:
            problems.append(Problem(join_path(path, "op"), "must be one of: and, or"))
        conditions = doc.get("conditions")
        conditions_path = join_path(path, "conditions")
        if not isinstance(conditions, list) or not conditions:
            problems.append(Problem(conditions_path, "must be a non-empty list of conditions"))
        else:
            for index, child in enumerate(conditions):
                problems.extend(
                    validate_condition(
                        child,
                        join_path(conditions_path, index),
                        symbol_required=symbol_required,
                        depth=depth + 1,
                    )
                )
        return problems
    if not any(key in doc for key in _LEAF_KEYS):
        return [
            Problem(
                path,
                "must be a comparison {left, comparison, right} or a composite {op, conditions}",
            )
        ]
    for key in doc:
        if key not in _LEAF_KEYS:
            problems.append(Problem(join_path(path, key), "unknown field in a comparison"))
    comparison = doc.get("comparison")
    if comparison is None:
        problems.append(Problem(join_path(path, "comparison"), "is required"))
    elif comparison not in COMPARISONS:
        problems.append(
            Problem(join_path(path, "comparison"), f"must be one of: {' '.join(COMPARISONS)}")
        )
    for side in ("left", "right"):
        side_path = join_path(path, side)
        if side not in doc:
            problems.append(Problem(side_path, "is required"))
        else:
            problems.extend(validate_signal(doc[side], side_path, symbol_required=symbol_required))
    return problems


def iter_leaves(doc: Any, path: str = "condition") -> Iterator[tuple[str, Mapping[str, Any]]]:
    """``(path, comparison)`` for every comparison (leaf) of a condition tree, depth first."""
    if not isinstance(doc, Mapping):
        return
    if _is_composite(doc):
        conditions = doc.get("conditions")
        for index, child in enumerate(conditions if isinstance(conditions, list) else []):
            yield from iter_leaves(child, join_path(join_path(path, "conditions"), index))
        return
    yield path, doc


def iter_signals(doc: Any) -> Iterator[Any]:
    """Every signal spec in a (valid) condition tree, left before right, depth first."""
    if not isinstance(doc, Mapping):
        return
    if _is_composite(doc):
        for child in doc.get("conditions") or []:
            yield from iter_signals(child)
        return
    for side in ("left", "right"):
        if side in doc:
            yield doc[side]


def evaluate_condition(
    doc: Mapping[str, Any],
    prices: PriceFrameLike,
    default_symbol: str | None = None,
    *,
    cache: SignalCache | None = None,
) -> pd.Series:
    """A valid condition as a bool Series on ``prices``' full index; NaN comparisons are False."""
    if cache is None or cache.prices is not prices:
        cache = SignalCache(prices)
    values = condition_values(doc, prices, default_symbol, cache=cache)
    return pd.Series(values, index=cache.index, dtype=bool)


def condition_values(
    doc: Mapping[str, Any],
    prices: PriceFrameLike,
    default_symbol: str | None = None,
    *,
    cache: SignalCache,
) -> np.ndarray:
    """``evaluate_condition``'s values as a bool array (no Series), for compiling many
    definitions on the same prices and ``cache``."""
    if cache.prices is not prices:
        raise ValueError("a shared SignalCache must belong to the prices being evaluated")
    return _evaluate(doc, prices, default_symbol, cache)


def _evaluate(
    doc: Mapping[str, Any], prices: PriceFrameLike, default_symbol: str | None, cache: SignalCache
) -> np.ndarray:
    if _is_composite(doc):
        children = [_evaluate(child, prices, default_symbol, cache) for child in doc["conditions"]]
        combine = np.logical_and if doc["op"].lower() == "and" else np.logical_or
        return combine.reduce(children)
    left = signal_values(doc["left"], prices, default_symbol, cache=cache)
    right = signal_values(doc["right"], prices, default_symbol, cache=cache)
    # numpy comparisons with NaN are already False, which is the rule.
    return COMPARISONS[doc["comparison"]](left, right)

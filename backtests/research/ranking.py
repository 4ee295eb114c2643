"""Ranking entries by a metric (pure): the v1 leaderboard rules for research entries.

A metric's direction is the one table of v1 directions (``V1_METRIC_HIGHER_IS_BETTER``).
Completed entries with a value come first, best first; ties go to the smaller entry number;
completed entries without a value follow, then failed entries.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from metrics.presenters import V1_METRIC_HIGHER_IS_BETTER

RANKABLE_METRICS = tuple(V1_METRIC_HIGHER_IS_BETTER)


def higher_is_better(metric: str) -> bool:
    return V1_METRIC_HIGHER_IS_BETTER.get(metric, True)


def score_of(metrics: Mapping[str, Any] | None, metric: str) -> float | None:
    value = (metrics or {}).get(metric)
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def order_key(number: int, completed: bool, score: float | None, *, descending: bool) -> tuple:
    if not completed:
        group = 2
    elif score is None:
        group = 1
    else:
        group = 0
    signed = 0.0 if score is None else (-score if descending else score)
    return (group, signed, number)


def best_entry_number(completed: Iterable[tuple[int, Mapping[str, Any]]], metric: str) -> int:
    """The number of the best completed entry by ``metric`` (the smaller number on ties)."""
    descending = higher_is_better(metric)
    return min(
        completed,
        key=lambda item: order_key(item[0], True, score_of(item[1], metric), descending=descending),
    )[0]

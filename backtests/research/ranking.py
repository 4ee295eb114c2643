"""Ranking entries by a metric (pure): the v1 leaderboard rules for research entries.

Rows keep the core's metrics (``compute_metrics``' keys and units); entries are ranked by a v1
flat metric name (a sweep's ``rank_metric``, a leaderboard's ``sort``), whose value for a row is
the core metric it shows, in the contract's units (``v1_flat_source``: losses positive). A
metric's direction is the one table of v1 directions (``V1_METRIC_HIGHER_IS_BETTER``).
Completed entries with a value come first, best first; ties go to the smaller entry number;
completed entries without a value follow, then failed entries.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

from metrics.presenters import V1_METRIC_HIGHER_IS_BETTER, v1_flat_source

RANKABLE_METRICS = tuple(V1_METRIC_HIGHER_IS_BETTER)


def higher_is_better(metric: str) -> bool:
    return V1_METRIC_HIGHER_IS_BETTER.get(metric, True)


def score_of(metrics: Mapping[str, Any] | None, metric: str) -> float | None:
    """The value of the v1 metric ``metric`` for a run's core ``metrics``, as the v1 contract
    shows it (the score an entry or a fold is ranked by); None when the run has no finite value
    or ``metric`` is no numeric v1 metric."""
    source = v1_flat_source(metric)
    if source is None:
        return None
    key, factor = source
    value = (metrics or {}).get(key)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):  # numpy's too
        return None
    number = float(value)
    if not math.isfinite(number):
        return None
    return number if factor == 1.0 else number * factor + 0.0  # + 0.0: never -0.0


def order_key(number: int, completed: bool, score: float | None, *, descending: bool) -> tuple:
    if not completed:
        group = 2
    elif score is None:
        group = 1
    else:
        group = 0
    signed = 0.0 if score is None else (-score if descending else score)
    return (group, signed, number)

"""Parameter grids for research runs (SPEC §13.2, §13.3), pure: no Django.

A research request names its combinations one of two ways:

- ``grid``: dotted configuration paths mapped to lists of values
  (``{"signal_plugin_params.fast": [5, 10], "signal_plugin_params.slow": [50, 100]}``), meaning
  their cartesian product in key order (the last key varies fastest, as ``itertools.product``);
- ``param_grid``: the v1 list of override objects.

Either way a combination is an *overrides* document in ``param_grid`` form
(``{"signal_plugin_params": {"fast": 5, "slow": 50}}``) that ``apply_overrides`` merges into the
base configuration. The size is checked from the value lists' lengths before anything is expanded,
so a grid of a billion combinations costs nothing to refuse.

Problems are field-keyed as the v1 API reports them: ``{"grid": {"<path>": ["…"]}}`` for one path,
``{"grid": ["…"]}`` for the grid as a whole, ``{"param_grid": {"<index>": ["…"]}}`` for one entry.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping
from typing import Any

MAX_COMBINATIONS = 10_000
MAX_LISTED_PROBLEMS = 20

# Configuration fields whose value is a document, so a dotted path may reach inside them.
DOCUMENT_FIELDS = ("signal", "signal_plugin_params")


class GridProblems(ValueError):
    """The grid cannot be expanded; ``errors`` is field-keyed (``grid`` or ``param_grid``)."""

    def __init__(self, errors: Mapping[str, Any]) -> None:
        super().__init__(str(errors))
        self.errors = dict(errors)


def combination_count(grid: Mapping[str, list]) -> int:
    """How many combinations a (valid) ``grid`` means, without expanding it."""
    return math.prod(len(values) for values in grid.values())


def expand(grid: Any, param_grid: Any, *, config_keys: Iterable[str]) -> list[dict[str, Any]]:
    """The combinations a request asks for, as overrides in ``param_grid`` form.

    Exactly one of ``grid`` and ``param_grid`` must be given (the other None). ``config_keys``
    are the configuration keys the strategy accepts (``run_config.accepted_keys``). Raises
    ``GridProblems`` naming every bad path or entry, or the combination count when it exceeds
    ``MAX_COMBINATIONS``.
    """
    if (grid is None) == (param_grid is None):
        raise GridProblems({"grid": ["Give exactly one of grid and param_grid."]})
    if param_grid is not None:
        return _param_grid_entries(param_grid)
    return _grid_entries(grid, tuple(config_keys))


def _param_grid_entries(param_grid: Any) -> list[dict[str, Any]]:
    if not isinstance(param_grid, list) or not param_grid:
        raise GridProblems({"param_grid": ["Must be a non-empty list of override objects."]})
    if len(param_grid) > MAX_COMBINATIONS:
        raise GridProblems(
            {
                "param_grid": [
                    f"{len(param_grid):,} combinations; at most {MAX_COMBINATIONS:,} are allowed."
                ]
            }
        )
    problems = {
        str(index): ["Must be a JSON object."]
        for index, entry in enumerate(param_grid)
        if not isinstance(entry, Mapping)
    }
    if problems:
        raise GridProblems({"param_grid": problems})
    return [dict(entry) for entry in param_grid]


def path_problem(path: Any, config_keys: tuple[str, ...]) -> str | None:
    """Why ``path`` is not a configuration field a grid may vary (None when it is)."""
    if not isinstance(path, str) or not path:
        return "Must be a dotted configuration path."
    head, *rest = path.split(".")
    if head not in config_keys:
        return f"Not a configuration field (accepted: {', '.join(config_keys)})."
    if rest and head not in DOCUMENT_FIELDS:
        return f"{head} is not a document; only {', '.join(DOCUMENT_FIELDS)} have sub-fields."
    if any(not part for part in rest):
        return "Must be a dotted configuration path without empty parts."
    return None


def _grid_entries(grid: Any, config_keys: tuple[str, ...]) -> list[dict[str, Any]]:
    if not isinstance(grid, Mapping) or not grid:
        raise GridProblems({"grid": ["Must be an object mapping configuration paths to lists."]})
    problems: dict[str, list[str]] = {}
    for path, values in grid.items():
        message = path_problem(path, config_keys)
        if message is None and (not isinstance(values, list) or not values):
            message = "Must be a non-empty list of values."
        if message is not None:
            problems[str(path)] = [message]
    paths = list(grid)
    for path in paths:
        # "signal_plugin_params" and "signal_plugin_params.fast" would set the same value twice.
        if any(other != path and other.startswith(f"{path}.") for other in paths):
            problems.setdefault(path, []).append("Overlaps another path of the grid.")
    if problems:
        raise GridProblems({"grid": problems})
    count = combination_count(grid)
    if count > MAX_COMBINATIONS:
        raise GridProblems(
            {"grid": [f"{count:,} combinations; at most {MAX_COMBINATIONS:,} are allowed."]}
        )
    return [
        _overrides_of(zip(paths, values, strict=True))
        for values in itertools.product(*(grid[path] for path in paths))
    ]


def _overrides_of(assignments: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for path, value in assignments:
        *parents, leaf = path.split(".")
        node = overrides
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return overrides


def apply_overrides(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` merged in; objects merge key by key (so a grid over
    ``signal_plugin_params.fast`` keeps the base's ``slow``), anything else is replaced."""
    merged = dict(base)
    for key, value in overrides.items():
        current = merged.get(key)
        if isinstance(value, Mapping) and isinstance(current, Mapping):
            merged[key] = apply_overrides(current, value)
        else:
            merged[key] = value
    return merged


def describe_skipped(skipped: list[tuple[int, Mapping[str, Any], Mapping[str, Any]]]) -> list:
    """The first ``MAX_LISTED_PROBLEMS`` invalid combinations as ``{index, overrides, problems}``
    (``problems`` field-keyed, as the configuration's own validation reports them)."""
    return [
        {"index": index, "overrides": dict(overrides), "problems": dict(problems)}
        for index, overrides, problems in skipped[:MAX_LISTED_PROBLEMS]
    ]

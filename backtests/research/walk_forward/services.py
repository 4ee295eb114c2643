"""Writes of walk-forward analyses: validate everything, create the rows, queue the folds.

Nothing is written unless the whole request is valid. Problems are field-keyed as the v1 API
reports them (``backfolio.common.errors.InvalidInput``); combinations that fail validation are
skipped and listed (the first 20), and only when none is valid is the request refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from django.db import transaction

from backfolio.common.errors import InvalidInput
from backtests.models import Task
from backtests.research.grid import (
    MAX_LISTED_PROBLEMS,
    GridProblems,
    apply_overrides,
    describe_skipped,
    expand,
)
from backtests.research.walk_forward import core, jobs
from backtests.research.walk_forward.models import WalkForward, WalkForwardFold
from backtests.run_config import accepted_keys, parse_run_config, validate_run_settings
from backtests.services import DEFAULT_ENGINE, DEFAULT_INITIAL_CAPITAL, RANK_METRICS
from marketdata.store import BatchLookups
from strategies.models import Strategy

DEFAULT_COST = 0.0005
MAX_WINDOW_MONTHS = 1200


def _problems_by_path(problems) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for problem in problems:
        errors.setdefault(problem.path or "non_field_errors", []).append(problem.message)
    return errors


def _span(base_config: Mapping[str, Any]) -> tuple[date, date] | None:
    """The span's dates when both parse (the combinations' validation reports them otherwise)."""
    try:
        start = date.fromisoformat(base_config["start_date"])
        end = date.fromisoformat(base_config["end_date"])
    except (KeyError, TypeError, ValueError):
        return None
    return (start, end) if start < end else None


def _months_problem(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return "Must be a positive integer (months)."
    if value > MAX_WINDOW_MONTHS:
        return f"Must be at most {MAX_WINDOW_MONTHS} months."
    return None


def _describe_combination(index: int, overrides: Mapping[str, Any], problems) -> str:
    details = "; ".join(
        f"{path}: {' '.join(messages)}" for path, messages in _problems_by_path(problems).items()
    )
    return f"Combination {index} {dict(overrides)}: {details}"


def walk_forward_create(
    *,
    strategy: Strategy,
    base_config: Any,
    rank_metric: Any,
    scheme: Any,
    in_sample_months: Any,
    out_of_sample_months: Any,
    grid: Any = None,
    param_grid: Any = None,
    engine: Any = DEFAULT_ENGINE,
    initial_capital: Any = DEFAULT_INITIAL_CAPITAL,
    commission: Any = DEFAULT_COST,
    slippage: Any = DEFAULT_COST,
    owner=None,
) -> WalkForward:
    """Validate, create the walk-forward, its folds and its task, and send one message per fold
    when the transaction commits. Raises ``InvalidInput`` (field-keyed) and writes nothing."""
    from backtests.research.walk_forward.tasks import run_walk_forward_fold

    errors: dict[str, Any] = _problems_by_path(
        validate_run_settings(
            engine=engine,
            initial_capital=initial_capital,
            commission=commission,
            slippage=slippage,
        )
    )
    if rank_metric not in RANK_METRICS:
        errors["rank_metric"] = [
            f"{rank_metric!r} is not a metric with a direction; choose one of: "
            f"{', '.join(RANK_METRICS)}."
        ]
    if scheme not in core.SCHEMES:
        errors["scheme"] = [f"Must be one of: {', '.join(core.SCHEMES)}."]
    for name, value in (
        ("in_sample_months", in_sample_months),
        ("out_of_sample_months", out_of_sample_months),
    ):
        if (message := _months_problem(value)) is not None:
            errors[name] = [message]
    if not isinstance(base_config, Mapping):
        errors["base_config"] = ["Must be a JSON object."]
        base_config = {}
    grid_field = "grid" if grid is not None or param_grid is None else "param_grid"
    try:
        combinations = expand(grid, param_grid, config_keys=accepted_keys(strategy.kind))
    except GridProblems as problems:
        errors.update(problems.errors)
        combinations = []
    if errors:
        raise InvalidInput(errors)

    span = _span(base_config)
    folds: list[core.Fold] = []
    if span is not None:
        try:
            folds = core.schedule_folds(
                *span,
                scheme=scheme,
                in_sample_months=in_sample_months,
                out_of_sample_months=out_of_sample_months,
            )
        except core.SpanTooShort as too_short:
            raise InvalidInput({"base_config": {"end_date": [str(too_short)]}}) from None
        if len(folds) > core.MAX_FOLDS:
            raise InvalidInput(
                {
                    "out_of_sample_months": [
                        f"The span holds {len(folds)} folds; at most {core.MAX_FOLDS} are "
                        "allowed (lengthen out_of_sample_months or shorten the span)."
                    ]
                }
            )

    # Validated as the folds will run them: on the snapshot the analysis keeps.
    snapshot = strategy.run_snapshot()
    valid: list[dict[str, Any]] = []
    specs = []
    skipped: list[tuple[int, Mapping[str, Any], dict[str, list[str]]]] = []
    first_problems: list[str] = []
    lookups = BatchLookups()  # every combination asks the data the same questions
    for index, overrides in enumerate(combinations):
        spec, problems = parse_run_config(
            apply_overrides(base_config, overrides),
            strategy_kind=snapshot["kind"],
            strategy_definition=snapshot["definition"],
            strategy_timeframe=snapshot["timeframe"],
            engine=engine,
            initial_capital=float(initial_capital),
            commission=float(commission),
            slippage=float(slippage),
            store=lookups,
        )
        if problems:
            skipped.append((index, overrides, _problems_by_path(problems)))
            if len(first_problems) < MAX_LISTED_PROBLEMS:
                first_problems.append(_describe_combination(index, overrides, problems))
        else:
            valid.append(dict(overrides))
            specs.append(spec)
    if not valid:
        raise InvalidInput(
            {
                grid_field: [
                    f"No valid combination among {len(combinations)}; the first problems:",
                    *first_problems,
                ]
            }
        )

    if span is None:  # the combinations set their own dates, but the span is the base's
        raise InvalidInput(
            {"base_config": {"start_date": ["The span's start_date and end_date must be here."]}}
        )
    total = len(folds) * (len(valid) + 1)
    with transaction.atomic():
        task = Task.objects.create(kind=Task.Kind.WALK_FORWARD, owner=owner, total=total)
        walk_forward = WalkForward.objects.create(
            strategy=strategy,
            strategy_snapshot=snapshot,
            engine=engine,
            base_config=dict(base_config),
            grid=grid,
            combinations=valid,
            n_skipped=len(skipped),
            skipped=describe_skipped(skipped),
            rank_metric=rank_metric,
            scheme=scheme,
            in_sample_months=in_sample_months,
            out_of_sample_months=out_of_sample_months,
            initial_capital=float(initial_capital),
            commission=float(commission),
            slippage=float(slippage),
            total=total,
            task=task,
            owner=owner,
        )
        WalkForwardFold.objects.bulk_create(
            [
                WalkForwardFold(
                    walk_forward=walk_forward,
                    index=fold.index,
                    in_sample_start=fold.in_sample_start,
                    in_sample_end=fold.in_sample_end,
                    out_of_sample_start=fold.out_of_sample_start,
                    out_of_sample_end=fold.out_of_sample_end,
                )
                for fold in folds
            ]
        )
        messages = [(str(walk_forward.pk), fold.index) for fold in folds]

        def dispatch() -> None:
            # A worker of this process (the embedded mode) starts from the specs just parsed.
            jobs.remember_specs(walk_forward.pk, specs)
            for message in messages:
                run_walk_forward_fold.send(*message)

        transaction.on_commit(dispatch)
    return walk_forward

"""Reads of walk-forward analyses, scoped to what the caller may see (SPEC §10): one the caller
may not see does not exist for them.

Folds and the result store the core's metrics (``compute_metrics``' keys and units); the API
shows them in the v1 contract's flat form (``v1_row_metrics``)."""

from __future__ import annotations

from typing import Any

import pandas as pd
from django.db.models import Count, F, QuerySet

from backfolio.common.errors import Conflict
from backfolio.common.ownership import visible_to
from backtests import artifacts
from backtests.research.walk_forward.models import WalkForward
from metrics.presenters import v1_row_metrics
from strategies.selectors import parse_uuid


def walk_forward_list(*, user) -> QuerySet[WalkForward]:
    """The analyses the caller may see, oldest first, each with ``n_folds`` and its result's
    ``psr`` and ``walk_forward_efficiency`` read in the query (the stitched equity in ``result``
    is not loaded)."""
    return (
        visible_to(WalkForward.objects.all(), user)
        .annotate(
            n_folds=Count("folds"),
            result_psr=F("result__psr"),
            result_efficiency=F("result__walk_forward_efficiency"),
        )
        .defer("result", "strategy_snapshot", "base_config", "grid", "skipped")
        .order_by("created_at", "id")
    )


def _walk_forward_settings(walk_forward: WalkForward) -> dict[str, Any]:
    """What the list and the detail both open with: identity, progress and the scheme."""
    return {
        "id": walk_forward.pk,
        "task_id": walk_forward.task_id,
        "strategy_id": walk_forward.strategy_id,
        "engine": walk_forward.engine,
        "status": walk_forward.status,
        "done": walk_forward.done,
        "total": walk_forward.total,
        "scheme": walk_forward.scheme,
        "in_sample_months": walk_forward.in_sample_months,
        "out_of_sample_months": walk_forward.out_of_sample_months,
        "rank_metric": walk_forward.rank_metric,
    }


def walk_forward_summary(walk_forward: WalkForward) -> dict[str, Any]:
    """A row of ``walk_forward_list`` as the list shows it."""
    return {
        **_walk_forward_settings(walk_forward),
        "n_configs": len(walk_forward.combinations),
        "n_folds": walk_forward.n_folds,
        "n_skipped": walk_forward.n_skipped,
        "psr": walk_forward.result_psr,
        "walk_forward_efficiency": walk_forward.result_efficiency,
        "error": walk_forward.error or None,
        "created_at": walk_forward.created_at,
        "started_at": walk_forward.started_at,
        "completed_at": walk_forward.completed_at,
    }


def walk_forward_get(*, walk_forward_id, user) -> WalkForward:
    """The analysis, or ``WalkForward.DoesNotExist``."""
    key = parse_uuid(walk_forward_id)
    if key is not None:
        found = visible_to(WalkForward.objects.all(), user).filter(pk=key).first()
        if found is not None:
            return found
    raise WalkForward.DoesNotExist(f"Walk-forward {walk_forward_id} not found.")


def walk_forward_detail(*, walk_forward: WalkForward) -> dict[str, Any]:
    """The analysis as the API shows it: settings, progress, each fold's windows and choice (in
    overrides form), and the result once completed."""
    combinations = walk_forward.combinations
    folds = []
    for fold in walk_forward.folds.order_by("index"):
        chosen = fold.chosen_index
        folds.append(
            {
                "index": fold.index,
                "in_sample": {"start": fold.in_sample_start, "end": fold.in_sample_end},
                "out_of_sample": {
                    "start": fold.out_of_sample_start,
                    "end": fold.out_of_sample_end,
                },
                "status": fold.status,
                "chosen": combinations[chosen] if chosen is not None else None,
                "chosen_index": chosen,
                "in_sample_score": fold.in_sample_score,
                "in_sample_failed": fold.in_sample_failed,
                "done": fold.done,
                "out_of_sample_metrics": v1_row_metrics(fold.out_of_sample_metrics) or None,
            }
        )
    return {
        **_walk_forward_settings(walk_forward),
        "base_config": walk_forward.base_config,
        "grid": walk_forward.grid,
        "initial_capital": walk_forward.initial_capital,
        "commission": walk_forward.commission,
        "slippage": walk_forward.slippage,
        "n_configs": len(combinations),
        "n_folds": len(folds),
        "n_skipped": walk_forward.n_skipped,
        "skipped": walk_forward.skipped,
        "error": walk_forward.error or None,
        "folds": folds,
        "result": v1_result(walk_forward.result),
        "created_at": walk_forward.created_at,
        "started_at": walk_forward.started_at,
        "completed_at": walk_forward.completed_at,
    }


def v1_result(result: dict[str, Any] | None) -> dict[str, Any] | None:
    """A completed analysis's ``result`` as the API shows it: its stitched metrics in v1 form."""
    if not result or "metrics" not in result:
        return result
    return {**result, "metrics": v1_row_metrics(result.get("metrics"))}


def walk_forward_equity_parquet(*, walk_forward: WalkForward) -> bytes:
    """The stitched out-of-sample equity as Parquet (date index, ``equity``); ``Conflict`` until
    the analysis completed."""
    if walk_forward.status != WalkForward.Status.COMPLETED or not walk_forward.result:
        raise Conflict(
            f"Walk-forward {walk_forward.pk} is {walk_forward.status}; its equity exists once "
            "it is completed."
        )
    points = walk_forward.result["equity"]
    equity = pd.Series(
        [point["equity"] for point in points],
        index=pd.DatetimeIndex([point["date"] for point in points]),
        dtype="float64",
    )
    return artifacts.equity_to_parquet(equity)

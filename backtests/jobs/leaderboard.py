"""A sweep's leaderboard (SPEC §2): its completed runs ranked by the metric's direction."""

from __future__ import annotations

from typing import Any

from backtests.models import Backtest, Sweep
from metrics.presenters import V1_METRIC_HIGHER_IS_BETTER, v1_row_metrics

LEADERBOARD_SUMMARY_KEYS = (
    "total_return",
    "perf_cagr",
    "perf_sharpe_ratio",
    "perf_sortino_ratio",
    "risk_max_drawdown",
    "risk_volatility_annualised",
    "trade_total_trades",
    "trade_win_rate",
)


def sweep_leaderboard(sweep: Sweep) -> dict[str, Any]:
    """SPEC §2: completed runs ranked by the metric's direction; failed runs last, score null."""
    metric = sweep.rank_metric
    higher_is_better = V1_METRIC_HIGHER_IS_BETTER.get(metric, True)
    children = list(
        sweep.backtests.order_by("sweep_index").values(
            "id", "sweep_index", "status", "metrics", "extra_metrics", "error"
        )
    )
    for child in children:  # the v1 contract's metrics: its keys, its units
        child["metrics"] = v1_row_metrics(child["metrics"], child["extra_metrics"])
    grid = sweep.param_grid

    def score_of(child) -> float | None:
        if child["status"] != Backtest.Status.COMPLETED:
            return None
        value = (child["metrics"] or {}).get(metric)
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        return float(value) if is_number else None

    def order(child) -> tuple:
        score = score_of(child)
        if child["status"] != Backtest.Status.COMPLETED:
            group = 2
        elif score is None:
            group = 1
        else:
            group = 0
        signed = 0.0 if score is None else (-score if higher_is_better else score)
        return (group, signed, child["sweep_index"])

    leaderboard = []
    for rank, child in enumerate(sorted(children, key=order), start=1):
        metrics = child["metrics"] or {}
        entry = {
            "rank": rank,
            "backtest_id": str(child["id"]),
            "overrides": grid[child["sweep_index"]] if child["sweep_index"] is not None else {},
            "status": child["status"],
            "score": score_of(child),
            "rank_metric": metric,
            "metrics_summary": {
                key: metrics.get(key) for key in dict.fromkeys((*LEADERBOARD_SUMMARY_KEYS, metric))
            }
            if child["status"] == Backtest.Status.COMPLETED
            else {},
        }
        if child["status"] == Backtest.Status.FAILED:
            entry["error"] = child["error"] or metrics.get("error") or "failed"
        leaderboard.append(entry)
    completed = sum(1 for child in children if child["status"] == Backtest.Status.COMPLETED)
    failed = sum(1 for child in children if child["status"] == Backtest.Status.FAILED)
    return {
        "leaderboard": leaderboard,
        "total_runs": len(children),
        "completed": completed,
        "failed": failed,
    }

"""Migration 0013: research rows go from the v1 presentation of their metrics to the core's own.

Backward and forward again, sweeps and walk-forwards read the same through every view; a row
written in the old form (before the migration) keeps every name it had, and reads as it did.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from rest_framework.test import APIClient

from backtests.models import WalkForward, WalkForwardFold
from backtests.research.models import ResearchSweepEntry
from tests.api.test_contract_outputs import Outputs
from tests.backtests.test_core_metrics_migration import migrate
from tests.factories import StrategyFactory
from tests.research.test_research_outputs import (  # noqa: F401 (failing_entry: a fixture)
    SWEEPS,
    failing_entry,
    read_research,
    run_research,
)

BEFORE = [("backtests", "0012_walk_forward_fold_done")]
AFTER = [("backtests", "0013_research_core_metrics")]
SPAN = ("start_date", "end_date", "n_bars")  # the core's own: the v1 form never held them

# What the old code stored for a completed entry (v1_flat: every contract key, some without a
# value), with names of someone's own, one of them a core name no contract key fills.
OLD_FLAT = {
    "total_return": 0.125,
    "bars_in_market": 40,
    "perf_cagr": 0.06,
    "perf_sharpe_ratio": 1.5,
    "perf_sortino_ratio": None,
    "perf_calmar_ratio": 0.3,
    "risk_max_drawdown": 0.2,
    "risk_max_drawdown_duration": 12,
    "risk_var_95": -0.01,
    "risk_cvar_95": 0.0,
    "risk_var_99": 0.03,
    "risk_cvar_99": 0.04,
    "risk_volatility_annualised": 0.18,
    "trade_total_trades": 4,
    "trade_win_rate": 0.5,
    "trade_profit_factor": 1.2,
    "trade_avg_win": 10.0,
    "trade_avg_loss": -5.0,
    "trade_expectancy": 2.5,
    "trade_turnover_annualised": 3.0,
    "final_value": 112_500.0,
    "metrics_spec_version": "1.0",
    "note": 7,
}
OLD_CORE = {
    "total_return": 0.125,
    "bars_in_market": 40,
    "cagr": 0.06,
    "sharpe_ratio": 1.5,
    "sortino_ratio": None,
    "calmar_ratio": 0.3,
    "max_drawdown": -0.2,
    "max_drawdown_duration": 12,
    "var_95": 0.01,
    "cvar_95": 0.0,
    "var_99": -0.03,
    "cvar_99": -0.04,
    "volatility_annualised": 0.18,
    "total_trades": 4,
    "win_rate": 0.5,
    "profit_factor": 1.2,
    "avg_win": 10.0,
    "avg_loss": -5.0,
    "expectancy": 2.5,
    "turnover_annualised": 3.0,
    "final_value": 112_500.0,
    "metrics_spec_version": "1.0",
    "note": 7,
}


def _without_span(metrics: dict) -> dict:
    return {key: value for key, value in metrics.items() if key not in SPAN}


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("failing_entry")
def test_research_reads_the_same_after_migrating_back_and_forward_and_old_rows_keep_every_name(
    worker, user, other_user, staff_user, settings
):
    settings.BACKFOLIO_REAPER_INTERVAL_SECONDS = 3600
    client = APIClient()
    client.force_authenticate(user)
    strategy = StrategyFactory(name="SMA crossover", kind="signal", definition=None, owner=user)
    sweep_id, walk_forward_id = run_research(client, strategy)
    before = Outputs()
    read_research(before, sweep_id, walk_forward_id, user=user, staff=staff_user)
    entries = {row.pk: row.metrics for row in ResearchSweepEntry.objects.filter(sweep=sweep_id)}
    folds = {
        row.pk: (row.in_sample_metrics, row.out_of_sample_metrics)
        for row in WalkForwardFold.objects.filter(walk_forward=walk_forward_id)
    }
    result = WalkForward.objects.get(pk=walk_forward_id).result
    shown = client.get(f"{SWEEPS}/{sweep_id}", {"sort": "number"}).json()["leaderboard"]
    detail = client.get(f"/api/v1/research/walk-forward/{walk_forward_id}").json()

    # Backward: every row holds the v1 flat map the API showed.
    executor = migrate(BEFORE)
    state = executor.loader.project_state(BEFORE).apps
    old_entries = state.get_model("backtests", "ResearchSweepEntry").objects
    for item in shown["entries"]:
        row = old_entries.get(sweep_id=sweep_id, number=item["number"])
        if item["status"] == "completed":
            assert row.metrics == item["metrics"], item["number"]
        else:
            assert row.metrics == {"error": item["error"]}
    old_folds = state.get_model("backtests", "WalkForwardFold").objects
    for item in detail["folds"]:
        row = old_folds.get(walk_forward_id=walk_forward_id, index=item["index"])
        assert row.out_of_sample_metrics == item["out_of_sample_metrics"]
        assert set(row.in_sample_metrics) == set(item["out_of_sample_metrics"])
        assert row.in_sample_metrics["risk_max_drawdown"] == row.in_sample_score >= 0
    old_result = state.get_model("backtests", "WalkForward").objects.get(pk=walk_forward_id)
    assert old_result.result == detail["result"]
    # Rows the old code wrote, in an analysis of someone else's (the views above do not change).
    template = state.get_model("backtests", "WalkForward").objects.get(pk=walk_forward_id)
    theirs = state.get_model("backtests", "WalkForward").objects.create(
        strategy_id=strategy.pk,
        strategy_snapshot=template.strategy_snapshot,
        engine=template.engine,
        base_config=template.base_config,
        combinations=template.combinations,
        rank_metric="risk_max_drawdown",
        scheme="rolling",
        in_sample_months=24,
        out_of_sample_months=12,
        initial_capital=100_000.0,
        commission=0.0,
        slippage=0.0,
        status="completed",
        result={**template.result, "metrics": OLD_FLAT},
        owner_id=other_user.pk,
    )
    old_fold = old_folds.create(
        walk_forward_id=theirs.pk,
        index=0,
        in_sample_start="2016-01-01",
        in_sample_end="2017-12-31",
        out_of_sample_start="2018-01-01",
        out_of_sample_end="2018-12-31",
        status="chosen",
        chosen_index=0,
        in_sample_score=0.2,
        in_sample_metrics=OLD_FLAT,
        out_of_sample_metrics={},
    )
    failed_row = old_entries.filter(sweep_id=sweep_id, status="failed").get()

    # Forward: the same outputs from every view, and the core's metrics in the rows.
    migrate(AFTER)
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())  # and every later one
    after = Outputs()
    read_research(after, sweep_id, walk_forward_id, user=user, staff=staff_user)
    del before.bodies["admin walk-forward list"], after.bodies["admin walk-forward list"]
    assert after.bodies == before.bodies
    for pk, metrics in entries.items():
        assert ResearchSweepEntry.objects.get(pk=pk).metrics == _without_span(metrics)
    assert ResearchSweepEntry.objects.get(pk=failed_row.pk).metrics == failed_row.metrics
    for pk, (in_sample, out_of_sample) in folds.items():
        row = WalkForwardFold.objects.get(pk=pk)
        assert row.in_sample_metrics == _without_span(in_sample)
        assert row.out_of_sample_metrics == _without_span(out_of_sample)
    migrated = WalkForward.objects.get(pk=walk_forward_id).result
    assert migrated == {**result, "metrics": _without_span(result["metrics"])}

    # The old rows: every name kept, in the core's units, and shown as before.
    assert WalkForward.objects.get(pk=theirs.pk).result["metrics"] == OLD_CORE
    fold = WalkForwardFold.objects.get(pk=old_fold.pk)
    assert (fold.in_sample_metrics, fold.out_of_sample_metrics) == (OLD_CORE, {})
    other = APIClient()
    other.force_authenticate(other_user)
    shown = other.get(f"/api/v1/research/walk-forward/{theirs.pk}").json()
    assert shown["result"]["metrics"] == {key: OLD_FLAT[key] for key in OLD_FLAT if key != "note"}
    assert shown["folds"][0]["out_of_sample_metrics"] is None

    # Backward once more: the old rows are as the old code wrote them.
    executor = migrate(BEFORE)
    state = executor.loader.project_state(BEFORE).apps
    again = state.get_model("backtests", "WalkForward").objects.get(pk=theirs.pk)
    assert again.result == {**template.result, "metrics": OLD_FLAT}
    fold = state.get_model("backtests", "WalkForwardFold").objects.get(pk=old_fold.pk)
    assert fold.in_sample_metrics == OLD_FLAT
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

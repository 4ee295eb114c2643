"""Migration 0010: rows go from the v1 presentation of their metrics to the core's own metrics.

Backward and forward again, runs read the same through every contract; a row written in the old
form (before the migration) reads, after it, as the old code showed it.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from rest_framework.test import APIClient

from backtests.models import Backtest
from metrics.presenters import V1_FLAT_KEYS
from tests.api.test_contract_outputs import (
    BACKFOLIO_REQUEST,
    SIGNAL_CONFIG,
    V1,
    Outputs,
    read_contracts,
)
from tests.factories import StrategyFactory

BEFORE = [("backtests", "0009_walk_forward_strategy_snapshot")]
AFTER = [("backtests", "0010_core_metrics")]

# What the old code stored for a corrected run: the contract's keys, and names of the caller's
# own, one of them a name of the core's metrics.
OLD_FLAT = {
    "total_return": 0.125,
    "final_value": 112_500.0,
    "perf_cagr": 0.06,
    "perf_sharpe_ratio": 1.5,
    "perf_sortino_ratio": 2.25,
    "risk_max_drawdown": 0.2,
    "risk_var_95": 0.03,
    "risk_volatility_annualised": 0.18,
    "trade_total_trades": 4,
    "note": 7,
    "cagr": 9.0,
}

OLD_RUN = {**OLD_FLAT, "metrics_spec_version": "1.0"}


def migrate(targets) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor


@pytest.mark.django_db(transaction=True)
def test_runs_read_the_same_after_migrating_back_and_forward_and_old_rows_read_as_before(
    user, other_user
):
    client = APIClient()
    client.force_authenticate(user)
    strategy = StrategyFactory(name="SMA crossover", owner=user)
    created = client.post(
        V1,
        {"strategy_id": str(strategy.id), "engine": "vectorbt", "config": SIGNAL_CONFIG},
        format="json",
    ).json()
    run = client.post(f"{V1}/{created['id']}/execute").json()
    assert run["status"] == "completed"
    posted = client.post("/api/v1/backtest", BACKFOLIO_REQUEST, format="json", HTTP_X_USER_ID="a")
    backfolio_id = posted.json()["backtest_id"]
    corrected = client.post(
        V1,
        {"strategy_id": str(strategy.id), "engine": "vectorbt", "config": SIGNAL_CONFIG},
        format="json",
    ).json()["id"]
    client.post(f"{V1}/{corrected}/execute")
    patched = client.patch(f"{V1}/{corrected}", {"metrics": OLD_FLAT}, format="json")
    assert patched.status_code == 200, patched.json()
    ids = [run["id"], backfolio_id, corrected]
    before = Outputs()
    read_contracts(before, ids, user=user, backfolio_id=backfolio_id)
    stored = {str(row.pk): row.metrics for row in Backtest.objects.filter(pk__in=ids)}

    # Backward: every row holds the v1 flat map its contract showed.
    executor = migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps.get_model("backtests", "Backtest")
    assert old.objects.get(pk=run["id"]).metrics == run["metrics"]
    assert set(old.objects.get(pk=backfolio_id).metrics) == set(V1_FLAT_KEYS)
    assert old.objects.get(pk=corrected).metrics == OLD_FLAT
    template = old.objects.get(pk=run["id"])
    # Rows the old code wrote, owned by someone else so that the lists above do not change.
    old_v1 = old.objects.create(
        strategy_id=strategy.pk,
        engine="vectorbt",
        status="completed",
        config=SIGNAL_CONFIG,
        metrics=OLD_RUN,
        equity_curve_uri=template.equity_curve_uri,
        trades_uri=template.trades_uri,
        owner_id=other_user.pk,
        progress=100,
        completed_at=template.completed_at,
    )
    template = old.objects.get(pk=backfolio_id)
    old_v2 = old.objects.create(
        engine="vectorbt",
        status="completed",
        config=template.config,
        metrics={**OLD_RUN, "risk_max_drawdown": 0.0},
        report_uri=template.report_uri,
        equity_curve_uri=template.equity_curve_uri,
        trades_uri=template.trades_uri,
        owner_id=other_user.pk,
        user_ref="b",
        source="v2",
        progress=100,
        completed_at=template.completed_at,
    )
    old_failed = old.objects.create(
        strategy_id=strategy.pk,
        engine="vectorbt",
        status="failed",
        config=SIGNAL_CONFIG,
        metrics={"error": "boom"},
        error="boom",
        owner_id=other_user.pk,
    )

    # Forward: the same outputs from every contract, and the core's metrics in the rows.
    migrate(AFTER)
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())  # and every later one
    after = Outputs()
    read_contracts(after, ids, user=user, backfolio_id=backfolio_id)
    # The staff list page shows every run, the old rows too; the rest is about ``ids`` only.
    del before.bodies["page list metrics"], after.bodies["page list metrics"]
    assert after.bodies == before.bodies
    for backtest_id in (run["id"], backfolio_id):
        row = Backtest.objects.get(pk=backtest_id)
        # What the v1 form never held (the span, the bar count, cash-flow totals) is gone.
        assert row.metrics == {
            key: value for key, value in stored[backtest_id].items() if key in row.metrics
        }
        assert row.extra_metrics == {}
    row = Backtest.objects.get(pk=corrected)
    assert (row.metrics, row.extra_metrics) == (stored[corrected], {"note": 7, "cagr": 9.0})

    # The old rows, read through each contract.
    other = APIClient()
    other.force_authenticate(other_user)
    assert other.get(f"{V1}/{old_v1.pk}").json()["metrics"] == OLD_RUN
    structured = other.get(f"{V1}/{old_v1.pk}").json()["structured_metrics"]
    assert structured["risk"]["max_drawdown"] == 0.2
    assert structured["performance"]["sharpe_ratio"] == 1.5
    assert other.get(f"{V1}/{old_failed.pk}").json()["metrics"] == {"error": "boom"}
    detail = other.get(f"/api/backtests/{old_v1.pk}").json()
    assert (detail["results"]["sharpeRatio"], detail["results"]["maxDrawdown"]) == (1.5, 20.0)
    summary = other.get("/api/backtests").json()["data"]
    by_id = {item["id"]: item for item in summary}
    assert by_id[str(old_v1.pk)]["finalBalance"] == 112_500.0
    assert by_id[str(old_v1.pk)]["returnOnInvestment"] == 12.5
    runs = other.get("/api/v1/backtest/runs", HTTP_X_USER_ID="b").json()["runs"]
    assert [item["backtest_id"] for item in runs] == [str(old_v2.pk)]
    assert runs[0]["metrics"] == {
        "final_value": 112_500.0,
        "total_return": 0.125,
        "cagr": 0.06,
        "sharpe_ratio": 1.5,
        "sortino_ratio": 2.25,
        "volatility": 0.18,
        "max_drawdown": 0.0,
    }
    compared = other.post(
        f"{V1}/compare", {"backtest_ids": [str(old_v1.pk), str(old_v2.pk)]}, format="json"
    ).json()
    assert compared["runs"][0]["metrics"] == OLD_RUN
    assert compared["metric_diff"]["risk_max_drawdown"]["best_id"] == str(old_v2.pk)

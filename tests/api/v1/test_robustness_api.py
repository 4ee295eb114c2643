"""GET /api/v1/backtests/{id}/robustness (SPEC §13.4): numbers, keeping, every error path.

The numbers are checked against independent computations: the PSR and the bootstrap intervals
against the research module on the equity curve the API itself serves (the module is proven
against the published formulas and `arch` in tests/metrics/test_research.py); each cost row and
the break-even cost against separate v1 backtests created and executed at those costs.
"""

from __future__ import annotations

import time
import uuid

import pandas as pd
import pytest
from rest_framework.test import APIClient

from backtests.models import Backtest, Robustness
from metrics.research import (
    RESEARCH_SPEC_VERSION,
    bootstrap_confidence_intervals,
    probabilistic_sharpe_ratio,
)
from tests.factories import BacktestFactory, StrategyFactory

pytestmark = pytest.mark.django_db

V1 = "/api/v1/backtests"
SMA_CONFIG = {
    "symbol": "SPY",
    "start_date": "2016-01-01",
    "end_date": "2020-12-31",
    "signal_plugin_key": "sma_crossover",
    "signal_plugin_params": {"fast": 20, "slow": 50},
}
QUICK = "?resamples=200"


def executed_backtest(client, *, engine="vectorbt", commission=0.001, slippage=0.0005, **extra):
    strategy = StrategyFactory()
    body = {
        "strategy_id": str(strategy.id),
        "engine": engine,
        "initial_capital": 100_000,
        "commission": commission,
        "slippage": slippage,
        "config": dict(SMA_CONFIG, **extra),
    }
    created = client.post(V1, body, format="json").json()
    response = client.post(f"{V1}/{created['id']}/execute")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "completed"
    return response.json()


def run_cagr(client, commission, slippage) -> float:
    return executed_backtest(client, commission=commission, slippage=slippage)["metrics"][
        "perf_cagr"
    ]


def curve_returns(client, backtest_id, capital=100_000.0) -> pd.Series:
    curve = client.get(f"{V1}/{backtest_id}/equity-curve").json()
    equity = pd.Series(
        [point["equity"] for point in curve],
        index=pd.DatetimeIndex([point["date"] for point in curve]),
    )
    return equity / pd.concat([pd.Series([capital]), equity.iloc[:-1]]).to_numpy() - 1


@pytest.fixture
def client() -> APIClient:
    return APIClient()


@pytest.fixture
def completed(client):
    return executed_backtest(client)


def test_robustness_of_a_v1_run(client, completed):
    response = client.get(f"{V1}/{completed['id']}/robustness?resamples=300&seed=4")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert set(body) == {"psr", "bootstrap", "cost_sensitivity"}

    returns = curve_returns(client, completed["id"])
    assert body["psr"] == pytest.approx(probabilistic_sharpe_ratio(returns.to_numpy()), abs=1e-12)
    expected = bootstrap_confidence_intervals(
        returns, initial_capital=100_000, bars_per_year=252, resamples=300, seed=4
    )
    assert body["bootstrap"] == expected
    assert body["bootstrap"]["resamples"] == 300 and body["bootstrap"]["seed"] == 4
    metrics = completed["metrics"]
    point = body["bootstrap"]["metrics"]
    assert point["cagr"]["point"] == pytest.approx(metrics["perf_cagr"], abs=1e-9)
    assert point["sharpe"]["point"] == pytest.approx(metrics["perf_sharpe_ratio"], abs=1e-9)
    assert point["max_drawdown"]["point"] == pytest.approx(-metrics["risk_max_drawdown"], abs=1e-9)
    for interval in point.values():
        assert interval["lower"] <= interval["upper"]
    assert 0 <= body["bootstrap"]["probability_positive"] <= 1

    rows = body["cost_sensitivity"]["rows"]
    assert [(row["multiplier"], row["commission"], row["slippage"]) for row in rows] == [
        (0, 0.0, 0.0),
        (1, 0.001, 0.0005),
        (2, 0.002, 0.001),
        (5, 0.005, 0.0025),
    ]
    own = rows[1]
    assert own["cagr"] == pytest.approx(metrics["perf_cagr"], abs=1e-12)
    assert own["sharpe"] == pytest.approx(metrics["perf_sharpe_ratio"], abs=1e-12)
    assert own["max_drawdown"] == pytest.approx(-metrics["risk_max_drawdown"], abs=1e-12)
    assert rows[0]["total_costs"] == 0.0
    assert rows[0]["total_costs"] < rows[1]["total_costs"] < rows[2]["total_costs"]
    assert all(row["error"] is None for row in rows)
    for row in (rows[0], rows[3]):
        assert row["cagr"] == pytest.approx(
            run_cagr(client, row["commission"], row["slippage"]), abs=1e-12
        )


def test_breakeven_cost_brackets_the_zero_of_cagr(client, completed):
    body = client.get(f"{V1}/{completed['id']}/robustness{QUICK}").json()
    breakeven = body["cost_sensitivity"]["breakeven_cost_bps"]
    assert 0 < breakeven < 500
    below, above = (breakeven - 0.1) / 10_000, (breakeven + 0.1) / 10_000
    assert run_cagr(client, below, below) > 0
    assert run_cagr(client, above, above) <= 0


def test_same_request_same_answer_kept_with_the_run(client, completed):
    url = f"{V1}/{completed['id']}/robustness?resamples=150&confidence=0.9&block_length=5&seed=7"
    first = client.get(url)
    assert first.status_code == 200
    row = Robustness.objects.get()
    assert (row.resamples, row.confidence, row.block_length, row.seed) == (150, 0.9, 5, 7)
    assert row.status == "completed" and row.done == row.total
    assert client.get(url).json() == first.json()
    assert Robustness.objects.count() == 1
    assert Robustness.objects.get().updated_at == row.updated_at  # read, not recomputed
    assert first.json()["bootstrap"]["block_length"] == 5
    assert first.json()["bootstrap"]["confidence"] == 0.9

    other_seed = client.get(url.replace("seed=7", "seed=8"))
    assert other_seed.status_code == 200
    assert Robustness.objects.count() == 2
    assert other_seed.json()["cost_sensitivity"] == first.json()["cost_sensitivity"]


def test_a_result_kept_under_other_statistics_definitions_is_recomputed(client, completed):
    url = f"{V1}/{completed['id']}/robustness{QUICK}"
    first = client.get(url).json()
    Robustness.objects.update(research_spec_version="0.9", result={"psr": -1})
    assert client.get(url).json() == first
    assert Robustness.objects.get().research_spec_version == RESEARCH_SPEC_VERSION


def test_a_rerun_backtest_gets_a_fresh_result(client, completed):
    client.get(f"{V1}/{completed['id']}/robustness{QUICK}")
    client.post(f"{V1}/{completed['id']}/execute")
    client.get(f"{V1}/{completed['id']}/robustness{QUICK}")
    assert sorted(Robustness.objects.values_list("run_number", flat=True)) == [1, 2]


def test_a_run_without_costs_is_tried_at_fixed_bps(client):
    free = executed_backtest(client, commission=0.0, slippage=0.0)
    body = client.get(f"{V1}/{free['id']}/robustness{QUICK}").json()
    rows = body["cost_sensitivity"]["rows"]
    assert [(row["multiplier"], row["commission"], row["slippage"]) for row in rows] == [
        (None, 0.0, 0.0),
        (None, 0.0005, 0.0005),
        (None, 0.001, 0.001),
        (None, 0.0025, 0.0025),
    ]
    assert rows[0]["cagr"] == pytest.approx(free["metrics"]["perf_cagr"], abs=1e-12)
    assert rows[2]["cagr"] == pytest.approx(run_cagr(client, 0.001, 0.001), abs=1e-12)


def test_a_results_api_run(client):
    backtest = BacktestFactory(
        source=Backtest.Source.RESULTS_API,
        config={"symbols": ["SPY"], "start_date": "2019-01-01", "end_date": "2020-12-31"},
    )
    assert client.post(f"{V1}/{backtest.id}/execute").json()["status"] == "completed"
    response = client.get(f"{V1}/{backtest.id}/robustness{QUICK}")
    assert response.status_code == 200
    rows = response.json()["cost_sensitivity"]["rows"]
    assert rows[1]["cagr"] == pytest.approx(
        Backtest.objects.get(pk=backtest.id).metrics["cagr"], abs=1e-12
    )


def test_a_backfolio_saved_run_scales_its_commission(client):
    document = {
        "strategy": {
            "allocations": {"core": {"SPY": 0.6, "AGG": 0.4}},
            "fallback_allocation": "core",
            "switching_logic": [],
        },
        "config": {
            "start_date": "2018-01-01",
            "end_date": "2020-12-31",
            "initial_capital": 10000,
            "rebalance_frequency": "monthly",
            "base_commission": 0.002,
        },
    }
    saved = client.post("/api/v1/backtest", document, format="json").json()
    backtest_id = saved["backtest_id"]
    response = client.get(f"{V1}/{backtest_id}/robustness{QUICK}")
    assert response.status_code == 200, response.json()
    body = response.json()
    rows = body["cost_sensitivity"]["rows"]
    assert [(row["multiplier"], row["commission"], row["slippage"]) for row in rows] == [
        (0, 0.0, 0.0),
        (1, 0.002, 0.0),
        (2, 0.004, 0.0),
        (5, 0.01, 0.0),
    ]
    assert rows[1]["cagr"] == pytest.approx(saved["result"]["metrics"]["cagr"], abs=1e-12)
    document["config"]["base_commission"] = 0.01
    at_five = client.post("/api/v1/backtest", document, format="json").json()
    assert rows[3]["cagr"] == pytest.approx(at_five["result"]["metrics"]["cagr"], abs=1e-12)
    assert rows[0]["total_costs"] == 0.0 < rows[1]["total_costs"] < rows[3]["total_costs"]
    returns = curve_returns(client, backtest_id, capital=10_000.0)
    assert body["psr"] == pytest.approx(probabilistic_sharpe_ratio(returns.to_numpy()), abs=1e-12)


@pytest.mark.django_db(transaction=True)
def test_a_backtrader_run_is_computed_on_the_workers(worker):
    client = APIClient()
    strategy = StrategyFactory()
    backtest = BacktestFactory(
        strategy=strategy,
        engine="backtrader",
        config=dict(SMA_CONFIG, start_date="2019-01-01", end_date="2020-12-31"),
    )
    assert client.post(f"{V1}/{backtest.id}/execute").json()["status"] == "completed"
    url = f"{V1}/{backtest.id}/robustness?resamples=100"
    first = client.get(url)
    assert first.status_code == 202
    assert first.json() == {"status": "pending", "done": 0, "total": 20}
    deadline = time.monotonic() + 120
    seen = []
    while time.monotonic() < deadline:
        response = client.get(url)
        if response.status_code == 200:
            break
        assert response.status_code == 202
        seen.append(response.json()["done"])
        time.sleep(0.2)
    assert response.status_code == 200, seen
    assert seen == sorted(seen)
    rows = response.json()["cost_sensitivity"]["rows"]
    assert rows[1]["cagr"] == pytest.approx(
        Backtest.objects.get(pk=backtest.id).metrics["cagr"], abs=1e-12
    )
    assert Robustness.objects.get().status == "completed"


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "errors"),
    [
        ("confidence=0", {"confidence": ["confidence must be strictly between 0 and 1, got 0.0"]}),
        (
            "confidence=1.5",
            {"confidence": ["confidence must be strictly between 0 and 1, got 1.5"]},
        ),
        ("confidence=abc", {"confidence": ["A valid number is required."]}),
        ("resamples=10001", {"resamples": ["resamples must be between 1 and 10,000, got 10001"]}),
        ("resamples=0", {"resamples": ["resamples must be between 1 and 10,000, got 0"]}),
        ("resamples=2.5", {"resamples": ["A valid integer is required."]}),
        ("block_length=abc", {"block_length": ["A valid integer is required."]}),
        ("block_length=0", {"block_length": ["block_length must be a positive integer, got 0"]}),
        ("block_length=-2", {"block_length": ["block_length must be a positive integer, got -2"]}),
        ("seed=1.5", {"seed": ["A valid integer is required."]}),
        ("seed=x", {"seed": ["A valid integer is required."]}),
        ("seed=-1", {"seed": ["Ensure this value is greater than or equal to 0."]}),
        (
            "resamples=0&confidence=2",
            {
                "resamples": ["resamples must be between 1 and 10,000, got 0"],
                "confidence": ["confidence must be strictly between 0 and 1, got 2.0"],
            },
        ),
    ],
)
def test_bad_query_is_400_naming_the_field(client, query, errors):
    backtest = BacktestFactory(status="completed")
    response = client.get(f"{V1}/{backtest.id}/robustness?{query}")
    assert response.status_code == 400
    assert response.json() == errors
    assert not Robustness.objects.exists()


@pytest.mark.parametrize("status", ["pending", "running", "failed"])
def test_a_run_that_is_not_completed_is_409(client, status):
    backtest = BacktestFactory(status=status)
    response = client.get(f"{V1}/{backtest.id}/robustness")
    assert response.status_code == 409
    assert response.json() == {
        "detail": f"Backtest {backtest.id} is not completed (status: {status}); "
        "its robustness cannot be computed."
    }
    assert not Robustness.objects.exists()


def test_a_completed_run_without_its_equity_curve_is_409_and_keeps_nothing(client):
    backtest = BacktestFactory(status="completed", equity_curve_uri="runs/x/1/equity.parquet")
    response = client.get(f"{V1}/{backtest.id}/robustness")
    assert response.status_code == 409
    assert response.json() == {
        "detail": f"Backtest {backtest.id}: artifact runs/x/1/equity.parquet cannot be read."
    }
    assert not Robustness.objects.exists()


def test_unknown_ids_are_404(client):
    assert client.get(f"{V1}/not-a-uuid/robustness").json() == {
        "detail": "Backtest not-a-uuid not found."
    }
    missing = uuid.uuid4()
    response = client.get(f"{V1}/{missing}/robustness/")
    assert response.status_code == 404
    assert response.json() == {"detail": f"Backtest {missing} not found."}


def test_someone_elses_run_is_404(user, other_user):
    backtest = BacktestFactory(status="completed", owner=other_user)
    client = APIClient()
    client.force_authenticate(user)
    response = client.get(f"{V1}/{backtest.id}/robustness")
    assert response.status_code == 404
    assert response.json() == {"detail": f"Backtest {backtest.id} not found."}
    assert APIClient().get(f"{V1}/{backtest.id}/robustness").status_code == 404


def test_many_resamples_are_computed_on_the_workers(client, completed, broker):
    response = client.get(f"{V1}/{completed['id']}/robustness?resamples=2001")
    assert response.status_code == 202
    assert response.json() == {"status": "pending", "done": 0, "total": 20}
    assert client.get(f"{V1}/{completed['id']}/robustness?resamples=2001").status_code == 202
    assert Robustness.objects.get().status == "pending"


def test_a_computation_past_the_run_time_limit_is_409_and_keeps_nothing(
    client, completed, settings
):
    settings.BACKFOLIO_RUN_TIME_LIMIT_SECONDS = 0.001
    response = client.get(f"{V1}/{completed['id']}/robustness{QUICK}")
    assert response.status_code == 409
    assert response.json() == {
        "detail": f"Backtest {completed['id']}: robustness computation stopped. The run was "
        "stopped: it exceeded the run time limit of 0.001 s (BACKFOLIO_RUN_TIME_LIMIT_SECONDS)."
    }
    assert not Robustness.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_failed_computation_on_the_workers_is_409_once_then_retried(worker):
    client = APIClient()
    backtest = BacktestFactory(
        engine="backtrader", status="completed", equity_curve_uri="runs/x/1/equity.parquet"
    )
    url = f"{V1}/{backtest.id}/robustness"
    assert client.get(url).status_code == 202
    deadline = time.monotonic() + 60
    while Robustness.objects.get().status != "failed":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    response = client.get(url)
    assert response.status_code == 409
    assert response.json() == {
        "detail": f"The robustness computation of backtest {backtest.id} failed: Backtest "
        f"{backtest.id}: artifact runs/x/1/equity.parquet cannot be read. "
        "Request it again to retry."
    }
    assert not Robustness.objects.exists()
    assert client.get(url).status_code == 202

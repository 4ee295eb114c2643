"""POST /api/v1/backtests/sweep: bad input is a 4xx naming the field, and creates nothing."""

import uuid

import pytest

from backtests.models import Backtest, Sweep

pytestmark = pytest.mark.django_db

URL = "/api/v1/backtests/sweep"
CONFIG = {"symbol": "SPY", "start_date": "2019-01-01", "end_date": "2020-12-31"}


@pytest.fixture
def body(strategy):
    return {
        "strategy_id": str(strategy.id),
        "engine": "backtrader",
        "base_config": CONFIG,
        "param_grid": [{"signal_plugin_key": "sma_crossover"}],
        "rank_metric": "perf_sharpe_ratio",
    }


@pytest.mark.parametrize(
    ("changes", "status", "expected"),
    [
        (
            {"param_grid": []},
            400,
            {"param_grid": ["Must be a list of 1 to 50 override objects (got 0)."]},
        ),
        (
            {"param_grid": [{}] * 51},
            400,
            {"param_grid": ["Must be a list of 1 to 50 override objects (got 51)."]},
        ),
        (
            {"engine": "zipline"},
            400,
            {"engine": ["Unknown engine 'zipline'; available engines: backtrader, vectorbt."]},
        ),
        ({"base_config": []}, 400, {"base_config": ["Must be a JSON object."]}),
        (
            {"param_grid": [{}, {"end_date": "2018-01-01"}]},
            400,
            {"param_grid": {"1": {"end_date": ["Must be after start_date (2019-01-01)."]}}},
        ),
        (
            {
                "param_grid": [
                    {"signal_plugin_key": "sma_crossover", "signal_plugin_params": {"fast": -3}}
                ]
            },
            400,
            {"param_grid": {"0": {"signal_plugin_params.fast": ["must be at least 2"]}}},
        ),
    ],
)
def test_bad_sweeps(client, body, changes, status, expected):
    response = client.post(URL, {**body, **changes}, format="json")
    assert response.status_code == status
    assert response.json() == expected
    assert not Sweep.objects.exists() and not Backtest.objects.exists()


def test_unknown_rank_metric(client, body):
    response = client.post(URL, {**body, "rank_metric": "luck"}, format="json")
    assert response.status_code == 400
    message = response.json()["rank_metric"][0]
    assert message.startswith("Unknown rank metric 'luck'; choose one of: ")
    assert "perf_sharpe_ratio" in message


@pytest.mark.parametrize(
    "metric",
    [
        "trade_avg_win",
        "trade_avg_loss",
        "trade_total_trades",
        "trade_turnover_annualised",
        "final_value",
    ],
)
def test_every_numeric_flat_metric_ranks_a_sweep(client, body, metric):
    response = client.post(URL, {**body, "rank_metric": metric}, format="json")
    assert response.status_code == 200
    assert Sweep.objects.get().rank_metric == metric


def test_unknown_strategy_is_404(client, body):
    missing = uuid.uuid4()
    response = client.post(f"{URL}/", {**body, "strategy_id": str(missing)}, format="json")
    assert response.status_code == 404
    assert response.json() == {"detail": f"Strategy {missing} not found."}

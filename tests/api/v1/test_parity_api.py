"""POST /api/v1/backtests/{id}/parity: a completed run, run again on the other engine, compared."""

import uuid

import pandas as pd
import pytest
from rest_framework.test import APIClient

from backtests import artifacts, selectors
from backtests.models import Backtest
from tests.api.v1.conftest import SHORT_CONFIG
from tests.factories import BacktestFactory, StrategyFactory

pytestmark = pytest.mark.django_db

V1 = "/api/v1/backtests"
SIXTY_FORTY_DAILY_AT_ZERO_COST = {
    "strategy": {
        "allocations": {"balanced": {"SPY": 0.6, "AGG": 0.4}},
        "fallback_allocation": "balanced",
        "switching_logic": [],
    },
    "config": {
        "start_date": "2012-01-01",
        "end_date": "2013-12-31",
        "initial_capital": 10000,
        "rebalance_frequency": "daily",
        "base_commission": 0,
        "engine": "backtrader",
    },
}


def completed_run(client, create_body, **changes) -> str:
    created = client.post(V1, {**create_body, **changes}, format="json").json()
    executed = client.post(f"{V1}/{created['id']}/execute").json()
    assert executed["status"] == "completed", executed
    return created["id"]


def parity(client, backtest_id, slash=""):
    return client.post(f"{V1}/{backtest_id}/parity{slash}")


def test_a_signal_run_at_zero_cost_agrees_with_the_other_engine(client, create_body):
    sma = {"type": "SMA", "window": 20}
    signal = {
        "entry": {"left": {"type": "Close"}, "comparison": ">", "right": sma},
        "exit": {"left": {"type": "Close"}, "comparison": "<", "right": sma},
    }
    backtest_id = completed_run(
        client,
        create_body,
        commission=0,
        slippage=0,
        config={**SHORT_CONFIG, "signal": signal, "stop_loss": 0.03},
    )
    response = parity(client, backtest_id)
    assert response.status_code == 200
    body = response.json()
    trades = len(client.get(f"{V1}/{backtest_id}/trades").json())
    assert trades > 5
    assert body == {
        "backtest_id": backtest_id,
        "engine": "backtrader",
        "other_engine": "vectorbt",
        "max_relative_difference": body["max_relative_difference"],
        "first_difference_date": None,
        "agree": True,
        "tolerance": 1e-9,
        "engine_trades": trades,
        "other_engine_trades": trades,
    }
    assert 0 <= body["max_relative_difference"] <= 1e-9


def test_a_portfolio_run_at_zero_cost_agrees_with_the_other_engine(client):
    posted = client.post("/api/v1/backtest", SIXTY_FORTY_DAILY_AT_ZERO_COST, format="json")
    assert posted.status_code == 200
    backtest_id = posted.json()["backtest_id"]
    body = parity(client, backtest_id, "/").json()
    assert (body["engine"], body["other_engine"]) == ("backtrader", "vectorbt")
    assert body["agree"] is True and body["first_difference_date"] is None
    assert body["max_relative_difference"] <= 1e-9
    assert body["engine_trades"] == body["other_engine_trades"] == 2


def test_the_first_date_the_curves_part_on_is_named(client, create_body):
    """The stored curve, corrected from 2020-03-02 on, parts from a fresh run on that date."""
    backtest_id = completed_run(client, create_body)
    backtest = Backtest.objects.get(pk=backtest_id)
    stored = selectors.backtest_equity_curve(backtest=backtest)
    changed = stored.where(stored.index < pd.Timestamp("2020-03-02"), stored * 1.001)
    artifacts.save_bytes(backtest.equity_curve_uri, artifacts.equity_to_parquet(changed))
    body = parity(client, backtest_id).json()
    assert body["agree"] is False
    assert body["first_difference_date"] == "2020-03-02"
    assert body["max_relative_difference"] == pytest.approx(0.001 / 1.001, rel=1e-6)


def test_unknown_ids_are_404(client):
    assert parity(client, "not-a-uuid").json() == {"detail": "Backtest not-a-uuid not found."}
    missing = uuid.uuid4()
    response = parity(client, missing)
    assert response.status_code == 404
    assert response.json() == {"detail": f"Backtest {missing} not found."}


def test_someone_elses_backtest_is_404(django_user_model):
    owner = django_user_model.objects.create_user("owner", password="x" * 12)
    other = django_user_model.objects.create_user("other", password="x" * 12)
    backtest = BacktestFactory(owner=owner, strategy=StrategyFactory(owner=owner))
    client = APIClient()
    client.force_authenticate(other)
    response = parity(client, backtest.id)
    assert response.status_code == 404
    assert response.json() == {"detail": f"Backtest {backtest.id} not found."}


@pytest.mark.parametrize("status", ["pending", "running", "failed"])
def test_a_backtest_that_is_not_completed_is_409(client, status):
    backtest = BacktestFactory(status=status)
    response = parity(client, backtest.id)
    assert response.status_code == 409
    assert response.json() == {
        "detail": f"Backtest {backtest.id} is not completed (status: {status}); "
        "a parity check needs a completed run."
    }


def test_a_run_the_other_engine_cannot_make_is_409_with_the_reason(client, create_body):
    backtest_id = completed_run(
        client,
        create_body,
        config={**SHORT_CONFIG, "direction": "both", "size": 0.5},
    )
    response = parity(client, backtest_id)
    assert response.status_code == 409
    detail = response.json()["detail"]
    assert detail.startswith(f"The vectorbt engine cannot run backtest {backtest_id}: ")
    assert "vectorbt cannot reverse a position sized as a fraction of equity below 1" in detail


def test_get_is_405(client):
    backtest = BacktestFactory(status="completed")
    response = client.get(f"{V1}/{backtest.id}/parity")
    assert response.status_code == 405
    assert response.json() == {"detail": 'Method "GET" not allowed.'}

"""Every v1 response has exactly the shape the OpenAPI document gives it (keys and JSON types)."""

import numpy as np
import pandas as pd
import pytest

from backtests.models import Task
from tests.api.v1.conftest import SHORT_CONFIG
from tests.backtests.portfolio.test_cashflows import independent_irr
from tests.openapi_shapes import openapi_document, response_schema, shape_mismatches


@pytest.fixture(scope="module")
def document():
    return openapi_document()


def _check(document, path, method, status, response):
    assert response.status_code == status, response.content
    schema = response_schema(document, path, method, status)
    assert shape_mismatches(document, schema, response.json()) == []


@pytest.mark.django_db
def test_v1_responses_match_their_documentation(document, client, strategy, create_body):
    created = client.post("/api/v1/backtests", create_body, format="json")
    _check(document, "/api/v1/backtests", "POST", 201, created)
    backtest_id = created.json()["id"]
    detail = "/api/v1/backtests/{backtest_id}"

    pending = client.get(f"/api/v1/backtests/{backtest_id}")
    _check(document, detail, "GET", 200, pending)
    executed = client.post(f"/api/v1/backtests/{backtest_id}/execute", {}, format="json")
    _check(document, detail + "/execute", "POST", 200, executed)
    assert executed.json()["status"] == "completed"
    _check(document, detail, "GET", 200, client.get(f"/api/v1/backtests/{backtest_id}"))
    _check(document, "/api/v1/backtests", "GET", 200, client.get("/api/v1/backtests"))
    for suffix in ("/equity-curve", "/trades"):
        _check(
            document,
            detail + suffix,
            "GET",
            200,
            client.get(f"/api/v1/backtests/{backtest_id}{suffix}"),
        )
    patched = client.patch(
        f"/api/v1/backtests/{backtest_id}", {"metrics": {"custom": 1.5}}, format="json"
    )
    _check(document, detail, "PATCH", 200, patched)

    other = client.post("/api/v1/backtests", create_body, format="json").json()["id"]
    client.post(f"/api/v1/backtests/{other}/execute", {}, format="json")
    compared = client.post(
        "/api/v1/backtests/compare", {"backtest_ids": [backtest_id, other]}, format="json"
    )
    _check(document, "/api/v1/backtests/compare", "POST", 200, compared)
    engines = client.get("/api/v1/backtests/engines/available")
    _check(document, "/api/v1/backtests/engines/available", "GET", 200, engines)

    queued = client.post(f"/api/v1/backtests/{other}/execute", {"async_mode": True}, format="json")
    _check(document, detail + "/execute", "POST", 200, queued)
    task = Task.objects.get(pk=queued.json()["task_id"])
    _check(document, "/api/v1/tasks/{task_id}", "GET", 200, client.get(f"/api/v1/tasks/{task.pk}"))


@pytest.mark.django_db
def test_an_allocation_run_with_cash_flows_matches_its_documentation(document, client):
    """evaluation_frequency, signal_delay and cash flows through v1: the run's metrics add the
    flow metrics in the core's units (the money-weighted return an independent IRR's), and the
    document describes them."""
    definition = {
        "allocations": {"stocks": {"SPY": 0.8, "CASH": 0.2}, "bonds": {"TLT": 1.0}},
        "fallback_allocation": "bonds",
        "switching_logic": [
            {
                "condition": {
                    "left": {"type": "Momentum", "symbol": "SPY", "window": 63},
                    "comparison": ">",
                    "right": {"type": "constant", "value": 0},
                },
                "target_allocation": "stocks",
            }
        ],
    }
    strategy = client.post(
        "/api/v1/strategies",
        {"name": "tactical", "kind": "allocation", "definition": definition},
        format="json",
    ).json()
    config = {
        "start_date": "2019-01-01",
        "end_date": "2021-12-31",
        "evaluation_frequency": "monthly",
        "signal_delay": 1,
        "cashflow_amount": -250,
        "cashflow_frequency": "quarterly",
    }
    body = {"strategy_id": strategy["id"], "engine": "vectorbt", "config": config}
    created = client.post("/api/v1/backtests", body, format="json")
    _check(document, "/api/v1/backtests", "POST", 201, created)
    backtest_id = created.json()["id"]
    executed = client.post(f"/api/v1/backtests/{backtest_id}/execute", {}, format="json")
    _check(document, "/api/v1/backtests/{backtest_id}/execute", "POST", 200, executed)
    detail = client.get(f"/api/v1/backtests/{backtest_id}")
    _check(document, "/api/v1/backtests/{backtest_id}", "GET", 200, detail)
    metrics = detail.json()["metrics"]
    assert detail.json()["config"] == config
    curve = client.get(f"/api/v1/backtests/{backtest_id}/equity-curve").json()
    dates = pd.DatetimeIndex([point["date"] for point in curve])
    equity = np.array([point["equity"] for point in curve])
    quarters = dates.to_period("Q")
    flow_days = dates[1:][quarters[1:] != quarters[:-1]]
    assert metrics["total_withdrawals"] == pytest.approx(250 * len(flow_days), abs=1e-9)
    assert metrics["total_contributions"] == 0
    assert metrics["final_value"] == pytest.approx(equity[-1], rel=1e-12)
    capital = detail.json()["initial_capital"]
    amounts = np.array([-capital, *[250.0] * len(flow_days), equity[-1]])
    irr_dates = pd.DatetimeIndex([dates[0], *flow_days, dates[-1]])
    assert metrics["money_weighted_return"] == pytest.approx(
        independent_irr(irr_dates, amounts), rel=1e-8
    )
    # Every other return is time-weighted: the flows are taken out of each bar's return.
    flows = np.where(dates.isin(flow_days), -250.0, 0.0)
    previous = np.concatenate([[capital], equity[:-1]])
    assert metrics["total_return"] == pytest.approx(
        np.prod((equity - flows) / previous) - 1, rel=1e-9
    )


@pytest.mark.django_db
def test_v1_errors_match_their_documentation(document, client, strategy, create_body):
    missing = client.get("/api/v1/backtests/3fa85f64-5717-4562-b3fc-2c963f66afa6")
    _check(document, "/api/v1/backtests/{backtest_id}", "GET", 404, missing)
    bad = client.post("/api/v1/backtests", {**create_body, "config": {"symbol": 5}}, format="json")
    _check(document, "/api/v1/backtests", "POST", 400, bad)
    unparsable = client.generic(
        "POST", "/api/v1/backtests", b"{not json", content_type="application/json"
    )
    _check(document, "/api/v1/backtests", "POST", 400, unparsable)


@pytest.mark.django_db
def test_strategy_responses_match_their_documentation(document, client):
    body = {"name": "trend", "kind": "signal", "universe": ["SPY"], "definition": None}
    created = client.post("/api/v1/strategies", body, format="json")
    _check(document, "/api/v1/strategies", "POST", 201, created)
    path = "/api/v1/strategies/{strategy_id}"
    strategy_id = created.json()["id"]
    _check(document, path, "GET", 200, client.get(f"/api/v1/strategies/{strategy_id}"))
    _check(document, "/api/v1/strategies", "GET", 200, client.get("/api/v1/strategies"))
    patched = client.patch(f"/api/v1/strategies/{strategy_id}", {"name": "t2"}, format="json")
    _check(document, path, "PATCH", 200, patched)


def test_short_config_is_a_valid_run_config(document):
    from tests.openapi_shapes import shape_mismatches as mismatches

    assert mismatches(document, {"$ref": "#/components/schemas/RunConfig"}, SHORT_CONFIG) == []

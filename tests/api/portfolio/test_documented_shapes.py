"""Every Backfolio response has exactly the shape the OpenAPI document gives it."""

import pytest

from tests.openapi_shapes import openapi_document, response_schema, shape_mismatches

TACTICAL = {
    "strategy": {
        "allocations": {"core": {"SPY": 0.6, "AGG": 0.4}, "safe": {"CASH": 1.0}},
        "fallback_allocation": "core",
        "switching_logic": [
            {
                "name": "below trend",
                "condition": {
                    "left": {"type": "Close", "symbol": "SPY"},
                    "comparison": "<",
                    "right": {"type": "SMA", "symbol": "SPY", "window": 50},
                },
                "target_allocation": "safe",
            }
        ],
    },
    "config": {
        "start_date": "2015-01-01",
        "end_date": "2016-12-31",
        "enable_risk_management": True,
        "stop_loss": 0.1,
        "target_volatility": 0.1,
    },
}


@pytest.fixture(scope="module")
def document():
    return openapi_document()


def _check(document, path, method, status, response):
    assert response.status_code == status, response.content
    schema = response_schema(document, path, method, status)
    assert shape_mismatches(document, schema, response.json()) == []


@pytest.mark.django_db
@pytest.mark.parametrize("version", ["v1", "v2"])
def test_backfolio_responses_match_their_documentation(document, api_client, version):
    base = f"/api/{version}/backtest/"
    ran = api_client.post(base, TACTICAL, format="json", HTTP_X_USER_ID="desk")
    _check(document, base, "POST", 200, ran)
    assert ran.json()["result"]["drawdown_analysis"]["periods"]
    for paging in ("", "?limit=1&offset=0"):
        listed = api_client.get(f"{base}runs/{paging}", HTTP_X_USER_ID="desk")
        _check(document, f"{base}runs/", "GET", 200, listed)
    run_id = ran.json()["backtest_id"]
    saved = api_client.get(f"{base}runs/{run_id}/")
    _check(document, f"{base}runs/{{backtest_id}}/", "GET", 200, saved)
    _check(document, f"{base}examples/", "GET", 200, api_client.get(f"{base}examples/"))


@pytest.mark.django_db
def test_backfolio_errors_match_their_documentation(document, api_client):
    refused = api_client.post("/api/v2/backtest/", {"strategy": {}}, format="json")
    _check(document, "/api/v2/backtest/", "POST", 400, refused)
    unknown = api_client.get("/api/v2/backtest/runs/3fa85f64-5717-4562-b3fc-2c963f66afa6/")
    _check(document, "/api/v2/backtest/runs/{backtest_id}/", "GET", 404, unknown)

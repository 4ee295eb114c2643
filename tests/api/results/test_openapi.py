"""The results API in the OpenAPI document: every endpoint, Bearer auth, the documented shapes."""

import pytest
from drf_spectacular.generators import SchemaGenerator

from backtests.api.results import serializers as wire
from backtests.api.results.pagination import ResultsPagination
from tests.api.results.test_backtests import completed_backtest
from tests.factories import BacktestFactory


@pytest.fixture(scope="module")
def schema():
    return SchemaGenerator().get_schema(request=None, public=True)


def test_every_endpoint_is_documented(schema):
    paths = schema["paths"]
    assert set(paths["/api/auth/login"]) == {"post"}
    assert set(paths["/api/auth/refresh-token"]) == {"post"}
    assert set(paths["/api/backtests"]) == {"get", "post"}
    assert set(paths["/api/backtests/{backtest_id}"]) == {"get"}


def test_backtest_endpoints_require_a_bearer_token(schema):
    assert schema["components"]["securitySchemes"]["jwtAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }
    for path, method in [
        ("/api/backtests", "get"),
        ("/api/backtests", "post"),
        ("/api/backtests/{backtest_id}", "get"),
    ]:
        operation = schema["paths"][path][method]
        assert {"jwtAuth": []} in operation["security"]
        assert "401" in operation["responses"]


def _fields(serializer_class) -> list[str]:
    return list(serializer_class().fields)


@pytest.mark.django_db
def test_documented_shapes_match_what_the_views_return(token_client, user):
    completed = completed_backtest(owner=user)
    running = BacktestFactory(owner=user, status="running", progress=5)
    failed = BacktestFactory(owner=user, status="failed", error="boom")

    def keys(backtest):
        return list(token_client.get(f"/api/backtests/{backtest.id}").json())

    body = token_client.get(f"/api/backtests/{completed.id}").json()
    assert keys(completed) == _fields(wire.CompletedBacktestSchema)
    # A run without cash flows has every field but the three only runs with flows have.
    flow_fields = ["totalContributions", "totalWithdrawals", "moneyWeightedReturn"]
    assert list(body["results"]) + flow_fields == _fields(wire.ResultsSchema)
    assert [name for name, field in wire.ResultsSchema().fields.items() if not field.required] == (
        flow_fields
    )
    assert list(body["trades"][0]) == _fields(wire.TradeSchema)
    assert list(body["equityCurve"][0]) == _fields(wire.EquityPointSchema)
    assert keys(running) == _fields(wire.RunningBacktestSchema)
    assert keys(failed) == _fields(wire.FailedBacktestSchema)
    page = token_client.get("/api/backtests").json()
    documented = ResultsPagination().get_paginated_response_schema({"type": "array"})
    assert list(page) == list(documented["properties"])
    assert list(page["pagination"]) == list(documented["properties"]["pagination"]["properties"])
    assert list(page["data"][0]) == _fields(wire.BacktestSummarySchema)
    assert list(wire.present_created(running)) == _fields(wire.CreatedBacktestSchema)

"""The results API in the OpenAPI document: every endpoint, Bearer auth, the documented shapes."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from drf_spectacular.generators import SchemaGenerator

from backtests.api.results import serializers as wire
from backtests.api.results.pagination import ResultsPagination
from tests.api.results.test_backtests import completed_backtest
from tests.factories import BacktestFactory
from tests.openapi_shapes import openapi_document, response_schema, shape_mismatches


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
    assert list(wire.CreatedBacktestSchema(running).data) == _fields(wire.CreatedBacktestSchema)


@pytest.mark.django_db
def test_every_response_matches_the_document_key_by_key_and_type_by_type(token_client, user):
    document = openapi_document()
    detail = response_schema(document, "/api/backtests/{backtest_id}", "GET", 200)
    for backtest in (
        completed_backtest(owner=user),
        BacktestFactory(owner=user, status="pending"),
        BacktestFactory(owner=user, status="running", progress=5, progress_message="Half"),
        BacktestFactory(owner=user, status="failed", error="boom"),
    ):
        body = token_client.get(f"/api/backtests/{backtest.id}").json()
        assert shape_mismatches(document, detail, body) == [], backtest.status
    page = token_client.get("/api/backtests").json()
    assert len(page["data"]) == 4
    listed = response_schema(document, "/api/backtests", "GET", 200)
    assert shape_mismatches(document, listed, page) == []


def test_a_shape_refuses_a_presenter_that_gives_other_keys():
    class Broken(wire.RunningBacktestSchema):
        def present(self, backtest):
            return {**super().present(backtest), "extra": 1}

    with pytest.raises(ImproperlyConfigured, match=r"gave \['extra', 'id'"):
        Broken().to_representation(BacktestFactory.build(status="running"))

"""Every v1 response has exactly the shape the OpenAPI document gives it (keys and JSON types)."""

import pytest

from backtests.models import Task
from tests.api.v1.conftest import SHORT_CONFIG
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

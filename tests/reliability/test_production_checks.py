"""Production guards: oversized bodies are refused with a 4xx, CORS is closed unless configured."""

import json

import pytest

pytestmark = pytest.mark.django_db

FOREIGN_ORIGIN = "https://evil.example.com"


def _oversized_strategy(size: int) -> str:
    return json.dumps({"name": "big", "kind": "signal", "description": "x" * size})


TOO_LARGE = "Request body is too large (limit 4096 bytes)."


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/api/v1/strategies", {"detail": TOO_LARGE}),
        (
            "/api/v1/backtest",
            {
                "success": False,
                "error": "Backtest failed",
                "warnings": [TOO_LARGE],
                "errors": [TOO_LARGE],
            },
        ),
        (
            "/api/v2/backtest",
            {
                "success": False,
                "error": "Backtest failed",
                "warnings": [TOO_LARGE],
                "errors": [TOO_LARGE],
            },
        ),
    ],
)
def test_body_over_the_upload_limit_is_413_in_each_contracts_shape(
    client, settings, path, expected
):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 4096

    response = client.post(path, _oversized_strategy(10_000), content_type="application/json")

    assert response.status_code == 413
    assert response.json() == expected


def test_body_over_the_upload_limit_on_the_results_api_is_413_in_its_shape(settings, user_client):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 4096

    response = user_client.post(
        "/api/backtests", _oversized_strategy(10_000), content_type="application/json"
    )

    assert response.status_code == 413
    assert response.json() == {
        "error": {"code": "PAYLOAD_TOO_LARGE", "message": TOO_LARGE, "status": 413}
    }


def test_cors_is_closed_by_default(client, settings):
    assert settings.CORS_ALLOWED_ORIGINS == []

    response = client.get("/api/v1/backtests", HTTP_ORIGIN=FOREIGN_ORIGIN)
    preflight = client.options(
        "/api/v1/backtests",
        HTTP_ORIGIN=FOREIGN_ORIGIN,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
    )

    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Origin" not in preflight.headers


def test_cors_opens_for_listed_origins_only(client, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://dashboard.example.com"]

    allowed = client.get("/api/v1/backtests", HTTP_ORIGIN="https://dashboard.example.com")
    foreign = client.get("/api/v1/backtests", HTTP_ORIGIN=FOREIGN_ORIGIN)

    assert allowed.headers["Access-Control-Allow-Origin"] == "https://dashboard.example.com"
    assert "Access-Control-Allow-Origin" not in foreign.headers


DEEPLY_NESTED_BODY = '{"strategy": ' + "[" * 5000 + "]" * 5000 + "}"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (
            "/api/v1/strategies",
            {"detail": "JSON parse error - depth limit exceeded: line 1 column 1038 (char 1037)"},
        ),
        (
            "/api/v1/backtest",
            {
                "success": False,
                "error": "Backtest failed",
                "warnings": [
                    "Malformed JSON: JSON parse error - depth limit exceeded: "
                    "line 1 column 1038 (char 1037)"
                ],
                "errors": [
                    "Malformed JSON: JSON parse error - depth limit exceeded: "
                    "line 1 column 1038 (char 1037)"
                ],
            },
        ),
    ],
)
def test_a_body_nested_beyond_the_parser_limit_is_a_400_not_a_crash(client, path, expected):
    response = client.post(path, DEEPLY_NESTED_BODY, content_type="application/json")

    assert response.status_code == 400
    assert response.json() == expected


def test_conditions_nested_beyond_the_language_limit_are_refused_with_their_path(client):
    condition = {
        "left": {"type": "constant", "value": 1},
        "comparison": ">",
        "right": {"type": "constant", "value": 0},
    }
    for _ in range(40):
        condition = {"op": "and", "conditions": [condition]}
    body = {
        "strategy": {
            "allocations": {"a": {"SPY": 1.0}},
            "fallback_allocation": "a",
            "switching_logic": [{"condition": condition, "target_allocation": "a"}],
        },
        "config": {"start_date": "2020-01-01", "end_date": "2020-12-31"},
    }

    response = client.post("/api/v1/backtest", body, content_type="application/json")

    assert response.status_code == 400
    deepest = "strategy.switching_logic[0].condition" + ".conditions[0]" * 33
    assert response.json()["errors"] == [
        f"{deepest}: conditions are nested more than 32 levels deep"
    ]


def test_a_portfolio_request_over_the_size_limits_names_each_limit(client):
    groups = {f"g{index}": {"SPY": 1.0} for index in range(21)}
    groups["wide"] = {f"SPY?L={1 + index / 100}": 1 / 51 for index in range(51)}
    rule = {
        "condition": {
            "left": {"type": "constant", "value": 1},
            "comparison": ">",
            "right": {"type": "constant", "value": 0},
        },
        "target_allocation": "g0",
    }
    body = {
        "strategy": {
            "allocations": groups,
            "fallback_allocation": "g0",
            "switching_logic": [rule] * 51,
        },
        "config": {"start_date": "2020-01-01", "end_date": "2020-12-31"},
    }

    response = client.post("/api/v1/backtest", body, content_type="application/json")

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert "Too many allocation groups: 22 (at most 20)" in errors
    assert "Too many symbols: 52 (at most 50)" in errors
    assert "Too many switching rules: 51 (at most 50)" in errors

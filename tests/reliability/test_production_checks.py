"""Production guards: oversized bodies are refused with a 4xx, CORS is closed unless configured."""

import json

import pytest

pytestmark = pytest.mark.django_db

FOREIGN_ORIGIN = "https://evil.example.com"


def _oversized_strategy(size: int) -> str:
    return json.dumps({"name": "big", "kind": "signal", "description": "x" * size})


TOO_BIG_IS_500 = pytest.mark.xfail(
    reason=(
        "RequestDataTooBig escapes the v1 and Backfolio exception handlers as a 500 "
        "(backtests/api/v1/exceptions.py, backtests/api/portfolio/errors.py); reported"
    ),
    strict=True,
)


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/api/v1/strategies", marks=TOO_BIG_IS_500),
        pytest.param("/api/v1/backtest", marks=TOO_BIG_IS_500),
        pytest.param("/api/v2/backtest", marks=TOO_BIG_IS_500),
        "/api/backtests",
    ],
)
def test_body_over_the_upload_limit_is_a_client_error(client, settings, path):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 4096

    response = client.post(path, _oversized_strategy(10_000), content_type="application/json")

    assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])


@TOO_BIG_IS_500
def test_body_over_the_default_limit_is_a_client_error(client, settings):
    over = settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1024

    response = client.post(
        "/api/v1/strategies", _oversized_strategy(over), content_type="application/json"
    )

    assert 400 <= response.status_code < 500, response.status_code


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

"""The errors DRF itself raises (wrong method, unsupported or unparsable body, credentials,
throttling) and the bugs nobody raised on purpose, in each contract's own envelope: exact
status, body and headers."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from backtests import selectors
from backtests.models import Backtest
from tests.factories import StrategyFactory

pytestmark = pytest.mark.django_db

NOT_JSON = 'Unsupported media type "text/plain" in request.'


@pytest.fixture(autouse=True)
def empty_throttle_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


def results_error(status: int, code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message, "status": status}}


def portfolio_error(message: str, error: str | None = None) -> dict:
    return {
        "success": False,
        "error": error or message,
        "warnings": [message],
        "errors": [message],
    }


# --- wrong method ----------------------------------------------------------------------------


def test_a_wrong_method_is_405_in_each_contracts_shape(token_client):
    anonymous = APIClient()

    v1 = anonymous.put("/api/v1/strategies", {}, format="json")
    results = token_client.put("/api/backtests", {}, format="json")
    portfolio = anonymous.put("/api/v2/backtest", {}, format="json")

    assert (v1.status_code, v1.json()) == (405, {"detail": 'Method "PUT" not allowed.'})
    assert (results.status_code, results.json()) == (
        405,
        results_error(405, "METHOD_NOT_ALLOWED", 'Method "PUT" not allowed.'),
    )
    assert (portfolio.status_code, portfolio.json()) == (
        405,
        portfolio_error('Method "PUT" not allowed.'),
    )
    assert v1["Allow"] == "GET, POST, HEAD, OPTIONS"


# --- bodies that are not JSON ------------------------------------------------------------------


def test_a_body_that_is_not_json_is_415_in_each_contracts_shape(token_client):
    anonymous = APIClient()

    v1 = anonymous.post("/api/v1/strategies", "name=x", content_type="text/plain")
    results = token_client.post("/api/backtests", "name=x", content_type="text/plain")
    portfolio = anonymous.post("/api/v1/backtest", "name=x", content_type="text/plain")

    assert (v1.status_code, v1.json()) == (415, {"detail": NOT_JSON})
    assert (results.status_code, results.json()) == (
        415,
        results_error(415, "UNSUPPORTED_MEDIA_TYPE", NOT_JSON),
    )
    assert (portfolio.status_code, portfolio.json()) == (415, portfolio_error(NOT_JSON))
    assert not Backtest.objects.exists()


def test_unparsable_json_is_400_in_each_contracts_shape(token_client):
    anonymous = APIClient()

    v1 = anonymous.post("/api/v1/strategies", "{", content_type="application/json")
    results = token_client.post("/api/backtests", "{", content_type="application/json")
    portfolio = anonymous.post("/api/v1/backtest", "{", content_type="application/json")

    parse_error = v1.json()["detail"]
    assert v1.status_code == 400
    assert parse_error.startswith("JSON parse error - ")
    assert (results.status_code, results.json()) == (
        400,
        results_error(400, "VALIDATION_ERROR", parse_error),
    )
    assert (portfolio.status_code, portfolio.json()) == (
        400,
        portfolio_error(f"Malformed JSON: {parse_error}", error="Backtest failed"),
    )


# --- credentials and throttling ------------------------------------------------------------------


def test_a_forged_token_is_401_with_the_challenge_in_the_results_api():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")

    response = client.get("/api/backtests")

    assert response.status_code == 401
    assert response.json() == results_error(401, "UNAUTHORIZED", "Authentication required")
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/api/v1/backtests", {"detail": "Authentication credentials were not provided."}),
        (
            "/api/v1/backtest/examples",
            portfolio_error("Authentication credentials were not provided."),
        ),
    ],
)
def test_required_authentication_is_401_with_the_challenge(settings, path, expected):
    settings.BACKFOLIO_REQUIRE_AUTH = True

    response = APIClient().get(path)

    assert response.status_code == 401
    assert response.json() == expected
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_throttled_creates_say_when_to_retry_in_the_results_api(token_client):
    strategy = StrategyFactory(owner=None)
    body = {
        "algorithmId": str(strategy.id),
        "startDate": "2020-01-01",
        "endDate": "2020-12-31",
        "initialBalance": 10000,
    }
    for _ in range(10):
        assert token_client.post("/api/backtests", body, format="json").status_code == 201

    response = token_client.post("/api/backtests", body, format="json")

    seconds = int(response["Retry-After"])
    assert 0 < seconds <= 60
    assert response.status_code == 429
    assert response.json() == results_error(
        429, "RATE_LIMITED", f"Too many requests; retry in {seconds} s"
    )


# --- bugs ----------------------------------------------------------------------------------------


def test_a_bug_is_a_logged_500_in_the_v1_shape(monkeypatch, caplog):
    def broken(**kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(selectors, "backtest_list", broken)

    response = APIClient().get("/api/v1/backtests")

    assert response.status_code == 500
    assert response.json() == {"detail": "Internal server error."}
    assert "Unhandled error in the v1 API" in caplog.text

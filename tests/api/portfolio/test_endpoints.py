"""The Backfolio portfolio-backtest contract over HTTP: exact statuses and bodies."""

from __future__ import annotations

import copy
import json
import uuid

import pytest
from rest_framework.test import APIClient

from backtests import artifacts
from backtests.models import Backtest
from backtests.portfolio import runner
from backtests.portfolio.examples import examples, examples_response
from metrics.calculations import METRIC_KEYS

BASE = ["/api/v1/backtest", "/api/v2/backtest"]

SIMPLE = {
    "strategy": {
        "allocations": {"growth": {"SPY": 0.6, "QQQ": 0.3, "CASH": 0.1}},
        "fallback_allocation": "growth",
        "switching_logic": [],
    },
    "config": {
        "start_date": "2021-01-01",
        "end_date": "2022-12-31",
        "initial_capital": 10000,
        "rebalance_frequency": "monthly",
        "base_commission": 0.0035,
    },
}


def simple(**config):
    document = copy.deepcopy(SIMPLE)
    document["config"].update(config)
    return document


def post(client, document, *, path="/api/v1/backtest", user_id=None):
    headers = {"HTTP_X_USER_ID": user_id} if user_id else {}
    return client.post(path, document, format="json", **headers)


def failed(*messages):
    return {
        "success": False,
        "error": "Backtest failed",
        "warnings": list(messages),
        "errors": list(messages),
    }


@pytest.mark.parametrize("base", BASE)
@pytest.mark.parametrize("slash", ["", "/"])
def test_examples_endpoint_returns_the_contracts_examples(api_client, base, slash):
    response = api_client.get(f"{base}/examples{slash}")
    assert response.status_code == 200
    assert response.json() == examples_response()


@pytest.mark.django_db
@pytest.mark.parametrize("name", list(examples()))
def test_each_example_runs_over_http(api_client, name):
    response = post(api_client, examples()[name])
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["success"] is True
    assert uuid.UUID(body["backtest_id"])
    result = body["result"]
    assert result["is_valid"] is True
    assert result["errors"] == []
    assert result["metrics"]["final_value"] > 0
    assert len(result["chart_data"]["dates"]) == len(result["portfolio_log"])
    if examples()[name]["config"]["start_date"] == "2020-01-01":
        assert len(result["portfolio_log"]) == 1006
    assert 0 < result["execution_time"] < 30
    assert Backtest.objects.get(pk=body["backtest_id"]).config["name"] == examples()[name]["name"]


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/backtest/", "/api/v2/backtest", "/api/v2/backtest/"])
def test_run_is_served_on_every_path(api_client, path):
    response = post(api_client, simple(), path=path)
    assert response.status_code == 200
    assert response.json()["success"] is True


@pytest.mark.django_db
def test_every_run_is_saved_as_a_v2_backtest(api_client):
    response = post(api_client, simple(), user_id="analyst-7")
    body = response.json()
    backtest = Backtest.objects.get(pk=body["backtest_id"])
    assert backtest.source == "v2"
    assert backtest.strategy is None
    assert backtest.engine == "vectorbt"
    assert backtest.status == "completed"
    assert backtest.user_ref == "analyst-7"
    assert backtest.owner is None
    assert backtest.initial_capital == 10_000
    assert backtest.commission == 0.0035
    assert backtest.progress == 100
    assert backtest.started_at is not None
    assert backtest.completed_at >= backtest.started_at
    assert len(backtest.fingerprint) == 64
    assert backtest.config["strategy"] == SIMPLE["strategy"]
    assert backtest.config["config"]["start_date"] == "2021-01-01"
    assert backtest.config["config"]["benchmark"] == "SPY"
    assert set(backtest.metrics) >= set(METRIC_KEYS)  # the core's metrics, in its units
    metrics = body["result"]["metrics"]
    assert backtest.metrics["total_return"] == pytest.approx(metrics["total_return"])
    assert backtest.metrics["max_drawdown"] == pytest.approx(metrics["max_drawdown"])
    assert backtest.report_uri == f"runs/{backtest.id}/1/report.json"
    equity = artifacts.read_equity(backtest.equity_curve_uri)
    assert equity.tolist() == list(body["result"]["portfolio_log"].values())
    trades = artifacts.read_trades(backtest.trades_uri)
    assert set(trades["symbol"]) == {"SPY", "QQQ"}


@pytest.mark.django_db
def test_the_v1_results_endpoints_serve_a_saved_run(api_client):
    body = post(api_client, simple()).json()
    backtest_id = body["backtest_id"]
    curve = api_client.get(f"/api/v1/backtests/{backtest_id}/equity-curve")
    assert curve.status_code == 200
    points = curve.json()
    assert points[0] == {
        "date": "2021-01-04",
        "equity": body["result"]["portfolio_log"]["2021-01-04"],
    }
    assert len(points) == len(body["result"]["portfolio_log"])
    assert api_client.get(f"/api/v1/backtests/{backtest_id}/trades").status_code == 200
    detail = api_client.get(f"/api/v1/backtests/{backtest_id}")
    assert detail.status_code == 200
    assert detail.json()["status"] == "completed"


@pytest.mark.django_db
def test_a_logged_in_user_owns_the_run(user_client, user):
    body = post(user_client, simple()).json()
    assert Backtest.objects.get(pk=body["backtest_id"]).owner == user


@pytest.mark.django_db
def test_backtrader_engine_gives_the_same_numbers(api_client):
    vectorbt = post(api_client, simple()).json()["result"]
    backtrader = post(api_client, simple(engine="backtrader")).json()["result"]
    for key, value in vectorbt["metrics"].items():
        assert backtrader["metrics"][key] == pytest.approx(value, rel=1e-6, abs=1e-9)
    for date, value in vectorbt["portfolio_log"].items():
        assert backtrader["portfolio_log"][date] == pytest.approx(value, rel=1e-6)


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("engine", ["vectorbt", "backtrader"])
def test_a_wiped_out_leveraged_series_is_refused_alike_on_both_engines(api_client, engine):
    """10x QQQ lost all but ~1e-22 of its value in 2000–2002; vectorbt counts such a price as 0."""
    document = simple(start_date="2007-01-01", end_date="2007-12-31", engine=engine)
    document["strategy"]["allocations"]["growth"] = {"SPY": 0.9, "QQQ?L=10": 0.1}
    response = post(api_client, document)
    assert response.status_code == 400
    assert response.json() == failed(
        "close has prices at or below 1e-12 for QQQ?L=10 (from 2007-01-03), which the engines "
        "cannot trade (vectorbt counts such a price as 0): a leveraged series that lost nearly "
        "everything reaches them."
    )
    assert not Backtest.objects.exists()


@pytest.mark.django_db
def test_weights_not_summing_to_one(api_client):
    document = simple()
    document["strategy"]["allocations"]["growth"] = {"SPY": 0.75, "QQQ": 0.3}
    response = post(api_client, document)
    assert response.status_code == 400
    assert response.json() == failed("Allocation 'growth' weights sum to 1.05, not 1.0")
    assert not Backtest.objects.exists()


@pytest.mark.django_db
def test_missing_allocations(api_client):
    document = simple()
    del document["strategy"]["allocations"]
    response = post(api_client, document)
    assert response.status_code == 400
    assert response.json() == failed("Missing required field: allocations")


@pytest.mark.django_db
def test_missing_data_names_the_symbol_and_its_coverage(api_client):
    document = simple(start_date="2006-01-01", end_date="2008-12-31")
    document["strategy"]["allocations"]["growth"] = {"SPY": 0.5, "BND": 0.5}
    response = post(api_client, document)
    assert response.status_code == 400
    assert response.json() == failed(
        "Symbol BND data not available for requested date range 2006-01-01 to 2008-12-31 "
        "(BND has data from 2007-04-10 to 2024-12-06)"
    )


@pytest.mark.django_db
def test_every_problem_is_listed_at_once_with_missing_data(api_client):
    document = simple(rebalance_frequency="fortnightly")
    document["strategy"]["allocations"]["growth"] = {"SPY": 0.75, "ZZZZ": 0.3}
    del document["strategy"]["fallback_allocation"]
    response = post(api_client, document)
    assert response.status_code == 400
    body = response.json()
    assert body["warnings"] == body["errors"]
    assert body["errors"][:3] == [
        "Missing required field: fallback_allocation",
        "Allocation 'growth' weights sum to 1.05, not 1.0",
        "Invalid rebalance frequency 'fortnightly' (must be one of: daily, weekly, monthly, "
        "quarterly, yearly)",
    ]
    assert len(body["errors"]) == 4
    assert body["errors"][3].startswith(
        "Symbol ZZZZ data not available for requested date range (no data for ZZZZ; "
        "available symbols: AAPL, AGG, AMZN"
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"start_date": "01/01/2021"},
            "Invalid date format for start_date: '01/01/2021' (must be YYYY-MM-DD)",
        ),
        (
            {"end_date": "2020-06-30"},
            "start_date must be before end_date (got 2021-01-01 and 2020-06-30)",
        ),
        (
            {"rebalance_frequency": "hourly"},
            "Invalid rebalance frequency 'hourly' (must be one "
            "of: daily, weekly, monthly, quarterly, yearly)",
        ),
        ({"initial_capital": "lots"}, "initial_capital must be a number, not string"),
        ({"max_leverage": 2}, "Unknown config field: max_leverage"),
        (
            {"benchmark": "XYZ"},
            "Benchmark: Symbol XYZ data not available for requested date "
            "range (no data for XYZ; available symbols: AAPL, AGG, AMZN, BND, DBC, EEM, EFA, GLD, "
            "GOOGL, GSPC, IEF, IWM, MSFT, NVDA, QQQ, SHY, SPY, TLT, VNQ, VTI)",
        ),
    ],
)
def test_config_errors(api_client, config, message):
    response = post(api_client, simple(**config))
    assert response.status_code == 400
    assert response.json() == failed(message)


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/backtest", "/api/v2/backtest"])
def test_bad_evaluation_frequency_and_delay_are_each_listed(api_client, path):
    document = simple(evaluation_frequency="yearly", signal_delay=3)
    response = post(api_client, document, path=path)
    assert response.status_code == 400
    assert response.json() == failed(
        "Invalid evaluation frequency 'yearly' (must be one of: daily, weekly, monthly, quarterly)",
        "signal_delay must be an integer from 0 to 2, got 3",
    )
    assert not Backtest.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/backtest", "/api/v2/backtest"])
def test_bad_cash_flows_are_each_listed(api_client, path):
    document = simple(cashflow_amount=-1, cashflow_frequency="fortnightly", signal_delay=-1)
    response = post(api_client, document, path=path)
    assert response.status_code == 400
    assert response.json() == failed(
        "signal_delay must be an integer from 0 to 2, got -1",
        "Invalid cashflow frequency 'fortnightly' (must be one of: weekly, monthly, quarterly, "
        "semi-annually, annually)",
    )
    # A non-finite amount cannot pass the JSON parser: 1e400 parses as infinity.
    body = json.dumps(simple(cashflow_amount=12345, cashflow_frequency="monthly"))
    at = body.index("12345")
    response = api_client.post(
        path, body.replace("12345", "1e400"), content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json() == failed(
        "Malformed JSON: JSON parse error - number is infinity when parsed as double: "
        f"line 1 column {at + 1} (char {at})"
    )
    response = post(api_client, simple(cashflow_frequency="monthly"), path=path)
    assert response.status_code == 400
    assert response.json() == failed(
        "cashflow_frequency needs cashflow_amount (give both or neither)"
    )
    assert not Backtest.objects.exists()


@pytest.mark.django_db
def test_a_run_with_contributions_is_saved_with_its_flow_metrics(api_client):
    document = simple(cashflow_amount=250, cashflow_frequency="quarterly")
    body = post(api_client, document, user_id="analyst-9").json()
    metrics = body["result"]["metrics"]
    assert metrics["total_contributions"] == 250 * 7
    assert metrics["total_withdrawals"] == 0
    assert -1 < metrics["money_weighted_return"] < 1
    backtest = Backtest.objects.get(pk=body["backtest_id"])
    assert backtest.config["config"]["cashflow_amount"] == 250
    assert backtest.config["config"]["cashflow_frequency"] == "quarterly"
    saved = api_client.get(
        f"/api/v1/backtest/runs/{backtest.id}", HTTP_X_USER_ID="analyst-9"
    ).json()
    assert saved["result"]["metrics"] == metrics


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/backtest", "/api/v2/backtest"])
def test_a_cash_flow_amount_without_frequency_and_other_problems_are_each_listed(api_client, path):
    document = simple(cashflow_amount="500", evaluation_frequency="hourly", signal_delay=1.5)
    response = post(api_client, document, path=path)
    assert response.status_code == 400
    assert response.json() == failed(
        "Invalid evaluation frequency 'hourly' (must be one of: daily, weekly, monthly, quarterly)",
        "signal_delay must be an integer, not number",
        "cashflow_amount must be a number, not string",
        "cashflow_amount needs cashflow_frequency (give both or neither)",
    )
    document = simple(cashflow_amount=0, cashflow_frequency="daily")
    response = post(api_client, document, path=path)
    assert response.status_code == 400
    assert response.json() == failed(
        "cashflow_amount must not be 0 (positive: a contribution, negative: a withdrawal)",
        "Invalid cashflow frequency 'daily' (must be one of: weekly, monthly, quarterly, "
        "semi-annually, annually)",
    )
    body = json.dumps(simple(cashflow_amount=12345, cashflow_frequency="monthly"))
    at = body.index("12345")
    response = api_client.post(path, body.replace("12345", "NaN"), content_type="application/json")
    assert response.status_code == 400
    assert response.json() == failed(
        "Malformed JSON: JSON parse error - unexpected character, expected a JSON value: "
        f"line 1 column {at + 1} (char {at})"
    )
    assert not Backtest.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/backtest", "/api/v2/backtest"])
def test_cash_flows_run_with_risk_exits(api_client, path):
    document = simple(
        cashflow_amount=-200,
        cashflow_frequency="monthly",
        enable_risk_management=True,
        max_position_size=1.0,
        stop_loss=0.05,
        trailing_stop=0.08,
    )
    response = post(api_client, document, path=path)
    assert response.status_code == 200
    result = response.json()["result"]
    assert any("triggered on 2022-" in warning for warning in result["warnings"])
    assert "CASH (risk exit)" in set(result["allocation_log"].values())
    assert result["metrics"]["total_withdrawals"] == 200 * 23
    assert result["metrics"]["total_contributions"] == 0
    assert -1 < result["metrics"]["money_weighted_return"] < 1
    saved = Backtest.objects.get(pk=response.json()["backtest_id"])
    assert saved.config["config"]["stop_loss"] == 0.05
    assert saved.config["config"]["cashflow_amount"] == -200


@pytest.mark.django_db
def test_a_saved_run_keeps_its_evaluation_frequency_and_delay(api_client):
    document = simple(evaluation_frequency="monthly", signal_delay=1)
    body = post(api_client, document, user_id="analyst-8").json()
    backtest = Backtest.objects.get(pk=body["backtest_id"])
    assert backtest.config["config"]["evaluation_frequency"] == "monthly"
    assert backtest.config["config"]["signal_delay"] == 1
    saved = api_client.get(
        f"/api/v1/backtest/runs/{backtest.id}", HTTP_X_USER_ID="analyst-8"
    ).json()
    assert saved["result"]["allocation_log"] == body["result"]["allocation_log"]


@pytest.mark.django_db
def test_unknown_signal_type(api_client):
    document = simple()
    document["strategy"]["allocations"]["safe"] = {"CASH": 1.0}
    document["strategy"]["switching_logic"] = [
        {
            "condition": {
                "left": {"type": "Astrology", "symbol": "SPY"},
                "comparison": ">",
                "right": {"type": "constant", "value": 0},
            },
            "target_allocation": "safe",
        }
    ]
    response = post(api_client, document)
    assert response.status_code == 400
    (message,) = response.json()["errors"]
    assert message.startswith(
        "strategy.switching_logic[0].condition.left.type: unknown signal type 'Astrology' "
        "(known: Close, Open, High, Low, Volume, SMA"
    )


@pytest.mark.django_db
def test_bad_leverage_format(api_client):
    document = simple()
    document["strategy"]["allocations"]["growth"] = {"SPY?L=x": 0.6, "QQQ": 0.4}
    response = post(api_client, document)
    assert response.status_code == 400
    assert response.json() == failed(
        "Allocation 'growth': Invalid leverage format in 'SPY?L=x': L must be a number, got 'x'"
    )


@pytest.mark.django_db
def test_malformed_json(api_client):
    response = api_client.post(
        "/api/v1/backtest", data='{"strategy": {', content_type="application/json"
    )
    assert response.status_code == 400
    body = response.json()
    assert body["success"] is False
    assert body["error"] == "Backtest failed"
    (message,) = body["errors"]
    assert message.startswith("Malformed JSON: JSON parse error")
    assert body["warnings"] == body["errors"]


@pytest.mark.django_db
def test_wrong_types(api_client):
    response = post(api_client, {"strategy": "SPY", "config": []})
    assert response.status_code == 400
    assert response.json() == failed(
        "Invalid strategy format",
        "strategy must be an object, not string",
        "config must be an object, not array",
    )


@pytest.mark.django_db
def test_a_bug_is_a_500_in_the_contracts_shape(api_client, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("backtests.portfolio.services.run_portfolio", broken)
    client = APIClient(raise_request_exception=False)
    response = post(client, simple())
    assert response.status_code == 500
    assert response.json() == {
        "success": False,
        "error": "Internal server error during backtest execution",
        "warnings": [],
    }
    assert not Backtest.objects.exists()
    assert runner.run_portfolio is not broken


# --- saved runs ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_runs_are_listed_per_user_id_newest_first(api_client):
    first = post(api_client, simple(), user_id="alice").json()["backtest_id"]
    second = post(api_client, simple(rebalance_frequency="quarterly"), user_id="alice").json()[
        "backtest_id"
    ]
    other = post(api_client, simple(), user_id="bob").json()["backtest_id"]

    response = api_client.get("/api/v1/backtest/runs", HTTP_X_USER_ID="alice")
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert body["count"] == 2
    assert [run["backtest_id"] for run in body["runs"]] == [second, first]
    assert body["runs"][0]["rebalance_frequency"] == "quarterly"
    assert body["runs"][0]["user_ref"] == "alice"
    assert body["runs"][0]["engine"] == "vectorbt"
    assert body["runs"][0]["start_date"] == "2021-01-01"
    assert body["runs"][0]["metrics"]["max_drawdown"] < 0
    assert body["page"] == 1 and body["page_size"] == 20
    assert body["next"] is None and body["previous"] is None

    bob = api_client.get("/api/v2/backtest/runs/", HTTP_X_USER_ID="bob").json()
    assert [run["backtest_id"] for run in bob["runs"]] == [other]


@pytest.mark.django_db
def test_runs_pagination(api_client):
    ids = [post(api_client, simple(), user_id="carol").json()["backtest_id"] for _ in range(3)]
    newest_first = ids[::-1]

    page = api_client.get("/api/v1/backtest/runs?page=2&page_size=2", HTTP_X_USER_ID="carol").json()
    assert [run["backtest_id"] for run in page["runs"]] == newest_first[2:]
    assert page["count"] == 3
    assert page["next"] is None
    assert page["previous"].endswith("/api/v1/backtest/runs?page=1&page_size=2")

    window = api_client.get("/api/v1/backtest/runs?limit=1&offset=1", HTTP_X_USER_ID="carol")
    body = window.json()
    assert [run["backtest_id"] for run in body["runs"]] == newest_first[1:2]
    assert body["limit"] == 1 and body["offset"] == 1
    assert body["next"].endswith("/api/v1/backtest/runs?limit=1&offset=2")
    assert body["previous"].endswith("/api/v1/backtest/runs?limit=1&offset=0")

    bad = api_client.get("/api/v1/backtest/runs?page_size=0", HTTP_X_USER_ID="carol")
    assert bad.status_code == 400
    assert bad.json() == {
        "success": False,
        "error": "Invalid pagination",
        "warnings": ["page_size must be a whole number between 1 and 100, got '0'"],
        "errors": ["page_size must be a whole number between 1 and 100, got '0'"],
    }


@pytest.mark.django_db
def test_listing_needs_an_x_user_id(api_client):
    response = api_client.get("/api/v1/backtest/runs")
    assert response.status_code == 400
    assert response.json() == {
        "success": False,
        "error": "X-User-Id header required",
        "warnings": ["Send the X-User-Id header to list the runs saved under it"],
        "errors": ["Send the X-User-Id header to list the runs saved under it"],
    }


@pytest.mark.django_db
def test_a_saved_run_is_returned_in_the_same_envelope(api_client):
    posted = post(api_client, simple(), user_id="dan").json()
    for path in (
        f"/api/v1/backtest/runs/{posted['backtest_id']}",
        f"/api/v2/backtest/runs/{posted['backtest_id']}/",
    ):
        response = api_client.get(path)
        assert response.status_code == 200
        assert response.json() == posted


@pytest.mark.django_db
def test_hidden_and_unknown_runs_are_404(api_client, user_client, user):
    owned = post(user_client, simple(), user_id="erin").json()["backtest_id"]
    # The owner sees it; an anonymous caller with the same X-User-Id does not.
    assert user_client.get(f"/api/v1/backtest/runs/{owned}").status_code == 200
    listed = user_client.get("/api/v1/backtest/runs", HTTP_X_USER_ID="erin").json()
    assert [run["backtest_id"] for run in listed["runs"]] == [owned]

    hidden = api_client.get(f"/api/v1/backtest/runs/{owned}")
    assert hidden.status_code == 404
    assert hidden.json() == {
        "success": False,
        "error": "Backtest run not found",
        "warnings": [f"No saved backtest run {owned}"],
        "errors": [f"No saved backtest run {owned}"],
    }
    anonymous = api_client.get("/api/v1/backtest/runs", HTTP_X_USER_ID="erin").json()
    assert anonymous["runs"] == [] and anonymous["count"] == 0

    missing = uuid.uuid4()
    assert api_client.get(f"/api/v1/backtest/runs/{missing}").status_code == 404
    assert api_client.get("/api/v1/backtest/runs/not-a-uuid").status_code == 404


@pytest.mark.django_db
def test_a_v1_backtest_is_not_a_portfolio_run(api_client):
    from tests.factories import BacktestFactory

    backtest = BacktestFactory(strategy=None)
    assert api_client.get(f"/api/v1/backtest/runs/{backtest.id}").status_code == 404


@pytest.mark.django_db
def test_saved_runs_appear_in_the_admin(api_client, staff_user):
    backtest_id = post(api_client, simple(), user_id="fay").json()["backtest_id"]
    admin = APIClient()
    admin.force_login(staff_user)
    page = admin.get("/admin/backtests/backtest/?source__exact=v2")
    assert page.status_code == 200
    assert backtest_id in page.content.decode()


@pytest.mark.django_db
def test_a_default_benchmark_without_data_is_a_warning(api_client):
    document = simple(start_date="1990-01-01", end_date="1991-12-31")
    document["strategy"]["allocations"]["growth"] = {"GSPC": 1.0}
    response = post(api_client, document)
    assert response.status_code == 200
    result = response.json()["result"]
    assert result["benchmark_comparison"] == {}
    assert result["warnings"] == [
        "Benchmark SPY data not available for requested date range; benchmark_comparison is empty"
    ]
    assert result["validation_score"] == pytest.approx(0.95)
    assert result["is_valid"] is True


@pytest.mark.django_db
def test_required_authentication_uses_the_envelope(api_client, settings):
    settings.BACKFOLIO_REQUIRE_AUTH = True
    response = post(api_client, simple())
    assert response.status_code in (401, 403)
    body = response.json()
    assert body["success"] is False
    assert body["error"] == "Authentication credentials were not provided."
    assert body["errors"] == [body["error"]]
    assert not Backtest.objects.exists()


def test_wrong_method_uses_the_envelope(api_client):
    response = api_client.delete("/api/v1/backtest/examples")
    assert response.status_code == 405
    assert response.json() == {
        "success": False,
        "error": 'Method "DELETE" not allowed.',
        "warnings": ['Method "DELETE" not allowed.'],
        "errors": ['Method "DELETE" not allowed.'],
    }


@pytest.mark.django_db
def test_risk_fields_given_without_risk_management_are_ignored_with_a_warning_each(api_client):
    document = simple(
        end_date="2021-06-30",
        stop_loss=0.05,
        take_profit=0.5,
        trailing_stop=0.1,
        max_drawdown_limit=0.2,
        volatility_exit_threshold=0.4,
        max_position_size=0.5,
        min_position_size=0.1,
    )
    plain = post(api_client, simple(end_date="2021-06-30")).json()["result"]

    result = post(api_client, document).json()["result"]

    reason = "exit rules apply only when enable_risk_management is true"
    limits = (
        "position limits apply only when enable_risk_management is true or target_volatility is set"
    )
    assert result["warnings"] == [
        f"stop_loss is ignored: {reason}",
        f"take_profit is ignored: {reason}",
        f"trailing_stop is ignored: {reason}",
        f"max_drawdown_limit is ignored: {reason}",
        f"volatility_exit_threshold is ignored: {reason}",
        f"max_position_size is ignored: {limits}",
        f"min_position_size is ignored: {limits}",
    ]
    assert result["portfolio_log"] == plain["portfolio_log"], "the fields must change nothing"


@pytest.mark.django_db
def test_position_limits_with_a_volatility_target_are_not_ignored(api_client):
    document = simple(
        end_date="2021-06-30", target_volatility=0.5, max_position_size=0.7, stop_loss=0.05
    )
    result = post(api_client, document).json()["result"]
    assert not any("position_size is ignored" in warning for warning in result["warnings"])
    assert (
        "stop_loss is ignored: exit rules apply only when enable_risk_management is true"
        in (result["warnings"])
    )


@pytest.mark.django_db
def test_risk_fields_with_risk_management_on_raise_no_ignored_warning(api_client):
    document = simple(
        end_date="2021-06-30",
        enable_risk_management=True,
        stop_loss=0.5,
        max_position_size=0.7,
    )
    result = post(api_client, document).json()["result"]
    assert not any("is ignored" in warning for warning in result["warnings"])


def correlation_switch(**signal):
    document = simple(end_date="2021-12-31")
    document["strategy"]["allocations"]["safe"] = {"CASH": 1.0}
    document["strategy"]["switching_logic"] = [
        {
            "condition": {
                "left": {"type": "Correlation", "symbol": "SPY", **signal},
                "comparison": ">",
                "right": 0.5,
            },
            "target_allocation": "safe",
        }
    ]
    return document


@pytest.mark.django_db
def test_correlation_reads_its_other_symbols_data(api_client):
    response = post(api_client, correlation_switch(other="GLD", window=21))
    assert response.status_code == 200, response.content
    assert response.json()["result"]["allocation_log"]


@pytest.mark.django_db
def test_correlation_needs_its_other_symbol_and_its_data(api_client):
    missing = post(api_client, correlation_switch())
    assert missing.status_code == 400
    assert missing.json()["errors"] == [
        "strategy.switching_logic[0].condition.left.other: is required"
    ]

    uncovered = post(api_client, correlation_switch(other="NOPE"))
    assert uncovered.status_code == 400
    (message,) = uncovered.json()["errors"]
    assert message.startswith("Symbol NOPE data not available for requested date range")


@pytest.mark.django_db
def test_a_run_saved_in_an_older_form_reads_as_it_was_saved(api_client):
    """A report saved before some blocks and keys existed (and with one since retired, its keys
    in another order) is returned exactly as stored: nothing added, dropped or reordered."""
    posted = post(api_client, simple(), user_id="old").json()
    backtest = Backtest.objects.get(pk=posted["backtest_id"])
    result = posted["result"]
    old_form = {
        "legacy_score": 3,
        **{
            key: value
            for key, value in reversed(result.items())
            if key not in ("allocation_efficiency", "rolling_metrics")
        },
    }
    old_form["metrics"] = dict(reversed(result["metrics"].items()))
    old_form["metrics"].pop("calmar_ratio")
    old_form["risk_metrics"] = {
        key: value for key, value in result["risk_metrics"].items() if key != "kurtosis"
    }
    old_form["drawdown_analysis"] = {"periods": [{"start_date": "2021-03-01"}], "summary": {}}
    old_form["allocation_summary"] = {"growth": 1}  # a block once held as a mapping
    old_form["data_quality"] = None
    artifacts.save_json(backtest.report_uri, old_form)

    response = api_client.get(f"/api/v2/backtest/runs/{backtest.id}/")
    assert response.status_code == 200
    expected = {"success": True, "backtest_id": str(backtest.id), "result": old_form}
    # json.loads keeps the order of keys: the dumps compare it too.
    assert json.dumps(response.json()) == json.dumps(expected)

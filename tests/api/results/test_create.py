"""POST /api/backtests: validation, who may use which algorithm, rate limit, and real runs."""

import json
import time

import numpy as np
import pandas as pd
import pytest
from django.conf import settings

from backtests import selectors, services
from backtests.jobs import runner
from backtests.models import Backtest, Task
from tests.backtests.portfolio.test_cashflows import independent_irr
from tests.factories import StrategyFactory
from tests.openapi_shapes import openapi_document, response_schema, shape_mismatches

from .conftest import bearer_client

pytestmark = pytest.mark.django_db

SMA_CROSS = {
    "entry": {"left": {"type": "Close"}, "comparison": ">", "right": {"type": "SMA", "window": 50}},
    "exit": {"left": {"type": "Close"}, "comparison": "<", "right": {"type": "SMA", "window": 50}},
}


def _body(strategy, **overrides):
    body = {
        "algorithmId": str(strategy.id),
        "startDate": "2019-01-02T00:00:00Z",
        "endDate": "2021-12-31T23:59:59Z",
        "initialBalance": 100000,
        "symbols": ["SPY"],
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not None}


def _validation(message: str) -> dict:
    return {"error": {"code": "VALIDATION_ERROR", "message": message, "status": 400}}


def test_create_queues_a_run_owned_by_the_caller(token_client, user):
    strategy = StrategyFactory(owner=user, definition=SMA_CROSS)

    response = token_client.post(
        "/api/backtests",
        _body(strategy, engine="vectorbt", commission=0.001, slippage=0.0005),
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "running"
    assert body["progress"] == 0
    assert body["algorithmId"] == str(strategy.id)
    backtest = Backtest.objects.get(pk=body["id"])
    assert backtest.owner == user
    assert backtest.source == Backtest.Source.RESULTS_API
    assert backtest.status == Backtest.Status.PENDING
    assert backtest.engine == "vectorbt"
    assert backtest.initial_capital == 100000
    assert (backtest.commission, backtest.slippage) == (0.001, 0.0005)
    assert backtest.config == {
        "symbols": ["SPY"],
        "start_date": "2019-01-02",
        "end_date": "2021-12-31",
    }
    assert Task.objects.filter(backtest=backtest, kind=Task.Kind.EXECUTE).count() == 1

    detail = token_client.get(f"/api/backtests/{backtest.id}").json()
    assert detail["status"] == "running" and detail["progress"] == 0


def test_symbols_default_to_the_algorithms_universe(token_client):
    strategy = StrategyFactory(owner=None, universe=["QQQ"])

    response = token_client.post("/api/backtests", _body(strategy, symbols=None), format="json")

    assert response.status_code == 201, response.content
    assert Backtest.objects.get(pk=response.json()["id"]).config["symbols"] == ["QQQ"]


def test_someone_elses_algorithm_is_403(token_client, other_user):
    strategy = StrategyFactory(owner=other_user)

    response = token_client.post("/api/backtests", _body(strategy), format="json")

    assert response.status_code == 403
    assert response.json() == {
        "error": {
            "code": "FORBIDDEN",
            "message": "Access denied (not your algorithm)",
            "status": 403,
        }
    }
    assert not Backtest.objects.exists()


def test_unknown_algorithm_is_404(token_client, user):
    strategy = StrategyFactory(owner=user)
    body = _body(strategy, algorithmId="2b1e6f7c-0c2a-4c4e-9f59-3f0d3c1b8d11")

    response = token_client.post("/api/backtests", body, format="json")

    assert response.status_code == 404
    assert response.json()["error"] == {
        "code": "NOT_FOUND",
        "message": "Algorithm not found",
        "status": 404,
    }


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"algorithmId": None}, "algorithmId: This field is required."),
        ({"algorithmId": "abc"}, "algorithmId: must be a valid algorithm id (UUID)"),
        ({"startDate": None}, "startDate: This field is required."),
        ({"startDate": "01/02/2019"}, "startDate: must be an ISO date (YYYY-MM-DD) or datetime"),
        ({"endDate": "2019-01-02"}, "endDate: must be after startDate"),
        ({"initialBalance": 0}, "initialBalance: must be greater than 0"),
        ({"initialBalance": "lots"}, "initialBalance: A valid number is required."),
        ({"symbols": []}, "symbols: Ensure this field has at least 1 elements."),
        ({"engine": "zipline"}, "engine: must be one of: backtrader, vectorbt"),
        ({"commission": 0.5}, "commission: Ensure this value is less than or equal to 0.1."),
        ({"slippage": -0.1}, "slippage: Ensure this value is greater than or equal to 0.0."),
        (
            {"symbols": ["NOPE"]},
            "symbols: Symbol NOPE data not available for requested date range",
        ),
        (
            {"startDate": "1990-01-02", "endDate": "1990-06-01"},
            "symbols: Symbol SPY data not available for requested date range",
        ),
    ],
)
def test_invalid_input_names_the_request_field(token_client, user, overrides, message):
    strategy = StrategyFactory(owner=user)

    response = token_client.post("/api/backtests", _body(strategy, **overrides), format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert error["status"] == 400
    assert error["message"].startswith(message), error["message"]
    assert not Backtest.objects.exists()


def test_algorithm_without_universe_needs_symbols(token_client, user):
    strategy = StrategyFactory(owner=user, universe=[])

    response = token_client.post("/api/backtests", _body(strategy, symbols=None), format="json")

    assert response.json() == _validation("symbols: required when the algorithm has no universe")


def test_eleventh_create_in_a_minute_is_rate_limited(user, other_user):
    rate = int(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["results_create"].split("/")[0])
    assert rate == 10
    strategy = StrategyFactory(owner=None)
    client = bearer_client(user)
    for _ in range(rate):
        assert client.post("/api/backtests", _body(strategy), format="json").status_code == 201

    response = client.post("/api/backtests", _body(strategy), format="json")

    assert response.status_code == 429
    assert response.json()["error"]["code"] == "RATE_LIMITED"
    assert response.json()["error"]["status"] == 429
    assert int(response["Retry-After"]) > 0
    assert Backtest.objects.count() == rate
    # Per user: someone else may still create, and reading is not limited.
    assert client.get("/api/backtests").status_code == 200
    other = bearer_client(other_user)
    assert other.post("/api/backtests", _body(strategy), format="json").status_code == 201


def test_create_requires_authentication(api_client):
    strategy = StrategyFactory(owner=None)

    response = api_client.post("/api/backtests", _body(strategy), format="json")

    assert response.status_code == 401
    assert not Backtest.objects.exists()


# --- real runs ----------------------------------------------------------------------------------


def _wait_for_terminal_status(backtest_id, timeout: float = 20.0) -> Backtest:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        backtest = Backtest.objects.get(pk=backtest_id)
        if backtest.status in (Backtest.Status.COMPLETED, Backtest.Status.FAILED):
            return backtest
        time.sleep(0.05)
    raise AssertionError(f"backtest {backtest_id} did not finish in {timeout} s")


@pytest.mark.django_db(transaction=True)
def test_a_created_run_reports_progress_through_a_worker(user, worker, monkeypatch):
    """The running shape read mid-run (from inside the engine's progress callback) shows the
    progress the worker wrote; the finished run shows 100."""
    client = bearer_client(user)
    strategy = StrategyFactory(owner=user, definition=SMA_CROSS)
    seen_while_running: list[dict] = []
    monkeypatch.setattr(runner, "PROGRESS_WRITE_INTERVAL_SECONDS", 0.0)
    original = runner._ProgressWriter.__call__

    def write_then_look(self, fraction):
        original(self, fraction)
        seen_while_running.append(
            bearer_client(user).get(f"/api/backtests/{self.backtest.pk}").json()
        )

    monkeypatch.setattr(runner._ProgressWriter, "__call__", write_then_look)

    created = client.post("/api/backtests", _body(strategy), format="json")
    assert created.status_code == 201, created.content
    backtest = _wait_for_terminal_status(created.json()["id"])

    assert backtest.status == Backtest.Status.COMPLETED, backtest.error
    assert backtest.progress == 100
    assert seen_while_running, "the engine reported no progress"
    assert all(
        set(shape) == {"id", "status", "progress", "message"} for shape in seen_while_running
    )
    assert all(shape["status"] == "running" for shape in seen_while_running)
    progress = [shape["progress"] for shape in seen_while_running]
    assert progress == sorted(progress)
    assert 0 < max(progress) < 100
    final = client.get(f"/api/backtests/{backtest.id}").json()
    assert final["status"] == "completed"
    assert final["progress"] == 100


@pytest.mark.django_db(transaction=True)
def test_a_run_that_fails_in_the_worker_shows_the_failed_shape(user, worker, monkeypatch):
    def broken_engine(*args, **kwargs):
        raise RuntimeError("engine exploded")

    monkeypatch.setattr(runner, "run_backtest", broken_engine)
    client = bearer_client(user)
    strategy = StrategyFactory(owner=user)

    created = client.post("/api/backtests", _body(strategy), format="json")
    backtest = _wait_for_terminal_status(created.json()["id"])

    body = client.get(f"/api/backtests/{backtest.id}").json()
    assert set(body) == {"id", "status", "error", "createdAt", "failedAt"}
    assert body["status"] == "failed"
    assert "engine exploded" in body["error"]


def test_results_arithmetic_matches_the_runs_own_trades_and_equity(token_client, user):
    # One engine is enough (the results block is engine-agnostic); backtrader needs no JIT
    # compilation, so this stays fast when run alone.
    strategy = StrategyFactory(owner=user, definition=SMA_CROSS)
    backtest = services.backtest_create(
        strategy=strategy,
        engine="backtrader",
        config={"symbols": ["SPY"], "start_date": "2019-01-02", "end_date": "2021-12-31"},
        initial_capital=100_000.0,
        commission=0.001,
        owner=user,
        source=Backtest.Source.RESULTS_API,
    )
    backtest = services.backtest_execute(backtest=backtest)
    assert backtest.status == Backtest.Status.COMPLETED, backtest.error
    trades = selectors.backtest_trades(backtest=backtest)
    equity = selectors.backtest_equity_curve(backtest=backtest)
    pnl = trades["pnl"].to_numpy(dtype=float)
    wins, losses = pnl[pnl > 0], -pnl[pnl < 0]
    assert len(wins) >= 2 and len(losses) >= 2, "the fixture run needs wins and losses"
    values = equity.to_numpy(dtype=float)
    peaks = np.maximum.accumulate(np.concatenate([[100_000.0], values]))[1:]
    drawdown_percent = -(values / peaks - 1).min() * 100
    minutes = (trades["exit_date"] - trades["entry_date"]).dt.total_seconds() / 60

    body = token_client.get(f"/api/backtests/{backtest.id}").json()
    results = body["results"]

    assert results["totalTrades"] == len(pnl)
    assert results["winningTrades"] == len(wins)
    assert results["losingTrades"] == len(losses)
    assert results["winRate"] == round(len(wins) / len(pnl) * 100, 2)
    assert results["totalProfit"] == round(wins.sum(), 2)
    assert results["totalLoss"] == round(losses.sum(), 2)
    assert results["netProfit"] == round(pnl.sum(), 2)
    assert results["profitFactor"] == round(wins.sum() / losses.sum(), 2)
    assert results["averageWin"] == round(wins.mean(), 2)
    assert results["averageLoss"] == round(losses.mean(), 2)
    assert results["largestWin"] == round(wins.max(), 2)
    assert results["largestLoss"] == round(losses.max(), 2)
    assert results["expectancy"] == round(pnl.mean(), 2)
    assert results["averageTradeDuration"] == round(minutes.mean(), 2)
    assert results["returnOnInvestment"] == round((values[-1] / 100_000 - 1) * 100, 2)
    assert results["maxDrawdownPercent"] == round(drawdown_percent, 2)
    assert results["maxDrawdown"] == results["maxDrawdownPercent"]
    assert results["sharpeRatio"] == round(backtest.metrics["sharpe_ratio"], 2)

    assert body["finalBalance"] == round(values[-1], 2)
    assert [point["balance"] for point in body["equityCurve"]] == [round(v, 2) for v in values]
    assert len(body["trades"]) == len(pnl)
    assert [trade["profit"] for trade in body["trades"]] == [round(p, 2) for p in pnl]
    # The curve the API serves reproduces the headline numbers.
    served = np.array([point["balance"] for point in body["equityCurve"]])
    assert abs((served[-1] / 100_000 - 1) * 100 - results["returnOnInvestment"]) < 0.01


ROTATION = {
    "allocations": {"stocks": {"SPY": 0.6, "QQQ": 0.4}, "safety": {"TLT": 1.0}},
    "fallback_allocation": "safety",
    "switching_logic": [
        {
            "condition": {
                "left": {"type": "Close", "symbol": "SPY"},
                "comparison": ">",
                "right": {"type": "SMA", "symbol": "SPY", "window": 50},
            },
            "target_allocation": "stocks",
        }
    ],
}


def test_an_allocation_algorithm_runs_on_its_groups_symbols(token_client, user):
    strategy = StrategyFactory(owner=user, kind="allocation", universe=[], definition=ROTATION)

    response = token_client.post(
        "/api/backtests", _body(strategy, symbols=None, engine="backtrader"), format="json"
    )

    assert response.status_code == 201, response.content
    backtest = Backtest.objects.get(pk=response.json()["id"])
    assert backtest.config == {"start_date": "2019-01-02", "end_date": "2021-12-31"}
    services.backtest_execute(backtest=backtest)
    assert backtest.status == Backtest.Status.COMPLETED, backtest.error
    detail = token_client.get(f"/api/backtests/{backtest.id}").json()
    assert detail["symbols"] == ["QQQ", "SPY", "TLT"]
    assert (detail["startDate"], detail["endDate"]) == (
        "2019-01-02T00:00:00Z",
        "2021-12-31T23:59:59Z",
    )
    assert {trade["symbol"] for trade in detail["trades"]} <= {"SPY", "QQQ", "TLT"}
    assert detail["trades"]


def test_symbols_given_with_an_allocation_algorithm_are_refused(token_client, user):
    strategy = StrategyFactory(owner=user, kind="allocation", universe=[], definition=ROTATION)

    response = token_client.post("/api/backtests", _body(strategy), format="json")

    assert response.json() == _validation(
        "symbols: An allocation strategy trades the symbols named in its definition; "
        "leave symbol/symbols out."
    )
    assert not Backtest.objects.exists()


def test_an_allocation_algorithm_without_a_definition_names_the_algorithm(token_client, user):
    strategy = StrategyFactory(owner=user, kind="allocation", universe=[], definition=None)

    response = token_client.post("/api/backtests", _body(strategy, symbols=None), format="json")

    assert response.json() == _validation(
        "algorithmId: The strategy has no allocation definition: give one here or on the strategy."
    )


def test_unknown_body_keys_are_refused_by_name(token_client, user):
    strategy = StrategyFactory(owner=user)

    response = token_client.post(
        "/api/backtests",
        _body(strategy, initialbalance=5, stopLoss=0.1),
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == _validation("initialbalance: unknown field; stopLoss: unknown field")
    assert not Backtest.objects.exists()


def _first_trading_days_of_months(dates: pd.DatetimeIndex) -> set:
    months = dates.to_period("M")
    return {dates[0], *dates[1:][months[1:] != months[:-1]]}


def test_an_allocation_run_with_evaluation_frequency_delay_and_cash_flows(token_client, user):
    strategy = StrategyFactory(owner=user, kind="allocation", universe=[], definition=ROTATION)
    body = _body(
        strategy,
        symbols=None,
        engine="backtrader",
        initialBalance=20_000,
        rebalanceFrequency="quarterly",
        evaluationFrequency="monthly",
        signalDelay=1,
        cashflowAmount=500,
        cashflowFrequency="monthly",
    )

    response = token_client.post("/api/backtests", body, format="json")

    assert response.status_code == 201, response.content
    backtest = Backtest.objects.get(pk=response.json()["id"])
    assert backtest.config == {
        "start_date": "2019-01-02",
        "end_date": "2021-12-31",
        "rebalance_frequency": "quarterly",
        "evaluation_frequency": "monthly",
        "signal_delay": 1,
        "cashflow_amount": 500,
        "cashflow_frequency": "monthly",
    }
    services.backtest_execute(backtest=backtest)
    assert backtest.status == Backtest.Status.COMPLETED, backtest.error
    detail = token_client.get(f"/api/backtests/{backtest.id}")
    document = openapi_document()
    schema = response_schema(document, "/api/backtests/{backtest_id}", "GET", 200)
    assert shape_mismatches(document, schema, detail.json()) == []
    detail = detail.json()
    equity = selectors.backtest_equity_curve(backtest=backtest)
    dates = equity.index
    month_starts = _first_trading_days_of_months(dates)
    flow_days = sorted(month_starts - {dates[0]})
    results = detail["results"]
    assert results["totalContributions"] == 500 * len(flow_days) == 500 * 35
    assert results["totalWithdrawals"] == 0
    irr_dates = pd.DatetimeIndex([dates[0], *flow_days, dates[-1]])
    amounts = np.array([-20_000.0, *[-500.0] * len(flow_days), equity.iloc[-1]])
    assert results["moneyWeightedReturn"] == round(independent_irr(irr_dates, amounts) * 100, 2)
    # The return is time-weighted: the contributions are no gain.
    flows = np.where(dates.isin(flow_days), 500.0, 0.0)
    values = equity.to_numpy()
    previous = np.concatenate([[20_000.0], values[:-1]])
    assert results["returnOnInvestment"] == round(
        (np.prod((values - flows) / previous) - 1) * 100, 2
    )
    assert detail["finalBalance"] == round(values[-1], 2)
    # Rules evaluated at month ends and acted on one bar later: every switch (a position closed
    # by the rebalance into the other group) falls on the first trading day of a month.
    closed = [trade for trade in detail["trades"] if trade["exitReason"] == "rebalance"]
    assert len(closed) >= 4
    exits = {pd.Timestamp(trade["exitTime"][:10]) for trade in closed}
    assert exits <= month_starts


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"evaluationFrequency": "yearly", "signalDelay": 3},
            "evaluationFrequency: Must be one of: daily, weekly, monthly, quarterly.; "
            "signalDelay: Must be at most 2.",
        ),
        (
            {"cashflowAmount": 100},
            "cashflowAmount: Needs cashflowFrequency (give both or neither).",
        ),
        (
            {"cashflowFrequency": "monthly", "signalDelay": -1},
            "signalDelay: Must be at least 0.; "
            "cashflowFrequency: Needs cashflowAmount (give both or neither).",
        ),
        (
            {"cashflowAmount": "NaN", "cashflowFrequency": "fortnightly"},
            "cashflowAmount: Must be a number.; cashflowFrequency: Must be one of: weekly, "
            "monthly, quarterly, semi-annually, annually.",
        ),
        (
            {"cashflowAmount": 0, "cashflowFrequency": "weekly", "signalDelay": 1.5},
            "signalDelay: Must be an integer.; cashflowAmount: Must not be 0 (positive: a "
            "contribution, negative: a withdrawal).",
        ),
    ],
)
def test_bad_allocation_options_are_each_named(token_client, user, options, message):
    strategy = StrategyFactory(owner=user, kind="allocation", universe=[], definition=ROTATION)

    response = token_client.post(
        "/api/backtests", _body(strategy, symbols=None, **options), format="json"
    )

    assert response.status_code == 400
    assert response.json() == _validation(message)
    assert not Backtest.objects.exists()


def test_a_non_finite_cash_flow_amount_is_refused(token_client, user):
    strategy = StrategyFactory(owner=user, kind="allocation", universe=[], definition=ROTATION)
    body = json.dumps(
        _body(strategy, symbols=None, cashflowAmount=12345, cashflowFrequency="monthly")
    )
    at = body.index("12345")

    response = token_client.generic(
        "POST", "/api/backtests", body.replace("12345", "1e400"), content_type="application/json"
    )

    assert response.status_code == 400
    assert response.json() == _validation(
        "JSON parse error - number is infinity when parsed as double: "
        f"line 1 column {at + 1} (char {at})"
    )
    assert not Backtest.objects.exists()

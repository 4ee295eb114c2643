"""GET /api/backtests/{id}, GET /api/backtests: shapes, ownership, pagination and validation."""

import datetime as dt
import uuid

import pandas as pd
import pytest
from django.utils import timezone

from backtests import artifacts
from backtests.models import Backtest
from tests.factories import BacktestFactory, StrategyFactory

pytestmark = pytest.mark.django_db

NOT_FOUND = {"error": {"code": "NOT_FOUND", "message": "Backtest not found", "status": 404}}
FORBIDDEN = {
    "error": {
        "code": "FORBIDDEN",
        "message": "Access denied (not your backtest)",
        "status": 403,
    }
}

# Four closed trades: two wins (+600.004, +250), two losses (−150, −49.996).
TRADES = pd.DataFrame(
    {
        "symbol": ["SPY", "SPY", "QQQ", "QQQ"],
        "side": ["long", "long", "short", "long"],
        "entry_date": pd.to_datetime(["2024-01-02", "2024-01-04", "2024-01-08", "2024-01-10"]),
        "exit_date": pd.to_datetime(["2024-01-03", "2024-01-08", "2024-01-09", "2024-01-12"]),
        "entry_price": [100.0, 102.5, 400.0, 398.123],
        "exit_price": [106.00004, 105.0, 401.5, 397.62305],
        "size": [100.0, 100.0, 100.0, 99.992],
        "pnl": [600.004, 250.0, -150.0, -49.996],
        "return_pct": [0.0600004, 0.024390244, -0.00375, -0.001255893],
        "exit_reason": ["take_profit", "opposite_signal", "stop_loss", "end_of_data"],
        "fees": [0.0, 0.0, 0.0, 0.0],
    }
)
EQUITY = pd.Series(
    [100_000.0, 100_600.004, 100_300.0, 100_850.004, 100_700.004, 100_650.008],
    index=pd.to_datetime(
        ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-08", "2024-01-09", "2024-01-12"]
    ),
)


def completed_backtest(owner=None, **fields) -> Backtest:
    fields.setdefault(
        "config",
        {"symbols": ["SPY", "QQQ"], "start_date": "2024-01-02", "end_date": "2024-01-12"},
    )
    backtest = BacktestFactory(
        owner=owner,
        status=Backtest.Status.COMPLETED,
        progress=100,
        initial_capital=100_000.0,
        metrics={
            "total_return": 0.00650008,
            "final_value": 100_650.008,
            "sharpe_ratio": 1.23456,
            "max_drawdown": -0.0029821,
        },
        completed_at=timezone.now(),
        **fields,
    )
    folder = artifacts.run_folder(backtest.id, 1)
    backtest.equity_curve_uri = artifacts.save_bytes(
        f"{folder}/equity.parquet", artifacts.equity_to_parquet(EQUITY)
    )
    backtest.trades_uri = artifacts.save_bytes(
        f"{folder}/trades.parquet", artifacts.trades_to_parquet(TRADES)
    )
    backtest.save()
    return backtest


def test_completed_shape_and_numbers(token_client, user):
    backtest = completed_backtest(owner=user)

    response = token_client.get(f"/api/backtests/{backtest.id}")

    assert response.status_code == 200
    body = response.json()
    assert list(body) == [
        "id",
        "algorithmId",
        "userId",
        "status",
        "progress",
        "startDate",
        "endDate",
        "initialBalance",
        "finalBalance",
        "symbols",
        "results",
        "equityCurve",
        "trades",
        "createdAt",
        "completedAt",
    ]
    assert body["id"] == str(backtest.id)
    assert body["algorithmId"] == str(backtest.strategy_id)
    assert body["userId"] == str(user.pk)
    assert body["status"] == "completed"
    assert body["progress"] == 100
    assert body["startDate"] == "2024-01-02T00:00:00Z"
    assert body["endDate"] == "2024-01-12T23:59:59Z"
    assert body["initialBalance"] == 100000
    assert body["finalBalance"] == 100650.01
    assert body["symbols"] == ["SPY", "QQQ"]
    assert body["createdAt"].endswith("Z")
    assert body["completedAt"] == backtest.completed_at.astimezone(dt.UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )

    assert body["results"] == {
        "totalTrades": 4,
        "winningTrades": 2,
        "losingTrades": 2,
        "totalProfit": 850.0,  # 600.004 + 250
        "totalLoss": 200.0,  # 150 + 49.996, positive
        "netProfit": 650.01,
        "winRate": 50.0,
        "profitFactor": 4.25,  # 850.004 / 199.996
        "sharpeRatio": 1.23,
        "maxDrawdown": 0.3,  # 0.29821 %
        "maxDrawdownPercent": 0.3,
        "averageWin": 425.0,
        "averageLoss": 100.0,
        "largestWin": 600.0,
        "largestLoss": 150.0,
        "averageTradeDuration": 2880.0,  # (1 + 4 + 1 + 2 days) / 4 = 2 days
        "expectancy": 162.5,
        "returnOnInvestment": 0.65,
    }

    assert body["equityCurve"][0] == {"date": "2024-01-02", "balance": 100000}
    assert body["equityCurve"][1] == {"date": "2024-01-03", "balance": 100600.0}
    assert len(body["equityCurve"]) == len(EQUITY)

    assert body["trades"][0] == {
        "symbol": "SPY",
        "entryTime": "2024-01-02T00:00:00Z",
        "entryPrice": 100,
        "exitTime": "2024-01-03T00:00:00Z",
        "exitPrice": 106.0,
        "quantity": 100,
        "side": "long",
        "profit": 600.0,
        "profitPercent": 6.0,
        "exitReason": "take_profit",
    }
    assert [trade["side"] for trade in body["trades"]] == ["long", "long", "short", "long"]
    assert body["trades"][3]["profitPercent"] == -0.13


@pytest.mark.parametrize("status", [Backtest.Status.RUNNING, Backtest.Status.PENDING])
def test_running_shape(token_client, user, status):
    backtest = BacktestFactory(
        owner=user, status=status, progress=45, progress_message="Processing historical data..."
    )

    response = token_client.get(f"/api/backtests/{backtest.id}")

    assert response.status_code == 200
    assert response.json() == {
        "id": str(backtest.id),
        "status": "running",
        "progress": 45,
        "message": "Processing historical data...",
    }


def test_queued_run_has_a_default_message(token_client, user):
    backtest = BacktestFactory(owner=user, status=Backtest.Status.PENDING)

    body = token_client.get(f"/api/backtests/{backtest.id}").json()

    assert body["progress"] == 0
    assert body["message"] == "Queued, waiting for a worker"


def test_failed_shape(token_client, user):
    failed_at = timezone.now()
    backtest = BacktestFactory(
        owner=user,
        status=Backtest.Status.FAILED,
        error="Insufficient historical data for NSE:RELIANCE",
        completed_at=failed_at,
    )

    response = token_client.get(f"/api/backtests/{backtest.id}/")

    assert response.status_code == 200
    assert response.json() == {
        "id": str(backtest.id),
        "status": "failed",
        "error": "Insufficient historical data for NSE:RELIANCE",
        "createdAt": backtest.created_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "failedAt": failed_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def test_completed_run_whose_artifacts_are_gone_is_a_conflict(token_client, user):
    backtest = completed_backtest(owner=user)
    backtest.equity_curve_uri = "runs/missing/equity.parquet"
    backtest.save()

    response = token_client.get(f"/api/backtests/{backtest.id}")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "CONFLICT"


def test_someone_elses_backtest_is_403(token_client, other_user):
    backtest = BacktestFactory(owner=other_user, status=Backtest.Status.RUNNING)

    response = token_client.get(f"/api/backtests/{backtest.id}")

    assert response.status_code == 403
    assert response.json() == FORBIDDEN


def test_ownerless_backtest_is_visible_to_every_user(token_client):
    backtest = BacktestFactory(owner=None, status=Backtest.Status.RUNNING, progress=10)

    response = token_client.get(f"/api/backtests/{backtest.id}")

    assert response.status_code == 200
    assert response.json()["progress"] == 10


def test_staff_see_everyones_backtests(staff_token_client, user):
    backtest = completed_backtest(owner=user)

    response = staff_token_client.get(f"/api/backtests/{backtest.id}")

    assert response.status_code == 200
    assert response.json()["userId"] == str(user.pk)


@pytest.mark.parametrize("backtest_id", [str(uuid.uuid4()), "not-a-uuid", "123"])
def test_unknown_or_malformed_id_is_404(token_client, backtest_id):
    response = token_client.get(f"/api/backtests/{backtest_id}")

    assert response.status_code == 404
    assert response.json() == NOT_FOUND


def test_unknown_id_without_credentials_is_still_401(api_client):
    response = api_client.get(f"/api/backtests/{uuid.uuid4()}")

    assert response.status_code == 401


def test_x_user_id_is_not_an_identity(api_client, user):
    backtest = BacktestFactory(owner=user, user_ref=str(user.pk))

    response = api_client.get(f"/api/backtests/{backtest.id}", HTTP_X_USER_ID=str(user.pk))

    assert response.status_code == 401


def test_wrong_method_is_in_the_contract_shape(token_client, user):
    backtest = BacktestFactory(owner=user)

    response = token_client.delete(f"/api/backtests/{backtest.id}")

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "METHOD_NOT_ALLOWED"


# --- list ----------------------------------------------------------------------------------------


def test_list_shows_only_the_callers_own(token_client, user, other_user, staff_user):
    own = [BacktestFactory(owner=user) for _ in range(3)]
    BacktestFactory(owner=other_user)
    BacktestFactory(owner=None)
    BacktestFactory(owner=staff_user)

    response = token_client.get("/api/backtests")

    assert response.status_code == 200
    body = response.json()
    assert {row["id"] for row in body["data"]} == {str(b.id) for b in own}
    assert body["pagination"] == {"page": 1, "limit": 20, "total": 3, "totalPages": 1}


def test_summary_row_of_a_completed_run(token_client, user):
    backtest = completed_backtest(owner=user)

    row = token_client.get("/api/backtests").json()["data"][0]

    assert row == {
        "id": str(backtest.id),
        "algorithmId": str(backtest.strategy_id),
        "userId": str(user.pk),
        "status": "completed",
        "progress": 100,
        "engine": "vectorbt",
        "startDate": "2024-01-02T00:00:00Z",
        "endDate": "2024-01-12T23:59:59Z",
        "initialBalance": 100000,
        "finalBalance": 100650.01,
        "returnOnInvestment": 0.65,
        "symbols": ["SPY", "QQQ"],
        "createdAt": backtest.created_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "completedAt": backtest.completed_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def test_pagination(token_client, user):
    created = [BacktestFactory(owner=user) for _ in range(7)]
    newest_first = [str(b.id) for b in sorted(created, key=lambda b: b.created_at, reverse=True)]

    first = token_client.get("/api/backtests?page=1&limit=3").json()
    third = token_client.get("/api/backtests?page=3&limit=3").json()
    beyond = token_client.get("/api/backtests?page=9&limit=3").json()

    assert [row["id"] for row in first["data"]] == newest_first[:3]
    assert first["pagination"] == {"page": 1, "limit": 3, "total": 7, "totalPages": 3}
    assert [row["id"] for row in third["data"]] == newest_first[6:]
    assert beyond["data"] == []
    assert beyond["pagination"]["total"] == 7
    huge = token_client.get("/api/backtests?page=715434776546446016512&limit=100")
    assert huge.status_code == 400
    assert huge.json()["error"]["message"] == (
        "page: Ensure this value is less than or equal to 10000000."
    )


def test_filters_by_algorithm_and_status(token_client, user):
    strategy = StrategyFactory(owner=user)
    wanted = BacktestFactory(owner=user, strategy=strategy, status=Backtest.Status.COMPLETED)
    BacktestFactory(owner=user, strategy=strategy, status=Backtest.Status.FAILED)
    BacktestFactory(owner=user, status=Backtest.Status.COMPLETED)
    queued = BacktestFactory(owner=user, strategy=strategy, status=Backtest.Status.PENDING)
    running = BacktestFactory(owner=user, strategy=strategy, status=Backtest.Status.RUNNING)

    completed = token_client.get(
        "/api/backtests", {"algorithmId": str(strategy.id), "status": "completed"}
    ).json()
    in_flight = token_client.get(
        "/api/backtests", {"algorithmId": str(strategy.id), "status": "running"}
    ).json()

    assert [row["id"] for row in completed["data"]] == [str(wanted.id)]
    assert {row["id"] for row in in_flight["data"]} == {str(queued.id), str(running.id)}


def test_sort_and_order(token_client, user):
    base = timezone.now()
    early = BacktestFactory(owner=user, status="completed", completed_at=base)
    late = BacktestFactory(
        owner=user, status="completed", completed_at=base + dt.timedelta(hours=1)
    )
    never = BacktestFactory(owner=user, status="running")

    ascending = token_client.get("/api/backtests?sort=completedAt&order=asc").json()["data"]
    descending = token_client.get("/api/backtests?sort=completedAt&order=desc").json()["data"]
    by_status = token_client.get("/api/backtests?sort=status&order=asc").json()["data"]

    # Runs not completed yet come last either way.
    assert [row["id"] for row in ascending] == [str(early.id), str(late.id), str(never.id)]
    assert [row["id"] for row in descending] == [str(late.id), str(early.id), str(never.id)]
    assert [row["status"] for row in by_status] == ["completed", "completed", "running"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("limit=101", "limit: Ensure this value is less than or equal to 100."),
        ("limit=0", "limit: Ensure this value is greater than or equal to 1."),
        ("page=0", "page: Ensure this value is greater than or equal to 1."),
        ("page=x", "page: A valid integer is required."),
        ("algorithmId=42", "algorithmId: must be a valid algorithm id (UUID)"),
        ("status=done", 'status: "done" is not a valid choice.'),
        ("sort=name", 'sort: "name" is not a valid choice.'),
        ("order=up", 'order: "up" is not a valid choice.'),
    ],
)
def test_bad_list_parameters_are_400(token_client, query, message):
    response = token_client.get(f"/api/backtests?{query}")

    assert response.status_code == 400
    assert response.json() == {
        "error": {"code": "VALIDATION_ERROR", "message": message, "status": 400}
    }


def test_list_requires_authentication(api_client):
    assert api_client.get("/api/backtests").json() == {
        "error": {"code": "UNAUTHORIZED", "message": "Authentication required", "status": 401}
    }


def test_a_backfolio_run_made_with_a_bearer_token_reads_whole(token_client, user):
    request = {
        "strategy": {
            "allocations": {"balanced": {"SPY": 0.6, "BND": 0.4}, "cash": {"CASH": 1.0}},
            "fallback_allocation": "balanced",
            "switching_logic": [],
        },
        "config": {
            "start_date": "2021-01-04",
            "end_date": "2021-06-30",
            "initial_capital": 10000,
            "engine": "backtrader",
        },
    }
    made = token_client.post("/api/v1/backtest", request, format="json")
    assert made.status_code == 200, made.content
    backtest_id = made.json()["backtest_id"]

    row = token_client.get("/api/backtests").json()["data"][0]
    detail = token_client.get(f"/api/backtests/{backtest_id}").json()

    for shown in (row, detail):
        assert shown["id"] == backtest_id
        assert shown["startDate"] == "2021-01-04T00:00:00Z"
        assert shown["endDate"] == "2021-06-30T23:59:59Z"
        assert shown["symbols"] == ["BND", "CASH", "SPY"]


def test_a_v1_allocation_run_shows_its_groups_symbols(token_client, user):
    rotation = {
        "allocations": {"stocks": {"SPY": 1.0}, "bonds": {"AGG": 0.5, "TLT": 0.5}},
        "fallback_allocation": "bonds",
        "switching_logic": [],
    }
    from_strategy = completed_backtest(
        owner=user,
        strategy=StrategyFactory(kind="allocation", universe=[], definition=rotation),
        config={"start_date": "2024-01-02", "end_date": "2024-01-12"},
    )
    from_config = completed_backtest(
        owner=user,
        strategy=StrategyFactory(kind="allocation", universe=[], definition=None),
        config={
            "start_date": "2024-01-02",
            "end_date": "2024-01-12",
            "signal": {
                **rotation,
                "allocations": {"all": {"QQQ": 1.0}},
                "fallback_allocation": "all",
            },
        },
    )

    # Editing the strategy afterwards does not change what the run held.
    edited = from_strategy.strategy
    edited.definition = {**rotation, "allocations": {"stocks": {"IWM": 1.0}, "bonds": {"IEF": 1.0}}}
    edited.save()

    rows = {row["id"]: row for row in token_client.get("/api/backtests").json()["data"]}

    assert rows[str(from_strategy.id)]["symbols"] == ["AGG", "SPY", "TLT"]
    assert rows[str(from_config.id)]["symbols"] == ["QQQ"]
    detail = token_client.get(f"/api/backtests/{from_strategy.id}").json()
    assert detail["symbols"] == ["AGG", "SPY", "TLT"]

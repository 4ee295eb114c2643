"""``PATCH /api/v1/backtests/{id}`` stores only what every later read can serve.

The attacks: point a backtest's artifact URIs at another user's run (its trades, equity curve and
report would then be served through the attacker's own backtest) or outside storage; store metrics
nested hundreds of levels deep, or metric values that are not numbers, so that every later read
including the row fails.
"""

import pytest
from rest_framework.test import APIClient

from backtests import artifacts
from backtests.models import Backtest
from backtests.services import MAX_METRIC_NAME_LENGTH, MAX_METRICS, metrics_problems
from tests.factories import BacktestFactory

pytestmark = pytest.mark.django_db

V1 = "/api/v1/backtests"


@pytest.fixture
def victims_run(other_user):
    """A completed private run of another user, with its artifacts in storage."""
    import pandas as pd

    backtest = BacktestFactory(owner=other_user, status=Backtest.Status.COMPLETED)
    index = pd.date_range("2020-01-01", periods=3, name="date")
    trades = pd.DataFrame(
        {
            "symbol": ["SPY"],
            "side": ["long"],
            "entry_date": [index[0]],
            "exit_date": [index[2]],
            "entry_price": [1.0],
            "exit_price": [2.0],
            "size": [10.0],
            "pnl": [10.0],
            "return_pct": [1.0],
            "exit_reason": ["signal"],
            "fees": [0.0],
        }
    )
    equity_uri, trades_uri = artifacts.write_run_artifacts(
        backtest.pk, 1, pd.Series([100.0, 110.0, 120.0], index=index), trades
    )
    Backtest.objects.filter(pk=backtest.pk).update(
        equity_curve_uri=equity_uri, trades_uri=trades_uri
    )
    backtest.refresh_from_db()
    return backtest


def own_area_message(backtest) -> list[str]:
    return [f"Must name an artifact of this backtest: a file under runs/{backtest.pk}/."]


@pytest.mark.parametrize("field", ["trades_uri", "equity_curve_uri"])
def test_patch_cannot_point_at_another_users_artifacts(user, victims_run, field):
    mine = BacktestFactory(owner=user, status=Backtest.Status.COMPLETED)
    client = APIClient()
    client.force_authenticate(user)

    stolen = getattr(victims_run, field)
    response = client.patch(f"{V1}/{mine.id}", {field: stolen}, format="json")

    assert response.status_code == 400
    assert response.json() == {field: own_area_message(mine)}
    mine.refresh_from_db()
    assert getattr(mine, field) is None
    # Nothing of the victim's run is reachable through the caller's backtest.
    suffix = "trades" if field == "trades_uri" else "equity-curve"
    assert client.get(f"{V1}/{mine.id}/{suffix}").status_code == 409


@pytest.mark.parametrize(
    "uri",
    [
        "../../../etc/passwd",
        "/etc/passwd",
        "runs/{id}/../{other}/1/trades.parquet",
        "runs/{id}/./1/trades.parquet",
        "runs/{id}//trades.parquet",
        "runs/{id}/",
        "runs/{id}",
        "runs/{id}\\..\\{other}\\1\\trades.parquet",
        "runs/{id}-suffix/1/trades.parquet",
        "https://example.com/trades.parquet",
    ],
)
def test_patch_refuses_paths_outside_the_backtests_own_area(victims_run, uri):
    mine = BacktestFactory()
    uri = uri.format(id=mine.pk, other=victims_run.pk)
    response = APIClient().patch(f"{V1}/{mine.id}", {"trades_uri": uri}, format="json")
    assert response.status_code == 400
    assert response.json() == {"trades_uri": own_area_message(mine)}


def test_patch_accepts_the_backtests_own_artifacts_and_null():
    backtest = BacktestFactory()
    own = f"runs/{backtest.pk}/2/trades.parquet"
    client = APIClient()
    response = client.patch(
        f"{V1}/{backtest.id}",
        {"trades_uri": own, "equity_curve_uri": None},
        format="json",
    )
    assert response.status_code == 200
    assert (response.json()["trades_uri"], response.json()["equity_curve_uri"]) == (own, None)


def test_a_stored_path_outside_storage_reads_as_missing_not_500():
    """Rows written before the check existed: a path leaving storage is a 409, never a 500."""
    backtest = BacktestFactory(status=Backtest.Status.COMPLETED)
    Backtest.objects.filter(pk=backtest.pk).update(
        trades_uri="../../../../etc/passwd", equity_curve_uri="/etc/passwd"
    )
    client = APIClient()
    for suffix in ("trades", "equity-curve", "trades/parquet", "equity-curve/parquet"):
        response = client.get(f"{V1}/{backtest.id}/{suffix}")
        assert response.status_code == 409, suffix


# --- metrics ------------------------------------------------------------------------------------


def nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth):
        value = {"x": value}
    return value


@pytest.mark.parametrize(
    ("metrics", "errors"),
    [
        (nested(60), {"metrics": {"x": ["Must be a finite number or null."]}}),
        # Deeper than any body may nest: the JSON parser refuses it before any field sees it.
        (nested(254), {"detail": "JSON parse error - nested more than 100 levels deep"}),
        (
            {"perf_sharpe_ratio": "high", "total_return": 0.1},
            {"metrics": {"perf_sharpe_ratio": ["Must be a finite number or null."]}},
        ),
        (
            {"trade_win_rate": [0.5]},
            {"metrics": {"trade_win_rate": ["Must be a finite number or null."]}},
        ),
        (
            {"trade_win_rate": True},
            {"metrics": {"trade_win_rate": ["Must be a finite number or null."]}},
        ),
        ({"error": 3 * "x" * 4000}, {"metrics": {"error": ["At most 10000 characters."]}}),
        ({"error": {"why": 1}}, {"metrics": {"error": ["Must be a finite number or null."]}}),
        (
            {f"m{i}": 1.0 for i in range(MAX_METRICS + 1)},
            {"metrics": [f"At most {MAX_METRICS} metrics (got {MAX_METRICS + 1})."]},
        ),
        (
            {"m" * (MAX_METRIC_NAME_LENGTH + 1): 1.0},
            {
                "metrics": [
                    f"Metric names are at most {MAX_METRIC_NAME_LENGTH} characters "
                    f"(got one of {MAX_METRIC_NAME_LENGTH + 1})."
                ]
            },
        ),
    ],
    ids=[
        "nested-60",
        "nested-254",
        "text",
        "list",
        "bool",
        "long-error",
        "error-object",
        "too-many",
        "long-name",
    ],
)
def test_patch_refuses_metrics_reads_could_not_serve(metrics, errors):
    backtest = BacktestFactory(status=Backtest.Status.COMPLETED, metrics={"total_return": 0.5})
    client = APIClient()
    response = client.patch(f"{V1}/{backtest.id}", {"metrics": metrics}, format="json")
    assert response.status_code == 400
    assert response.json() == errors
    backtest.refresh_from_db()
    assert backtest.metrics == {"total_return": 0.5}
    # Every read that includes the row still answers.
    assert client.get(V1).status_code == 200
    assert client.get(f"{V1}/{backtest.id}").status_code == 200


def test_patch_stores_a_flat_map_of_numbers_null_and_the_failure_reason():
    backtest = BacktestFactory(status=Backtest.Status.COMPLETED)
    metrics = {"total_return": 0.25, "trade_total_trades": 3, "perf_sharpe_ratio": None}
    client = APIClient()
    response = client.patch(f"{V1}/{backtest.id}", {"metrics": metrics}, format="json")
    assert response.status_code == 200
    assert response.json()["metrics"] == metrics
    detail = client.get(f"{V1}/{backtest.id}").json()
    assert detail["structured_metrics"]["total_return"] == 0.25

    failed = {"error": "The run exceeded the time limit of 600 s."}
    response = client.patch(
        f"{V1}/{backtest.id}", {"status": "failed", "metrics": failed}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["metrics"] == failed


def test_metrics_from_code_are_held_to_the_same_rules():
    """Services are called by other code than the API: integers beyond 64 bits (which no
    database JSON function holds) and non-finite floats are refused there too."""
    assert metrics_problems({"a": 2**63, "b": float("nan"), "c": 2**63 - 1}) == {
        "a": ["Must be a finite number or null."],
        "b": ["Must be a finite number or null."],
    }

"""``/api/v1/research/sweeps``: every bad input is a 400 naming its field and creates nothing;
what the caller may not see is a 404; what is not ready is a 409."""

import uuid

import pytest
from rest_framework.test import APIClient

from backtests.models import Task
from backtests.research.models import ResearchSweep, ResearchSweepChunk
from backtests.run_config import accepted_keys
from tests.backtests.test_services import queued_messages
from tests.factories import StrategyFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/research/sweeps"
BASE_CONFIG = {
    "symbol": "SPY",
    "start_date": "2015-01-01",
    "end_date": "2020-12-31",
    "signal_plugin_key": "sma_crossover",
}
GRID = {"signal_plugin_params.fast": [5, 10], "signal_plugin_params.slow": [50, 100]}
SIGNAL_KEYS = ", ".join(accepted_keys("signal"))


@pytest.fixture
def client():
    return APIClient()


@pytest.fixture
def strategy():
    return StrategyFactory(kind="signal", definition=None)


def body_for(strategy, **changes):
    body = {
        "strategy_id": str(strategy.id),
        "base_config": BASE_CONFIG,
        "grid": GRID,
        "rank_metric": "perf_sharpe_ratio",
    }
    body.update(changes)
    return {key: value for key, value in body.items() if value is not None}


def assert_refused(response, status, expected):
    assert response.status_code == status, response.content
    assert response.json() == expected
    assert not ResearchSweep.objects.exists()
    assert not Task.objects.exists()


def test_post_answers_202_with_counts_and_queues_one_message_per_chunk(
    client, strategy, broker, django_capture_on_commit_callbacks
):
    grid = {**GRID, "signal_plugin_params.fast": [5, 10, 60, 120]}  # fast ≥ slow is invalid
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(URL, body_for(strategy, grid=grid), format="json")
    assert response.status_code == 202, response.json()
    answer = response.json()
    sweep = ResearchSweep.objects.get()
    assert answer == {
        "id": str(sweep.pk),
        "task_id": str(sweep.task_id),
        "status": "pending",
        "n_configs": 5,
        "n_skipped": 3,
        "skipped": sweep.skipped,
    }
    # Combinations in key order (the last key fastest): index 4 is fast 60 × slow 50.
    assert [item["index"] for item in sweep.skipped] == [4, 6, 7]
    assert sweep.skipped[0]["overrides"] == {"signal_plugin_params": {"fast": 60, "slow": 50}}
    assert list(sweep.skipped[0]["problems"]) == ["signal_plugin_params.fast"]
    assert [number for number, _ in sweep.entries_plan] == [0, 1, 2, 3, 5]
    assert sweep.benchmark == "SPY" and sweep.partitions == 16 and sweep.spa_reps == 1000
    assert ResearchSweepChunk.objects.filter(sweep=sweep).count() == 1
    assert queued_messages(broker) == 1
    task = client.get(f"/api/v1/tasks/{answer['task_id']}").json()
    assert (task["kind"], task["status"], task["done"], task["total"]) == (
        "research_sweep", "PENDING", 0, 5,
    )  # fmt: skip


def test_param_grid_is_accepted_as_v1_overrides(client, strategy):
    grid = [{"signal_plugin_params": {"fast": 5, "slow": 50}}, {"direction": "both"}]
    response = client.post(URL, body_for(strategy, grid=None, param_grid=grid), format="json")
    assert response.status_code == 202, response.json()
    assert response.json()["n_configs"] == 2


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"grid": {"signal_plugin_params.fast": 5}},
            {"grid": {"signal_plugin_params.fast": ["Must be a non-empty list of values."]}},
        ),
        (
            {"grid": {"symbl": ["SPY"]}},
            {"grid": {"symbl": [f"Not a configuration field (accepted: {SIGNAL_KEYS})."]}},
        ),
        (
            {"grid": {"symbol.name": ["SPY"]}},
            {
                "grid": {
                    "symbol.name": [
                        "symbol is not a document; only signal, signal_plugin_params have "
                        "sub-fields."
                    ]
                }
            },
        ),
        (
            {"grid": {"signal_plugin_params.fsat": [5, 10]}},
            {
                "grid": {
                    "signal_plugin_params.fsat": [
                        "Not a configuration field: 'fsat' is not a parameter of sma_crossover "
                        "(parameters: fast, slow)."
                    ]
                }
            },
        ),
        (
            {
                "grid": {
                    "signal_plugin_params.fast": list(range(1, 102)),
                    "signal_plugin_params.slow": list(range(200, 300)),
                }
            },
            {"grid": ["10,100 combinations; at most 10,000 are allowed."]},
        ),
        (
            {"grid": None, "param_grid": [{}] * 10_001},
            {"param_grid": ["10,001 combinations; at most 10,000 are allowed."]},
        ),
        ({"grid": None}, {"grid": ["Give exactly one of grid and param_grid."]}),
        ({"param_grid": [{}]}, {"grid": ["Give exactly one of grid and param_grid."]}),
        (
            {"grid": None, "param_grid": "all"},
            {"param_grid": ["Must be a non-empty list of override objects."]},
        ),
        (
            {"partitions": 5},
            {"partitions": ["Partitions must be an even integer between 4 and 24, got 5."]},
        ),
        (
            {"partitions": 26},
            {"partitions": ["Partitions must be an even integer between 4 and 24, got 26."]},
        ),
        (
            {"base_config": {**BASE_CONFIG, "start_date": "2020-06-01"}, "partitions": 16},
            {
                "partitions": [
                    "Partitions must be at most a tenth of the bars (15 for 150 bars), got 16."
                ]
            },
        ),
        (
            {"spa_reps": 0},
            {"spa_reps": ["Spa_reps must be between 1 and 10,000, got 0."]},
        ),
        (
            {"rank_metric": "metrics_spec_version"},
            {
                "rank_metric": [
                    "'metrics_spec_version' has no direction to rank by; choose one of: "
                    + ", ".join(sorted(__import__("backtests.services").services.RANK_METRICS))
                    + "."
                ]
            },
        ),
        ({"commission": 0.5}, {"commission": ["Must be a number between 0 and 0.1."]}),
        (
            {"engine": "zipline"},
            {"engine": ["Unknown engine 'zipline'; available engines: backtrader, vectorbt."]},
        ),
        ({"speed": "fast"}, {"speed": ["Unknown field."]}),
        (
            {"benchmark": "NOPE"},
            {
                "benchmark": [
                    "Symbol NOPE data not available for requested date range (no data for NOPE; "
                    "available symbols: AAPL, AGG, AMZN, BND, DBC, EEM, EFA, GLD, GOOGL, GSPC, "
                    "IEF, IWM, MSFT, NVDA, QQQ, SHY, SPY, TLT, VNQ, VTI)"
                ]
            },
        ),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_creates_nothing(
    client, strategy, changes, expected
):
    response = client.post(URL, body_for(strategy, **changes), format="json")
    assert_refused(response, 400, expected)


def test_no_valid_combination_is_a_400_listing_the_first_problems(client, strategy):
    grid = {"signal_plugin_params.fast": list(range(60, 90)), "signal_plugin_params.slow": [50]}
    response = client.post(URL, body_for(strategy, grid=grid), format="json")
    assert response.status_code == 400
    problems = response.json()["grid"]
    assert problems["non_field_errors"] == [
        "None of the 30 combinations is valid; the problems of the first 20 follow, keyed by "
        "combination index."
    ]
    assert sorted(int(key) for key in problems if key != "non_field_errors") == list(range(20))
    assert list(problems["0"]) == ["signal_plugin_params.fast"]
    assert not ResearchSweep.objects.exists() and not Task.objects.exists()


def test_unknown_strategy_is_a_404(client):
    missing = uuid.uuid4()
    response = client.post(URL, body_for(StrategyFactory.build(id=missing)), format="json")
    assert_refused(response, 404, {"detail": f"Strategy {missing} not found."})


def test_unknown_or_invisible_sweep_is_a_404(client, user, other_user, strategy):
    owner_client = APIClient()
    owner_client.force_authenticate(user)
    answer = owner_client.post(URL, body_for(strategy), format="json").json()
    stranger = APIClient()
    stranger.force_authenticate(other_user)
    for path in ("", "/returns.parquet", "/results.csv"):
        response = stranger.get(f"{URL}/{answer['id']}{path}")
        assert response.status_code == 404, path
        assert response.json() == {"detail": f"Research sweep {answer['id']} not found."}
    assert client.get(f"{URL}/{answer['id']}").status_code == 404  # anonymous
    assert client.get(f"{URL}/not-a-uuid").json() == {
        "detail": "Research sweep not-a-uuid not found."
    }
    assert owner_client.get(f"{URL}/{answer['id']}").status_code == 200


def test_downloads_and_entries_before_the_sweep_ran_are_409_or_404(client, strategy):
    answer = client.post(URL, body_for(strategy), format="json").json()
    sweep_id = answer["id"]
    for path, what in (("returns.parquet", "returns matrix"), ("results.csv", "results table")):
        response = client.get(f"{URL}/{sweep_id}/{path}")
        assert response.status_code == 409
        assert response.json() == {
            "detail": f"Research sweep {sweep_id} is pending (0/4 entries done); its {what} is "
            "ready when it has finished."
        }
    response = client.post(f"{URL}/{sweep_id}/entries/0/backtest")
    assert response.status_code == 409
    assert response.json() == {"detail": f"Entry 0 of sweep {sweep_id} has not run yet."}
    for number in ("99", "x"):
        response = client.post(f"{URL}/{sweep_id}/entries/{number}/backtest")
        assert response.status_code == 404
        assert response.json() == {"detail": f"Sweep {sweep_id} has no entry {number}."}


def test_pending_sweep_shows_progress_and_an_empty_leaderboard(client, strategy):
    answer = client.post(URL, body_for(strategy), format="json").json()
    body = client.get(f"{URL}/{answer['id']}").json()
    assert body["status"] == "pending"
    assert (body["done"], body["total"]) == (0, 4)
    assert body["leaderboard"] == {
        "count": 0, "skip": 0, "limit": 100, "sort": "rank", "order": "asc", "entries": [],
    }  # fmt: skip
    assert body["overfitting"] is None


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("sort=colour", {"sort": ['"colour" is not a valid choice.']}),
        ("order=up", {"order": ['"up" is not a valid choice.']}),
        ("limit=0", {"limit": ["Ensure this value is greater than or equal to 1."]}),
        ("limit=1001", {"limit": ["Ensure this value is less than or equal to 1000."]}),
        ("skip=-1", {"skip": ["Ensure this value is greater than or equal to 0."]}),
    ],
)
def test_bad_leaderboard_query_is_a_400(client, strategy, query, expected):
    answer = client.post(URL, body_for(strategy), format="json").json()
    response = client.get(f"{URL}/{answer['id']}?{query}")
    assert response.status_code == 400
    assert response.json() == expected

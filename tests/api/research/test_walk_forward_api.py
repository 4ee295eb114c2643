"""``/api/v1/research/walk-forward``: every error path with its exact status and message, and
what a valid request creates and queues (nothing runs here: the stub broker keeps the messages)."""

import copy
import uuid

import pytest
from rest_framework.test import APIClient

from backtests.models import Task, WalkForward, WalkForwardFold
from backtests.run_config import accepted_keys
from backtests.services import RANK_METRICS
from tests.backtests.test_services import queued_messages
from tests.factories import StrategyFactory

URL = "/api/v1/research/walk-forward"
BASE_CONFIG = {
    "symbol": "SPY",
    "start_date": "2016-01-01",
    "end_date": "2019-12-31",
    "signal_plugin_key": "sma_crossover",
}
GRID = {"signal_plugin_params.fast": [10, 20], "signal_plugin_params.slow": [50, 100]}


@pytest.fixture
def client() -> APIClient:
    return APIClient()


@pytest.fixture
def strategy(db):
    return StrategyFactory()


@pytest.fixture
def body(strategy):
    return {
        "strategy_id": str(strategy.id),
        "base_config": dict(BASE_CONFIG),
        "grid": copy.deepcopy(GRID),
        "rank_metric": "perf_sharpe_ratio",
        "scheme": "rolling",
        "in_sample_months": 24,
        "out_of_sample_months": 6,
    }


def nothing_created():
    return not WalkForward.objects.exists() and not Task.objects.exists()


def test_valid_request_creates_the_analysis_and_queues_one_message_per_fold(
    client, body, broker, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(URL, body, format="json")

    assert response.status_code == 202, response.content
    answer = response.json()
    walk_forward = WalkForward.objects.get()
    assert answer == {
        "id": str(walk_forward.pk),
        "task_id": str(walk_forward.task_id),
        "status": "pending",
        "n_configs": 4,
        "n_folds": 4,
        "n_skipped": 0,
    }
    assert walk_forward.combinations == [
        {"signal_plugin_params": {"fast": 10, "slow": 50}},
        {"signal_plugin_params": {"fast": 10, "slow": 100}},
        {"signal_plugin_params": {"fast": 20, "slow": 50}},
        {"signal_plugin_params": {"fast": 20, "slow": 100}},
    ]
    # Defaults as the v1 API's: vectorbt, 100,000, 0.0005 each.
    assert (walk_forward.engine, walk_forward.initial_capital) == ("vectorbt", 100_000.0)
    assert (walk_forward.commission, walk_forward.slippage) == (0.0005, 0.0005)
    assert (walk_forward.total, walk_forward.task.total) == (4 * 5, 4 * 5)
    assert walk_forward.task.kind == "walk_forward"
    assert WalkForwardFold.objects.count() == 4
    assert queued_messages(broker) == 4

    detail = client.get(f"{URL}/{walk_forward.pk}").json()
    assert (detail["status"], detail["done"], detail["total"]) == ("pending", 0, 20)
    assert detail["folds"][1]["in_sample"] == {"start": "2016-07-01", "end": "2018-06-30"}
    assert detail["folds"][1]["out_of_sample"] == {"start": "2018-07-01", "end": "2018-12-31"}
    assert detail["folds"][1]["chosen"] is None
    assert detail["result"] is None
    task = client.get(f"/api/v1/tasks/{walk_forward.task_id}").json()
    assert (task["kind"], task["status"], task["total"]) == ("walk_forward", "PENDING", 20)


def test_param_grid_and_invalid_combinations_are_skipped_and_listed(client, body):
    del body["grid"]
    body["param_grid"] = [
        {"signal_plugin_params": {"fast": 10, "slow": 50}},
        {"signal_plugin_params": {"fast": 60, "slow": 50}},
        {"stop_loss": 2},
    ]
    response = client.post(URL, body, format="json")

    assert response.status_code == 202, response.content
    assert (response.json()["n_configs"], response.json()["n_skipped"]) == (1, 2)
    detail = client.get(f"{URL}/{response.json()['id']}").json()
    assert detail["skipped"] == [
        {
            "index": 1,
            "overrides": {"signal_plugin_params": {"fast": 60, "slow": 50}},
            "problems": {"signal_plugin_params.fast": ["must be less than slow (50)"]},
        },
        {
            "index": 2,
            "overrides": {"stop_loss": 2},
            "problems": {"stop_loss": ["Must be below 1 (a 100% loss)."]},
        },
    ]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"grid": {"signal_plugin_params.fast": 10}},
            {"grid": {"signal_plugin_params.fast": ["Must be a non-empty list of values."]}},
        ),
        (
            {"grid": {"colour": [1, 2]}},
            {
                "grid": {
                    "colour": [
                        "Not a configuration field (accepted: "
                        f"{', '.join(accepted_keys('signal'))})."
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
            {"param_grid": [{"stop_loss": 0.1}]},
            {"grid": ["Give exactly one of grid and param_grid."]},
        ),
        (
            {"grid": {"signal_plugin_params.fast": [60, 70]}},
            {
                "grid": [
                    "No valid combination among 2; the first problems:",
                    "Combination 0 {'signal_plugin_params': {'fast': 60}}: "
                    "signal_plugin_params.fast: must be less than slow (50)",
                    "Combination 1 {'signal_plugin_params': {'fast': 70}}: "
                    "signal_plugin_params.fast: must be less than slow (50)",
                ]
            },
        ),
        (
            {"rank_metric": "metrics_spec_version"},
            {
                "rank_metric": [
                    "'metrics_spec_version' is not a metric with a direction; choose one of: "
                    + ", ".join(RANK_METRICS)
                    + "."
                ]
            },
        ),
        ({"scheme": "expanding"}, {"scheme": ["Must be one of: rolling, anchored."]}),
        ({"in_sample_months": 0}, {"in_sample_months": ["Must be a positive integer (months)."]}),
        (
            {"out_of_sample_months": -3},
            {"out_of_sample_months": ["Must be a positive integer (months)."]},
        ),
        (
            {"out_of_sample_months": 1.5},
            {"out_of_sample_months": ["Must be a positive integer (months)."]},
        ),
        (
            {"in_sample_months": 40, "out_of_sample_months": 12},
            {
                "base_config": {
                    "end_date": [
                        "The span 2016-01-01..2019-12-31 holds 48 whole months; one fold needs "
                        "52 (in_sample_months + out_of_sample_months)."
                    ]
                }
            },
        ),
        (
            {
                "base_config": {**BASE_CONFIG, "start_date": "1995-01-01"},
                "in_sample_months": 1,
                "out_of_sample_months": 1,
            },
            {
                "out_of_sample_months": [
                    "The span holds 299 folds; at most 240 are allowed (lengthen "
                    "out_of_sample_months or shorten the span)."
                ]
            },
        ),
        (
            {"engine": "zipline"},
            {"engine": ["Unknown engine 'zipline'; available engines: backtrader, vectorbt."]},
        ),
        ({"commission": 0.5}, {"commission": ["Must be a number between 0 and 0.1."]}),
        ({"initial_capital": 0}, {"initial_capital": ["Must be a number greater than 0."]}),
        ({"base_config": []}, {"base_config": ["Must be a JSON object."]}),
        ({"colour": "red"}, {"colour": ["Unknown field."]}),
        ({"strategy_id": "nope"}, {"strategy_id": ["Must be a valid UUID."]}),
    ],
)
def test_bad_requests_name_the_field_and_create_nothing(client, body, changes, expected):
    body.update(changes)
    response = client.post(URL, body, format="json")

    assert response.status_code == 400, response.content
    assert response.json() == expected
    assert nothing_created()


def test_missing_fields_are_named(client, body):
    for field in ("base_config", "rank_metric", "scheme", "in_sample_months"):
        partial = {key: value for key, value in body.items() if key != field}
        response = client.post(URL, partial, format="json")
        assert response.status_code == 400
        assert response.json() == {field: ["This field is required."]}
    assert nothing_created()


def test_unknown_strategy_is_404(client, body):
    missing = uuid.uuid4()
    body["strategy_id"] = str(missing)
    response = client.post(URL, body, format="json")

    assert response.status_code == 404
    assert response.json() == {"detail": f"Strategy {missing} not found."}
    assert nothing_created()


def test_someone_elses_strategy_and_analysis_do_not_exist(body, user, other_user):
    mine = APIClient()
    mine.force_authenticate(user)
    theirs = APIClient()
    theirs.force_authenticate(other_user)
    private = StrategyFactory(owner=user)
    body["strategy_id"] = str(private.pk)

    refused = theirs.post(URL, body, format="json")
    assert refused.status_code == 404
    assert refused.json() == {"detail": f"Strategy {private.pk} not found."}

    created = mine.post(URL, body, format="json")
    assert created.status_code == 202
    walk_forward_id = created.json()["id"]
    assert WalkForward.objects.get().owner == user
    assert mine.get(f"{URL}/{walk_forward_id}").status_code == 200
    for path in (f"{URL}/{walk_forward_id}", f"{URL}/{walk_forward_id}/equity.parquet"):
        hidden = theirs.get(path)
        assert hidden.status_code == 404
        assert hidden.json() == {"detail": f"Walk-forward {walk_forward_id} not found."}
    assert APIClient().get(f"{URL}/{walk_forward_id}").status_code == 404


def test_unknown_and_malformed_ids_are_404(client, db):
    missing = uuid.uuid4()
    assert client.get(f"{URL}/{missing}").json() == {"detail": f"Walk-forward {missing} not found."}
    response = client.get(f"{URL}/not-a-uuid")
    assert response.status_code == 404
    assert response.json() == {"detail": "Walk-forward not-a-uuid not found."}
    assert client.get(f"{URL}/{missing}/equity.parquet").status_code == 404


def test_equity_before_completion_is_409(client, body):
    walk_forward_id = client.post(URL, body, format="json").json()["id"]

    response = client.get(f"{URL}/{walk_forward_id}/equity.parquet")

    assert response.status_code == 409
    assert response.json() == {
        "detail": f"Walk-forward {walk_forward_id} is pending; its equity exists once it is "
        "completed."
    }


# --- the list ----------------------------------------------------------------------------------


def create(client, body, **changes):
    response = client.post(URL, {**body, **changes}, format="json")
    assert response.status_code == 202, response.content
    return response.json()["id"]


def test_the_list_shows_each_analysis_oldest_first_with_its_progress_and_result(client, body):
    first = create(client, body)
    second = create(client, body, scheme="anchored", in_sample_months=36, out_of_sample_months=12)
    WalkForward.objects.filter(pk=first).update(
        status="completed",
        done=20,
        result={"psr": 0.75, "walk_forward_efficiency": 0.5, "equity": [], "metrics": {}},
    )

    response = client.get(URL)

    assert response.status_code == 200, response.content
    rows = response.json()
    assert [row["id"] for row in rows] == [first, second]
    completed, pending = rows
    walk_forward = WalkForward.objects.get(pk=first)
    assert completed == {
        "id": first,
        "task_id": str(walk_forward.task_id),
        "strategy_id": body["strategy_id"],
        "engine": "vectorbt",
        "status": "completed",
        "done": 20,
        "total": 20,
        "scheme": "rolling",
        "in_sample_months": 24,
        "out_of_sample_months": 6,
        "rank_metric": "perf_sharpe_ratio",
        "n_configs": 4,
        "n_folds": 4,
        "n_skipped": 0,
        "psr": 0.75,
        "walk_forward_efficiency": 0.5,
        "error": None,
        "created_at": completed["created_at"],
        "started_at": None,
        "completed_at": None,
    }
    assert completed["created_at"].startswith(walk_forward.created_at.date().isoformat())
    assert (pending["scheme"], pending["status"], pending["done"]) == ("anchored", "pending", 0)
    assert (pending["n_folds"], pending["total"]) == (1, 1 * 5)
    assert (pending["psr"], pending["walk_forward_efficiency"]) == (None, None)


def test_the_list_pages_with_skip_and_limit(client, body):
    ids = [create(client, body) for _ in range(3)]

    assert [row["id"] for row in client.get(URL, {"limit": 2}).json()] == ids[:2]
    assert [row["id"] for row in client.get(URL, {"skip": 2, "limit": 2}).json()] == ids[2:]
    assert client.get(URL, {"skip": 3}).json() == []


def test_the_list_filters_by_strategy_status_engine_and_scheme(client, body, strategy):
    other = StrategyFactory()
    rolling = create(client, body)
    anchored = create(client, body, scheme="anchored")
    elsewhere = create(client, body, strategy_id=str(other.pk), engine="backtrader")
    WalkForward.objects.filter(pk=anchored).update(status="failed", error="Fold 0 failed.")

    def listed(**query):
        response = client.get(URL, query)
        assert response.status_code == 200, response.content
        return [row["id"] for row in response.json()]

    assert listed(strategy_id=str(strategy.pk)) == [rolling, anchored]
    assert listed(strategy_id=str(other.pk)) == [elsewhere]
    assert listed(status="failed") == [anchored]
    assert listed(status="pending", engine="vectorbt") == [rolling]
    assert listed(engine="backtrader") == [elsewhere]
    assert listed(scheme="anchored") == [anchored]
    assert listed(strategy_id=str(uuid.uuid4())) == []
    assert client.get(URL, {"status": "failed"}).json()[0]["error"] == "Fold 0 failed."


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"limit": "0"}, {"limit": ["Ensure this value is greater than or equal to 1."]}),
        ({"limit": "1001"}, {"limit": ["Ensure this value is less than or equal to 1000."]}),
        ({"limit": "many"}, {"limit": ["A valid integer is required."]}),
        ({"skip": "-1"}, {"skip": ["Ensure this value is greater than or equal to 0."]}),
        ({"status": "done"}, {"status": ['"done" is not a valid choice.']}),
        ({"scheme": "expanding"}, {"scheme": ['"expanding" is not a valid choice.']}),
        ({"strategy_id": "not-a-uuid"}, {"strategy_id": ["Must be a valid UUID."]}),
        ({"engine": " "}, {"engine": ["This field may not be blank."]}),
        (
            {"limit": "0", "status": "done", "scheme": "x"},
            {
                "limit": ["Ensure this value is greater than or equal to 1."],
                "status": ['"done" is not a valid choice.'],
                "scheme": ['"x" is not a valid choice.'],
            },
        ),
    ],
)
def test_bad_list_parameters_are_400_naming_each(client, body, query, expected):
    create(client, body)

    response = client.get(URL, query)

    assert response.status_code == 400
    assert response.json() == expected


def test_the_list_is_scoped_to_what_the_caller_may_see(body, user, other_user, staff_user):
    mine, theirs, staff = APIClient(), APIClient(), APIClient()
    mine.force_authenticate(user)
    theirs.force_authenticate(other_user)
    staff.force_authenticate(staff_user)
    public = create(APIClient(), body)
    own = create(mine, body)
    other = create(theirs, body)

    def listed(client):
        return [row["id"] for row in client.get(URL).json()]

    assert listed(APIClient()) == [public]
    assert listed(mine) == [public, own]
    assert listed(theirs) == [public, other]
    assert listed(staff) == [public, own, other]

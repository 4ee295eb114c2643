"""Who may see what (SPEC §10), across every API.

A record someone may not see is a 404 on v1 and the Backfolio API (no existence leak) and a 403
on the results API. Anonymous callers see and change only ownerless records, users their own and
ownerless ones, staff everything. ``X-User-Id`` is a label, never an identity.
"""

import uuid

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from backtests.models import Backtest, Task
from strategies.models import Strategy
from tests.factories import BacktestFactory, StrategyFactory

pytestmark = pytest.mark.django_db

V1 = "/api/v1/backtests"


def client_for(user=None, *, bearer: bool = True) -> APIClient:
    client = APIClient()
    if user is not None and bearer:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    elif user is not None:
        client.force_login(user)
    return client


def ids_in(payload) -> set[str]:
    """Every ``id`` / ``backtest_id`` in a response, whatever its envelope."""
    found: set[str] = set()
    if isinstance(payload, dict):
        for key, value in payload.items():
            if key in {"id", "backtest_id"} and isinstance(value, str):
                found.add(value)
            else:
                found |= ids_in(value)
    elif isinstance(payload, list):
        for item in payload:
            found |= ids_in(item)
    return found


@pytest.fixture
def world(user, other_user, staff_user):
    """One strategy and backtest per owner (the user, someone else, staff, nobody)."""
    rows = {}
    for label, owner in [
        ("mine", user),
        ("theirs", other_user),
        ("staff", staff_user),
        ("ownerless", None),
    ]:
        strategy = StrategyFactory(owner=owner, name=f"{label} strategy")
        rows[label] = BacktestFactory(owner=owner, strategy=strategy)
    return rows


# --- v1: someone else's backtest is a 404 on every route ------------------------------------


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("get", "", None),
        ("patch", "", {"status": "failed"}),
        ("delete", "", None),
        ("post", "/execute", {}),
        ("post", "/execute", {"async_mode": True}),
        ("post", "/execute/async", None),
        ("get", "/equity-curve", None),
        ("get", "/equity-curve/parquet", None),
        ("get", "/trades", None),
        ("get", "/trades/parquet", None),
    ],
)
@pytest.mark.parametrize("bearer", [True, False], ids=["bearer", "session"])
def test_v1_someone_elses_backtest_is_404(world, user, method, suffix, body, bearer):
    theirs = world["theirs"]
    client = client_for(user, bearer=bearer)

    response = getattr(client, method)(f"{V1}/{theirs.id}{suffix}", body, format="json")

    assert response.status_code == 404, response.content
    theirs.refresh_from_db()
    assert theirs.status == Backtest.Status.PENDING
    assert not Task.objects.filter(backtest=theirs).exists()


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [("get", "", None), ("patch", "", {"status": "failed"}), ("delete", "", None)],
)
def test_v1_anonymous_cannot_touch_an_owned_backtest(world, method, suffix, body):
    mine = world["mine"]

    response = getattr(APIClient(), method)(f"{V1}/{mine.id}{suffix}", body, format="json")

    assert response.status_code == 404
    assert Backtest.objects.filter(pk=mine.pk, status=Backtest.Status.PENDING).exists()


def test_v1_anonymous_may_change_an_ownerless_backtest(world):
    ownerless = world["ownerless"]

    response = APIClient().patch(f"{V1}/{ownerless.id}", {"status": "failed"}, format="json")

    assert response.status_code == 200
    ownerless.refresh_from_db()
    assert ownerless.status == Backtest.Status.FAILED


def test_v1_own_and_ownerless_backtests_are_reachable(world, user):
    client = client_for(user)

    assert client.get(f"{V1}/{world['mine'].id}").status_code == 200
    assert client.get(f"{V1}/{world['ownerless'].id}").status_code == 200
    assert (
        client.patch(f"{V1}/{world['mine'].id}", {"status": "failed"}, format="json").status_code
        == 200
    )


def test_v1_list_shows_own_and_ownerless_only(world, user):
    listed = ids_in(client_for(user).get(V1).json())

    assert listed == {str(world["mine"].id), str(world["ownerless"].id)}


def test_v1_anonymous_list_shows_ownerless_only(world):
    assert ids_in(APIClient().get(V1).json()) == {str(world["ownerless"].id)}


def test_v1_staff_see_and_change_all(world, staff_user):
    client = client_for(staff_user)

    assert ids_in(client.get(V1).json()) == {str(row.id) for row in world.values()}
    assert client.get(f"{V1}/{world['theirs'].id}").status_code == 200
    assert client.delete(f"{V1}/{world['theirs'].id}").status_code == 204


def test_v1_compare_treats_someone_elses_backtest_as_missing(world, user):
    ids = [str(world["mine"].id), str(world["theirs"].id)]

    response = client_for(user).post(f"{V1}/compare", {"backtest_ids": ids}, format="json")

    assert response.status_code == 404
    text = response.content.decode()
    assert str(world["theirs"].id) in text
    assert "theirs strategy" not in text


def test_v1_cannot_create_on_someone_elses_strategy(world, user):
    strategy = world["theirs"].strategy
    body = {
        "strategy_id": str(strategy.id),
        "engine": "vectorbt",
        "config": {"symbol": "SPY", "start_date": "2020-01-02", "end_date": "2020-12-31"},
    }

    response = client_for(user).post(V1, body, format="json")

    assert response.status_code in (400, 404)
    assert "strategy_id" in response.content.decode()
    assert not Backtest.objects.filter(strategy=strategy).exclude(pk=world["theirs"].pk).exists()


def test_v1_cannot_sweep_someone_elses_strategy(world, user):
    body = {
        "strategy_id": str(world["theirs"].strategy_id),
        "engine": "vectorbt",
        "base_config": {"symbol": "SPY", "start_date": "2020-01-02", "end_date": "2020-12-31"},
        "param_grid": [{"signal_plugin_key": "buy_and_hold"}],
        "rank_metric": "perf_sharpe_ratio",
    }

    response = client_for(user).post(f"{V1}/sweep", body, format="json")

    assert response.status_code == 404


def test_v1_records_the_creator_as_owner(user):
    client = client_for(user)
    strategy = client.post("/api/v1/strategies", {"name": "Mine"}, format="json").json()
    body = {
        "strategy_id": strategy["id"],
        "engine": "vectorbt",
        "config": {"symbol": "SPY", "start_date": "2020-01-02", "end_date": "2020-12-31"},
    }

    created = client.post(V1, body, format="json")

    assert created.status_code == 201, created.content
    assert Strategy.objects.get(pk=strategy["id"]).owner == user
    assert Backtest.objects.get(pk=created.json()["id"]).owner == user


# --- v1 strategies and tasks ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "body"), [("get", None), ("patch", {"name": "Renamed"}), ("delete", None)]
)
def test_v1_someone_elses_strategy_is_404(world, user, method, body):
    strategy = world["theirs"].strategy

    response = getattr(client_for(user), method)(
        f"/api/v1/strategies/{strategy.id}", body, format="json"
    )

    assert response.status_code == 404
    assert Strategy.objects.get(pk=strategy.pk).name == "theirs strategy"


def test_v1_strategy_list_shows_own_and_ownerless_only(world, user):
    listed = ids_in(client_for(user).get("/api/v1/strategies").json())

    assert listed == {str(world["mine"].strategy_id), str(world["ownerless"].strategy_id)}


def test_v1_someone_elses_task_is_404(world, user, other_user):
    task = Task.objects.create(kind=Task.Kind.EXECUTE, backtest=world["theirs"], owner=other_user)

    assert client_for(user).get(f"/api/v1/tasks/{task.id}").status_code == 404
    assert APIClient().get(f"/api/v1/tasks/{task.id}").status_code == 404
    assert client_for(other_user).get(f"/api/v1/tasks/{task.id}").status_code == 200


# --- Backfolio saved runs ------------------------------------------------------------------

PORTFOLIO_REQUEST = {
    "strategy": {
        "allocations": {"core": {"SPY": 0.6, "TLT": 0.4}},
        "fallback_allocation": "core",
        "switching_logic": [],
    },
    "config": {"start_date": "2021-01-04", "end_date": "2021-06-30", "initial_capital": 10000},
}


def test_backfolio_runs_are_private_to_their_owner(user, other_user):
    owner_client = client_for(user)
    created = owner_client.post(
        "/api/v1/backtest", PORTFOLIO_REQUEST, format="json", HTTP_X_USER_ID="desk-7"
    )
    assert created.status_code == 200, created.content
    run_id = created.json()["backtest_id"]
    assert Backtest.objects.get(pk=run_id).owner == user

    assert owner_client.get(f"/api/v1/backtest/runs/{run_id}").status_code == 200
    assert client_for(other_user).get(f"/api/v1/backtest/runs/{run_id}").status_code == 404
    assert client_for(other_user).get(f"/api/v2/backtest/runs/{run_id}").status_code == 404
    # The label the owner used opens nothing for anyone else.
    for client in (client_for(other_user), APIClient()):
        response = client.get(f"/api/v1/backtest/runs/{run_id}", HTTP_X_USER_ID="desk-7")
        assert response.status_code == 404
        listed = client.get("/api/v1/backtest/runs", HTTP_X_USER_ID="desk-7")
        assert run_id not in ids_in(listed.json())


def test_backfolio_run_of_someone_else_made_by_factory_is_404(other_user, user):
    run = BacktestFactory(
        owner=other_user, strategy=None, source=Backtest.Source.V2, user_ref="desk-7"
    )

    for client in (client_for(user), APIClient()):
        assert client.get(f"/api/v1/backtest/runs/{run.id}").status_code == 404
        assert (
            client.get(f"/api/v1/backtest/runs/{run.id}", HTTP_X_USER_ID="desk-7").status_code
            == 404
        )


# --- X-User-Id is never an identity --------------------------------------------------------


@pytest.mark.parametrize("label", ["analyst", "1", "staff", "other"])
def test_x_user_id_grants_nothing(world, label):
    client = APIClient()
    for row in ("mine", "theirs", "staff"):
        backtest = world[row]
        assert client.get(f"{V1}/{backtest.id}", HTTP_X_USER_ID=label).status_code == 404, row
        assert client.get(f"/api/backtests/{backtest.id}", HTTP_X_USER_ID=label).status_code == 401
    assert ids_in(client.get(V1, HTTP_X_USER_ID=label).json()) == {str(world["ownerless"].id)}


# --- BACKFOLIO_REQUIRE_AUTH ----------------------------------------------------------------

EVERY_API = [
    ("get", "/api/v1/strategies", None),
    ("post", "/api/v1/strategies", {"name": "Anonymous"}),
    ("get", f"/api/v1/strategies/{uuid.uuid4()}", None),
    ("get", V1, None),
    ("post", V1, {"strategy_id": str(uuid.uuid4()), "engine": "vectorbt", "config": {}}),
    ("get", f"{V1}/{uuid.uuid4()}", None),
    ("get", f"{V1}/engines/available", None),
    ("post", f"{V1}/compare", {"backtest_ids": [str(uuid.uuid4()), str(uuid.uuid4())]}),
    ("post", f"{V1}/sweep", {}),
    ("get", f"/api/v1/tasks/{uuid.uuid4()}", None),
    ("get", "/api/v1/market-data/symbols", None),
    ("post", "/api/v1/backtest", PORTFOLIO_REQUEST),
    ("get", "/api/v1/backtest/examples", None),
    ("get", "/api/v1/backtest/runs", None),
    ("get", f"/api/v1/backtest/runs/{uuid.uuid4()}", None),
    ("post", "/api/v2/backtest", PORTFOLIO_REQUEST),
    ("get", "/api/backtests", None),
    ("get", f"/api/backtests/{uuid.uuid4()}", None),
    ("post", "/api/backtests", {}),
]


@pytest.mark.parametrize(("method", "path", "body"), EVERY_API)
def test_require_auth_closes_every_api_to_anonymous_callers(settings, db, method, path, body):
    settings.BACKFOLIO_REQUIRE_AUTH = True

    response = getattr(APIClient(), method)(path, body, format="json", HTTP_X_USER_ID="analyst")

    assert response.status_code == 401, response.content


@pytest.mark.parametrize(
    "path", ["/api/v1/strategies", V1, f"{V1}/engines/available", "/api/v1/backtest/examples"]
)
def test_require_auth_lets_users_in(settings, user, path):
    settings.BACKFOLIO_REQUIRE_AUTH = True

    assert client_for(user).get(path).status_code == 200
    assert client_for(user, bearer=False).get(path).status_code == 200


@pytest.mark.parametrize(
    "path", ["/api/v1/strategies", V1, f"{V1}/engines/available", "/api/v1/backtest/examples"]
)
def test_open_by_default(settings, db, path):
    settings.BACKFOLIO_REQUIRE_AUTH = False

    assert APIClient().get(path).status_code == 200


def test_an_invalid_token_is_refused_even_when_auth_is_optional(settings, db):
    settings.BACKFOLIO_REQUIRE_AUTH = False
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer forged.token.value")

    assert client.get(V1).status_code == 401


# --- results API: 403, not 404 -------------------------------------------------------------


def test_results_api_forbids_rather_than_hides(world, user):
    client = client_for(user)

    assert client.get(f"/api/backtests/{world['theirs'].id}").status_code == 403
    assert client.get(f"/api/backtests/{world['staff'].id}").status_code == 403
    assert client.get(f"/api/backtests/{world['mine'].id}").status_code == 200
    assert client.get(f"/api/backtests/{world['ownerless'].id}").status_code == 200
    assert ids_in(client.get("/api/backtests").json()) == {str(world["mine"].id)}

"""A shared (ownerless) strategy is editable and deletable by anyone, so nothing done to it may
reach another user's runs: a backtest executes the strategy as it was when the backtest was
created, and a strategy with other users' runs on it cannot be deleted by someone else."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from rest_framework.test import APIClient

from backtests.models import Backtest, Sweep
from strategies.models import Strategy
from tests.factories import BacktestFactory, StrategyFactory

pytestmark = pytest.mark.django_db

V1 = "/api/v1/backtests"
STRATEGIES = "/api/v1/strategies"
CONFIG = {"symbol": "SPY", "start_date": "2019-01-01", "end_date": "2020-12-31"}
# Long above the 50-day average, flat below: a strategy that trades, unlike buy and hold.
TREND = {
    "entry": {"left": {"type": "Close"}, "comparison": ">", "right": {"type": "SMA", "window": 50}},
    "exit": {"left": {"type": "Close"}, "comparison": "<", "right": {"type": "SMA", "window": 50}},
}


@pytest.fixture
def owner_client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def create_and_run(client, strategy_id) -> dict:
    created = client.post(
        V1,
        {"strategy_id": str(strategy_id), "engine": "vectorbt", "config": CONFIG},
        format="json",
    )
    assert created.status_code == 201, created.content
    executed = client.post(f"{V1}/{created.json()['id']}/execute")
    assert executed.status_code == 200, executed.content
    assert executed.json()["status"] == "completed", executed.content
    return executed.json()


def test_an_anonymous_edit_of_a_shared_strategy_does_not_change_what_my_run_executes(
    owner_client,
):
    shared = APIClient().post(STRATEGIES, {"name": "Shared buy and hold"}, format="json").json()
    mine = create_and_run(owner_client, shared["id"])
    assert mine["metrics"]["trade_total_trades"] == 1  # buy and hold: one position

    edited = APIClient().patch(f"{STRATEGIES}/{shared['id']}", {"definition": TREND}, format="json")
    assert edited.status_code == 200

    rerun = owner_client.post(f"{V1}/{mine['id']}/execute")
    assert rerun.status_code == 200
    assert rerun.json()["metrics"] == mine["metrics"]
    assert rerun.json()["strategy_id"] == shared["id"]  # still shown
    # A backtest created after the edit runs the edited definition.
    fresh = create_and_run(owner_client, shared["id"])
    assert fresh["metrics"]["trade_total_trades"] > 1


def test_the_snapshot_is_taken_at_creation_on_every_path(user):
    strategy = StrategyFactory(definition=TREND, universe=["SPY"], timeframe="1wk")
    expected = {
        "kind": "signal",
        "definition": TREND,
        "universe": ["SPY"],
        "timeframe": "1wk",
        "version": 1,
    }
    created = APIClient().post(
        V1, {"strategy_id": str(strategy.id), "engine": "vectorbt", "config": CONFIG}, format="json"
    )
    assert Backtest.objects.get(pk=created.json()["id"]).strategy_snapshot == expected
    swept = APIClient().post(
        f"{V1}/sweep",
        {
            "strategy_id": str(strategy.id),
            "engine": "vectorbt",
            "base_config": CONFIG,
            "param_grid": [{"stop_loss": 0.05}, {"stop_loss": 0.1}],
            "rank_metric": "perf_sharpe_ratio",
        },
        format="json",
    )
    assert swept.status_code == 200, swept.content
    children = Backtest.objects.filter(sweep__isnull=False)
    assert [child.strategy_snapshot for child in children] == [expected, expected]


def test_deleting_a_shared_strategy_never_deletes_other_users_runs(user, owner_client):
    shared = StrategyFactory(owner=None)
    private_run = BacktestFactory(strategy=shared, owner=user)
    their_sweep = Sweep.objects.create(
        strategy=shared, engine="vectorbt", rank_metric="perf_sharpe_ratio", owner=user
    )

    response = APIClient().delete(f"{STRATEGIES}/{shared.id}")

    assert response.status_code == 409
    assert response.json() == {
        "detail": f"Strategy {shared.id} cannot be deleted: other users' runs are built on it."
    }
    assert Strategy.objects.filter(pk=shared.pk).exists()
    assert Backtest.objects.filter(pk=private_run.pk).exists()
    assert Sweep.objects.filter(pk=their_sweep.pk).exists()
    # The owner of those runs may delete it (and its runs) themselves.
    assert owner_client.delete(f"{STRATEGIES}/{shared.id}").status_code == 204
    assert not Backtest.objects.filter(pk=private_run.pk).exists()


def test_a_sweep_of_another_user_alone_also_keeps_the_strategy(user):
    shared = StrategyFactory(owner=None)
    Sweep.objects.create(
        strategy=shared, engine="vectorbt", rank_metric="perf_sharpe_ratio", owner=user
    )
    assert APIClient().delete(f"{STRATEGIES}/{shared.id}").status_code == 409


def test_a_strategy_whose_runs_the_caller_may_delete_goes_with_them(user, staff_user):
    shared = StrategyFactory(owner=None)
    public_run = BacktestFactory(strategy=shared, owner=None)
    assert APIClient().delete(f"{STRATEGIES}/{shared.id}").status_code == 204
    assert not Backtest.objects.filter(pk=public_run.pk).exists()

    staff = APIClient()
    staff.force_authenticate(staff_user)
    another = StrategyFactory(owner=None)
    BacktestFactory(strategy=another, owner=user)
    assert staff.delete(f"{STRATEGIES}/{another.id}").status_code == 204
    assert not Backtest.objects.filter(strategy_id=another.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_the_migration_pins_existing_backtests_to_their_strategy():
    executor = MigrationExecutor(connection)
    before = [("backtests", "0001_initial"), ("strategies", "0001_initial")]
    after = [("backtests", "0002_strategy_snapshot_and_owner_cascade")]
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    strategy = old.get_model("strategies", "Strategy").objects.create(
        name="Old", kind="signal", definition=TREND, universe=["SPY"], timeframe="1d", version=3
    )
    old_backtest = old.get_model("backtests", "Backtest")
    run = old_backtest.objects.create(strategy=strategy, engine="vectorbt", config=CONFIG)
    portfolio_run = old_backtest.objects.create(strategy=None, engine="vectorbt", config={})

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(after)
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    assert Backtest.objects.get(pk=run.pk).strategy_snapshot == {
        "kind": "signal",
        "definition": TREND,
        "universe": ["SPY"],
        "timeframe": "1d",
        "version": 3,
    }
    assert Backtest.objects.get(pk=portfolio_run.pk).strategy_snapshot is None


def test_an_edit_of_a_shared_strategy_does_not_change_a_walk_forward_under_way(owner_client):
    from backtests.research.walk_forward.jobs import combination_spec
    from backtests.research.walk_forward.models import WalkForward

    shared = StrategyFactory(owner=None, definition=TREND)
    created = owner_client.post(
        "/api/v1/research/walk-forward",
        {
            "strategy_id": str(shared.id),
            "base_config": {"symbol": "SPY", "start_date": "2016-01-01", "end_date": "2019-12-31"},
            "grid": {"stop_loss": [0.05, 0.1]},
            "rank_metric": "perf_sharpe_ratio",
            "scheme": "rolling",
            "in_sample_months": 24,
            "out_of_sample_months": 6,
        },
        format="json",
    )
    assert created.status_code == 202, created.content

    edited = APIClient().patch(f"{STRATEGIES}/{shared.id}", {"definition": None}, format="json")
    assert edited.status_code == 200

    walk_forward = WalkForward.objects.get()
    spec = combination_spec(walk_forward, {"stop_loss": 0.05})
    assert spec.definition == TREND
    assert walk_forward.strategy_snapshot["definition"] == TREND


def test_a_rerun_on_the_other_engine_runs_what_the_original_ran(staff_user):
    from django.test import Client

    shared = StrategyFactory(owner=None, definition=TREND)
    original = BacktestFactory(strategy=shared, engine="vectorbt", config=CONFIG)
    APIClient().patch(f"{STRATEGIES}/{shared.id}", {"definition": None}, format="json")

    staff = Client()
    staff.force_login(staff_user)
    staff.post(
        "/admin/backtests/backtest/",
        {"action": "rerun_on_other_engine", "_selected_action": [original.id]},
    )

    twin = Backtest.objects.exclude(pk=original.pk).get()
    assert twin.engine == "backtrader"
    assert twin.strategy_snapshot == original.strategy_snapshot
    assert twin.strategy_snapshot["definition"] == TREND

"""Services: validation before any write, conflicts, and the sweep's fan-out."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from backfolio.common.errors import Conflict, InvalidInput
from backtests import services
from backtests.models import Backtest, Sweep, Task
from tests.factories import BacktestFactory, StrategyFactory, stored_v1_metrics

pytestmark = pytest.mark.django_db

CONFIG = {"symbol": "SPY", "start_date": "2019-01-01", "end_date": "2020-12-31"}


def test_create_validates_before_writing():
    strategy = StrategyFactory()
    with pytest.raises(InvalidInput) as raised:
        services.backtest_create(
            strategy=strategy, engine="nope", config={**CONFIG, "typo": 1}, initial_capital=-1
        )
    assert set(raised.value.errors) == {"engine", "initial_capital", "config"}
    assert raised.value.errors["config"] == {"typo": [raised.value.errors["config"]["typo"][0]]}
    assert not Backtest.objects.exists()


def test_create_records_owner_and_source(user):
    backtest = services.backtest_create(
        strategy=StrategyFactory(),
        engine="backtrader",
        config=CONFIG,
        owner=user,
        source=Backtest.Source.UI,
    )
    assert (backtest.status, backtest.owner, backtest.source) == ("pending", user, "ui")


def test_sync_execute_and_conflict():
    backtest = BacktestFactory(engine="backtrader", config=CONFIG)
    with CaptureQueriesContext(connection) as queries:
        executed = services.backtest_execute(backtest=backtest)
    assert executed.status == "completed" and executed.run_count == 1
    own = [q["sql"] for q in queries.captured_queries if "backtests_" in q["sql"]]
    # Claim and finish, plus at most one progress write on a slow machine.
    assert len([sql for sql in own if 'progress" = ' not in sql or "completed" in sql]) == 2
    Backtest.objects.filter(pk=backtest.pk).update(status="running")
    backtest.refresh_from_db()
    with pytest.raises(Conflict):
        services.backtest_execute(backtest=backtest)
    with pytest.raises(Conflict):
        services.backtest_execute_async(backtest=backtest)


def test_sweep_rejects_bad_grids_and_creates_nothing():
    strategy = StrategyFactory()

    def errors(**changes):
        arguments = {
            "strategy": strategy,
            "engine": "backtrader",
            "base_config": CONFIG,
            "param_grid": [{}],
            "rank_metric": "total_return",
            **changes,
        }
        with pytest.raises(InvalidInput) as raised:
            services.sweep_create(**arguments)
        return raised.value.errors

    assert errors(param_grid=[]) == {
        "param_grid": ["Must be a list of 1 to 50 override objects (got 0)."]
    }
    assert errors(param_grid=[{}] * 51) == {
        "param_grid": ["Must be a list of 1 to 50 override objects (got 51)."]
    }
    assert list(errors(rank_metric="luck")) == ["rank_metric"]
    assert errors(param_grid=[{}, {"stop_loss": -1}, "x"]) == {
        "param_grid": {
            "1": {"stop_loss": ["Must be greater than 0."]},
            "2": {"non_field_errors": ["Must be a JSON object."]},
        }
    }
    assert not Sweep.objects.exists() and not Backtest.objects.exists()
    assert not Task.objects.exists()


def test_sweep_creates_one_pending_child_per_entry(django_capture_on_commit_callbacks, broker):
    strategy = StrategyFactory()
    grid = [{"signal_plugin_params": {"window": w}} for w in (10, 20, 30)]
    with django_capture_on_commit_callbacks(execute=True):
        task = services.sweep_create(
            strategy=strategy,
            engine="backtrader",
            base_config={**CONFIG, "signal_plugin_key": "breakout"},
            param_grid=grid,
            rank_metric="risk_max_drawdown",
        )
    children = list(task.sweep.backtests.order_by("sweep_index"))
    assert [child.config["signal_plugin_params"] for child in children] == [
        entry["signal_plugin_params"] for entry in grid
    ]
    assert {child.status for child in children} == {"pending"}
    assert (task.kind, task.status, task.total) == ("sweep", "PENDING", 3)
    assert queued_messages(broker) == 3


def queued_messages(broker) -> int:
    """Messages waiting in the default queue, on the in-process broker or on Redis."""
    from dramatiq.brokers.stub import StubBroker

    if isinstance(broker, StubBroker):
        return broker.queues["default"].qsize()
    return broker.client.llen(f"{broker.namespace}:default")


@pytest.mark.parametrize(
    ("metric", "expected_order"),
    [("trade_turnover_annualised", [1, 2, 0]), ("trade_avg_win", [0, 2, 1])],
)
def test_sweep_leaderboard_ranks_by_the_metrics_direction(metric, expected_order):
    from backtests.jobs.leaderboard import sweep_leaderboard

    strategy = StrategyFactory()
    sweep = Sweep.objects.create(
        strategy=strategy,
        engine="vectorbt",
        base_config=CONFIG,
        param_grid=[{}] * 3,
        rank_metric=metric,
    )
    for index, value in enumerate((3.0, 1.0, 2.0)):
        BacktestFactory(
            strategy=strategy,
            sweep=sweep,
            sweep_index=index,
            status="completed",
            **stored_v1_metrics({metric: value}),
        )
    leaderboard = sweep_leaderboard(sweep)["leaderboard"]
    children = list(sweep.backtests.order_by("sweep_index"))
    assert [entry["backtest_id"] for entry in leaderboard] == [
        str(children[index].pk) for index in expected_order
    ]

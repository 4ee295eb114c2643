"""Runs through real Dramatiq workers (the configured broker: in-process stub, or Redis when
REDIS_URL is set), polled through /api/v1/tasks/{id}; and the reaper recovering dead runs."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from backtests.jobs import reaper
from backtests.models import Backtest, Task
from tests.factories import BacktestFactory, StrategyFactory

CONFIG = {"symbol": "SPY", "start_date": "2019-01-01", "end_date": "2020-12-31"}


def poll(client, task_id, *, until=("SUCCESS", "FAILURE"), timeout=60.0):
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.get(f"/api/v1/tasks/{task_id}")
        assert response.status_code == 200, response.content  # readers never meet a lock
        body = response.json()
        seen.append((body["status"], body["done"]))
        if body["status"] in until:
            return body, seen
        time.sleep(0.1)
    raise AssertionError(f"task {task_id} did not finish: {seen[-5:]}")


@pytest.mark.django_db(transaction=True)
def test_async_execute_runs_on_a_worker(worker):
    client = APIClient()
    backtest = BacktestFactory(engine="backtrader", config=CONFIG)

    response = client.post(f"/api/v1/backtests/{backtest.id}/execute/async")
    assert response.status_code == 200
    assert response.json()["status"] == "PENDING"

    body, _seen = poll(client, response.json()["task_id"])
    assert body["status"] == "SUCCESS"
    assert body["done"] == body["total"] == 1
    assert body["result"]["backtest_id"] == str(backtest.id)
    assert body["result"]["status"] == "completed"
    detail = client.get(f"/api/v1/backtests/{backtest.id}").json()
    assert detail["status"] == "completed"
    assert detail["metrics"] == body["result"]["metrics"]
    assert detail["started_at"] <= detail["completed_at"]
    assert client.get(f"/api/v1/backtests/{backtest.id}/equity-curve").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_duplicate_message_does_not_rerun(worker, broker):
    backtest = BacktestFactory(engine="backtrader", config=CONFIG)
    task = Task.objects.create(kind=Task.Kind.EXECUTE, backtest=backtest)
    from backtests.tasks import execute_backtest

    execute_backtest.send(str(backtest.id), str(task.id))
    execute_backtest.send(str(backtest.id), str(task.id))
    broker.join(execute_backtest.queue_name)
    worker.join()
    backtest.refresh_from_db()
    assert backtest.status == "completed"
    assert backtest.run_count == 1


@pytest.mark.django_db(transaction=True)
def test_twelve_entry_sweep_runs_in_parallel_with_a_leaderboard(worker):
    client = APIClient()
    strategy = StrategyFactory()
    grid = [
        {"signal_plugin_params": {"fast": fast, "slow": slow}}
        for fast in (5, 10, 20)
        for slow in (30, 50, 100, 150)
    ]
    grid[11] = {
        "signal_plugin_params": {"fast": 20, "slow": 150},
        "size": 1.0,
        "size_type": "percent",
    }
    body = {
        "strategy_id": str(strategy.id),
        "engine": "backtrader",
        "base_config": {**CONFIG, "signal_plugin_key": "sma_crossover"},
        "param_grid": grid,
        "rank_metric": "perf_sharpe_ratio",
    }
    response = client.post("/api/v1/backtests/sweep", body, format="json")
    assert response.status_code == 200
    assert response.json()["n_configs"] == 12
    # Break one entry after validation so that a failed run shows in the leaderboard.
    failing = Backtest.objects.get(sweep_index=3)
    Backtest.objects.filter(pk=failing.pk).update(config={**failing.config, "size": 9.0})

    result, seen = poll(client, response.json()["task_id"], timeout=120)

    assert result["status"] == "SUCCESS"
    assert (result["done"], result["total"]) == (12, 12)
    assert any(status == "PROGRESS" and 0 < done < 12 for status, done in seen) or len(seen) < 3
    board = result["result"]
    assert (board["total_runs"], board["completed"], board["failed"]) == (12, 11, 1)
    rows = board["leaderboard"]
    assert [row["rank"] for row in rows] == list(range(1, 13))
    scores = [row["score"] for row in rows[:11]]
    assert scores == sorted(scores, reverse=True)
    last = rows[-1]
    assert last["backtest_id"] == str(failing.pk)
    assert (last["status"], last["score"]) == ("failed", None)
    assert last["error"] == "Invalid configuration: size: Must be at most 1."
    assert rows[0]["rank_metric"] == "perf_sharpe_ratio"
    assert rows[0]["metrics_summary"]["perf_sharpe_ratio"] == rows[0]["score"]
    index = {row["backtest_id"]: row for row in rows}
    for child in Backtest.objects.filter(sweep__isnull=False):
        assert index[str(child.pk)]["overrides"] == grid[child.sweep_index]


@pytest.mark.django_db(transaction=True)
def test_reaper_fails_a_run_whose_worker_died(settings):
    """A worker that died mid-run left its row `running` with an old heartbeat."""
    settings.BACKFOLIO_REAPER_INTERVAL_SECONDS = 0
    long_ago = timezone.now() - timedelta(seconds=settings.BACKFOLIO_HEARTBEAT_TIMEOUT_SECONDS + 5)
    backtest = BacktestFactory(
        status="running", run_count=1, started_at=long_ago, heartbeat_at=long_ago
    )
    task = Task.objects.create(
        kind=Task.Kind.EXECUTE, backtest=backtest, status=Task.Status.STARTED
    )
    fresh = BacktestFactory(status="running", run_count=1, heartbeat_at=timezone.now())
    client = APIClient()

    body = client.get(f"/api/v1/tasks/{task.id}").json()

    assert body["status"] == "FAILURE"
    assert "stopped responding" in body["error"]
    backtest.refresh_from_db()
    assert backtest.status == "failed"
    assert backtest.metrics == {"error": backtest.error}
    fresh.refresh_from_db()
    assert fresh.status == "running"
    # The row is free again: it can be executed.
    response = client.post(f"/api/v1/backtests/{backtest.id}/execute")
    assert response.status_code == 200


@pytest.mark.django_db(transaction=True)
def test_reaper_counts_a_dead_sweep_entry_and_finishes_the_sweep(settings):
    from backtests.models import Sweep

    strategy = StrategyFactory()
    sweep = Sweep.objects.create(
        strategy=strategy,
        engine="backtrader",
        base_config=CONFIG,
        param_grid=[{}, {}],
        rank_metric="total_return",
    )
    long_ago = timezone.now() - timedelta(hours=1)
    done = BacktestFactory(
        strategy=strategy,
        sweep=sweep,
        sweep_index=0,
        status="completed",
        metrics={"total_return": 0.1},
    )
    dead = BacktestFactory(
        strategy=strategy,
        sweep=sweep,
        sweep_index=1,
        status="running",
        run_count=1,
        heartbeat_at=long_ago,
    )
    task = Task.objects.create(
        kind=Task.Kind.SWEEP, sweep=sweep, total=2, done=1, status=Task.Status.PROGRESS
    )

    assert reaper.reap_stale_runs()["failed"] == 1

    task.refresh_from_db()
    assert (task.status, task.done) == ("SUCCESS", 2)
    assert [row["backtest_id"] for row in task.result["leaderboard"]] == [
        str(done.id),
        str(dead.id),
    ]
    assert task.result["leaderboard"][1]["score"] is None


@pytest.mark.django_db(transaction=True)
def test_reaper_runs_when_a_worker_starts(broker):
    import dramatiq

    long_ago = timezone.now() - timedelta(hours=1)
    backtest = BacktestFactory(status="running", run_count=1, heartbeat_at=long_ago)
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            backtest.refresh_from_db()
            if backtest.status == "failed":
                break
            time.sleep(0.1)
    finally:
        worker.stop()
    assert backtest.status == "failed"


@pytest.mark.django_db(transaction=True)
def test_lost_pending_message_is_requeued(worker, settings):
    backtest = BacktestFactory(engine="backtrader", config=CONFIG)
    task = Task.objects.create(kind=Task.Kind.EXECUTE, backtest=backtest)
    old = timezone.now() - timedelta(hours=1)
    Task.objects.filter(pk=task.pk).update(updated_at=old)

    assert reaper.reap_stale_runs()["requeued"] == 1

    body, _ = poll(APIClient(), task.id)
    assert body["status"] == "SUCCESS"

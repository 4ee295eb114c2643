"""Workers and the broker failing for real: SIGKILL mid-run, Redis lost mid-sweep.

These need PostgreSQL (so a separate worker process shares the test database) and Redis (so it
shares the queue); they skip otherwise. Each uses a private ``redis-server`` on a free port, so
the machine's Redis and anybody else's queue are untouched, and a heartbeat timeout of a few
seconds, so the reaper acts quickly.
"""

import os

import pytest
from django.db import connection

from backtests import services, tasks
from backtests.jobs import reaper
from backtests.models import Backtest, Task
from strategies.models import Strategy
from tests.reliability.conftest import wait_until
from tests.reliability.services import PrivateRedis, rundramatiq

pytestmark = [
    pytest.mark.services,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not (
            os.environ.get("DATABASE_URL", "").startswith("postgres")
            and os.environ.get("REDIS_URL")
        ),
        reason="needs PostgreSQL (DATABASE_URL) and Redis (REDIS_URL)",
    ),
]

HEARTBEAT_TIMEOUT = 3
WORKER_BOOT_SECONDS = 150  # the worker warms the engines before it consumes anything
LONG_CONFIG = {
    "symbol": "SPY",
    "start_date": "2004-01-01",
    "end_date": "2023-12-31",
    "signal_plugin_key": "sma_crossover",
    "signal_plugin_params": {"fast": 10, "slow": 40},
}


@pytest.fixture
def private_broker(monkeypatch, settings):
    """The actors send to a private Redis for the duration of the test."""
    from dramatiq.brokers.redis import RedisBroker

    settings.BACKFOLIO_HEARTBEAT_TIMEOUT_SECONDS = HEARTBEAT_TIMEOUT
    settings.BACKFOLIO_REAPER_INTERVAL_SECONDS = 0
    with PrivateRedis() as server:
        broker = RedisBroker(url=server.url)
        broker.declare_queue("default")
        for actor in (tasks.execute_backtest, tasks.run_sweep_entry):
            monkeypatch.setattr(actor, "broker", broker)
        yield server, broker
        broker.close()


def _strategy() -> Strategy:
    return Strategy.objects.create(name="faults", kind="signal")


def _row(backtest_id) -> Backtest:
    return Backtest.objects.get(pk=backtest_id)


def test_worker_killed_mid_run_leaves_a_failed_row_with_a_reason(private_broker, api_client):
    server, _broker = private_broker
    backtest = Backtest.objects.create(
        strategy=_strategy(), engine="backtrader", initial_capital=10000, config=LONG_CONFIG
    )
    task = services.backtest_execute_async(backtest=backtest)

    with rundramatiq(
        redis_url=server.url,
        database_name=connection.settings_dict["NAME"],
        heartbeat_timeout=HEARTBEAT_TIMEOUT,
    ) as worker:
        wait_until(
            lambda: _row(backtest.pk).status == Backtest.Status.RUNNING,
            timeout=WORKER_BOOT_SECONDS,
            what=f"the worker to start the run (log: {worker.log_path})",
        )
        # The machine dies: no signal handler, no chance to write anything.
        os.killpg(worker.pid, 9)
        worker.wait(timeout=10)

    assert _row(backtest.pk).status == Backtest.Status.RUNNING  # what a dead worker leaves
    # Any read through the API runs the (throttled) reaper.
    body = wait_until(
        lambda: (
            (
                (response := api_client.get(f"/api/v1/backtests/{backtest.pk}").json())["status"]
                == "failed"
            )
            and response
        ),
        timeout=HEARTBEAT_TIMEOUT * 5,
        what="the reaper to fail the abandoned run",
    )
    assert "stopped responding" in body["metrics"]["error"]
    row = _row(backtest.pk)
    assert row.equity_curve_uri is None and row.completed_at is not None
    task.refresh_from_db()
    assert task.status == Task.Status.FAILURE and "stopped responding" in task.error


def test_a_run_past_the_time_limit_fails_in_a_rundramatiq_worker(private_broker):
    """The third mode of the run time limit (after sync and in-process workers: see
    ``tests/security/test_run_time_limit.py``): a separate worker process stops the run at
    ``BACKFOLIO_RUN_TIME_LIMIT_SECONDS`` and fails it with the reason."""
    from tests.security.test_run_time_limit import HEAVY_V1_CONFIG, STOPPED

    server, _broker = private_broker
    backtest = Backtest.objects.create(
        strategy=_strategy(), engine="vectorbt", initial_capital=10000, config=HEAVY_V1_CONFIG
    )
    task = services.backtest_execute_async(backtest=backtest)

    with rundramatiq(
        redis_url=server.url,
        database_name=connection.settings_dict["NAME"],
        heartbeat_timeout=HEARTBEAT_TIMEOUT,
        extra_env={"BACKFOLIO_RUN_TIME_LIMIT_SECONDS": "1"},
    ) as worker:
        wait_until(
            lambda: _row(backtest.pk).status == Backtest.Status.FAILED,
            timeout=WORKER_BOOT_SECONDS,
            what=f"the worker to stop the run (log: {worker.log_path})",
        )

    row = _row(backtest.pk)
    assert row.error == STOPPED
    assert row.equity_curve_uri is None
    task.refresh_from_db()
    assert task.status == Task.Status.FAILURE
    assert task.error == STOPPED


def test_broker_lost_mid_sweep_still_finishes_the_sweep(private_broker):
    server, _broker = private_broker
    grid = [{"signal_plugin_params": {"fast": fast, "slow": 60}} for fast in (5, 10, 15, 20)]
    task = services.sweep_create(
        strategy=_strategy(),
        engine="backtrader",
        base_config={**LONG_CONFIG, "start_date": "2014-01-01"},
        param_grid=grid,
        rank_metric="perf_sharpe_ratio",
    )
    assert server.process is not None

    with rundramatiq(
        redis_url=server.url,
        database_name=connection.settings_dict["NAME"],
        heartbeat_timeout=HEARTBEAT_TIMEOUT,
    ) as worker:
        wait_until(
            lambda: Backtest.objects.filter(
                sweep=task.sweep_id, status=Backtest.Status.RUNNING
            ).exists(),
            timeout=WORKER_BOOT_SECONDS,
            what=f"the first sweep entry to start (log: {worker.log_path})",
        )
        # Redis restarts without persistence: the queued entries are lost.
        server.crash()
        server.start()
        task = wait_until(
            lambda: (
                (
                    (refreshed := Task.objects.get(pk=task.pk)).status
                    in (Task.Status.SUCCESS, Task.Status.FAILURE)
                )
                and refreshed
            ),
            timeout=120,
            what="the sweep to finish after the broker restart",
        )

    assert task.status == Task.Status.SUCCESS
    assert task.done == task.total == len(grid)
    leaderboard = task.result["leaderboard"]
    assert len(leaderboard) == len(grid)
    assert all(entry["status"] in ("completed", "failed") for entry in leaderboard)
    assert not Backtest.objects.filter(
        sweep=task.sweep_id, status__in=(Backtest.Status.PENDING, Backtest.Status.RUNNING)
    ).exists()
    reaper.reap_stale_runs()  # nothing left for the reaper

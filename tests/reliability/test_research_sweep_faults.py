"""A research sweep survives a worker killed with SIGKILL mid-chunk: the chunk is re-run, no
entry is counted twice, and the sweep ends with the leaderboard and overfitting block of an
undisturbed run of the same sweep.

Needs PostgreSQL (so ``rundramatiq`` processes share the test database) and Redis (so they
share the queue); skips otherwise. A private ``redis-server`` on a free port keeps everybody
else's queue untouched; a heartbeat timeout of a few seconds lets the reaper act quickly.
"""

import os

import pytest
from django.db import connection
from rest_framework.test import APIClient

from backtests.research import services
from backtests.research import tasks as research_tasks
from backtests.research.models import ResearchSweep, ResearchSweepChunk
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
SWEEP = {
    "engine": "backtrader",  # one run at a time: a chunk lasts long enough to be killed in
    "base_config": {
        "symbol": "SPY",
        "start_date": "2010-01-01",
        "end_date": "2023-12-31",
        "signal_plugin_key": "sma_crossover",
    },
    "grid": {"signal_plugin_params.fast": [5, 10, 20], "signal_plugin_params.slow": [50, 100]},
    "rank_metric": "perf_sharpe_ratio",
    "partitions": 8,
    "spa_reps": 200,
}


@pytest.fixture
def private_broker(monkeypatch, settings):
    from dramatiq.brokers.redis import RedisBroker

    settings.BACKFOLIO_HEARTBEAT_TIMEOUT_SECONDS = HEARTBEAT_TIMEOUT
    settings.BACKFOLIO_REAPER_INTERVAL_SECONDS = 0
    monkeypatch.setattr(services, "SINGLE_RUN_CHUNK_SIZE", 2)
    with PrivateRedis() as server:
        broker = RedisBroker(url=server.url)
        broker.declare_queue("default")
        for actor in (research_tasks.run_research_chunk, research_tasks.finish_research_sweep):
            monkeypatch.setattr(actor, "broker", broker)
        yield server
        broker.close()


def _finished(sweep_id):
    sweep = ResearchSweep.objects.get(pk=sweep_id)
    return sweep if sweep.status in ("completed", "failed") else None


def test_worker_killed_mid_chunk_loses_nothing_and_counts_nothing_twice(private_broker):
    server = private_broker
    strategy = Strategy.objects.create(name="faults", kind="signal")
    disturbed = services.research_sweep_create(strategy=strategy, **SWEEP)
    assert disturbed.chunks.count() == 6  # at most 2 entries per chunk: ⌈left / 8⌉ is 1 here
    database = connection.settings_dict["NAME"]

    with rundramatiq(
        redis_url=server.url, database_name=database, heartbeat_timeout=HEARTBEAT_TIMEOUT
    ) as worker:
        victim = wait_until(
            lambda: ResearchSweepChunk.objects.filter(sweep=disturbed, status="running").first(),
            timeout=WORKER_BOOT_SECONDS,
            what=f"the worker to start a chunk (log: {worker.log_path})",
        )
        # The machine dies: no signal handler, no chance to write anything.
        os.killpg(worker.pid, 9)
        worker.wait(timeout=10)

    victim.refresh_from_db()
    assert (victim.status, victim.attempts) == ("running", 1)  # what a dead worker leaves
    assert not victim.entries.exists()
    done_at_kill = ResearchSweep.objects.get(pk=disturbed.pk).done

    undisturbed = services.research_sweep_create(strategy=strategy, **SWEEP)
    with rundramatiq(
        redis_url=server.url, database_name=database, heartbeat_timeout=HEARTBEAT_TIMEOUT
    ) as worker:
        for sweep in (disturbed, undisturbed):
            wait_until(
                lambda sweep=sweep: _finished(sweep.pk),
                timeout=WORKER_BOOT_SECONDS + 240,
                what=f"sweep {sweep.pk} to finish (log: {worker.log_path})",
            )

    disturbed.refresh_from_db()
    assert disturbed.status == "completed", disturbed.error
    assert disturbed.done == disturbed.total == 6 and done_at_kill < 6
    assert disturbed.entries.count() == 6
    assert sorted(disturbed.entries.values_list("number", flat=True)) == list(range(6))
    victim.refresh_from_db()
    assert (victim.status, victim.attempts) == ("completed", 2)  # re-run once, counted once
    assert victim.entries.count() == victim.size

    client = APIClient()
    views = [client.get(f"/api/v1/research/sweeps/{sweep.pk}").json() for sweep in
             (disturbed, undisturbed)]  # fmt: skip
    assert views[0]["leaderboard"] == views[1]["leaderboard"]
    assert views[0]["overfitting"] == views[1]["overfitting"]
    assert views[0]["overfitting"]["n_trials"] == 6
    task = client.get(f"/api/v1/tasks/{disturbed.task_id}").json()
    assert (task["status"], task["done"], task["total"]) == ("SUCCESS", 6, 6)

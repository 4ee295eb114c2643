"""A run stops at ``BACKFOLIO_RUN_TIME_LIMIT_SECONDS`` in every mode and fails with the reason.

The attack: a request whose indicators are heavy but each allowed kept a core busy for as long as
it took (27 s for one Backfolio request; a 21 s synchronous run and a 26 s async run completed
under a 5 s limit, because the embedded worker never started Dramatiq's time-limit watcher). Now
the core checks the run's deadline between indicator computations, between the steps of a run and
in the engines' bar loops, so the run ends at the limit in the request thread, in an embedded
worker thread and in a ``rundramatiq`` process alike. Here the limit is 1 s and the request asks
for ten distinct TA-Lib CCI indicators of window ~5,000 on GSPC since 1950 (about 0.3 s each).
"""

import socket
import time
from urllib.parse import urlsplit

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import TimeLimit
from rest_framework.test import APIClient

from backfolio import workers
from backfolio.deadline import RunTimeLimitExceeded, check_deadline, run_time_limit
from backtests.models import Backtest
from tests.backtests.test_tasks import poll
from tests.factories import BacktestFactory

STOPPED = (
    "The run was stopped: it exceeded the run time limit of 1 s (BACKFOLIO_RUN_TIME_LIMIT_SECONDS)."
)
HEAVY_CONDITION = {
    "op": "or",
    "conditions": [
        {
            "left": {"type": "talib", "function": "CCI", "timeperiod": 5000 + offset},
            "comparison": ">",
            "right": 100,
        }
        for offset in range(5)
    ]
    + [
        {
            "left": {"type": "talib", "function": "CCI", "timeperiod": 5100 + offset},
            "comparison": "<",
            "right": -100,
        }
        for offset in range(5)
    ],
}
HEAVY_V1_CONFIG = {
    "symbol": "GSPC",
    "start_date": "1950-01-03",
    "end_date": "2025-12-31",
    "signal": {"entry": HEAVY_CONDITION},
}
HEAVY_BACKFOLIO_REQUEST = {
    "strategy": {
        "allocations": {"stocks": {"GSPC": 1.0}, "cash": {"CASH": 1.0}},
        "fallback_allocation": "stocks",
        "switching_logic": [
            {
                "condition": {
                    **HEAVY_CONDITION,
                    "conditions": [
                        {**leaf, "left": {**leaf["left"], "symbol": "GSPC"}}
                        for leaf in HEAVY_CONDITION["conditions"]
                    ],
                },
                "target_allocation": "cash",
            }
        ],
    },
    "config": {
        "start_date": "1950-01-03",
        "end_date": "2025-12-31",
        "benchmark": "GSPC",
        "rebalance_frequency": "daily",
    },
}


@pytest.fixture
def one_second_limit(settings):
    settings.BACKFOLIO_RUN_TIME_LIMIT_SECONDS = 1


@pytest.mark.django_db
def test_a_sync_v1_run_over_the_limit_fails_with_the_reason(one_second_limit):
    client = APIClient()
    backtest = BacktestFactory(engine="vectorbt", config=HEAVY_V1_CONFIG)

    response = client.post(f"/api/v1/backtests/{backtest.id}/execute", {}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "failed"
    assert body["error"] == STOPPED
    assert body["metrics"] == {"error": STOPPED}
    assert body["equity_curve_uri"] is None
    assert body["trades_uri"] is None


@pytest.mark.django_db(transaction=True)
def test_a_sync_run_whose_client_went_away_still_stops_at_the_limit(one_second_limit, live_server):
    """The run belongs to the request thread, not to the connection: a client that sends its
    request and hangs up does not leave the run going past the limit."""
    backtest = BacktestFactory(engine="vectorbt", config=HEAVY_V1_CONFIG)
    address = urlsplit(live_server.url)
    request = (
        f"POST /api/v1/backtests/{backtest.id}/execute HTTP/1.1\r\n"
        f"Host: {address.netloc}\r\nContent-Type: application/json\r\n"
        "Content-Length: 2\r\nConnection: close\r\n\r\n{}"
    )
    with socket.create_connection((address.hostname, address.port)) as client:
        client.sendall(request.encode())
    # The client is gone; the row tells how the run ended.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        backtest.refresh_from_db()
        if backtest.status in (Backtest.Status.COMPLETED, Backtest.Status.FAILED):
            break
        time.sleep(0.1)
    assert backtest.status == Backtest.Status.FAILED
    assert backtest.error == STOPPED


@pytest.mark.django_db
def test_a_backfolio_run_over_the_limit_is_refused_in_the_contracts_envelope(one_second_limit):
    client = APIClient()

    response = client.post("/api/v1/backtest", HEAVY_BACKFOLIO_REQUEST, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "success": False,
        "error": "Backtest failed",
        "warnings": [STOPPED],
        "errors": [STOPPED],
    }
    assert not Backtest.objects.filter(source=Backtest.Source.V2).exists()


@pytest.mark.django_db(transaction=True)
def test_an_async_run_on_a_worker_over_the_limit_ends_failed(one_second_limit, worker):
    client = APIClient()
    backtest = BacktestFactory(engine="vectorbt", config=HEAVY_V1_CONFIG)

    response = client.post(f"/api/v1/backtests/{backtest.id}/execute/async")
    assert response.status_code == 200

    body, _seen = poll(client, response.json()["task_id"])
    assert body["status"] == "FAILURE"
    assert body["error"] == STOPPED
    backtest.refresh_from_db()
    assert backtest.status == Backtest.Status.FAILED
    assert backtest.error == STOPPED


@pytest.mark.skipif(
    not isinstance(dramatiq.get_broker(), StubBroker),
    reason="the embedded mode runs on the in-process broker only (no REDIS_URL)",
)
def test_the_embedded_worker_starts_dramatiqs_time_limit_watcher(settings, broker, monkeypatch):
    """The backstop for a run stuck between two checks: ``rundramatiq`` starts the watcher at
    process boot; the in-process worker of the embedded default now starts it too."""
    settings.BACKFOLIO_EMBEDDED_WORKERS = True
    monkeypatch.setattr(workers, "_worker", None)
    monkeypatch.setattr(workers.atexit, "register", lambda stop: None)  # stopped below
    monkeypatch.setattr(workers, "warm_engines", lambda: None)  # warming is not under test
    time_limits = [m for m in broker.middleware if isinstance(m, TimeLimit)]
    assert time_limits

    worker = workers.start_embedded_workers()
    try:
        assert all(middleware.manager.is_alive() for middleware in time_limits)
    finally:
        worker.stop()


def test_the_deadline_stops_work_inside_its_block_only():
    check_deadline()  # no limit outside a run
    with run_time_limit(0.05):
        check_deadline()
        with pytest.raises(RunTimeLimitExceeded) as stopped:
            for _ in range(10_000_000):
                check_deadline()
    assert stopped.value.seconds == 0.05
    check_deadline()


def test_a_nested_limit_never_extends_the_outer_one():
    with run_time_limit(0.05), run_time_limit(60), pytest.raises(RunTimeLimitExceeded):
        for _ in range(10_000_000):
            check_deadline()

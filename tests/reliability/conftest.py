"""Helpers shared by the fault tests: a quick signal backtest, free ports, bounded waits."""

import socket
import time

import pytest

SIGNAL_CONFIG = {
    "symbol": "SPY",
    "start_date": "2018-01-01",
    "end_date": "2019-12-31",
    "signal_plugin_key": "sma_crossover",
    "signal_plugin_params": {"fast": 10, "slow": 40},
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, *, timeout: float, interval: float = 0.2, what: str = "condition"):
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"Timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


@pytest.fixture
def signal_backtest_id(api_client):
    """An ownerless backtrader backtest of two years of SPY, created through the v1 API."""
    strategy = api_client.post(
        "/api/v1/strategies", {"name": "faults", "kind": "signal"}, format="json"
    )
    assert strategy.status_code == 201, strategy.content
    backtest = api_client.post(
        "/api/v1/backtests",
        {
            "strategy_id": strategy.json()["id"],
            "engine": "backtrader",
            "initial_capital": 10000,
            "config": SIGNAL_CONFIG,
        },
        format="json",
    )
    assert backtest.status_code == 201, backtest.content
    return backtest.json()["id"]

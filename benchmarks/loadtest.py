"""`make loadtest`: a bounded mixed workload on loopback, then proof that nothing was lost.

Reads, creates, sync and async executes, sweeps and Backfolio requests run from several client
threads for a fixed time against the service as `make run` starts it (with DATABASE_URL/REDIS_URL
exported: gunicorn + Redis `rundramatiq` workers + PostgreSQL). Afterwards every backtest created
must reach `completed` or `failed` with a reason, and every task a terminal state.
"""

import os
import random
import statistics
import sys
import threading
import time
from collections import defaultdict

import requests

from benchmarks import server

DURATION_SECONDS = float(os.environ.get("LOADTEST_SECONDS", "30"))
CLIENTS = int(os.environ.get("LOADTEST_CLIENTS", "6"))
SETTLE_SECONDS = 180


class Workload:
    def __init__(self, base: str):
        self.base = base
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, list[str]] = defaultdict(list)
        self.backtest_ids: set[str] = set()
        self.task_ids: set[str] = set()
        self.lock = threading.Lock()
        session = requests.Session()
        self.strategy_id = session.post(
            f"{base}/api/v1/strategies", json={"name": "load test", "kind": "signal"}, timeout=30
        ).json()["id"]

    def call(self, session, name, method, path, expected, **kwargs):
        started = time.perf_counter()
        try:
            response = session.request(method, self.base + path, timeout=120, **kwargs)
            ok = response.status_code in expected
            detail = "" if ok else f"{response.status_code}: {response.text[:200]}"
        except requests.RequestException as exc:
            response, ok, detail = None, False, str(exc)
        with self.lock:
            self.latencies[name].append(time.perf_counter() - started)
            if not ok:
                self.errors[name].append(detail)
        return response if ok else None

    def create_backtest(self, session, years=2):
        start = random.randint(2006, 2020)
        response = self.call(
            session,
            "create backtest",
            "POST",
            "/api/v1/backtests",
            {201},
            json={
                "strategy_id": self.strategy_id,
                "engine": random.choice(["vectorbt", "backtrader"]),
                "initial_capital": 10000,
                "commission": 0.001,
                "slippage": 0.0005,
                "config": {
                    "symbol": random.choice(["SPY", "QQQ", "IWM", "TLT"]),
                    "start_date": f"{start}-01-01",
                    "end_date": f"{start + years}-12-31",
                    "signal_plugin_key": "sma_crossover",
                    "signal_plugin_params": {
                        "fast": random.randint(5, 30),
                        "slow": random.randint(40, 120),
                    },
                },
            },
        )
        if response is None:
            return None
        backtest_id = response.json()["id"]
        with self.lock:
            self.backtest_ids.add(backtest_id)
        return backtest_id

    def step(self, session):
        action = random.choices(
            ["read", "list", "sync", "async", "sweep", "portfolio"], weights=[30, 10, 15, 15, 5, 10]
        )[0]
        if action == "read" and self.backtest_ids:
            backtest_id = random.choice(sorted(self.backtest_ids))
            self.call(session, "get backtest", "GET", f"/api/v1/backtests/{backtest_id}", {200})
        elif action == "list":
            self.call(session, "list backtests", "GET", "/api/v1/backtests?limit=50", {200})
        elif action == "sync":
            backtest_id = self.create_backtest(session)
            if backtest_id:
                self.call(
                    session,
                    "sync execute",
                    "POST",
                    f"/api/v1/backtests/{backtest_id}/execute",
                    {200},
                    json={},
                )
        elif action == "async":
            backtest_id = self.create_backtest(session)
            if backtest_id:
                response = self.call(
                    session,
                    "async execute",
                    "POST",
                    f"/api/v1/backtests/{backtest_id}/execute/async",
                    {200, 202},
                )
                if response is not None:
                    with self.lock:
                        self.task_ids.add(response.json()["task_id"])
        elif action == "sweep":
            response = self.call(
                session,
                "sweep",
                "POST",
                "/api/v1/backtests/sweep",
                {200, 202},
                json={
                    "strategy_id": self.strategy_id,
                    "engine": "vectorbt",
                    "base_config": {
                        "symbol": "SPY",
                        "start_date": "2015-01-01",
                        "end_date": "2019-12-31",
                        "signal_plugin_key": "sma_crossover",
                    },
                    "param_grid": [
                        {"signal_plugin_params": {"fast": f, "slow": 100}} for f in (10, 20, 30)
                    ],
                    "rank_metric": "perf_sharpe_ratio",
                },
            )
            if response is not None:
                with self.lock:
                    self.task_ids.add(response.json()["task_id"])
        elif action == "portfolio":
            start = random.randint(2008, 2018)
            self.call(
                session,
                "Backfolio backtest",
                "POST",
                "/api/v1/backtest",
                {200},
                json={
                    "strategy": {
                        "allocations": {"core": {"SPY": 0.6, "AGG": 0.4}},
                        "fallback_allocation": "core",
                        "switching_logic": [],
                    },
                    "config": {
                        "start_date": f"{start}-01-01",
                        "end_date": f"{start + 5}-12-31",
                        "initial_capital": 10000,
                        "rebalance_frequency": "monthly",
                    },
                },
            )

    def run(self):
        deadline = time.perf_counter() + DURATION_SECONDS

        def client():
            session = requests.Session()
            while time.perf_counter() < deadline:
                self.step(session)

        threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


def settle(workload: Workload) -> tuple[list[str], list[str]]:
    """Wait until every backtest and task is terminal; return the ones that never got there."""
    session = requests.Session()
    deadline = time.time() + SETTLE_SECONDS
    while True:
        unfinished, unfinished_tasks = [], []
        for backtest_id in sorted(workload.backtest_ids):
            body = session.get(f"{workload.base}/api/v1/backtests/{backtest_id}", timeout=30).json()
            failed_without_reason = body["status"] == "failed" and not body.get("metrics", {}).get(
                "error"
            )
            if body["status"] not in {"completed", "failed"} or failed_without_reason:
                unfinished.append(f"{backtest_id}: {body['status']}")
            elif body["status"] == "completed" and not body.get("equity_curve_uri"):
                unfinished.append(f"{backtest_id}: completed without artifacts")
        for task_id in sorted(workload.task_ids):
            body = session.get(f"{workload.base}/api/v1/tasks/{task_id}", timeout=30).json()
            if body["status"] not in {"SUCCESS", "FAILURE"}:
                unfinished_tasks.append(f"{task_id}: {body['status']}")
        if (not unfinished and not unfinished_tasks) or time.time() > deadline:
            return unfinished, unfinished_tasks
        time.sleep(1)


def main() -> int:
    mode = "PostgreSQL + Redis workers" if os.environ.get("REDIS_URL") else "embedded"
    print(f"Load test ({mode}): {CLIENTS} clients for {DURATION_SECONDS:.0f} s", flush=True)
    with server.running_service() as (base, _process, _startup):
        workload = Workload(base)
        started = time.perf_counter()
        workload.run()
        elapsed = time.perf_counter() - started
        lost_backtests, lost_tasks = settle(workload)

    total = sum(len(v) for v in workload.latencies.values())
    total_errors = sum(len(v) for v in workload.errors.values())
    print(f"\n{'operation':<22} {'count':>6} {'p50 ms':>9} {'p99 ms':>9} {'errors':>7}")
    for name, values in sorted(workload.latencies.items()):
        values = sorted(values)
        p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
        print(
            f"{name:<22} {len(values):>6} {statistics.median(values) * 1000:>9.1f} "
            f"{p99 * 1000:>9.1f} {len(workload.errors[name]):>7}"
        )
    print(f"\nthroughput {total / elapsed:.1f} requests/s, {total_errors} errors")
    for name, messages in workload.errors.items():
        for message in messages[:3]:
            print(f"  error in {name}: {message}")
    print(
        f"{len(workload.backtest_ids)} backtests created, {len(lost_backtests)} not terminal; "
        f"{len(workload.task_ids)} tasks, {len(lost_tasks)} not terminal"
    )
    for line in [*lost_backtests, *lost_tasks][:10]:
        print(f"  lost: {line}")
    return 0 if total_errors == 0 and not lost_backtests and not lost_tasks else 1


if __name__ == "__main__":
    sys.exit(main())

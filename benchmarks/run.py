"""`make bench`: every figure next to its reference and target, in one run.

Starts the service as `make run` does (gunicorn; SQLite and in-process workers, or PostgreSQL and
Redis when DATABASE_URL/REDIS_URL are exported), measures over HTTP on loopback, runs the reference
tools in this process on the same work, prints a table and writes `benchmarks/results/<time>.json`.
Times on a shared 2-core machine are noisy: medians of several runs, ratios from the same run.
"""

import contextlib
import json
import os
import statistics
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import django
import psutil
import requests

from benchmarks import server

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backfolio.settings.base")
django.setup()

from benchmarks import references  # noqa: E402  (needs the store, hence Django settings)

RESULTS_DIR = Path(__file__).resolve().parent / "results"
THREE_ASSETS = {"SPY": 0.4, "AGG": 0.4, "GLD": 0.2}
TEN_SYMBOLS = ["SPY", "AGG", "GLD", "QQQ", "IWM", "EFA", "EEM", "TLT", "VNQ", "DBC"]
SWEEP_BASE_CONFIG = {
    "symbol": "SPY",
    "start_date": "2005-01-01",
    "end_date": "2024-12-31",
    "signal_plugin_key": "sma_crossover",
}
rows: list[dict] = []


def record(
    name, value, unit, *, reference=None, reference_value=None, target=None, ok=None, note=""
):
    rows.append(
        {
            "figure": name,
            "value": value,
            "unit": unit,
            "reference": reference,
            "reference_value": reference_value,
            "target": target,
            "ok": ok,
            "note": note,
        }
    )
    shown = "error" if value is None else f"{value:,.3f} {unit}"
    print(
        f"  {name}: {shown}"
        + (f"  (ref {reference}: {reference_value:,.3f})" if reference_value is not None else ""),
        flush=True,
    )


def timed(function, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def portfolio_request(weights, start, end, frequency="monthly", commission=0.0035) -> dict:
    return {
        "strategy": {
            "allocations": {"core": weights},
            "fallback_allocation": "core",
            "switching_logic": [],
        },
        "config": {
            "start_date": start,
            "end_date": end,
            "initial_capital": 10000,
            "rebalance_frequency": frequency,
            "base_commission": commission,
        },
    }


def post_portfolio(session, base, body) -> dict:
    response = session.post(f"{base}/api/v1/backtest", json=body, timeout=120)
    response.raise_for_status()
    return response.json()


def bench_portfolio(session, base):
    body = portfolio_request(THREE_ASSETS, "2014-01-01", "2023-12-31")
    post_portfolio(session, base, body)  # warm caches the way a steady service would be
    ours, response = timed(
        lambda: session.post(f"{base}/api/v1/backtest", json=body, timeout=120), 15
    )
    size_kb = len(response.content) / 1024
    reference, final_value = timed(
        lambda: references.bt_allocation(THREE_ASSETS, "2014-01-01", "2023-12-31", 0.0035), 3
    )
    ratio = ours / reference
    record(
        "1. Backfolio 10y 3-asset monthly, all analytics, HTTP",
        ours * 1000,
        "ms",
        reference="bt library in-process (ms)",
        reference_value=reference * 1000,
        target="ratio ≤ 0.2 and < 25 ms",
        ok=ratio <= 0.2 and ours < 0.025,
        note=f"ratio {ratio:.3f}; response {size_kb:.0f} kB; ours final "
        f"{response.json()['result']['metrics']['final_value']:.2f} vs bt {final_value:.2f}",
    )


def create_signal_backtest(
    session, base, plugin_params, *, engine="vectorbt", start="2005-01-01", end="2024-12-31"
) -> str:
    strategy = session.post(
        f"{base}/api/v1/strategies",
        json={"name": "SMA crossover (bench)", "kind": "signal"},
        timeout=30,
    )
    strategy.raise_for_status()
    backtest = session.post(
        f"{base}/api/v1/backtests",
        json={
            "strategy_id": strategy.json()["id"],
            "engine": engine,
            "initial_capital": 100000,
            "commission": 0.001,
            "slippage": 0.0005,
            "config": {
                "symbol": "SPY",
                "start_date": start,
                "end_date": end,
                "signal_plugin_key": "sma_crossover",
                "signal_plugin_params": plugin_params,
            },
        },
        timeout=30,
    )
    backtest.raise_for_status()
    return backtest.json()["id"]


def execute_sync(session, base, backtest_id) -> dict:
    response = session.post(f"{base}/api/v1/backtests/{backtest_id}/execute", json={}, timeout=300)
    response.raise_for_status()
    body = response.json()
    if body["status"] != "completed":
        raise RuntimeError(f"execute did not complete: {body.get('metrics')}")
    return body


def bench_execute(session, base) -> str:
    backtest_id = create_signal_backtest(session, base, {"fast": 50, "slow": 200})
    execute_sync(session, base, backtest_id)
    ours, _ = timed(lambda: execute_sync(session, base, backtest_id), 9)
    raw_bt, _ = timed(
        lambda: references.backtrader_sma_cross("SPY", "2005-01-01", "2024-12-31", 50, 200), 3
    )
    references.vectorbt_sma_cross("SPY", "2005-01-01", "2024-12-31", 50, 200)
    raw_vbt, _ = timed(
        lambda: references.vectorbt_sma_cross("SPY", "2005-01-01", "2024-12-31", 50, 200), 9
    )
    record(
        "2a. v1 sync execute, vectorbt SMA cross SPY 2005–2024, HTTP",
        ours * 1000,
        "ms",
        reference="raw Backtrader (ms)",
        reference_value=raw_bt * 1000,
        target="ratio ≤ 0.2",
        ok=ours / raw_bt <= 0.2,
        note=f"ratio {ours / raw_bt:.3f}",
    )
    record(
        "2b. same, vs the raw vectorbt call",
        ours * 1000,
        "ms",
        reference="raw vectorbt (ms)",
        reference_value=raw_vbt * 1000,
        target="ratio ≤ 3",
        ok=ours / raw_vbt <= 3,
        note=f"overhead ratio {ours / raw_vbt:.2f}",
    )
    return backtest_id


class PeakMemory:
    """Peak resident memory of the service's worker processes while a block runs."""

    def __init__(self, root_pid: int):
        self.root = psutil.Process(root_pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        while not self._stop.is_set():
            for child in [self.root, *self.root.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    self.peak = max(self.peak, child.memory_info().rss)
            time.sleep(0.05)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def sweep_grid(n: int) -> list[dict]:
    grid = []
    for fast in range(5, 200):
        for slow in range(60, 400, 10):
            if fast < slow:
                grid.append({"signal_plugin_params": {"fast": fast, "slow": slow}})
    step = max(1, len(grid) // n)
    return grid[::step][:n]


def run_sweep(session, base, strategy_id, n) -> float:
    started = time.perf_counter()
    response = session.post(
        f"{base}/api/v1/backtests/sweep",
        json={
            "strategy_id": strategy_id,
            "engine": "vectorbt",
            "initial_capital": 100000,
            "commission": 0.001,
            "slippage": 0.0005,
            "base_config": SWEEP_BASE_CONFIG,
            "param_grid": sweep_grid(n),
            "rank_metric": "perf_sharpe_ratio",
        },
        timeout=60,
    )
    response.raise_for_status()
    task_id = response.json()["task_id"]
    while True:
        task = session.get(f"{base}/api/v1/tasks/{task_id}", timeout=30).json()
        if task["status"] in {"SUCCESS", "FAILURE"}:
            break
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    if task["status"] != "SUCCESS" or task["result"]["failed"]:
        raise RuntimeError(f"sweep ended {task['status']}: {task.get('error')}")
    return elapsed


def bench_sweep(session, base, process, strategy_id):
    run_sweep(session, base, strategy_id, 5)
    with PeakMemory(process.pid) as memory:
        elapsed = run_sweep(session, base, strategy_id, 50)
    record(
        "3a. 50-entry sweep SPY 2005–2024, POST to leaderboard",
        elapsed,
        "s",
        target="≤ 2 s",
        ok=elapsed <= 2,
    )
    record(
        "3b. peak memory of a worker process during that sweep",
        memory.peak / 2**20,
        "MB",
        target="≤ 500 MB each",
        ok=memory.peak / 2**20 <= 500,
    )


WALK_FORWARD_PAIRS = [(fast, slow) for fast in range(5, 105, 5) for slow in range(110, 310, 10)]


def bench_walk_forward(session, base, strategy_id):
    """A walk-forward of 10 rolling folds (60 months in sample, 18 out) × 400 SMA-crossover
    configurations on SPY 2005–2024, POST to completed, next to raw vectorbt doing the same
    runs in this process (``references.vectorbt_walk_forward``)."""
    from datetime import date

    from backtests.research.walk_forward.core import schedule_folds

    span = (date(2005, 1, 1), date(2024, 12, 31))
    folds = schedule_folds(*span, scheme="rolling", in_sample_months=60, out_of_sample_months=18)
    body = {
        "strategy_id": strategy_id,
        "engine": "vectorbt",
        "base_config": {**SWEEP_BASE_CONFIG, "end_date": span[1].isoformat()},
        "grid": {
            "signal_plugin_params.fast": sorted({fast for fast, _slow in WALK_FORWARD_PAIRS}),
            "signal_plugin_params.slow": sorted({slow for _fast, slow in WALK_FORWARD_PAIRS}),
        },
        "rank_metric": "perf_sharpe_ratio",
        "scheme": "rolling",
        "in_sample_months": 60,
        "out_of_sample_months": 18,
        "commission": 0.0005,
        "slippage": 0.0005,
    }

    def walk_forward(grid_body: dict) -> tuple[float, dict]:
        started = time.perf_counter()
        response = session.post(f"{base}/api/v1/research/walk-forward", json=grid_body, timeout=120)
        response.raise_for_status()
        url = f"{base}/api/v1/research/walk-forward/{response.json()['id']}"
        while True:
            detail = session.get(url, timeout=60).json()
            if detail["status"] in {"completed", "failed"}:
                break
            time.sleep(0.1)
        if detail["status"] != "completed":
            raise RuntimeError(f"walk-forward failed: {detail['error']}")
        return time.perf_counter() - started, detail

    # Warm, as the reference is: a small walk-forward over the same folds first (the workers'
    # kernels and the folds' price frames), then the median of three.
    walk_forward(
        {**body, "grid": {"signal_plugin_params.fast": [10], "signal_plugin_params.slow": [50]}}
    )
    runs = [walk_forward(body) for _ in range(3)]
    detail = runs[-1][1]
    assert detail["n_folds"] == len(folds) == 10
    assert detail["n_configs"] == len(WALK_FORWARD_PAIRS) == 400
    samples = [seconds for seconds, _detail in runs]
    elapsed = statistics.median(samples)
    raw, raw_value = timed(
        lambda: references.vectorbt_walk_forward(
            "SPY", folds, WALK_FORWARD_PAIRS, cost=0.0005, capital=100_000.0
        ),
        3,
    )
    ours_value = detail["result"]["metrics"]["final_value"]
    listed = ", ".join(f"{seconds:.2f}" for seconds in samples)
    record(
        "6. walk-forward 10 folds × 400 SMA configs SPY 2005–2024, POST to done",
        elapsed,
        "s",
        reference="raw vectorbt, same runs (s)",
        reference_value=raw,
        target="≤ 2× raw vectorbt",
        ok=elapsed / raw <= 2,
        note=f"ratio {elapsed / raw:.2f}, median of {listed} s after a warm-up; "
        f"final value {ours_value:,.2f} (raw {raw_value:,.2f})",
    )


def load_test(url: str, *, seconds: float = 5, concurrency: int = 8) -> tuple[float, float, int]:
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def client():
        nonlocal errors
        session = requests.Session()
        local, local_errors = [], 0
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                ok = session.get(url, timeout=30).status_code == 200
            except requests.RequestException:
                ok = False
            local.append(time.perf_counter() - started)
            local_errors += not ok
        with lock:
            latencies.extend(local)
            errors += local_errors

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return len(latencies) / seconds, p99, errors


def bench_reads(base, backtest_id):
    for label, path in (
        ("GET /api/v1/backtests/{id}", f"/api/v1/backtests/{backtest_id}"),
        ("GET …/equity-curve (20y daily JSON)", f"/api/v1/backtests/{backtest_id}/equity-curve"),
    ):
        rate, p99, errors = load_test(base + path)
        record(
            f"5. {label}: throughput", rate, "req/s", note=f"8 connections, 5 s, {errors} errors"
        )
        record(f"5. {label}: p99 latency", p99 * 1000, "ms")


PAGE_TARGET_MS = 300


def staff_session(base) -> requests.Session:
    """A logged-in staff session on the running service (the pages are staff only)."""
    password = "bench-pages-password-1"
    server.current_environment["DJANGO_SUPERUSER_PASSWORD"] = password
    try:
        server.manage_output(
            "createsuperuser", "--noinput", "--username", "bench-staff", "--email", "b@example.com"
        )
    finally:
        server.current_environment.pop("DJANGO_SUPERUSER_PASSWORD", None)
    session = requests.Session()
    login = f"{base}/accounts/login/"
    session.get(login, timeout=30)
    response = session.post(
        login,
        data={
            "username": "bench-staff",
            "password": password,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
        headers={"Referer": login},
        timeout=30,
    )
    response.raise_for_status()
    return session


def bench_pages(base, backtest_id):
    """A backtest's page and its charts' JSON (equity, benchmark, drawdown, rolling Sharpe,
    volatility and beta, monthly and yearly returns, worst drawdowns; each series downsampled
    to at most 2,000 points) for 20 years of daily bars, warm, over loopback; and the charts'
    JSON when computed (a benchmark not asked for before: nothing cached)."""
    session = staff_session(base)
    computed = []
    for symbol in ("QQQ", "IWM", "EFA", "TLT", "AGG"):
        url = f"{base}/backtests/{backtest_id}/chart-data?benchmark={symbol}"
        started = time.perf_counter()
        session.get(url, timeout=60).raise_for_status()
        computed.append(time.perf_counter() - started)
    record(
        "8. backtest charts (JSON) computed, not cached, SPY 2005–2024 daily",
        statistics.median(computed) * 1000,
        "ms",
        target=f"≤ {PAGE_TARGET_MS} ms",
        ok=statistics.median(computed) * 1000 <= PAGE_TARGET_MS,
        note="median of 5 first requests, each with another benchmark",
    )
    for label, path in (
        ("backtest page (HTML)", f"/backtests/{backtest_id}/"),
        ("backtest charts (JSON)", f"/backtests/{backtest_id}/chart-data"),
    ):
        url = base + path

        def fetch(url=url):
            response = session.get(url, timeout=60)
            response.raise_for_status()
            return response

        fetch()
        seconds, response = timed(fetch, 15)
        record(
            f"8. {label}, SPY 2005–2024 daily",
            seconds * 1000,
            "ms",
            target=f"≤ {PAGE_TARGET_MS} ms",
            ok=seconds * 1000 <= PAGE_TARGET_MS,
            note=f"median of 15, {len(response.content) / 1024:,.0f} KiB",
        )


def bench_first_backtest():
    with server.running_service() as (base, _process, startup):
        session = requests.Session()
        backtest_id = create_signal_backtest(session, base, {"fast": 20, "slow": 100})
        started = time.perf_counter()
        execute_sync(session, base, backtest_id)
        first = time.perf_counter() - started
    record(
        "4. first backtest after a fresh start (sync execute over HTTP)",
        first,
        "s",
        target="≤ 1 s",
        ok=first <= 1,
        note=f"service healthy {startup:.1f} s after launch",
    )


def sweep_with_command(strategy_id, n) -> tuple[float, float]:
    """``manage.py run_sweep`` on the service's database, in its own process with its own worker
    threads (the bench cannot reach the embedded server's in-process queue). Returns the
    sweep's own time (create to leaderboard) and the whole command's (with process start)."""
    workdir = Path(server.current_environment["MEDIA_ROOT"]).parent
    grid_path = workdir / f"grid-{n}.json"
    base_path = workdir / "base.json"
    grid_path.write_text(json.dumps(sweep_grid(n)))
    base_path.write_text(json.dumps(SWEEP_BASE_CONFIG))
    started = time.perf_counter()
    output = server.manage_output(
        "run_sweep",
        "--strategy", strategy_id,
        "--engine", "vectorbt",
        "--grid", str(grid_path),
        "--base-config", str(base_path),
        "--rank-metric", "perf_sharpe_ratio",
        "--initial-capital", "100000",
        "--commission", "0.001",
        "--slippage", "0.0005",
    )  # fmt: skip
    whole = time.perf_counter() - started
    summary = json.loads(output.strip().splitlines()[-1])
    if summary["status"] != "SUCCESS" or summary["completed"] != n:
        raise RuntimeError(f"run_sweep ended {summary}")
    return summary["seconds"], whole


def bench_scaling(session, base, strategy_id):
    for years in (1, 5, 10, 20):
        # Ending in 2024 so that 20 years stay within GLD's history (it starts in Nov 2004).
        body = portfolio_request(THREE_ASSETS, f"{2025 - years}-01-01", "2024-12-31")
        post_portfolio(session, base, body)
        elapsed, _ = timed(lambda body=body: post_portfolio(session, base, body), 5)
        record(f"6. Backfolio request, 3 assets, {years} years", elapsed * 1000, "ms")
    for count in (2, 5, 10):
        weights = {symbol: round(1 / count, 10) for symbol in TEN_SYMBOLS[:count]}
        weights[TEN_SYMBOLS[0]] = round(1 - sum(list(weights.values())[1:]), 10)
        body = portfolio_request(weights, "2014-01-01", "2023-12-31")
        post_portfolio(session, base, body)
        elapsed, _ = timed(lambda body=body: post_portfolio(session, base, body), 5)
        record(f"6. Backfolio request, 10 years, {count} assets", elapsed * 1000, "ms")


def bench_sweep_scaling(session, base, strategy_id):
    for n in (10, 50):
        record(
            f"6. sweep of {n} entries over the API", run_sweep(session, base, strategy_id, n), "s"
        )
    for n in (50, 200):
        seconds, whole = sweep_with_command(strategy_id, n)
        record(
            f"6. sweep of {n} entries, manage.py run_sweep",
            seconds,
            "s",
            note=f"create to leaderboard; {whole:.1f} s with the command's process start",
        )


def bench_in_process() -> None:
    """The core alone, in this process: one SMA-crossover run per engine with metrics (SPY
    2005–2024), and the 10-year 3-asset monthly allocation with all analytics."""
    from backtests.engines import get_engine
    from backtests.pipeline import run_backtest
    from backtests.portfolio.requests import parse_portfolio_request
    from backtests.portfolio.runner import run_portfolio
    from backtests.run_config import parse_run_config
    from marketdata.store import get_store

    config = {
        "symbol": "SPY",
        "start_date": "2005-01-01",
        "end_date": "2024-12-31",
        "signal_plugin_key": "sma_crossover",
        "signal_plugin_params": {"fast": 50, "slow": 200},
    }
    raw_bt, _ = timed(
        lambda: references.backtrader_sma_cross("SPY", "2005-01-01", "2024-12-31", 50, 200), 3
    )
    for engine in ("vectorbt", "backtrader"):
        spec, problems = parse_run_config(
            config,
            strategy_kind="signal",
            strategy_definition=None,
            strategy_timeframe="1d",
            engine=engine,
            initial_capital=100_000.0,
            commission=0.001,
            slippage=0.0005,
        )
        assert spec is not None, problems
        run_backtest(spec)
        elapsed, _ = timed(lambda spec=spec: run_backtest(spec), 9 if engine == "vectorbt" else 3)
        record(
            f"3. core: SMA cross SPY 2005–2024 on {engine}, with metrics (in process)",
            elapsed * 1000,
            "ms",
            reference="raw Backtrader (ms)",
            reference_value=raw_bt * 1000,
            target="vectorbt ratio ≤ 0.2" if engine == "vectorbt" else None,
            ok=(elapsed / raw_bt <= 0.2) if engine == "vectorbt" else None,
            note=f"ratio {elapsed / raw_bt:.3f}",
        )

    request = parse_portfolio_request(portfolio_request(THREE_ASSETS, "2014-01-01", "2023-12-31"))
    store = get_store()

    def allocation_run():
        prices = store.load(
            request.symbols, request.start_date, request.end_date, warmup_bars=request.warmup_bars
        )
        benchmark = store.load(["SPY"], request.start_date, request.end_date).close["SPY"]
        return run_portfolio(
            request, prices, engine=get_engine("vectorbt"), benchmark_close=benchmark
        )

    allocation_run()
    ours, _ = timed(allocation_run, 15)
    reference, _ = timed(
        lambda: references.bt_allocation(THREE_ASSETS, "2014-01-01", "2023-12-31", 0.0035), 3
    )
    record(
        "3. core: 10y 3-asset monthly allocation, all analytics (in process)",
        ours * 1000,
        "ms",
        reference="bt library (ms)",
        reference_value=reference * 1000,
        target="ratio ≤ 0.2",
        ok=ours / reference <= 0.2,
        note=f"ratio {ours / reference:.3f}",
    )


def bench_robustness(session, base, backtest_id) -> None:
    """The first request for a run's robustness computes it in the request: PSR, 1,000 bootstrap
    resamples and 18 re-runs for the cost rows and the break-even bisection (vectorbt SMA cross
    SPY 2005–2024). Each timed request asks for a new seed, so none is answered from the kept
    result."""
    seeds = iter(range(1, 100))

    def first_request():
        response = session.get(
            f"{base}/api/v1/backtests/{backtest_id}/robustness",
            params={"seed": next(seeds)},
            timeout=300,
        )
        if response.status_code != 200:
            raise RuntimeError(f"robustness answered {response.status_code}: {response.text}")

    elapsed, _ = timed(first_request, 3)
    record(
        "6. robustness of one run (20 y daily, 1,000 resamples, 18 re-runs), HTTP",
        elapsed,
        "s",
        target="≤ 3 s (in the request)",
        ok=elapsed <= 3,
    )


def bench_overfitting_block() -> None:
    """The §13.2 overfitting block alone (PSR, DSR, PBO with S = 16, SPA with 1,000 resamples)
    for 1,000 trials × 5,000 bars of synthetic returns, in this process."""
    import numpy as np

    from metrics.research import overfitting_report

    rng = np.random.default_rng(0)
    matrix = rng.normal(0.0002, 0.01, (5000, 1000))
    benchmark = rng.normal(0.0003, 0.01, 5000)
    elapsed, _ = timed(
        lambda: overfitting_report(
            matrix, benchmark, best_index=0, benchmark="SPY", partitions=16, spa_reps=1000
        ),
        3,
    )
    record(
        "5. overfitting block: 1,000 trials × 5,000 bars, S = 16, SPA 1,000 reps",
        elapsed,
        "s",
        target="≤ 10 s",
        ok=elapsed <= 10,
    )


RESEARCH_SWEEP_BASE_CONFIG = {
    "symbol": "SPY",
    "start_date": "2005-01-01",
    "end_date": "2024-12-06",
    "signal_plugin_key": "sma_crossover",
}
# fast 5..100 step 5 × slow 50..295 step 5: 1,000 combinations, of which the 934 with fast < slow
# are valid (the others are skipped and reported).
RESEARCH_SWEEP_GRID = {
    "signal_plugin_params.fast": list(range(5, 101, 5)),
    "signal_plugin_params.slow": list(range(50, 296, 5)),
}
RESEARCH_SWEEP_COSTS = 0.0005
# 100 × 100 windows, every one with fast < slow: 10,000 combinations.
LARGE_RESEARCH_GRID = {
    "signal_plugin_params.fast": list(range(2, 102)),
    "signal_plugin_params.slow": list(range(110, 210)),
}


def run_research_sweep(session, base, strategy_id, grid, *, timeout=3600) -> tuple[float, dict]:
    """POST a research sweep and poll until it has finished; (seconds, final body)."""
    started = time.perf_counter()
    response = session.post(
        f"{base}/api/v1/research/sweeps",
        json={
            "strategy_id": strategy_id,
            "engine": "vectorbt",
            "base_config": RESEARCH_SWEEP_BASE_CONFIG,
            "grid": grid,
            "rank_metric": "perf_sharpe_ratio",
            "commission": RESEARCH_SWEEP_COSTS,
            "slippage": RESEARCH_SWEEP_COSTS,
        },
        timeout=600,
    )
    response.raise_for_status()
    answer = response.json()
    deadline = time.perf_counter() + timeout
    while True:  # the task row is the cheap thing to poll; the sweep is read once at the end
        task = session.get(f"{base}/api/v1/tasks/{answer['task_id']}", timeout=60).json()
        if task["status"] in ("SUCCESS", "FAILURE"):
            break
        if time.perf_counter() > deadline:
            raise RuntimeError(f"research sweep still {task['status']} after {timeout} s")
        time.sleep(0.05)
    body = session.get(
        f"{base}/api/v1/research/sweeps/{answer['id']}", params={"limit": 1}, timeout=60
    ).json()
    elapsed = time.perf_counter() - started
    if body["status"] != "completed" or body["overfitting"] is None:
        raise RuntimeError(f"research sweep ended {body['status']}: {body['error']}")
    return elapsed, body


def research_strategy(session, base) -> str:
    response = session.post(
        f"{base}/api/v1/strategies", json={"name": "research bench", "kind": "signal"}, timeout=30
    )
    response.raise_for_status()
    return response.json()["id"]


# The worker-scaling figure compares two services measured one after the other; on a machine
# whose speed drifts over minutes, one pass of each can differ by more than the effect measured.
# So the two alternate, round by round, and each round gives its own ratio.
SCALING_ROUNDS = 3
SAMPLES_PER_ROUND = 2


def bench_research_sweeps(*, large: bool = True) -> None:
    """Research sweeps over HTTP, POST to complete with the overfitting block, next to raw
    vectorbt doing the same 934 runs in this process. With Redis: one worker process against
    two, alternating round by round (the figure is the median of the rounds' ratios), and
    (``large``) the peak memory of a worker during a 10,000-configuration sweep."""
    pairs = [
        (fast, slow)
        for fast in RESEARCH_SWEEP_GRID["signal_plugin_params.fast"]
        for slow in RESEARCH_SWEEP_GRID["signal_plugin_params.slow"]
        if fast < slow
    ]
    raw = lambda: references.vectorbt_sma_grid(  # noqa: E731
        "SPY", "2005-01-01", "2024-12-06", pairs, RESEARCH_SWEEP_COSTS
    )
    raw()
    raw_seconds, _ = timed(raw, 3)
    redis = bool(os.environ.get("REDIS_URL"))
    samples: dict[int | None, list[float]] = {}
    ratios = []
    for round_number in range(SCALING_ROUNDS if redis else 1):
        best = {}
        for processes in (1, 2) if redis else (None,):
            with server.running_service(dramatiq_processes=processes or 2, dramatiq_threads=1) as (
                base, process, _startup,
            ):  # fmt: skip
                session = requests.Session()
                strategy_id = research_strategy(session, base)
                # Every worker process warm: the whole grid once, so that each process has run
                # chunks (a small sweep is one chunk, and would leave the second process cold).
                run_research_sweep(session, base, strategy_id, RESEARCH_SWEEP_GRID)
                taken = [
                    run_research_sweep(session, base, strategy_id, RESEARCH_SWEEP_GRID)[0]
                    for _ in range(SAMPLES_PER_ROUND if redis else 3)
                ]
                samples.setdefault(processes, []).extend(taken)
                best[processes] = min(taken)
                print(
                    f"  round {round_number + 1}: 934-config research sweep, "
                    f"{processes or 'embedded'} worker processes: {taken} s"
                )
                if large and round_number == 0 and (processes == 2 or not redis):
                    # The rundramatiq tree with Redis; the web processes' in-process workers
                    # without.
                    with PeakMemory(server.current_worker_pids[0] if redis else process.pid) as (
                        memory
                    ):
                        seconds, body = run_research_sweep(
                            session, base, strategy_id, LARGE_RESEARCH_GRID
                        )
                    record(
                        "7. peak memory of a worker process, 10,000-config research sweep "
                        "(20 y daily)",
                        memory.peak / 2**20,
                        "MB",
                        target="≤ 1,536 MB",
                        ok=memory.peak / 2**20 <= 1536,
                        note=f"{body['total']} entries in {seconds:.1f} s",
                    )
        if redis:
            ratios.append(best[1] / best[2])
    measured = 2 if redis else None
    elapsed = statistics.median(samples[measured])
    record(
        f"7. research sweep, 934 SMA configs SPY 2005–2024, POST to complete with "
        f"overfitting ({measured or 'embedded'} worker processes)",
        elapsed,
        "s",
        reference="raw vectorbt from_signals, 934 columns (s)",
        reference_value=raw_seconds,
        target="≤ 2× raw vectorbt",
        ok=elapsed <= 2 * raw_seconds,
        note=f"ratio {elapsed / raw_seconds:.2f}, median of {len(samples[measured])}",
    )
    if redis:
        speedup = statistics.median(ratios)
        record(
            "7. research sweep of 934 configs: 1 worker process / 2 worker processes",
            speedup,
            "×",
            reference="1 worker process, median (s)",
            reference_value=statistics.median(samples[1]),
            target="≥ 1.6×",
            ok=speedup >= 1.6,
            note=f"median of {len(ratios)} alternating rounds' ratios of their fastest "
            f"({', '.join(f'{ratio:.2f}' for ratio in ratios)}); 2 processes: "
            f"{statistics.median(samples[2]):.2f} s",
        )


SERVICE_BENCHES = (
    "portfolio", "execute", "sweep", "reads", "pages", "robustness", "scaling",
    "sweep_scaling", "walk_forward",
)  # fmt: skip
IN_PROCESS_BENCHES = ("in_process", "overfitting_block", "first_backtest", "research_sweeps")
USAGE = f"""usage: python -m benchmarks.run [NAME ...]

Runs every benchmark, or only those named: {", ".join(SERVICE_BENCHES + IN_PROCESS_BENCHES)}.
(`execute` runs whenever a benchmark needs its backtest.)"""


def selected_benches(arguments: list[str]) -> set[str] | None:
    """The benchmarks the command line names (None: all); unknown names are an error."""
    if any(argument in ("-h", "--help") for argument in arguments):
        print(USAGE)
        sys.exit(0)
    unknown = set(arguments) - set(SERVICE_BENCHES + IN_PROCESS_BENCHES)
    if unknown:
        print(f"unknown benchmark(s): {', '.join(sorted(unknown))}\n\n{USAGE}", file=sys.stderr)
        sys.exit(2)
    return set(arguments) or None


def main(arguments: list[str]) -> int:
    only = selected_benches(arguments)

    def wanted(name: str) -> bool:
        return only is None or name in only

    if any(wanted(name) for name in SERVICE_BENCHES):
        bench_service(wanted)
    for name, bench, label in (
        ("in_process", bench_in_process, "3. core in process"),
        ("overfitting_block", bench_overfitting_block, "5. overfitting block"),
        ("first_backtest", bench_first_backtest, "4. first backtest after a fresh start"),
        ("research_sweeps", bench_research_sweeps, "7. research sweeps"),
    ):
        if wanted(name):
            try:
                bench()
            except Exception as exc:  # one broken figure must not hide the others
                record(label, None, "", note=f"failed: {exc}")

    print_table()
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"{stamp}.json"
    path.write_text(
        json.dumps(
            {"when": stamp, "database": os.environ.get("DATABASE_URL", "sqlite"), "rows": rows},
            indent=2,
        )
    )
    print(f"\nSaved {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    return 0


def bench_service(wanted) -> None:
    """The benchmarks measured over HTTP against one running service."""
    print("Backfolio benchmarks — starting the service as `make run` does", flush=True)
    with server.running_service() as (base, process, startup):
        print(f"service healthy after {startup:.1f} s at {base}", flush=True)
        session = requests.Session()
        if wanted("portfolio"):
            try:
                bench_portfolio(session, base)
            except Exception as exc:  # one broken figure must not hide the others
                record(bench_portfolio.__name__, None, "", note=f"failed: {exc}")
        backtest_id = None
        try:
            backtest_id = bench_execute(session, base)
        except Exception as exc:
            record("2. v1 sync execute", None, "", note=f"failed: {exc}")
        if not backtest_id:
            return
        strategy_id = session.get(f"{base}/api/v1/backtests/{backtest_id}").json()["strategy_id"]
        for name, bench in (
            ("sweep", lambda: bench_sweep(session, base, process, strategy_id)),
            ("reads", lambda: bench_reads(base, backtest_id)),
            ("pages", lambda: bench_pages(base, backtest_id)),
            ("robustness", lambda: bench_robustness(session, base, backtest_id)),
            ("scaling", lambda: bench_scaling(session, base, strategy_id)),
            ("sweep_scaling", lambda: bench_sweep_scaling(session, base, strategy_id)),
            ("walk_forward", lambda: bench_walk_forward(session, base, strategy_id)),
        ):
            if wanted(name):
                try:
                    bench()
                except Exception as exc:
                    record("benchmark step", None, "", note=f"failed: {exc}")


def print_table() -> None:
    print()
    header = f"{'figure':<66} {'ours':>14} {'reference':>14} {'target':<26} ok"
    print(header)
    print("-" * len(header))
    for row in rows:
        value = "error" if row["value"] is None else f"{row['value']:,.2f} {row['unit']}"
        reference = "" if row["reference_value"] is None else f"{row['reference_value']:,.2f}"
        ok = {True: "yes", False: "NO", None: ""}[row["ok"]]
        print(
            f"{row['figure'][:66]:<66} {value:>14} {reference:>14} {row['target'] or '':<26} {ok}"
        )
        if row["note"]:
            print(f"    {row['note']}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

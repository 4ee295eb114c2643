"""Walk-forward analyses run by real Dramatiq workers, checked against separate v1 runs and
independent computations written here."""

import io
import itertools
import time
from datetime import timedelta

import dramatiq
import numpy as np
import pandas as pd
import pytest
from django.utils import timezone
from rest_framework.test import APIClient
from scipy import stats

from backtests.models import Task, WalkForward
from backtests.pipeline import run_backtest
from backtests.research.walk_forward import core, jobs
from backtests.research.walk_forward.jobs import reap_walk_forwards
from backtests.run_config import parse_run_config
from tests.factories import StrategyFactory

URL = "/api/v1/research/walk-forward"
BASE_CONFIG = {
    "symbol": "SPY",
    "start_date": "2016-01-01",
    "end_date": "2019-12-31",
    "signal_plugin_key": "sma_crossover",
}
GRID = {"signal_plugin_params.fast": [5, 20], "signal_plugin_params.slow": [30, 100]}


def poll_walk_forward(client, walk_forward_id, *, timeout=180.0):
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.get(f"{URL}/{walk_forward_id}")
        assert response.status_code == 200, response.content  # readers never meet a lock
        body = response.json()
        seen.append((body["status"], body["done"]))
        if body["status"] in ("completed", "failed"):
            return body, seen
        time.sleep(0.1)
    raise AssertionError(f"walk-forward {walk_forward_id} did not finish: {seen[-5:]}")


def v1_run(client, strategy, engine, config, capital=100_000.0):
    created = client.post(
        "/api/v1/backtests",
        {
            "strategy_id": str(strategy.pk),
            "engine": engine,
            "initial_capital": capital,
            "commission": 0.0005,
            "slippage": 0.0005,
            "config": config,
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    executed = client.post(f"/api/v1/backtests/{created.json()['id']}/execute", {}, format="json")
    assert executed.json()["status"] == "completed", executed.content
    return executed.json()


def psr_by_formula(returns: np.ndarray) -> float:
    """Bailey & López de Prado (2012), against a Sharpe ratio of 0."""
    sharpe = returns.mean() / returns.std(ddof=1)
    skew = stats.skew(returns)
    kurtosis = stats.kurtosis(returns, fisher=False)
    z = (
        sharpe
        * np.sqrt(len(returns) - 1)
        / np.sqrt(1 - skew * sharpe + (kurtosis - 1) / 4 * sharpe**2)
    )
    return float(stats.norm.cdf(z))


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("engine", "scheme", "rank_metric"),
    [("vectorbt", "rolling", "perf_sharpe_ratio"), ("backtrader", "anchored", "risk_max_drawdown")],
)
def test_walk_forward_on_a_worker_matches_separate_v1_runs(worker, engine, scheme, rank_metric):
    client = APIClient()
    strategy = StrategyFactory()
    response = client.post(
        URL,
        {
            "strategy_id": str(strategy.pk),
            "engine": engine,
            "base_config": BASE_CONFIG,
            "grid": GRID,
            "rank_metric": rank_metric,
            "scheme": scheme,
            "in_sample_months": 24,
            "out_of_sample_months": 6,
        },
        format="json",
    )
    assert response.status_code == 202, response.content
    body, seen = poll_walk_forward(client, response.json()["id"])

    assert body["status"] == "completed", body["error"]
    assert body["done"] == body["total"] == 4 * (4 + 1)
    assert any(status == "running" and 0 < done < 20 for status, done in seen) or len(seen) < 3
    task = client.get(f"/api/v1/tasks/{body['task_id']}").json()
    assert (task["status"], task["done"], task["total"]) == ("SUCCESS", 20, 20)
    combinations = [
        {"signal_plugin_params": {"fast": fast, "slow": slow}}
        for fast in (5, 20)
        for slow in (30, 100)
    ]
    higher_is_better = rank_metric == "perf_sharpe_ratio"
    result = body["result"]
    equity = pd.Series(
        [point["equity"] for point in result["equity"]],
        index=pd.DatetimeIndex([point["date"] for point in result["equity"]]),
    )
    capital = 100_000.0
    in_sample_cagrs = []
    for fold in body["folds"]:
        window = fold["in_sample"]
        # The fold's choice is the best of separate v1 runs on its in-sample window.
        scores = []
        for overrides in combinations:
            config = {**BASE_CONFIG, **overrides, "start_date": window["start"]}
            config["end_date"] = window["end"]
            scores.append(v1_run(client, strategy, engine, config)["metrics"])
        values = [metrics[rank_metric] for metrics in scores]
        best = values.index(max(values) if higher_is_better else min(values))
        assert fold["chosen"] == combinations[best]
        assert fold["chosen_index"] == best
        assert fold["in_sample_score"] == values[best]
        in_sample_cagrs.append(scores[best]["perf_cagr"])

        # The out-of-sample run starts from the previous final equity and ends flat.
        oos = fold["out_of_sample"]
        spec, problems = parse_run_config(
            {**BASE_CONFIG, **combinations[best]},
            strategy_kind="signal",
            strategy_definition=None,
            strategy_timeframe="1d",
            engine=engine,
            initial_capital=100_000.0,
            commission=0.0005,
            slippage=0.0005,
        )
        assert not problems
        run = run_backtest(
            core.window_spec(
                spec,
                pd.Timestamp(oos["start"]).date(),
                pd.Timestamp(oos["end"]).date(),
                initial_capital=capital,
                close_at_end=True,
            )
        )
        assert run.positions.iloc[-1].abs().sum() == 0.0
        part = equity.loc[oos["start"] : oos["end"]]
        assert part.index.equals(run.equity.index)
        np.testing.assert_array_equal(part.to_numpy(), run.equity.to_numpy())
        assert fold["out_of_sample_metrics"]["final_value"] == pytest.approx(
            run.equity.iloc[-1], rel=1e-12
        )
        capital = float(run.equity.iloc[-1])

    # The stitched curve and its numbers, recomputed here.
    assert equity.index.is_monotonic_increasing and equity.index.is_unique
    returns = np.concatenate([[equity.iloc[0] / 100_000.0 - 1], equity.pct_change().iloc[1:]])
    metrics = result["metrics"]
    assert metrics["total_return"] == pytest.approx(equity.iloc[-1] / 100_000.0 - 1, rel=1e-12)
    assert metrics["final_value"] == pytest.approx(capital, rel=1e-12)
    sharpe = returns.mean() / returns.std(ddof=1) * np.sqrt(252)
    assert metrics["perf_sharpe_ratio"] == pytest.approx(sharpe, rel=1e-9)
    assert result["psr"] == pytest.approx(psr_by_formula(returns), abs=1e-9)
    days = (equity.index[-1] - equity.index[0]).days
    cagr = (equity.iloc[-1] / 100_000.0) ** (365.25 / days) - 1
    assert metrics["perf_cagr"] == pytest.approx(cagr, rel=1e-9)
    assert result["walk_forward_efficiency"] == pytest.approx(
        cagr / np.mean(in_sample_cagrs), rel=1e-9
    )
    chosen = [fold["chosen_index"] for fold in body["folds"]]
    changes = sum(1 for a, b in itertools.pairwise(chosen) if a != b)
    assert result["choice_changes"] == changes
    assert result["choice_change_rate"] == pytest.approx(changes / 3)

    download = client.get(f"{URL}/{body['id']}/equity.parquet")
    assert download.status_code == 200
    assert download["Content-Type"] == "application/vnd.apache.parquet"
    assert download["Content-Disposition"] == (
        f"attachment; filename=walk_forward_equity_{body['id']}.parquet"
    )
    frame = pd.read_parquet(io.BytesIO(download.content))
    assert frame.index.name == "date"
    np.testing.assert_array_equal(frame["equity"].to_numpy(), equity.to_numpy())


@pytest.mark.django_db(transaction=True)
def test_folds_of_a_dead_worker_and_lost_messages_are_sent_again_and_counted_once(broker):
    client = APIClient()
    strategy = StrategyFactory()
    response = client.post(
        URL,
        {
            "strategy_id": str(strategy.pk),
            "base_config": BASE_CONFIG,
            "grid": GRID,
            "rank_metric": "perf_sharpe_ratio",
            "scheme": "anchored",
            "in_sample_months": 30,
            "out_of_sample_months": 6,
        },
        format="json",
    )
    assert response.status_code == 202, response.content
    walk_forward = WalkForward.objects.get(pk=response.json()["id"])
    # Every message is lost, and a worker died in the middle of fold 1's in-sample batch.
    broker.flush_all()
    long_ago = timezone.now() - timedelta(hours=1)
    WalkForward.objects.filter(pk=walk_forward.pk).update(
        status="running", updated_at=long_ago, heartbeat_at=long_ago
    )
    # Half of its runs had ended and were counted.
    walk_forward.folds.filter(index=1).update(status="running", heartbeat_at=long_ago, done=2)
    WalkForward.objects.filter(pk=walk_forward.pk).update(done=2)
    Task.objects.filter(pk=walk_forward.task_id).update(done=2)

    assert reap_walk_forwards() == {"folds": 3, "finishes": 0}
    assert reap_walk_forwards() == {"folds": 0, "finishes": 0}  # nothing is sent twice
    assert walk_forward.folds.filter(status="pending").count() == 3
    # The dead worker's count is taken off: the re-run counts those runs again.
    assert list(walk_forward.folds.values_list("done", flat=True)) == [0, 0, 0]
    walk_forward.refresh_from_db()
    assert (walk_forward.done, walk_forward.task.done) == (0, 0)

    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=100)
    worker.start()
    try:
        body, _seen = poll_walk_forward(client, walk_forward.pk)
    finally:
        worker.stop()
    assert body["status"] == "completed", body["error"]
    assert body["done"] == body["total"] == 3 * (4 + 1)
    assert [fold["status"] for fold in body["folds"]] == ["chosen"] * 3
    assert [fold["done"] for fold in body["folds"]] == [4, 4, 4]
    assert Task.objects.get(pk=body["task_id"]).done == 3 * (4 + 1)
    assert len(body["result"]["equity"]) > 0


@pytest.mark.django_db(transaction=True)
def test_out_of_sample_runs_of_a_dead_worker_are_sent_again(broker):
    client = APIClient()
    strategy = StrategyFactory()
    response = client.post(
        URL,
        {
            "strategy_id": str(strategy.pk),
            "base_config": BASE_CONFIG,
            "param_grid": [{"signal_plugin_params": {"fast": 10, "slow": 50}}],
            "rank_metric": "total_return",
            "scheme": "rolling",
            "in_sample_months": 36,
            "out_of_sample_months": 12,
        },
        format="json",
    )
    walk_forward = WalkForward.objects.get(pk=response.json()["id"])
    broker.flush_all()
    jobs.run_fold(str(walk_forward.pk), 0)  # in sample and out of sample, here
    completed = client.get(f"{URL}/{walk_forward.pk}").json()["result"]
    # As if the worker had died during the out-of-sample runs.
    long_ago = timezone.now() - timedelta(hours=1)
    WalkForward.objects.filter(pk=walk_forward.pk).update(
        status="running", result=None, heartbeat_at=long_ago, updated_at=long_ago
    )

    assert reap_walk_forwards() == {"folds": 0, "finishes": 1}
    assert reap_walk_forwards() == {"folds": 0, "finishes": 0}
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        body, _seen = poll_walk_forward(client, walk_forward.pk)
    finally:
        worker.stop()
    assert body["status"] == "completed"
    assert body["result"] == completed


@pytest.mark.django_db(transaction=True)
def test_progress_moves_within_a_fold_as_each_part_of_its_batch_ends(broker, monkeypatch):
    client = APIClient()
    strategy = StrategyFactory()
    response = client.post(
        URL,
        {
            "strategy_id": str(strategy.pk),
            "base_config": BASE_CONFIG,
            "grid": GRID,
            "rank_metric": "perf_sharpe_ratio",
            "scheme": "rolling",
            "in_sample_months": 24,
            "out_of_sample_months": 6,
        },
        format="json",
    )
    walk_forward = WalkForward.objects.get(pk=response.json()["id"])
    broker.flush_all()
    monkeypatch.setattr(core, "IN_SAMPLE_CHUNK_SIZE", 3)  # parts of 3 and 1 of the 4 runs
    seen = []
    count_fold_runs = jobs._count_fold_runs

    def counted(walk_forward_id, fold_id, runs):
        count_fold_runs(walk_forward_id, fold_id, runs)
        fold = walk_forward.folds.get(pk=fold_id)
        seen.append((fold.index, runs, fold.done, WalkForward.objects.get(pk=walk_forward_id).done))

    monkeypatch.setattr(jobs, "_count_fold_runs", counted)

    jobs.run_fold(str(walk_forward.pk), 0)
    jobs.run_fold(str(walk_forward.pk), 2)

    assert seen == [(0, 3, 3, 3), (0, 1, 4, 4), (2, 3, 3, 7), (2, 1, 4, 8)]
    body = client.get(f"{URL}/{walk_forward.pk}").json()
    assert (body["status"], body["done"], body["total"]) == ("running", 8, 4 * 5)
    assert [fold["done"] for fold in body["folds"]] == [4, 0, 4, 0]
    task = client.get(f"/api/v1/tasks/{body['task_id']}").json()
    assert (task["status"], task["done"], task["total"]) == ("PROGRESS", 8, 20)

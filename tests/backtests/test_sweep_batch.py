"""A sweep over plugin parameters as one vectorised engine call gives each entry exactly the
results of its own run (no database: the pure pipeline)."""

import numpy as np
import pandas as pd
import pytest

from backtests.engines import EngineLimitationError, get_engine
from backtests.pipeline import RunError, run_backtest, run_backtest_batch
from backtests.run_config import parse_run_config

BASE = {
    "symbol": "SPY",
    "start_date": "2010-01-01",
    "end_date": "2016-12-31",
    "signal_plugin_key": "sma_crossover",
}
GRID = [{"fast": 5, "slow": 60}, {"fast": 20, "slow": 100}, {"fast": 50, "slow": 200}]


def spec_for(config, *, engine="vectorbt"):
    spec, problems = parse_run_config(
        config,
        strategy_kind="signal",
        strategy_definition=None,
        strategy_timeframe=None,
        engine=engine,
        initial_capital=100_000.0,
        commission=0.001,
        slippage=0.0005,
    )
    assert problems == []
    return spec


def assert_same_run(batched, single):
    assert batched.equity.index.equals(single.equity.index)
    np.testing.assert_allclose(
        batched.equity.to_numpy(), single.equity.to_numpy(), rtol=0, atol=1e-9
    )
    assert batched.metrics.keys() == single.metrics.keys()
    for key, value in single.metrics.items():
        if isinstance(value, float):
            assert batched.metrics[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key
        else:
            assert batched.metrics[key] == value, key
    pd.testing.assert_frame_equal(batched.trades, single.trades, rtol=1e-12)
    pd.testing.assert_frame_equal(batched.orders, single.orders, rtol=1e-12)
    pd.testing.assert_frame_equal(batched.positions, single.positions, rtol=1e-12)
    assert batched.fingerprint == single.fingerprint


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"direction": "both"},
        {"direction": "short", "stop_loss": 0.05, "take_profit": 0.1},
        {"size": 0.5, "trailing_stop": 0.08},
    ],
)
def test_one_engine_call_matches_one_run_per_entry(settings):
    specs = [spec_for({**BASE, **settings, "signal_plugin_params": params}) for params in GRID]
    engine = get_engine("vectorbt")
    calls = []
    original = engine.run_signal_batch

    def counting(inputs):
        calls.append(len(inputs))
        return original(inputs)

    engine.run_signal_batch = counting
    try:
        batched = run_backtest_batch(specs)
    finally:
        del engine.run_signal_batch
    assert calls == [len(GRID)]
    for result, spec in zip(batched, specs, strict=True):
        assert_same_run(result, run_backtest(spec))
    # Different parameters give different runs: the columns are not one run copied.
    assert len({round(result.metrics["final_value"], 6) for result in batched}) == len(GRID)


def test_runs_that_need_callbacks_or_differ_in_settings_run_one_by_one():
    timed = [
        spec_for({**BASE, "max_holding_bars": 30, "signal_plugin_params": params})
        for params in GRID[:2]
    ]
    inputs_differ = [
        spec_for({**BASE, "signal_plugin_params": GRID[0]}),
        spec_for({**BASE, "end_date": "2015-12-31", "signal_plugin_params": GRID[1]}),
    ]
    for specs in (timed, inputs_differ):
        results = run_backtest_batch(specs)
        for result, spec in zip(results, specs, strict=True):
            assert_same_run(result, run_backtest(spec))


def test_the_engine_refuses_a_batch_it_cannot_run_as_one_call():
    from backtests import pipeline
    from marketdata.store import get_store
    from strategies.language import compile_signal_strategy

    engine = get_engine("vectorbt")
    spec = spec_for({**BASE, "max_holding_bars": 30, "signal_plugin_params": GRID[0]})
    prices = get_store().load(["SPY"], spec.start, spec.end, warmup_bars=200)
    plan = compile_signal_strategy(spec.definition, prices, "SPY")
    close = prices.window().close[["SPY"]]
    data = pipeline._signal_input(spec, close, plan, None)
    with pytest.raises(EngineLimitationError):
        engine.run_signal_batch([data, data])


def test_a_failing_entry_fails_alone():
    good = spec_for({**BASE, "signal_plugin_params": GRID[0]})
    bad = spec_for({**BASE, "signal_plugin_params": GRID[1]})
    bad = type(bad)(**{**bad.__dict__, "start": pd.Timestamp("1990-01-01").date()})
    results = run_backtest_batch([good, bad, spec_for({**BASE, "signal_plugin_params": GRID[2]})])
    assert isinstance(results[1], RunError)
    assert_same_run(results[0], run_backtest(good))


# --- through the service and a real worker (database) -----------------------------------------


def _sweep_outcome(task_id):
    from backtests.models import Backtest, Task

    task = Task.objects.get(pk=task_id)
    children = {
        child.sweep_index: child
        for child in Backtest.objects.filter(sweep_id=task.sweep_id).order_by("sweep_index")
    }
    board = [
        {**{k: v for k, v in row.items() if k != "backtest_id"}, "index": None}
        for row in task.result["leaderboard"]
    ]
    for row, entry in zip(board, task.result["leaderboard"], strict=True):
        row["index"] = next(i for i, c in children.items() if str(c.pk) == entry["backtest_id"])
    return task, children, board


@pytest.mark.django_db(transaction=True)
def test_a_batched_sweep_leaves_what_one_message_per_entry_leaves(worker, broker, monkeypatch):
    from backtests import artifacts, services, tasks
    from backtests.jobs import sweeps
    from tests.factories import StrategyFactory

    strategy = StrategyFactory()
    grid = [{"signal_plugin_params": params} for params in GRID]
    grid.append({"signal_plugin_params": {"fast": 150, "slow": 390}})
    sent = []
    for actor in (tasks.run_sweep_batch, tasks.run_sweep_entry):
        original = actor.send
        monkeypatch.setattr(
            actor, "send", lambda *a, _o=original, _n=actor.actor_name: sent.append(_n) or _o(*a)
        )

    def sweep(batched):
        monkeypatch.setattr(sweeps, "sweep_runs_as_batch", lambda *args: batched)
        task = services.sweep_create(
            strategy=strategy,
            engine="vectorbt",
            base_config=BASE,
            param_grid=grid,
            rank_metric="perf_sharpe_ratio",
            commission=0.001,
            slippage=0.0005,
        )
        broker.join("default")
        worker.join()
        return _sweep_outcome(task.pk)

    batch_task, batch_children, batch_board = sweep(True)
    assert sent == ["run_sweep_batch"]
    single_task, single_children, single_board = sweep(False)
    assert sent[1:] == ["run_sweep_entry"] * len(grid)

    assert (batch_task.status, batch_task.done, batch_task.total) == ("SUCCESS", 4, 4)
    assert (single_task.status, single_task.done, single_task.total) == ("SUCCESS", 4, 4)
    assert batch_board == single_board
    assert {k: v for k, v in batch_task.result.items() if k != "leaderboard"} == {
        k: v for k, v in single_task.result.items() if k != "leaderboard"
    }
    for index, child in batch_children.items():
        twin = single_children[index]
        assert (child.status, child.run_count, child.progress) == ("completed", 1, 100)
        assert child.metrics == twin.metrics
        assert child.fingerprint == twin.fingerprint
        assert child.metrics_spec_version == twin.metrics_spec_version
        assert child.equity_curve_uri.endswith(f"{child.pk}/1/equity.parquet")
        np.testing.assert_allclose(
            artifacts.read_equity(child.equity_curve_uri).to_numpy(),
            artifacts.read_equity(twin.equity_curve_uri).to_numpy(),
            rtol=0,
            atol=1e-9,
        )
        pd.testing.assert_frame_equal(
            artifacts.read_trades(child.trades_uri), artifacts.read_trades(twin.trades_uri)
        )


def test_only_vectorbt_sweeps_over_plugin_parameters_are_batched():
    from backtests.jobs.sweeps import sweep_runs_as_batch

    params = [{"signal_plugin_params": {"fast": 5}}, {}]
    assert sweep_runs_as_batch("vectorbt", "signal", params)
    assert not sweep_runs_as_batch("backtrader", "signal", params)
    assert not sweep_runs_as_batch("vectorbt", "allocation", params)
    assert not sweep_runs_as_batch("vectorbt", "signal", [*params, {"stop_loss": 0.1}])


@pytest.mark.django_db(transaction=True)
def test_run_sweep_command_runs_more_entries_than_the_api_allows(broker, tmp_path, request):
    import json
    from io import StringIO

    from dramatiq.brokers.stub import StubBroker

    if not isinstance(broker, StubBroker):
        # With Redis the command leaves the runs to the service's workers: start them.
        request.getfixturevalue("worker")

    from django.core.management import call_command

    from backtests.services import MAX_SWEEP_ENTRIES
    from tests.factories import StrategyFactory

    strategy = StrategyFactory()
    grid = [
        {"signal_plugin_params": {"fast": fast, "slow": slow}}
        for fast in range(5, 15)
        for slow in (60, 80, 100, 120, 140, 160)
    ][: MAX_SWEEP_ENTRIES + 3]
    (tmp_path / "grid.json").write_text(json.dumps(grid))
    out = StringIO()
    call_command(
        "run_sweep",
        strategy=str(strategy.pk),
        grid=str(tmp_path / "grid.json"),
        base_config=json.dumps({**BASE, "end_date": "2011-12-31"}),
        rank_metric="perf_cagr",
        timeout=300,
        stdout=out,
    )
    summary = json.loads(out.getvalue().strip().splitlines()[-1])
    assert summary["status"] == "SUCCESS"
    assert summary["done"] == summary["total"] == summary["completed"] == len(grid)
    assert summary["best"]["rank"] == 1 and summary["best"]["rank_metric"] == "perf_cagr"


def test_result_frames_keep_their_column_types():
    result = run_backtest(spec_for({**BASE, "signal_plugin_params": GRID[0]}))
    assert len(result.trades) > 1
    assert [str(dtype) for dtype in result.trades.dtypes] == [
        "object", "object", "datetime64[ns]", "datetime64[ns]", "float64", "float64", "float64",
        "float64", "float64", "object", "float64",
    ]  # fmt: skip
    assert list(result.trades.index) == list(range(len(result.trades)))

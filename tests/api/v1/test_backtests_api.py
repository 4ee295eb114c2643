"""v1 backtests: CRUD, execute, results, compare, engines — every bad input with its exact body."""

import io
import json
import uuid

import pandas as pd
import pytest

from backtests.models import Backtest, Task
from tests.api.v1.conftest import SHORT_CONFIG
from tests.factories import BacktestFactory, StrategyFactory, stored_v1_metrics

pytestmark = pytest.mark.django_db

V1 = "/api/v1/backtests"


def post(client, path, body):
    return client.post(path, body, format="json")


# --- create -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [V1, f"{V1}/"])
def test_create_returns_201_pending_with_empty_metrics(client, create_body, path):
    response = post(client, path, create_body)

    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "pending"
    assert body["metrics"] == {}
    assert body["strategy_id"] == create_body["strategy_id"]
    assert body["engine"] == "backtrader"
    assert body["config"] == SHORT_CONFIG
    assert body["trades_uri"] is None and body["equity_curve_uri"] is None
    assert Backtest.objects.filter(pk=body["id"]).exists()


def test_create_defaults_follow_the_origin_service(client, strategy):
    response = post(client, V1, {"strategy_id": str(strategy.id), "config": SHORT_CONFIG})

    assert response.status_code == 201
    body = response.json()
    assert body["engine"] == "vectorbt"
    assert body["initial_capital"] == 100_000.0
    assert (body["commission"], body["slippage"]) == (0.0005, 0.0005)


def test_zero_costs_mean_zero(client, create_body):
    create_body.update(commission=0, slippage=0)
    body = post(client, V1, create_body).json()
    assert (body["commission"], body["slippage"]) == (0.0, 0.0)


def bad(client, create_body, **changes):
    body = {**create_body, **changes}
    before = Backtest.objects.count()
    response = post(client, V1, body)
    assert Backtest.objects.count() == before, "a rejected request must create nothing"
    return response


def test_malformed_json_is_400(client, create_body):
    response = client.post(V1, data="{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["detail"].startswith("JSON parse error")


def test_unknown_strategy_names_the_field(client, create_body):
    missing = uuid.uuid4()
    response = bad(client, create_body, strategy_id=str(missing))
    assert response.status_code == 400
    assert response.json() == {"strategy_id": [f"Strategy {missing} does not exist."]}


def test_non_uuid_strategy_id(client, create_body):
    response = bad(client, create_body, strategy_id="abc")
    assert response.status_code == 400
    assert response.json() == {"strategy_id": ["Must be a valid UUID."]}


def test_unknown_engine(client, create_body):
    response = bad(client, create_body, engine="zipline")
    assert response.status_code == 400
    assert response.json() == {
        "engine": ["Unknown engine 'zipline'; available engines: backtrader, vectorbt."]
    }


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("initial_capital", 0, "Must be a number greater than 0."),
        ("initial_capital", -5, "Must be a number greater than 0."),
        ("initial_capital", 1e18, "Must be at most 1e15."),
        ("initial_capital", "lots", "A number is required."),
        ("commission", 0.5, "Must be a number between 0 and 0.1."),
        ("commission", -0.001, "Must be a number between 0 and 0.1."),
        ("slippage", 0.2, "Must be a number between 0 and 0.1."),
        ("slippage", True, "A number is required."),
    ],
)
def test_bad_numbers(client, create_body, field, value, message):
    response = bad(client, create_body, **{field: value})
    assert response.status_code == 400
    assert response.json() == {field: [message]}


def test_unknown_top_level_field(client, create_body):
    response = bad(client, create_body, capital=5)
    assert response.status_code == 400
    assert response.json() == {"capital": ["Unknown field."]}


def test_config_must_be_an_object(client, create_body):
    response = bad(client, create_body, config=["SPY"])
    assert response.status_code == 400
    assert response.json() == {"config": ["Must be a JSON object."]}


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        (
            {"stoploss": 0.1},
            {
                "stoploss": [
                    "Unknown configuration key (accepted: symbol, symbols, start_date, "
                    "end_date, timeframe, bars_per_year, risk_free_rate, signal, "
                    "price_adjustment, size_type, size, direction, signal_plugin_key, "
                    "signal_plugin_params, stop_loss, take_profit, trailing_stop, "
                    "max_holding_bars, signal_delay)."
                ]
            },
        ),
        (
            {"start_date": "2020-13-01"},
            {"start_date": ["Invalid date '2020-13-01': expected YYYY-MM-DD."]},
        ),
        (
            {"start_date": "2021-01-01", "end_date": "2020-01-01"},
            {"end_date": ["Must be after start_date (2021-01-01)."]},
        ),
        ({"end_date": 20201231}, {"end_date": ["Must be a date string YYYY-MM-DD."]}),
        (
            {"start_date": "1980-01-01"},
            {
                "symbol": [
                    "Symbol SPY data not available for requested date range 1980-01-01 to "
                    "2020-12-31 (SPY has data from 1993-01-29 to 2025-09-26)"
                ]
            },
        ),
        ({"symbol": "NOPE"}, None),
        ({"symbol": "SPY?L=20"}, None),
        ({"size": -1}, {"size": ["Must be greater than 0."]}),
        ({"stop_loss": 1.5}, {"stop_loss": ["Must be below 1 (a 100% loss)."]}),
        ({"direction": "sideways"}, {"direction": ["Must be one of: long, short, both."]}),
        (
            {"rebalance_frequency": "monthly"},
            {"rebalance_frequency": ["Not accepted for a signal strategy."]},
        ),
        (
            {"signal_plugin_key": "magic"},
            {
                "signal_plugin_key": [
                    "unknown plugin 'magic' (known: buy_and_hold, sma_crossover, "
                    "ema_crossover, rsi_reversion, macd_cross, bollinger_reversion, breakout, "
                    "momentum)"
                ]
            },
        ),
        (
            {
                "signal_plugin_key": "sma_crossover",
                "signal_plugin_params": {"fast": 50, "slow": 10},
            },
            "signal_plugin_params.fast",
        ),
        (
            {"signal_plugin_key": "sma_crossover", "signal_plugin_params": {"fats": 5}},
            {
                "signal_plugin_params.fats": [
                    "unknown parameter for sma_crossover (known: fast, slow)"
                ]
            },
        ),
        (
            {"signal": {"entry": {"left": {"type": "SMA"}, "comparison": ">", "right": 1}}},
            "signal.entry.left.window",
        ),
    ],
)
def test_bad_config_names_the_config_field(client, create_body, changes, errors):
    config = {**SHORT_CONFIG, **changes}
    response = bad(client, create_body, config=config)

    assert response.status_code == 400
    body = response.json()
    assert list(body) == ["config"]
    if isinstance(errors, dict):
        assert body["config"] == errors
    elif isinstance(errors, str):
        assert errors in body["config"]
    else:
        assert list(body["config"]) == ["symbol"]
        assert changes["symbol"] in body["config"]["symbol"][0]


def test_strategy_definition_drives_and_config_signal_overrides(client, strategy):
    sma = {"type": "SMA", "window": 50}
    strategy.definition = {
        "entry": {"left": {"type": "Close"}, "comparison": ">", "right": sma},
        "exit": {"left": {"type": "Close"}, "comparison": "<", "right": sma},
    }
    strategy.save()
    base = {"strategy_id": str(strategy.id), "engine": "backtrader", "config": dict(SHORT_CONFIG)}

    from_strategy = post(client, V1, base).json()
    executed = post(client, f"{V1}/{from_strategy['id']}/execute", {}).json()
    assert executed["status"] == "completed"
    overridden = post(
        client, V1, {**base, "config": {**SHORT_CONFIG, "signal_plugin_key": "buy_and_hold"}}
    ).json()
    executed_bh = post(client, f"{V1}/{overridden['id']}/execute", None).json()
    assert executed_bh["metrics"]["trade_total_trades"] == 1
    assert executed["metrics"]["trade_total_trades"] > 1


# --- list, get, patch, delete -------------------------------------------------------------------


def test_list_is_a_bare_array_with_skip_limit_and_filters(client):
    strategy = StrategyFactory()
    rows = [BacktestFactory(strategy=strategy) for _ in range(3)]
    other = BacktestFactory(engine="backtrader", status="completed")

    everything = client.get(V1).json()
    assert [row["id"] for row in everything] == [str(r.id) for r in [*rows, other]]
    assert [r["id"] for r in client.get(f"{V1}?skip=1&limit=1").json()] == [str(rows[1].id)]
    by_strategy = client.get(f"{V1}/", {"strategy_id": str(strategy.id)}).json()
    assert len(by_strategy) == 3
    assert [r["id"] for r in client.get(V1, {"status": "completed"}).json()] == [str(other.id)]
    assert [r["id"] for r in client.get(V1, {"engine": "backtrader"}).json()] == [str(other.id)]


def test_list_filters_by_source(client):
    v1_run = BacktestFactory(source="v1")
    v2_run = BacktestFactory(source="v2")
    sweep_run = BacktestFactory(source="sweep")

    assert [r["id"] for r in client.get(V1, {"source": "v2"}).json()] == [str(v2_run.id)]
    assert [r["id"] for r in client.get(V1, {"source": "sweep"}).json()] == [str(sweep_run.id)]
    assert [r["id"] for r in client.get(V1, {"source": "v1"}).json()] == [str(v1_run.id)]


@pytest.mark.parametrize(
    ("query", "errors"),
    [
        ({"limit": 0}, {"limit": ["Ensure this value is greater than or equal to 1."]}),
        ({"limit": 1001}, {"limit": ["Ensure this value is less than or equal to 1000."]}),
        ({"skip": -1}, {"skip": ["Ensure this value is greater than or equal to 0."]}),
        ({"status": "done"}, {"status": ['"done" is not a valid choice.']}),
        ({"source": "fax"}, {"source": ['"fax" is not a valid choice.']}),
        ({"strategy_id": "x"}, {"strategy_id": ["Must be a valid UUID."]}),
    ],
)
def test_list_rejects_bad_query(client, query, errors):
    response = client.get(V1, query)
    assert response.status_code == 400
    assert response.json() == errors


def test_get_pending_has_null_structured_metrics(client):
    backtest = BacktestFactory()
    body = client.get(f"{V1}/{backtest.id}/").json()
    assert body["structured_metrics"] is None
    assert body["started_at"] is None and body["completed_at"] is None


@pytest.mark.parametrize("suffix", ["", "/execute", "/execute/async", "/equity-curve", "/trades"])
def test_non_uuid_and_unknown_ids_are_404(client, suffix):
    method = client.post if suffix.startswith("/execute") else client.get
    response = method(f"{V1}/not-a-uuid{suffix}")
    assert response.status_code == 404
    assert response.json() == {"detail": "Backtest not-a-uuid not found."}
    missing = uuid.uuid4()
    response = method(f"{V1}/{missing}{suffix}/")
    assert response.status_code == 404
    assert response.json() == {"detail": f"Backtest {missing} not found."}


def test_patch_status_and_metrics(client):
    backtest = BacktestFactory(status="running")
    response = client.patch(
        f"{V1}/{backtest.id}", {"status": "pending", "metrics": {"x": 1}}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["status"] == "pending"
    backtest.refresh_from_db()
    assert (backtest.status, backtest.metrics, backtest.extra_metrics) == ("pending", {}, {"x": 1})
    assert response.json()["metrics"] == {"x": 1}


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"status": "stuck"}, {"status": ['"stuck" is not a valid choice.']}),
        ({"metrics": [1]}, {"metrics": ["Must be a JSON object."]}),
        ({"engine": "vectorbt"}, {"engine": ["Unknown field."]}),
    ],
)
def test_patch_rejects_bad_input(client, body, errors):
    backtest = BacktestFactory()
    response = client.patch(f"{V1}/{backtest.id}", body, format="json")
    assert response.status_code == 400
    assert response.json() == errors


def test_delete_is_204(client):
    backtest = BacktestFactory()
    response = client.delete(f"{V1}/{backtest.id}/")
    assert response.status_code == 204
    assert not Backtest.objects.filter(pk=backtest.pk).exists()


# --- execute and results ------------------------------------------------------------------------


@pytest.fixture
def completed(client, create_body):
    created = post(client, V1, create_body).json()
    response = client.post(f"{V1}/{created['id']}/execute")  # empty body = sync
    assert response.status_code == 200
    return response.json()


def test_sync_execute_completes_with_structured_metrics(completed):
    assert completed["status"] == "completed"
    assert completed["started_at"] and completed["completed_at"]
    assert completed["progress"] == 100
    metrics = completed["metrics"]
    assert metrics["trade_total_trades"] == 1
    structured = completed["structured_metrics"]
    assert structured["total_return"] == metrics["total_return"]
    assert structured["performance"]["sharpe_ratio"] == metrics["perf_sharpe_ratio"]
    assert structured["risk"]["max_drawdown"] == metrics["risk_max_drawdown"] > 0
    assert completed["equity_curve_uri"].endswith("/1/equity.parquet")
    assert len(completed["fingerprint"]) == 64


def test_equity_curve_json_matches_metrics_and_parquet(client, completed):
    backtest_id = completed["id"]
    curve = client.get(f"{V1}/{backtest_id}/equity-curve").json()
    assert curve[0]["date"] == "2019-01-02" and curve[-1]["date"] == "2020-12-31"
    assert curve[-1]["equity"] / 100_000 - 1 == pytest.approx(completed["metrics"]["total_return"])

    response = client.get(f"{V1}/{backtest_id}/equity-curve/parquet/")
    assert response.status_code == 200
    assert response["Content-Disposition"] == f"attachment; filename=equity_{backtest_id}.parquet"
    frame = pd.read_parquet(io.BytesIO(response.content))
    assert frame.index.name == "date" and list(frame.columns) == ["equity"]
    assert len(frame) == len(curve)


def test_trades_json_and_parquet(client, completed):
    backtest_id = completed["id"]
    trades = client.get(f"{V1}/{backtest_id}/trades/").json()
    assert len(trades) == 1
    trade = trades[0]
    for column in (
        "symbol",
        "side",
        "entry_date",
        "exit_date",
        "entry_price",
        "exit_price",
        "size",
        "pnl",
        "return_pct",
        "exit_reason",
    ):
        assert column in trade
    assert (trade["symbol"], trade["side"], trade["exit_reason"]) == ("SPY", "long", "end_of_data")
    response = client.get(f"{V1}/{backtest_id}/trades/parquet")
    assert response["Content-Disposition"] == f"attachment; filename=trades_{backtest_id}.parquet"
    frame = pd.read_parquet(io.BytesIO(response.content))
    assert len(frame) == 1 and isinstance(frame.index, pd.RangeIndex)


def test_rerun_writes_a_new_folder(client, completed):
    again = client.post(f"{V1}/{completed['id']}/execute", {}, format="json").json()
    assert again["equity_curve_uri"].endswith("/2/equity.parquet")
    assert again["metrics"] == completed["metrics"]
    assert again["fingerprint"] == completed["fingerprint"]


@pytest.mark.parametrize(
    "suffix", ["/equity-curve", "/equity-curve/parquet", "/trades", "/trades/parquet"]
)
def test_results_of_a_pending_backtest_are_409(client, suffix):
    backtest = BacktestFactory()
    response = client.get(f"{V1}/{backtest.id}{suffix}")
    assert response.status_code == 409
    what = "equity curve" if "equity" in suffix else "trade list"
    assert response.json() == {
        "detail": f"Backtest {backtest.id} is not completed (status: pending); "
        f"its {what} is not available."
    }


def test_results_with_missing_artifacts_are_409(client):
    backtest = BacktestFactory(status="completed", equity_curve_uri="runs/x/1/equity.parquet")
    response = client.get(f"{V1}/{backtest.id}/equity-curve")
    assert response.status_code == 409
    assert response.json() == {
        "detail": f"Backtest {backtest.id}: artifact runs/x/1/equity.parquet cannot be read."
    }
    assert client.get(f"{V1}/{backtest.id}/trades").json() == {
        "detail": f"Backtest {backtest.id} has no stored trade list."
    }


def test_engine_failure_is_200_failed_never_500(client, create_body):
    create_body["config"] = {**SHORT_CONFIG, "size_type": "percent", "size": 1.0}
    created = post(client, V1, create_body).json()
    Backtest.objects.filter(pk=created["id"]).update(config={**SHORT_CONFIG, "size": 5.0})

    response = client.post(f"{V1}/{created['id']}/execute", {"async_mode": False}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "failed"
    assert body["metrics"] == {"error": body["error"]}
    assert body["error"] == "Invalid configuration: size: Must be at most 1."
    assert body["structured_metrics"] is None


def test_storage_failure_fails_the_run_with_a_reason(client, create_body, monkeypatch):
    from backtests import artifacts

    calls = []

    def failing_save(path, content):
        calls.append(path)
        if path.endswith("trades.parquet"):
            raise OSError("disk full")
        return path

    monkeypatch.setattr(artifacts, "save_bytes", failing_save)
    created = post(client, V1, create_body).json()
    body = client.post(f"{V1}/{created['id']}/execute").json()
    assert body["status"] == "failed"
    assert body["error"] == "Could not store the run's artifacts: disk full"
    assert body["equity_curve_uri"] is None and body["trades_uri"] is None


def test_execute_running_is_409(client):
    backtest = BacktestFactory(status="running")
    for path in (f"{V1}/{backtest.id}/execute", f"{V1}/{backtest.id}/execute/async"):
        response = client.post(path, {}, format="json")
        assert response.status_code == 409
        assert response.json() == {"detail": f"Backtest {backtest.id} is already running."}
    assert not Task.objects.exists()


def test_execute_async_with_a_run_already_queued_is_409(
    client, broker, django_capture_on_commit_callbacks
):
    backtest = BacktestFactory()
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post(f"{V1}/{backtest.id}/execute/async")
    assert first.status_code == 200

    for path, body in (
        (f"{V1}/{backtest.id}/execute/async", None),
        (f"{V1}/{backtest.id}/execute", {"async_mode": True}),
    ):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(path, body, format="json")
        assert response.status_code == 409
        assert response.json() == {"detail": f"Backtest {backtest.id} already has a run queued."}
    assert Task.objects.count() == 1
    backtest.refresh_from_db()
    assert (backtest.status, backtest.run_count) == ("pending", 0)


def test_a_finished_queued_run_may_be_queued_again(client, broker):
    backtest = BacktestFactory(status="completed")
    Task.objects.create(kind="execute", backtest=backtest, status="SUCCESS", total=1, done=1)
    response = client.post(f"{V1}/{backtest.id}/execute/async")
    assert response.status_code == 200
    assert Task.objects.filter(status="PENDING").count() == 1


def test_execute_async_of_a_sweep_entry_still_waiting_for_its_sweep_is_409(client, broker):
    from backtests.models import Sweep

    sweep = Sweep.objects.create(
        engine="vectorbt",
        base_config=SHORT_CONFIG,
        param_grid=[{}],
        rank_metric="total_return",
        strategy=StrategyFactory(),
    )
    entry = BacktestFactory(strategy=sweep.strategy, sweep=sweep, sweep_index=0, source="sweep")
    Task.objects.create(kind="sweep", sweep=sweep, status="PROGRESS", total=1)

    response = client.post(f"{V1}/{entry.id}/execute/async")

    assert response.status_code == 409
    assert response.json() == {"detail": f"Backtest {entry.id} already has a run queued."}


def test_execute_rejects_bad_body(client):
    backtest = BacktestFactory()
    response = client.post(f"{V1}/{backtest.id}/execute", {"async": True}, format="json")
    assert response.status_code == 400
    assert response.json() == {"async": ["Unknown field."]}
    response = client.post(f"{V1}/{backtest.id}/execute", {"async_mode": "perhaps"}, format="json")
    assert response.json() == {"async_mode": ["Must be a valid boolean."]}


def test_async_execute_returns_a_pending_task_and_queues_on_commit(
    client, broker, django_capture_on_commit_callbacks
):
    backtest = BacktestFactory(status="completed")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"{V1}/{backtest.id}/execute", {"async_mode": True}, format="json")

    assert response.status_code == 200
    task = Task.objects.get()
    assert response.json() == {
        "task_id": str(task.id),
        "status": "PENDING",
        "backtest_id": str(backtest.id),
    }
    backtest.refresh_from_db()
    assert backtest.status == "pending"
    polled = client.get(f"/api/v1/tasks/{task.id}").json()
    assert polled == {
        "task_id": str(task.id),
        "kind": "execute",
        "status": "PENDING",
        "done": 0,
        "total": 1,
        "result": None,
        "error": None,
        "backtest_id": str(backtest.id),
    }


# --- compare and engines ------------------------------------------------------------------------


def test_engines_available(client):
    for path in (f"{V1}/engines/available", f"{V1}/engines/available/"):
        assert client.get(path).json() == {"engines": ["backtrader", "vectorbt"]}


def test_compare_in_request_order_with_best_by_direction(client):
    first = BacktestFactory(
        **stored_v1_metrics({"total_return": 0.1, "risk_max_drawdown": 0.3, "x": 5})
    )
    second = BacktestFactory(
        **stored_v1_metrics({"total_return": 0.2, "risk_max_drawdown": 0.1, "note": "a"})
    )
    third = BacktestFactory(**stored_v1_metrics({}))
    ids = [str(third.id), str(second.id), str(first.id)]

    response = post(client, f"{V1}/compare", {"backtest_ids": ids})

    assert response.status_code == 200
    body = response.json()
    assert [run["id"] for run in body["runs"]] == ids
    assert body["metric_diff"] == {
        "total_return": {
            "values": {ids[0]: None, ids[1]: 0.2, ids[2]: 0.1},
            "best_id": ids[1],
            "higher_is_better": True,
        },
        "risk_max_drawdown": {
            "values": {ids[0]: None, ids[1]: 0.1, ids[2]: 0.3},
            "best_id": ids[1],
            "higher_is_better": False,
        },
        "x": {
            "values": {ids[0]: None, ids[1]: None, ids[2]: 5},
            "best_id": None,
            "higher_is_better": False,
        },
    }


def test_compare_extends_the_directions_to_every_numeric_flat_metric(client):
    first = BacktestFactory(
        **stored_v1_metrics({"trade_avg_win": 50.0, "trade_turnover_annualised": 3.0})
    )
    second = BacktestFactory(
        **stored_v1_metrics({"trade_avg_win": 80.0, "trade_turnover_annualised": 1.0})
    )
    ids = [str(first.id), str(second.id)]

    diff = post(client, f"{V1}/compare", {"backtest_ids": ids}).json()["metric_diff"]

    assert diff["trade_avg_win"]["best_id"] == ids[1]
    assert diff["trade_avg_win"]["higher_is_better"] is True
    assert diff["trade_turnover_annualised"]["best_id"] == ids[1]
    assert diff["trade_turnover_annualised"]["higher_is_better"] is False


def test_compare_tie_goes_to_the_earliest_created_whatever_the_order(client):
    older = BacktestFactory(**stored_v1_metrics({"total_return": 0.1, "risk_max_drawdown": 0.2}))
    newer = BacktestFactory(**stored_v1_metrics({"total_return": 0.1, "risk_max_drawdown": 0.2}))
    Backtest.objects.filter(pk=older.pk).update(created_at=newer.created_at - pd.Timedelta("1h"))

    for ids in ([str(older.id), str(newer.id)], [str(newer.id), str(older.id)]):
        diff = post(client, f"{V1}/compare", {"backtest_ids": ids}).json()["metric_diff"]
        assert diff["total_return"]["best_id"] == str(older.id)
        assert diff["risk_max_drawdown"]["best_id"] == str(older.id)


def test_compare_tie_at_the_same_moment_goes_to_the_smaller_id(client):
    runs = [BacktestFactory(**stored_v1_metrics({"perf_sharpe_ratio": 1.5})) for _ in range(3)]
    moment = runs[0].created_at
    Backtest.objects.filter(pk__in=[run.pk for run in runs]).update(created_at=moment)
    smallest = min(str(run.id) for run in runs)

    for ids in ([str(run.id) for run in runs], [str(run.id) for run in reversed(runs)]):
        diff = post(client, f"{V1}/compare", {"backtest_ids": ids}).json()["metric_diff"]
        assert diff["perf_sharpe_ratio"]["best_id"] == smallest


@pytest.mark.parametrize(
    ("ids", "errors"),
    [
        (1, {"backtest_ids": ["Give between 2 and 10 backtest ids (got 1)."]}),
        (11, {"backtest_ids": ["Give between 2 and 10 backtest ids (got 11)."]}),
        ("bad", {"backtest_ids": {"1": ["Must be a valid UUID."]}}),
        ("dup", {"backtest_ids": ["Each backtest id may appear only once."]}),
    ],
)
def test_compare_rejects_wrong_sizes(client, ids, errors):
    if ids == "bad":
        ids = [str(uuid.uuid4()), "nope"]
    elif ids == "dup":
        same = str(uuid.uuid4())
        ids = [same, same]
    else:
        ids = [str(uuid.uuid4()) for _ in range(ids)]
    response = post(client, f"{V1}/compare", {"backtest_ids": ids})
    assert response.status_code == 400
    assert response.json() == errors


def test_compare_missing_ids_are_404(client):
    existing = BacktestFactory()
    missing = str(uuid.uuid4())
    response = post(client, f"{V1}/compare/", {"backtest_ids": [str(existing.id), missing]})
    assert response.status_code == 404
    assert response.json() == {"detail": f"Backtests not found: {missing}."}


def test_unknown_task_is_404(client):
    missing = uuid.uuid4()
    assert client.get(f"/api/v1/tasks/{missing}").json() == {"detail": f"Task {missing} not found."}
    response = client.get("/api/v1/tasks/123/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Task 123 not found."}


@pytest.mark.django_db
def test_allocation_evaluation_frequency_and_delay_are_validated_by_field(client):
    allocation = StrategyFactory(
        kind="allocation",
        universe=["SPY", "TLT"],
        definition={
            "allocations": {"stocks": {"SPY": 1.0}, "bonds": {"TLT": 1.0}},
            "fallback_allocation": "bonds",
            "switching_logic": [],
        },
    )
    body = {
        "strategy_id": str(allocation.id),
        "engine": "vectorbt",
        "config": {
            "start_date": "2020-01-01",
            "end_date": "2020-12-31",
            "evaluation_frequency": "hourly",
            "signal_delay": 5,
        },
    }
    response = post(client, V1, body)
    assert response.status_code == 400
    assert response.json() == {
        "config": {
            "evaluation_frequency": ["Must be one of: daily, weekly, monthly, quarterly."],
            "signal_delay": ["Must be at most 2."],
        }
    }
    assert not Backtest.objects.exists()
    body["config"].update(evaluation_frequency="quarterly", signal_delay=2)
    response = post(client, V1, body)
    assert response.status_code in (201, 202), response.json()
    assert response.json()["config"]["evaluation_frequency"] == "quarterly"
    assert response.json()["config"]["signal_delay"] == 2


@pytest.mark.django_db
def test_allocation_cash_flows_are_validated_by_field(client):
    allocation = StrategyFactory(
        kind="allocation",
        universe=["SPY"],
        definition={
            "allocations": {"stocks": {"SPY": 1.0}},
            "fallback_allocation": "stocks",
            "switching_logic": [],
        },
    )
    body = {
        "strategy_id": str(allocation.id),
        "engine": "vectorbt",
        "config": {"start_date": "2020-01-01", "end_date": "2020-12-31", "cashflow_amount": 500},
    }
    response = post(client, V1, body)
    assert response.status_code == 400
    assert response.json() == {
        "config": {"cashflow_amount": ["Needs cashflow_frequency (give both or neither)."]}
    }
    assert not Backtest.objects.exists()
    body["config"]["cashflow_frequency"] = "quarterly"
    response = post(client, V1, body)
    assert response.status_code in (201, 202), response.json()
    assert response.json()["config"]["cashflow_amount"] == 500
    assert response.json()["config"]["cashflow_frequency"] == "quarterly"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("options", "errors"),
    [
        (
            {"cashflow_frequency": "fortnightly", "signal_delay": -1},
            {
                "signal_delay": ["Must be at least 0."],
                "cashflow_frequency": [
                    "Must be one of: weekly, monthly, quarterly, semi-annually, annually.",
                    "Needs cashflow_amount (give both or neither).",
                ],
            },
        ),
        (
            {"cashflow_frequency": "monthly", "evaluation_frequency": "yearly"},
            {
                "evaluation_frequency": ["Must be one of: daily, weekly, monthly, quarterly."],
                "cashflow_frequency": ["Needs cashflow_amount (give both or neither)."],
            },
        ),
        (
            {"cashflow_amount": "NaN", "cashflow_frequency": "weekly", "signal_delay": 1.5},
            {"signal_delay": ["Must be an integer."], "cashflow_amount": ["Must be a number."]},
        ),
        (
            {"cashflow_amount": 0, "cashflow_frequency": "quarterly", "signal_delay": 3},
            {
                "signal_delay": ["Must be at most 2."],
                "cashflow_amount": [
                    "Must not be 0 (positive: a contribution, negative: a withdrawal)."
                ],
            },
        ),
    ],
)
def test_bad_allocation_options_are_each_named_by_field(client, options, errors):
    allocation = StrategyFactory(
        kind="allocation",
        universe=["SPY"],
        definition={
            "allocations": {"stocks": {"SPY": 1.0}},
            "fallback_allocation": "stocks",
            "switching_logic": [],
        },
    )
    config = {"start_date": "2020-01-01", "end_date": "2020-12-31", **options}
    body = {"strategy_id": str(allocation.id), "engine": "vectorbt", "config": config}
    response = post(client, V1, body)
    assert response.status_code == 400
    assert response.json() == {"config": errors}
    assert not Backtest.objects.exists()


@pytest.mark.django_db
def test_a_non_finite_cash_flow_amount_cannot_reach_a_run(client):
    allocation = StrategyFactory(
        kind="allocation",
        universe=["SPY"],
        definition={
            "allocations": {"stocks": {"SPY": 1.0}},
            "fallback_allocation": "stocks",
            "switching_logic": [],
        },
    )
    config = {
        "start_date": "2020-01-01",
        "end_date": "2020-12-31",
        "cashflow_amount": 12345,
        "cashflow_frequency": "monthly",
    }
    body = json.dumps({"strategy_id": str(allocation.id), "config": config})
    at = body.index("12345")
    for literal, reason in (
        ("1e400", "number is infinity when parsed as double"),
        ("NaN", "unexpected character, expected a JSON value"),
    ):
        response = client.generic(
            "POST", V1, body.replace("12345", literal), content_type="application/json"
        )
        assert response.status_code == 400
        assert response.json() == {
            "detail": f"JSON parse error - {reason}: line 1 column {at + 1} (char {at})"
        }
    assert not Backtest.objects.exists()


def test_trades_json_keeps_the_stored_tables_own_columns(client, completed):
    """A trade table stored by another engine or an older release (a column more, one less, in
    its own order) is presented as stored."""
    from backtests import artifacts

    backtest = Backtest.objects.get(pk=completed["id"])
    stored = artifacts.read_trades(backtest.trades_uri)
    other = stored.drop(columns=["fees"]).assign(mae=[-0.5])
    other = other[["mae", *reversed([c for c in other.columns if c != "mae"])]]
    # Written as is (today's writer would put the columns in the current order).
    buffer = io.BytesIO()
    other.to_parquet(buffer, index=False)
    artifacts.save_bytes(backtest.trades_uri, buffer.getvalue())

    response = client.get(f"{V1}/{backtest.id}/trades/")
    assert response.status_code == 200
    (trade,) = response.json()
    assert list(trade) == list(other.columns)
    assert trade["mae"] == -0.5 and "fees" not in trade

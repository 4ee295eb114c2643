import csv
import io
import json
import uuid

import pytest
from django.urls import reverse

from backtests.models import Backtest, Sweep, Task
from tests.factories import BacktestFactory, StrategyFactory
from tests.pages.runs import completed_backtest

pytestmark = pytest.mark.django_db


def _page_urls():
    backtest = BacktestFactory()
    strategy = backtest.strategy
    sweep = Sweep.objects.create(
        strategy=strategy, engine="vectorbt", param_grid=[{}], rank_metric="total_return"
    )
    other = BacktestFactory(strategy=strategy)
    return [
        reverse("pages:dashboard"),
        reverse("pages:backtest-list"),
        reverse("pages:backtest-detail", args=[backtest.id]),
        reverse("pages:backtest-chart-data", args=[backtest.id]),
        reverse("pages:backtest-status", args=[backtest.id]),
        reverse("pages:backtest-equity-csv", args=[backtest.id]),
        reverse("pages:backtest-trades-csv", args=[backtest.id]),
        f"{reverse('pages:compare')}?ids={backtest.id},{other.id}",
        f"{reverse('pages:compare-chart-data')}?ids={backtest.id},{other.id}",
        reverse("pages:sweep-detail", args=[sweep.id]),
        reverse("pages:sweep-status", args=[sweep.id]),
        reverse("pages:strategy-list"),
        reverse("pages:strategy-detail", args=[strategy.id]),
    ]


def test_every_page_sends_anonymous_visitors_to_the_login_page(client):
    for url in _page_urls():
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/?next="), url


def test_every_page_refuses_users_without_staff_access(non_staff_client):
    for url in _page_urls():
        response = non_staff_client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/"), url


def test_starting_runs_needs_staff_too(non_staff_client):
    strategy = StrategyFactory()
    for name in ("pages:strategy-start-backtest", "pages:strategy-start-sweep"):
        response = non_staff_client.post(reverse(name, args=[strategy.id]), {})
        assert response.status_code == 302
    assert not Backtest.objects.exists()
    assert not Sweep.objects.exists()


def test_login_page_renders_and_logs_staff_in(client, staff_user):
    assert client.get("/accounts/login/").status_code == 200
    response = client.post(
        "/accounts/login/", {"username": "staff", "password": "correct-horse-44", "next": "/"}
    )
    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_dashboard_lists_recent_runs_running_tasks_and_symbols(staff_client):
    backtest = completed_backtest()
    running = BacktestFactory(status=Backtest.Status.RUNNING)
    Task.objects.create(kind=Task.Kind.EXECUTE, backtest=running, status=Task.Status.STARTED)
    Task.objects.create(kind=Task.Kind.EXECUTE, backtest=backtest, status=Task.Status.SUCCESS)

    response = staff_client.get("/")

    content = response.content.decode()
    assert response.status_code == 200
    assert str(backtest.id)[:8] in content
    assert list(response.context["active_tasks"]) == [running.tasks.get()]
    symbols = [coverage.symbol for coverage in response.context["symbols"]]
    assert "SPY" in symbols
    assert ">SPY<" in content


class TestBacktestList:
    def test_filters_by_status_and_engine(self, staff_client):
        completed = completed_backtest()
        BacktestFactory(status=Backtest.Status.FAILED)
        on_backtrader = BacktestFactory(engine="backtrader")

        by_status = staff_client.get("/backtests/", {"status": "completed"})
        by_engine = staff_client.get("/backtests/", {"engine": "backtrader"})

        assert [row.id for row in by_status.context["page"]] == [completed.id]
        assert [row.id for row in by_engine.context["page"]] == [on_backtrader.id]

    def test_filters_by_source(self, staff_client):
        BacktestFactory(source=Backtest.Source.V1)
        from_backfolio = BacktestFactory(source=Backtest.Source.V2)

        response = staff_client.get("/backtests/", {"source": "v2"})

        assert [row.id for row in response.context["page"]] == [from_backfolio.id]
        assert 'name="source"' in response.content.decode()

    def test_sorts_and_paginates(self, staff_client):
        strategies = [StrategyFactory(name=name) for name in ("Beta", "Alpha", "Gamma")]
        for number in range(30):
            BacktestFactory(strategy=strategies[number % 3])

        first = staff_client.get("/backtests/", {"sort": "strategy"})
        second = staff_client.get("/backtests/", {"sort": "strategy", "page": 2})

        assert first.context["page"].paginator.count == 30
        assert len(first.context["page"]) == 25
        assert len(second.context["page"]) == 5
        names = [row.strategy.name for row in first.context["page"]]
        assert names == sorted(names)
        assert [row.strategy.name for row in second.context["page"]] == ["Gamma"] * 5
        assert "sort=strategy&amp;page=2" in first.content.decode()

    def test_shows_the_headline_metrics_in_their_units(self, staff_client):
        backtest = completed_backtest()
        content = staff_client.get("/backtests/").content.decode()
        expected = f"{backtest.metrics['total_return'] * 100:.2f}%"
        assert expected in content


class TestBacktestDetail:
    def test_completed_run_shows_metrics_downloads_configuration(self, staff_client):
        backtest = completed_backtest()

        response = staff_client.get(f"/backtests/{backtest.id}/")

        content = response.content.decode()
        assert response.status_code == 200
        groups = dict(response.context["metric_groups"])
        assert set(groups) == {"Summary", "Performance", "Risk", "Trading"}
        sharpe = next(row for row in groups["Performance"] if row.key == "perf_sharpe_ratio")
        assert sharpe.display == f"{backtest.metrics['sharpe_ratio']:.3f}"
        assert f"/api/v1/backtests/{backtest.id}/equity-curve/parquet" in content
        assert f"/api/v1/backtests/{backtest.id}/trades/parquet" in content
        assert f"/backtests/{backtest.id}/trades.csv" in content
        assert backtest.fingerprint in content
        assert "&quot;symbol&quot;: &quot;SPY&quot;" in content
        assert "vendor/plotly.min.js" in content
        assert 'id="live-status"' not in content

    def test_trades_are_sorted_and_paginated(self, staff_client):
        backtest = completed_backtest(trades=30)

        by_pnl = staff_client.get(f"/backtests/{backtest.id}/", {"sort": "-pnl"})
        second_page = staff_client.get(f"/backtests/{backtest.id}/", {"sort": "-pnl", "page": 2})

        page = by_pnl.context["trades_page"]
        assert page.page.paginator.count == 30
        assert len(page.rows) == 25
        pnls = [float(row["pnl"].replace(",", "")) for row in page.rows]
        assert pnls == sorted(pnls, reverse=True)
        assert len(second_page.context["trades_page"].rows) == 5
        last_pnls = [
            float(row["pnl"].replace(",", "")) for row in second_page.context["trades_page"].rows
        ]
        assert max(last_pnls) <= min(pnls)

    def test_a_running_run_polls_its_status(self, staff_client):
        backtest = BacktestFactory(
            status=Backtest.Status.RUNNING, progress=40, progress_message="Simulating"
        )

        content = staff_client.get(f"/backtests/{backtest.id}/").content.decode()
        status = staff_client.get(f"/backtests/{backtest.id}/status").json()

        assert f'data-status-url="/backtests/{backtest.id}/status"' in content
        assert status == {
            "id": str(backtest.id),
            "status": "running",
            "progress": 40,
            "message": "Simulating",
            "error": "",
            "done": False,
        }

    def test_a_failed_run_shows_its_error(self, staff_client):
        backtest = BacktestFactory(status=Backtest.Status.FAILED, error="Symbol XYZ not found")
        content = staff_client.get(f"/backtests/{backtest.id}/").content.decode()
        assert "Symbol XYZ not found" in content
        assert staff_client.get(f"/backtests/{backtest.id}/status").json()["done"] is True

    def test_unknown_run_is_404(self, staff_client):
        assert staff_client.get(f"/backtests/{uuid.uuid4()}/").status_code == 404


class TestChartData:
    def test_series_agree_with_the_metrics(self, staff_client):
        backtest = completed_backtest()

        data = staff_client.get(f"/backtests/{backtest.id}/chart-data").json()

        metrics = backtest.metrics
        assert len(data["equity"]["dates"]) == len(data["equity"]["values"]) == 260
        assert data["equity"]["dates"][0] == "2020-01-02"
        assert min(data["drawdown"]["values"]) == pytest.approx(metrics["max_drawdown"])
        assert max(data["drawdown"]["values"]) <= 0
        compounded = 1.0
        for row in data["monthly_returns"]["values"]:
            for value in row:
                if value is not None:
                    compounded *= 1 + value
        assert compounded - 1 == pytest.approx(metrics["total_return"])
        assert data["monthly_returns"]["years"] == [2020]

    def test_benchmark_is_spy_bought_with_the_same_capital_over_the_same_dates(self, staff_client):
        from marketdata.store import get_store

        backtest = completed_backtest(initial_capital=50_000.0)

        data = staff_client.get(f"/backtests/{backtest.id}/chart-data").json()

        benchmark = data["benchmark"]
        assert benchmark["symbol"] == "SPY"
        assert benchmark["dates"] == data["equity"]["dates"]
        assert benchmark["values"][0] == pytest.approx(50_000.0)
        close = get_store().load(["SPY"], "2020-01-02", "2020-12-31").close["SPY"]
        expected_last = 50_000.0 * close.loc[: data["equity"]["dates"][-1]].iloc[-1] / close.iloc[0]
        assert benchmark["values"][-1] == pytest.approx(expected_last)

    def test_a_run_without_results_has_no_chart_data(self, staff_client):
        backtest = BacktestFactory()
        response = staff_client.get(f"/backtests/{backtest.id}/chart-data")
        assert response.status_code == 409


class TestCsvDownloads:
    def test_equity_csv(self, staff_client):
        backtest = completed_backtest()

        response = staff_client.get(f"/backtests/{backtest.id}/equity.csv")

        assert response["Content-Disposition"] == f'attachment; filename="equity_{backtest.id}.csv"'
        rows = list(csv.reader(io.StringIO(response.content.decode())))
        assert rows[0] == ["date", "equity"]
        assert len(rows) == 261
        chart = staff_client.get(f"/backtests/{backtest.id}/chart-data").json()
        assert float(rows[-1][1]) == chart["equity"]["values"][-1]

    def test_trades_csv(self, staff_client):
        backtest = completed_backtest(trades=12)

        response = staff_client.get(f"/backtests/{backtest.id}/trades.csv")

        rows = list(csv.DictReader(io.StringIO(response.content.decode())))
        assert len(rows) == 12
        assert rows[0]["entry_date"] == "2020-01-02"
        assert {"symbol", "side", "pnl", "return_pct", "exit_reason"} <= set(rows[0])

    def test_no_artifacts_is_404(self, staff_client):
        backtest = BacktestFactory()
        assert staff_client.get(f"/backtests/{backtest.id}/equity.csv").status_code == 404
        assert staff_client.get(f"/backtests/{backtest.id}/trades.csv").status_code == 404


class TestCompare:
    def test_highlights_the_best_value_per_row_by_the_contracts_direction(self, staff_client):
        first = completed_backtest(seed=1)
        second = completed_backtest(seed=2)

        response = staff_client.get("/compare/", {"ids": f"{first.id},{second.id}"})

        assert response.status_code == 200
        rows = {row.key: row for row in response.context["rows"]}
        values = [first.metrics, second.metrics]
        higher = rows["perf_sharpe_ratio"]
        best_sharpe = max(range(2), key=lambda i: values[i]["sharpe_ratio"])
        assert [best for _, best in higher.cells] == [i == best_sharpe for i in range(2)]
        lower = rows["risk_max_drawdown"]
        best_drawdown = max(range(2), key=lambda i: values[i]["max_drawdown"])  # shallowest
        assert [best for _, best in lower.cells] == [i == best_drawdown for i in range(2)]
        best_final = max(range(2), key=lambda i: values[i]["final_value"])
        assert [best for _, best in rows["final_value"].cells] == [
            i == best_final for i in range(2)
        ]
        assert 'class="num best"' in response.content.decode()

    def test_checkbox_form_ids_work_too(self, staff_client):
        first, second = completed_backtest(seed=1), completed_backtest(seed=2)
        response = staff_client.get(f"/compare/?ids={first.id}&ids={second.id}")
        assert [b.id for b in response.context["backtests"]] == [first.id, second.id]

    def test_chart_data_has_one_curve_per_run_in_request_order(self, staff_client):
        first, second = completed_backtest(seed=1), completed_backtest(seed=2)

        data = staff_client.get("/compare/chart-data", {"ids": f"{second.id},{first.id}"}).json()

        assert [series["id"] for series in data["series"]] == [str(second.id), str(first.id)]
        assert len(data["series"][0]["values"]) == 260

    def test_needs_two_to_ten_existing_runs(self, staff_client):
        only = completed_backtest()
        eleven = ",".join(str(uuid.uuid4()) for _ in range(11))
        assert staff_client.get("/compare/", {"ids": str(only.id)}).status_code == 400
        assert staff_client.get("/compare/", {"ids": eleven}).status_code == 400
        assert staff_client.get("/compare/", {"ids": "a,b"}).status_code == 400
        missing = staff_client.get("/compare/", {"ids": f"{only.id},{uuid.uuid4()}"})
        assert missing.status_code == 404


class TestSweep:
    def _sweep(self):
        strategy = StrategyFactory()
        grid = [
            {"signal_plugin_params": {"fast": fast, "slow": slow}}
            for fast in (5, 10)
            for slow in (50, 100)
        ]
        sweep = Sweep.objects.create(
            strategy=strategy,
            engine="vectorbt",
            base_config={"symbol": "SPY"},
            param_grid=grid,
            rank_metric="perf_sharpe_ratio",
        )
        return sweep, grid

    def test_while_running_shows_children_in_grid_order(self, staff_client):
        sweep, grid = self._sweep()
        Task.objects.create(
            kind=Task.Kind.SWEEP, sweep=sweep, status=Task.Status.PROGRESS, done=1, total=4
        )
        finished = completed_backtest(strategy=sweep.strategy, sweep=sweep, sweep_index=0)
        BacktestFactory(
            strategy=sweep.strategy, sweep=sweep, sweep_index=1, status=Backtest.Status.RUNNING
        )

        status = staff_client.get(f"/sweeps/{sweep.id}/status").json()

        assert status["status"] == "PROGRESS"
        assert (status["done"], status["total"], status["finished"]) == (1, 4, False)
        assert [entry["overrides"] for entry in status["leaderboard"]] == grid[:2]
        assert status["leaderboard"][0]["score"] == finished.metrics["sharpe_ratio"]
        assert status["leaderboard"][1]["score"] is None

    def test_finished_shows_the_ranked_leaderboard_and_a_heatmap(self, staff_client):
        sweep, grid = self._sweep()
        leaderboard = [
            {
                "rank": rank,
                "backtest_id": str(uuid.uuid4()),
                "overrides": grid[index],
                "status": "completed",
                "score": score,
                "rank_metric": "perf_sharpe_ratio",
                "metrics_summary": {},
            }
            for rank, (index, score) in enumerate([(3, 1.5), (1, 1.2), (2, 0.7), (0, 0.1)], 1)
        ]
        Task.objects.create(
            kind=Task.Kind.SWEEP,
            sweep=sweep,
            status=Task.Status.SUCCESS,
            done=4,
            total=4,
            result={"leaderboard": leaderboard, "total_runs": 4, "completed": 4, "failed": 0},
        )

        response = staff_client.get(f"/sweeps/{sweep.id}/")
        status = staff_client.get(f"/sweeps/{sweep.id}/status").json()

        assert response.status_code == 200
        assert [entry["rank"] for entry in status["leaderboard"]] == [1, 2, 3, 4]
        assert status["finished"] is True
        heatmap = status["heatmap"]
        assert heatmap["x_name"] == "signal_plugin_params.fast"
        assert heatmap["y_name"] == "signal_plugin_params.slow"
        assert heatmap["x"] == [5, 10] and heatmap["y"] == [50, 100]
        assert heatmap["z"] == [[0.1, 0.7], [1.2, 1.5]]
        assert "1.500" in response.content.decode()


class TestStrategies:
    def test_list_and_detail(self, staff_client):
        definition = {
            "entry": {
                "left": {"type": "Close"},
                "comparison": ">",
                "right": {"type": "SMA", "window": 50},
            }
        }
        strategy = StrategyFactory(name="Trend follower", definition=definition)
        backtest = completed_backtest(strategy=strategy)

        listing = staff_client.get("/strategies/").content.decode()
        detail = staff_client.get(f"/strategies/{strategy.id}/")

        assert "Trend follower" in listing
        content = detail.content.decode()
        assert str(backtest.id)[:8] in content
        assert "&quot;comparison&quot;: &quot;&gt;&quot;" in content
        assert 'id="backtest-form"' in content and 'id="sweep-form"' in content
        engines = dict(detail.context["backtest_form"].fields["engine"].choices)
        assert "vectorbt" in engines

    def test_an_invalid_backtest_form_creates_nothing(self, staff_client):
        strategy = StrategyFactory()

        response = staff_client.post(
            f"/strategies/{strategy.id}/backtests/new",
            {
                "run-engine": "vectorbt",
                "run-symbol": "SPY",
                "run-start_date": "2020-01-01",
                "run-end_date": "2019-01-01",
                "run-initial_capital": "100000",
                "run-commission": "0.5",
                "run-slippage": "0",
            },
        )

        assert response.status_code == 400
        form = response.context["backtest_form"]
        assert "end_date" in form.errors and "commission" in form.errors
        assert not Backtest.objects.exists()

    def test_a_sweep_grid_over_too_many_combinations_is_refused(self, staff_client):
        strategy = StrategyFactory()

        response = staff_client.post(
            f"/strategies/{strategy.id}/sweeps/new",
            {
                "sweep-engine": "vectorbt",
                "sweep-symbol": "SPY",
                "sweep-start_date": "2019-01-02",
                "sweep-end_date": "2020-12-31",
                "sweep-initial_capital": "100000",
                "sweep-commission": "0",
                "sweep-slippage": "0",
                "sweep-signal_plugin_key": "sma_crossover",
                "sweep-grid": "fast = 1,2,3,4,5,6,7,8\nslow = 10,20,30,40,50,60,70",
                "sweep-rank_metric": "perf_sharpe_ratio",
            },
        )

        assert response.status_code == 400
        assert "56 combinations" in json.dumps(response.context["sweep_form"].errors)
        assert not Sweep.objects.exists()


class TestStartingRuns:
    def test_the_backtest_form_creates_a_ui_run_owned_by_the_analyst_and_queues_it(
        self, staff_client, staff_user
    ):
        strategy = StrategyFactory()

        response = staff_client.post(
            f"/strategies/{strategy.id}/backtests/new",
            {
                "run-engine": "backtrader",
                "run-symbol": "SPY",
                "run-start_date": "2019-01-02",
                "run-end_date": "2020-12-31",
                "run-initial_capital": "50000",
                "run-commission": "0.001",
                "run-slippage": "0.0005",
                "run-signal_plugin_key": "sma_crossover",
                "run-sma_crossover__fast": "12",
                "run-sma_crossover__slow": "50",
            },
        )

        backtest = Backtest.objects.get()
        assert response.status_code == 302
        assert response["Location"] == f"/backtests/{backtest.id}/"
        assert (backtest.source, backtest.owner, backtest.engine) == (
            "ui",
            staff_user,
            "backtrader",
        )
        assert (backtest.initial_capital, backtest.commission, backtest.slippage) == (
            50_000.0,
            0.001,
            0.0005,
        )
        assert backtest.config == {
            "symbol": "SPY",
            "start_date": "2019-01-02",
            "end_date": "2020-12-31",
            "signal_plugin_key": "sma_crossover",
            "signal_plugin_params": {"fast": 12, "slow": 50},
        }
        task = Task.objects.get()
        assert (task.kind, task.backtest, task.owner) == ("execute", backtest, staff_user)

    def test_problems_found_by_the_service_come_back_on_the_form(self, staff_client):
        strategy = StrategyFactory()

        response = staff_client.post(
            f"/strategies/{strategy.id}/backtests/new",
            {
                "run-engine": "vectorbt",
                "run-symbol": "SPY",
                "run-start_date": "1950-01-03",
                "run-end_date": "1951-12-31",
                "run-initial_capital": "100000",
                "run-commission": "0",
                "run-slippage": "0",
            },
        )

        assert response.status_code == 400
        errors = json.dumps(response.context["backtest_form"].errors)
        assert "SPY" in errors
        assert not Backtest.objects.exists()

    def test_the_sweep_form_creates_one_child_per_combination(self, staff_client, staff_user):
        strategy = StrategyFactory()

        response = staff_client.post(
            f"/strategies/{strategy.id}/sweeps/new",
            {
                "sweep-engine": "vectorbt",
                "sweep-symbol": "SPY",
                "sweep-start_date": "2019-01-02",
                "sweep-end_date": "2020-12-31",
                "sweep-initial_capital": "100000",
                "sweep-commission": "0.001",
                "sweep-slippage": "0",
                "sweep-signal_plugin_key": "sma_crossover",
                "sweep-grid": "fast = 5, 10\nslow = 50, 100",
                "sweep-rank_metric": "total_return",
            },
        )

        sweep = Sweep.objects.get()
        assert response.status_code == 302
        assert response["Location"] == f"/sweeps/{sweep.id}/"
        assert (sweep.owner, sweep.rank_metric, sweep.engine) == (
            staff_user,
            "total_return",
            "vectorbt",
        )
        assert sweep.base_config["signal_plugin_key"] == "sma_crossover"
        assert sweep.param_grid == [
            {"signal_plugin_params": {"fast": 5, "slow": 50}},
            {"signal_plugin_params": {"fast": 5, "slow": 100}},
            {"signal_plugin_params": {"fast": 10, "slow": 50}},
            {"signal_plugin_params": {"fast": 10, "slow": 100}},
        ]
        assert sweep.backtests.count() == 4
        assert sweep.task.total == 4

    def test_a_grid_naming_an_unknown_parameter_is_refused(self, staff_client):
        strategy = StrategyFactory()

        response = staff_client.post(
            f"/strategies/{strategy.id}/sweeps/new",
            {
                "sweep-engine": "vectorbt",
                "sweep-symbol": "SPY",
                "sweep-start_date": "2019-01-02",
                "sweep-end_date": "2020-12-31",
                "sweep-initial_capital": "100000",
                "sweep-commission": "0",
                "sweep-slippage": "0",
                "sweep-signal_plugin_key": "sma_crossover",
                "sweep-grid": "speed = 1, 2",
                "sweep-rank_metric": "total_return",
            },
        )

        assert response.status_code == 400
        assert "sma_crossover has no parameter speed" in response.content.decode()
        assert not Sweep.objects.exists()


def test_backtest_list_sorts_by_a_headline_metric(staff_client):
    runs = [completed_backtest(seed=seed) for seed in (1, 2, 3)]
    BacktestFactory()  # no metrics yet

    response = staff_client.get("/backtests/", {"sort": "-sharpe", "status": "completed"})

    expected = sorted(runs, key=lambda run: run.metrics["sharpe_ratio"], reverse=True)
    assert [row.id for row in response.context["page"]] == [run.id for run in expected]
    assert "sort=sharpe" in response.content.decode()  # the header link flips the direction

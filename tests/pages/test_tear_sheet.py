"""The tear sheet, run titles and compare as the pages serve them (real artifacts, real data)."""

import pytest

from backtests.models import Backtest
from tests.factories import BacktestFactory
from tests.pages.runs import completed_backtest

pytestmark = pytest.mark.django_db


class TestTearSheetData:
    def test_rolling_series_yearly_column_and_worst_drawdowns(self, staff_client):
        backtest = completed_backtest()

        data = staff_client.get(f"/backtests/{backtest.id}/chart-data").json()

        rolling = data["rolling"]
        assert rolling["window"] == 126
        # 260 bars: the first full window ends on bar 126.
        assert len(rolling["sharpe"]["values"]) == len(rolling["volatility"]["values"]) == 135
        assert rolling["sharpe"]["dates"][0] == data["equity"]["dates"][125]
        assert len(rolling["beta"]["values"]) == 135
        monthly = data["monthly_returns"]
        assert len(monthly["benchmark_yearly"]) == len(monthly["years"]) == 1
        spy = data["benchmark"]["values"]
        assert monthly["benchmark_yearly"][0] == pytest.approx(spy[-1] / spy[0] - 1)
        depths = [period["max_drawdown"] for period in data["worst_drawdowns"]]
        assert depths == sorted(depths) and len(depths) <= 5
        assert depths[0] == pytest.approx(backtest.metrics["max_drawdown"])

    def test_the_benchmark_is_any_bundled_symbol_and_an_unknown_one_is_400(self, staff_client):
        backtest = completed_backtest()
        url = f"/backtests/{backtest.id}/chart-data"

        data = staff_client.get(url, {"benchmark": "QQQ"}).json()
        assert data["benchmark_symbol"] == data["benchmark"]["symbol"] == "QQQ"

        response = staff_client.get(url, {"benchmark": "NOPE"})
        assert response.status_code == 400
        assert response.json() == {"detail": "NOPE is not a bundled symbol."}

    def test_the_default_benchmark_is_the_runs_own_symbol(self, staff_client):
        backtest = completed_backtest(
            config={"symbol": "QQQ", "start_date": "2020-01-02", "end_date": "2020-12-31"}
        )
        data = staff_client.get(f"/backtests/{backtest.id}/chart-data").json()
        assert data["benchmark"]["symbol"] == "QQQ"
        page = staff_client.get(f"/backtests/{backtest.id}/").content.decode()
        assert '<option value="QQQ" selected>' in page

    def test_twenty_years_of_bars_are_downsampled_for_display_and_csv_stays_whole(
        self, staff_client
    ):
        from backtests import artifacts
        from tests.pages.runs import equity_curve

        backtest = completed_backtest()
        long_curve = equity_curve(seed=3, start="2001-01-02", bars=5040)
        folder = artifacts.run_folder(backtest.id, 2)
        backtest.equity_curve_uri = artifacts.save_bytes(
            f"{folder}/equity.parquet", artifacts.equity_to_parquet(long_curve)
        )
        backtest.save()

        data = staff_client.get(f"/backtests/{backtest.id}/chart-data").json()

        assert data["bars"] == 5040
        for series in (data["equity"], data["drawdown"], data["benchmark"]):
            assert len(series["values"]) <= 2000
        assert data["equity"]["values"][-1] == pytest.approx(long_curve.iloc[-1])
        assert max(data["equity"]["values"]) == pytest.approx(long_curve.max())
        csv = staff_client.get(f"/backtests/{backtest.id}/equity.csv").content.decode()
        assert len(csv.strip().splitlines()) == 5041

    def test_series_are_computed_once_per_artifact_and_the_label_is_read_fresh(self, staff_client):
        from django.core.files.storage import default_storage

        from backtests import artifacts
        from tests.pages.runs import equity_curve

        backtest = completed_backtest()
        url = f"/backtests/{backtest.id}/chart-data"
        first = staff_client.get(url).json()
        # The same artifact rewritten in place (which a run never does) is not read again…
        default_storage.delete(backtest.equity_curve_uri)
        assert staff_client.get(url).json()["equity"] == first["equity"]
        # …while a new run's artifact is, and a renamed strategy shows its new name at once.
        other = equity_curve(seed=9, capital=backtest.initial_capital)
        folder = artifacts.run_folder(backtest.id, 2)
        backtest.equity_curve_uri = artifacts.save_bytes(
            f"{folder}/equity.parquet", artifacts.equity_to_parquet(other)
        )
        backtest.run_count = 2
        backtest.save()
        backtest.strategy.name = "Renamed strategy"
        backtest.strategy.save()

        second = staff_client.get(url).json()

        assert second["equity"]["values"][-1] == pytest.approx(other.iloc[-1])
        assert second["equity"]["values"][-1] != first["equity"]["values"][-1]
        assert second["label"].startswith("Renamed strategy")


class TestRunTitles:
    def test_a_run_says_its_symbol_parameters_and_period(self, staff_client):
        backtest = completed_backtest(
            config={
                "symbol": "QQQ",
                "start_date": "2020-01-02",
                "end_date": "2020-12-31",
                "signal_plugin_key": "sma_crossover",
                "signal_plugin_params": {"fast": 20, "slow": 100},
            }
        )
        page = staff_client.get(f"/backtests/{backtest.id}/").content.decode()
        assert "sma_crossover(fast 20, slow 100) · 2020-01-02 → 2020-12-31" in page
        listing = staff_client.get("/backtests/").content.decode()
        assert "sma_crossover(fast 20, slow 100)" in listing and "QQQ" in listing

    def test_a_portfolio_run_is_named_and_linked_on_the_overview(self, staff_client):
        backtest = BacktestFactory(
            strategy=None,
            source=Backtest.Source.V2,
            config={
                "name": "Tactical tilt",
                "strategy": {
                    "allocations": {"risk_on": {"SPY": 0.6, "QQQ": 0.4}, "risk_off": {"CASH": 1}},
                    "fallback_allocation": {"TLT": 1.0},
                },
                "config": {
                    "start_date": "2015-01-02",
                    "end_date": "2020-12-31",
                    "rebalance_frequency": "monthly",
                },
            },
        )
        page = staff_client.get("/").content.decode()
        assert f'href="/backtests/{backtest.id}/" class="run-name">Tactical tilt</a>' in page
        assert "CASH, QQQ, SPY, TLT" in page
        assert "rebalance monthly · 2015-01-02 → 2020-12-31" in page


class TestCompare:
    def test_equal_best_values_mark_no_best(self, staff_client):
        first = completed_backtest(seed=1)
        twin = completed_backtest(seed=1)
        other = completed_backtest(seed=2)

        response = staff_client.get("/compare/", {"ids": f"{first.id},{twin.id},{other.id}"})

        rows = {row.key: row for row in response.context["rows"]}
        for row in rows.values():
            shown = [display for display, _ in row.cells]
            best = [flag for _, flag in row.cells]
            if shown[0] == shown[1] and any(best[:2]):
                pytest.fail(f"{row.key} marks one of two equal values best")
        trades = rows["trade_total_trades"]
        assert [flag for _, flag in trades.cells] == [False, False, False]
        assert rows["perf_sharpe_ratio"].label == "Sharpe ratio"

    def test_curves_are_rebased_on_the_common_period_with_drawdowns(self, staff_client):
        first, second = completed_backtest(seed=1), completed_backtest(seed=2)

        data = staff_client.get("/compare/chart-data", {"ids": f"{first.id},{second.id}"}).json()

        assert data["common_start"] == "2020-01-02"
        for series in data["series"]:
            assert series["values"][0] == 100.0
            assert (
                min(series["drawdown"]["values"]) <= 0 <= max(series["drawdown"]["values"]) + 1e-12
            )

    def test_configuration_differences_are_listed(self, staff_client):
        first = completed_backtest(seed=1, commission=0.001)
        second = completed_backtest(seed=2, commission=0.002, engine="backtrader")

        response = staff_client.get("/compare/", {"ids": f"{first.id},{second.id}"})

        differences = dict(response.context["differences"])
        assert differences["commission"] == ["0.001", "0.002"]
        assert differences["engine"] == ["vectorbt", "backtrader"]
        assert "slippage" not in differences


class TestListFilters:
    def test_engine_is_chosen_from_a_list(self, staff_client):
        BacktestFactory(engine="backtrader")
        form = staff_client.get("/backtests/").context["filter"].form
        choices = [value for value, _ in form.fields["engine"].choices if value]
        assert {"vectorbt", "backtrader"} <= set(choices)
        response = staff_client.get("/backtests/", {"engine": "Backtrader"})
        assert response.context["filter"].errors["engine"] == [
            "Select a valid choice. Backtrader is not one of the available choices."
        ]

    def test_search_finds_symbols_and_built_in_strategy_keys(self, staff_client):
        on_qqq = BacktestFactory(config={"symbol": "QQQ", "start_date": "2020-01-02"})
        several = BacktestFactory(config={"symbols": ["TLT", "GLD"], "start_date": "2020-01-02"})
        plugin = BacktestFactory(
            config={
                "symbol": "SPY",
                "signal_plugin_key": "rsi_reversion",
                "start_date": "2020-01-02",
            }
        )

        def found(text):
            return {row.id for row in staff_client.get("/backtests/", {"q": text}).context["page"]}

        assert found("qqq") == {on_qqq.id}
        assert found("GLD") == {several.id}
        assert found("rsi_rev") == {plugin.id}


class TestSweepPage:
    def test_pending_runs_are_not_ranked_and_statuses_and_parameters_are_readable(
        self, staff_client
    ):
        from backtests.models import Sweep, Task

        grid = [{"signal_plugin_params": {"fast": 5, "slow": 50}}, {"stop_loss": 0.05}]
        first = BacktestFactory()
        sweep = Sweep.objects.create(
            strategy=first.strategy,
            engine="vectorbt",
            param_grid=grid,
            rank_metric="perf_sharpe_ratio",
        )
        Task.objects.create(
            kind=Task.Kind.SWEEP, sweep=sweep, status=Task.Status.PROGRESS, done=1, total=2
        )
        completed_backtest(strategy=sweep.strategy, sweep=sweep, sweep_index=0)
        BacktestFactory(strategy=sweep.strategy, sweep=sweep, sweep_index=1)

        status = staff_client.get(f"/sweeps/{sweep.id}/status").json()
        page = staff_client.get(f"/sweeps/{sweep.id}/").content.decode()

        assert [entry["rank"] for entry in status["leaderboard"]] == [1, None]
        assert [entry["status_label"] for entry in status["leaderboard"]] == [
            "Completed",
            "Pending",
        ]
        assert [entry["parameters"] for entry in status["leaderboard"]] == [
            "fast 5, slow 50",
            "stop loss 0.05",
        ]
        assert status["status_label"] == "In progress"
        assert ">In progress</span>" in page and "PROGRESS</span>" not in page
        assert "<td>fast 5, slow 50</td>" in page and "{&#x27;" not in page
        assert "Sharpe ratio" in page


class TestRobustnessPanel:
    def test_nothing_is_computed_until_asked(self, staff_client):
        backtest = completed_backtest()
        response = staff_client.get(f"/backtests/{backtest.id}/robustness")
        assert response.status_code == 404
        assert response.json() == {"detail": "Robustness has not been requested for this run."}
        assert (
            'id="robustness-button"'
            in staff_client.get(f"/backtests/{backtest.id}/").content.decode()
        )

    def test_a_run_that_is_not_completed_is_409(self, staff_client):
        backtest = BacktestFactory()
        response = staff_client.post(f"/backtests/{backtest.id}/robustness/start")
        assert response.status_code == 409
        assert response.json()["detail"] == (
            f"Backtest {backtest.id} is not completed (status: pending); "
            "its robustness cannot be computed."
        )


class TestSweepsIndex:
    def test_lists_every_kind_of_sweep_and_compares_a_sweeps_best_runs(self, staff_client):
        from backtests.models import Sweep, Task

        first = BacktestFactory()
        grid = [{"signal_plugin_params": {"fast": fast}} for fast in (5, 10, 20)]
        sweep = Sweep.objects.create(
            strategy=first.strategy, engine="vectorbt", param_grid=grid, rank_metric="total_return"
        )
        Task.objects.create(
            kind=Task.Kind.SWEEP, sweep=sweep, status=Task.Status.PROGRESS, done=2, total=3
        )
        runs = [
            completed_backtest(seed=seed, strategy=sweep.strategy, sweep=sweep, sweep_index=index)
            for index, seed in enumerate((1, 2))
        ]
        BacktestFactory(strategy=sweep.strategy, sweep=sweep, sweep_index=2)

        index = staff_client.get("/sweeps/")
        page = staff_client.get(f"/sweeps/{sweep.id}/")

        assert index.status_code == 200
        assert f'href="/sweeps/{sweep.id}/"' in index.content.decode()
        assert {"research_sweeps", "walk_forwards"} <= set(index.context.keys())
        best_first = sorted(runs, key=lambda run: -run.metrics["total_return"])
        assert page.context["top_ids"] == ",".join(str(run.id) for run in best_first)
        assert "Compare the best 2 runs" in page.content.decode()

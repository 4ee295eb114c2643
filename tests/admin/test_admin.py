import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from backtests.models import Backtest, Sweep, Task
from marketdata.models import PriceSeries
from strategies.models import Strategy
from tests.factories import BacktestFactory, StrategyFactory
from tests.pages.runs import completed_backtest

pytestmark = pytest.mark.django_db

CHANGELISTS = (
    "admin:backtests_backtest_changelist",
    "admin:backtests_sweep_changelist",
    "admin:backtests_task_changelist",
    "admin:strategies_strategy_changelist",
    "admin:marketdata_priceseries_changelist",
)


def test_admin_needs_a_staff_login(client, non_staff_client):
    for name in CHANGELISTS:
        assert client.get(reverse(name)).status_code == 302
        assert non_staff_client.get(reverse(name)).status_code == 302


def test_every_changelist_opens_with_rows(staff_client):
    backtest = completed_backtest()
    sweep = Sweep.objects.create(
        strategy=backtest.strategy, engine="vectorbt", param_grid=[{}], rank_metric="total_return"
    )
    Task.objects.create(kind=Task.Kind.SWEEP, sweep=sweep, total=1)
    for name in CHANGELISTS:
        response = staff_client.get(reverse(name))
        assert response.status_code == 200, name


class TestBacktestAdmin:
    def test_list_shows_headline_metrics_and_sorts_by_them(self, staff_client):
        low = completed_backtest(seed=3)
        high = completed_backtest(seed=4)
        if low.metrics["total_return"] > high.metrics["total_return"]:
            low, high = high, low
        url = reverse("admin:backtests_backtest_changelist")
        position = BacktestAdmin_column("total_return")

        ascending = staff_client.get(url, {"o": str(position)})
        descending = staff_client.get(url, {"o": f"-{position}"})

        content = ascending.content.decode()
        assert f"{high.metrics['total_return'] * 100:.2f}%" in content
        assert f"{high.metrics['sharpe_ratio']:.3f}" in content
        assert [b.id for b in ascending.context["cl"].result_list] == [low.id, high.id]
        assert [b.id for b in descending.context["cl"].result_list] == [high.id, low.id]

    def test_filters_and_search(self, staff_client):
        completed_backtest(engine="backtrader")
        BacktestFactory(strategy=StrategyFactory(name="Needle"), source="ui")
        url = reverse("admin:backtests_backtest_changelist")

        by_engine = staff_client.get(url, {"engine": "backtrader"}).context["cl"].result_list
        by_source = staff_client.get(url, {"source__exact": "ui"}).context["cl"].result_list
        by_name = staff_client.get(url, {"q": "needle"}).context["cl"].result_list

        assert [b.engine for b in by_engine] == ["backtrader"]
        assert [b.source for b in by_source] == ["ui"]
        assert [b.strategy.name for b in by_name] == ["Needle"]

    def test_change_page_shows_grouped_metrics_and_charts(self, staff_client):
        backtest = completed_backtest()

        response = staff_client.get(reverse("admin:backtests_backtest_change", args=[backtest.id]))

        content = response.content.decode()
        for group in ("Performance", "Risk", "Trading"):
            assert f"{group}</caption>" in content
        assert f"{-backtest.metrics['max_drawdown'] * 100:.2f}%" in content
        assert f'data-chart-url="/backtests/{backtest.id}/chart-data"' in content
        assert "vendor/plotly.min.js" in content
        assert "&quot;start_date&quot;: &quot;2019-01-01&quot;" in content

    def test_execute_action_queues_runs_and_skips_running_ones(self, staff_client, staff_user):
        pending = BacktestFactory()
        running = BacktestFactory(status=Backtest.Status.RUNNING)

        response = staff_client.post(
            reverse("admin:backtests_backtest_changelist"),
            {"action": "execute", "_selected_action": [pending.id, running.id]},
            follow=True,
        )

        task = Task.objects.get()
        assert (task.kind, task.backtest_id, task.owner) == ("execute", pending.id, staff_user)
        text = " ".join(str(message) for message in response.context["messages"])
        assert "Queued 1 backtest" in text
        assert str(running.id)[:8] in text

    def test_rerun_on_the_other_engine_copies_the_configuration(self, staff_client, staff_user):
        original = completed_backtest(engine="vectorbt", initial_capital=75_000.0)

        staff_client.post(
            reverse("admin:backtests_backtest_changelist"),
            {"action": "rerun_on_other_engine", "_selected_action": [original.id]},
        )

        twin = Backtest.objects.exclude(pk=original.pk).get()
        assert twin.engine == "backtrader"
        assert (twin.config, twin.initial_capital, twin.commission, twin.slippage) == (
            original.config,
            75_000.0,
            original.commission,
            original.slippage,
        )
        assert (twin.strategy, twin.owner, twin.source) == (original.strategy, staff_user, "ui")
        assert Task.objects.get().backtest == twin

    def test_compare_selected_redirects_to_the_compare_page(self, staff_client):
        first, second = completed_backtest(seed=1), completed_backtest(seed=2)

        response = staff_client.post(
            reverse("admin:backtests_backtest_changelist"),
            {"action": "compare_selected", "_selected_action": [second.id, first.id]},
        )

        assert response.status_code == 302
        assert response["Location"] == f"/compare/?ids={first.id},{second.id}"

    def test_compare_selected_needs_two_to_ten(self, staff_client):
        only = completed_backtest()

        response = staff_client.post(
            reverse("admin:backtests_backtest_changelist"),
            {"action": "compare_selected", "_selected_action": [only.id]},
            follow=True,
        )

        assert response.redirect_chain[-1][0].startswith("/admin/backtests/backtest/")
        text = " ".join(str(message) for message in response.context["messages"])
        assert "between 2 and 10" in text


def BacktestAdmin_column(name: str) -> int:
    from backtests.admin import BacktestAdmin

    return BacktestAdmin.list_display.index(name) + 1  # the action checkbox is column 0


def test_sweep_change_page_shows_the_leaderboard(staff_client):
    strategy = StrategyFactory()
    sweep = Sweep.objects.create(
        strategy=strategy,
        engine="vectorbt",
        param_grid=[
            {"signal_plugin_params": {"window": 5}},
            {"signal_plugin_params": {"window": 10}},
        ],
        rank_metric="perf_sharpe_ratio",
    )
    best = completed_backtest(seed=5, strategy=strategy, sweep=sweep, sweep_index=1)
    BacktestFactory(
        strategy=strategy, sweep=sweep, sweep_index=0, status=Backtest.Status.FAILED, error="boom"
    )
    Task.objects.create(
        kind=Task.Kind.SWEEP, sweep=sweep, total=2, done=2, status=Task.Status.PROGRESS
    )

    content = staff_client.get(reverse("admin:backtests_sweep_change", args=[sweep.id])).content

    text = content.decode()
    assert f"{best.metrics['sharpe_ratio']:.3f}" in text
    assert text.index(str(best.id)[:8]) < text.index("failed")
    assert "2/2" in text


def test_task_change_page_shows_the_result(staff_client):
    task = Task.objects.create(
        kind=Task.Kind.EXECUTE,
        backtest=BacktestFactory(),
        status=Task.Status.SUCCESS,
        result={"answer": 42},
    )
    response = staff_client.get(reverse("admin:backtests_task_change", args=[task.id]))
    assert "&quot;answer&quot;: 42" in response.content.decode()
    assert staff_client.get(reverse("admin:backtests_task_add")).status_code == 403


class TestStrategyAdmin:
    URL = "admin:strategies_strategy_add"

    def _post(self, client, definition, kind="signal"):
        return client.post(
            reverse(self.URL),
            {
                "name": "Trend",
                "description": "",
                "kind": kind,
                "timeframe": "1d",
                "status": "draft",
                "version": "1",
                "universe": '["SPY"]',
                "definition": json.dumps(definition),
                "owner": "",
            },
        )

    def test_a_valid_definition_is_saved(self, staff_client):
        definition = {
            "entry": {
                "left": {"type": "Close"},
                "comparison": ">",
                "right": {"type": "SMA", "window": 200},
            }
        }

        response = self._post(staff_client, definition)

        assert response.status_code == 302
        strategy = Strategy.objects.get()
        assert strategy.definition == definition and strategy.universe == ["SPY"]
        change = staff_client.get(reverse("admin:strategies_strategy_change", args=[strategy.id]))
        assert '"window": 200' in change.content.decode().replace("&quot;", '"')
        assert '\n    "left"' in change.content.decode().replace("&quot;", '"')

    def test_an_invalid_definition_is_refused_naming_the_path(self, staff_client):
        definition = {
            "entry": {
                "left": {"type": "SMA", "window": -3},
                "comparison": ">",
                "right": {"type": "constant", "value": 0},
            }
        }

        response = self._post(staff_client, definition)

        assert response.status_code == 200
        errors = response.context["adminform"].form.errors["definition"]
        assert any("entry.left.window" in error for error in errors)
        assert not Strategy.objects.exists()


class TestPriceSeriesUpload:
    URL = "admin:marketdata_priceseries_upload"
    CSV = b"date,open,high,low,close\n2021-01-04,10,11,9,10.5\n2021-01-05,10.5,11,10,10.8\n"

    def test_the_changelist_links_to_the_upload_form(self, staff_client):
        content = staff_client.get(reverse("admin:marketdata_priceseries_changelist")).content
        assert reverse(self.URL).encode() in content
        assert staff_client.get(reverse(self.URL)).status_code == 200

    def test_a_good_file_is_imported(self, staff_client, staff_user):
        response = staff_client.post(
            reverse(self.URL),
            {
                "symbol": "myfund",
                "description": "Our fund",
                "file": SimpleUploadedFile("fund.csv", self.CSV, content_type="text/csv"),
            },
            follow=True,
        )

        series = PriceSeries.objects.get()
        assert (series.symbol, series.rows, series.uploaded_by) == ("MYFUND", 2, staff_user)
        assert series.description == "Our fund"
        assert "Imported MYFUND: 2 rows" in response.content.decode()

    def test_a_bad_row_imports_nothing_and_is_named(self, staff_client):
        bad = self.CSV.replace(b"2021-01-05,10.5,11,10", b"2021-01-05,10.5,11,-10")

        response = staff_client.post(
            reverse(self.URL),
            {"symbol": "myfund", "file": SimpleUploadedFile("fund.csv", bad)},
        )

        assert response.status_code == 200
        assert "row 2 (2021-01-05)" in response.content.decode()
        assert not PriceSeries.objects.exists()

    def test_upload_needs_staff(self, client):
        response = client.get(reverse(self.URL))
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")


def test_runs_and_sweeps_are_not_created_by_hand_in_the_admin(staff_client):
    # They are created validated by the services (strategy page, API, admin actions).
    assert staff_client.get(reverse("admin:backtests_backtest_add")).status_code == 403
    assert staff_client.get(reverse("admin:backtests_sweep_add")).status_code == 403
    assert staff_client.get(reverse("admin:marketdata_priceseries_add")).status_code == 403


def test_a_completed_runs_inputs_are_read_only(staff_client):
    backtest = completed_backtest()
    form = (
        staff_client.get(reverse("admin:backtests_backtest_change", args=[backtest.id]))
        .context["adminform"]
        .form
    )
    assert not {"strategy", "engine", "initial_capital", "commission", "slippage"} & set(
        form.fields
    )

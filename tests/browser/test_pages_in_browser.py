import pytest

from backtests.models import Backtest
from tests.factories import StrategyFactory
from tests.pages.runs import completed_backtest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_completed_backtest_draws_its_charts(logged_in_page, live_server):
    page = logged_in_page
    backtest = completed_backtest()

    page.goto(f"{live_server.url}/backtests/{backtest.id}/")

    for chart in ("#equity-chart", "#drawdown-chart", "#monthly-chart"):
        page.wait_for_selector(f"{chart} .main-svg")
    # Strategy and its SPY benchmark
    assert page.locator("#equity-chart .legend .traces").count() == 2
    assert (
        page.locator("#monthly-chart .hm").count() == 1
        or page.locator("#monthly-chart .heatmaplayer").count() >= 1
    )
    assert page.locator("table.metrics caption").all_inner_texts() == [
        "Summary",
        "Performance",
        "Risk",
        "Trading",
    ]

    # The same charts on the run's admin page.
    page.goto(f"{live_server.url}/admin/backtests/backtest/{backtest.id}/change/")
    page.wait_for_selector("#equity-chart .main-svg")
    page.wait_for_selector("#drawdown-chart .main-svg")
    assert page.console_errors == []


def test_two_runs_are_compared(logged_in_page, live_server):
    page = logged_in_page
    first, second = completed_backtest(seed=1), completed_backtest(seed=2)

    page.goto(f"{live_server.url}/compare/?ids={first.id},{second.id}")

    page.wait_for_selector("#compare-chart .main-svg")
    assert page.locator("#compare-chart .legend .traces").count() == 2
    assert page.locator("#compare-table td.best").count() > 0

    # On a phone the page does not scroll sideways (wide tables scroll inside their box).
    page.set_viewport_size({"width": 375, "height": 740})
    page.reload()
    page.wait_for_selector("#compare-chart .main-svg")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert page.console_errors == []


def test_a_sweep_started_from_the_form_runs_to_the_end(logged_in_page, live_server, serial_worker):
    page = logged_in_page
    strategy = StrategyFactory(name="Crossover")

    page.goto(f"{live_server.url}/strategies/{strategy.id}/")
    form = page.locator("#sweep-form")
    form.locator("select[name=sweep-engine]").select_option("vectorbt")
    form.locator("select[name=sweep-symbol]").select_option("SPY")
    form.locator("input[name=sweep-start_date]").fill("2018-01-02")
    form.locator("input[name=sweep-end_date]").fill("2020-12-31")
    form.locator("select[name=sweep-signal_plugin_key]").select_option("sma_crossover")
    form.locator("textarea[name=sweep-grid]").fill("fast = 10, 20\nslow = 50, 100")
    form.locator("select[name=sweep-rank_metric]").select_option("perf_sharpe_ratio")
    form.locator("button[type=submit]").click()

    page.wait_for_url("**/sweeps/*/")
    page.wait_for_function(
        "document.getElementById('sweep-status').textContent === 'Success'", timeout=45_000
    )
    assert page.locator("#sweep-done").inner_text() == "4"
    ranks = page.locator("#leaderboard tbody tr td:first-child").all_inner_texts()
    assert ranks == ["1", "2", "3", "4"]
    page.wait_for_selector("#sweep-heatmap .main-svg")
    assert page.console_errors == []


def test_a_running_backtest_page_follows_the_run_and_shows_the_result(logged_in_page, live_server):
    page = logged_in_page
    finished = completed_backtest()
    Backtest.objects.filter(pk=finished.pk).update(status="running", progress=30)

    page.goto(f"{live_server.url}/backtests/{finished.id}/")
    page.wait_for_selector("#live-status")
    Backtest.objects.filter(pk=finished.pk).update(status="completed", progress=100)

    # The page polls the status endpoint, reloads when the run is done, and draws the charts.
    page.wait_for_selector("#equity-chart .main-svg")
    assert page.locator("#live-status").count() == 0
    assert page.console_errors == []

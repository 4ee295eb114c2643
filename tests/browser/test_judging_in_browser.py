"""Judging a result in the browser: the tear sheet, robustness, compare with ten runs, and the
layout at the widths analysts use."""

import pytest

from tests.pages.runs import completed_backtest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = (1280, 1440, 1920)


def _boxes_overlap(page, selector):
    """True when two of the matched elements' boxes overlap (drawn over each other)."""
    return page.evaluate(
        """(selector) => {
          const boxes = [...document.querySelectorAll(selector)]
            .map(e => e.getBoundingClientRect());
          for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
            const a = boxes[i], b = boxes[j];
            if (a.left < b.right - 1 && b.left < a.right - 1
                && a.top < b.bottom - 1 && b.top < a.bottom - 1) return true;
          }
          return false;
        }""",
        selector,
    )


def test_the_tear_sheet_draws_every_chart_and_switches_benchmark_and_scale(
    logged_in_page, live_server
):
    page = logged_in_page
    backtest = completed_backtest()

    page.goto(f"{live_server.url}/backtests/{backtest.id}/")

    for chart in ("#equity-chart", "#drawdown-chart", "#rolling-chart", "#monthly-chart"):
        page.wait_for_selector(f"{chart} .main-svg")
    # Sharpe, volatility and beta
    assert page.locator("#rolling-chart .legend .traces").count() == 3
    assert page.locator("#worst-drawdowns tbody tr").count() >= 1
    # The monthly heatmap has a Year column.
    assert "Year" in page.locator("#monthly-chart .xtick text").all_text_contents()

    page.select_option("#benchmark-choice", "QQQ")
    page.wait_for_function("document.getElementById('backtest-charts').dataset.drawn === 'QQQ'")
    assert "QQQ buy and hold" in page.locator("#equity-chart .legend").text_content()

    page.check("#log-scale")
    page.wait_for_function("document.getElementById('equity-chart').layout.yaxis.type === 'log'")
    assert page.console_errors == []


def test_the_shipped_plotly_registers_only_the_traces_the_pages_draw(logged_in_page, live_server):
    page = logged_in_page
    backtest = completed_backtest()

    page.goto(f"{live_server.url}/backtests/{backtest.id}/")
    page.wait_for_selector("#monthly-chart .main-svg")

    traces = page.evaluate("() => Object.keys(Plotly.PlotSchema.get().traces).sort()")
    assert traces == ["bar", "heatmap", "scatter"]
    assert page.evaluate("() => Plotly.version") == "4.1.1"
    # The heatmap's cells carry their text (texttemplate), the line charts their points.
    assert page.locator("#monthly-chart .heatmaplayer image").count() == 1
    assert page.locator("#equity-chart .scatterlayer .trace").count() == 2
    assert page.console_errors == []


def test_robustness_is_computed_on_request_and_shown(logged_in_page, live_server):
    page = logged_in_page
    backtest = completed_backtest(
        config={"symbol": "SPY", "start_date": "2020-01-02", "end_date": "2020-12-31"}
    )

    page.goto(f"{live_server.url}/backtests/{backtest.id}/")
    assert page.locator("#robustness-result").is_hidden()
    page.click("#robustness-button")

    page.wait_for_selector("#robustness-result:not([hidden])", timeout=120_000)
    assert page.locator("#robustness-intervals tbody tr").count() == 5
    assert "Probabilistic Sharpe ratio" in page.locator("#robustness-psr").inner_text()
    page.wait_for_selector("#cost-chart .main-svg")
    assert page.locator("#cost-chart .scatterlayer .trace").count() == 1
    assert page.locator("#robustness-breakeven").inner_text() != ""
    assert page.console_errors == []


@pytest.mark.parametrize("width", WIDTHS)
def test_metrics_grid_and_lists_fit_at_desktop_widths(logged_in_page, live_server, width):
    page = logged_in_page
    page.set_viewport_size({"width": width, "height": 900})
    backtest = completed_backtest()

    page.goto(f"{live_server.url}/backtests/{backtest.id}/")
    page.wait_for_selector("table.metrics")
    assert not _boxes_overlap(page, "table.metrics")
    # No label runs into its value: each cell ends inside its own table.
    assert page.evaluate(
        """() => [...document.querySelectorAll('table.metrics')].every(t => {
             const box = t.getBoundingClientRect();
             return [...t.querySelectorAll('th, td')].every(c =>
               c.getBoundingClientRect().right <= box.right + 1
               && c.scrollWidth <= c.clientWidth + 1);
           })"""
    )

    page.goto(f"{live_server.url}/backtests/")
    created = page.locator("table.runs thead th").last
    assert created.inner_text().startswith("Created")
    box = created.bounding_box()
    assert box["x"] + box["width"] <= width
    assert page.console_errors == []


def test_ten_runs_compare_at_1280(logged_in_page, live_server):
    page = logged_in_page
    runs = [completed_backtest(seed=seed) for seed in range(1, 11)]

    page.goto(f"{live_server.url}/compare/?ids={','.join(str(run.id) for run in runs)}")

    page.wait_for_selector("#compare-chart .main-svg")
    page.wait_for_selector("#compare-drawdown-chart .main-svg")
    assert page.locator("#compare-chart .legend .traces").count() == 10
    assert "common period" in page.locator("#compare-period").inner_text()
    headers = page.locator("#compare-table thead th")
    assert headers.count() == 11
    last = headers.nth(10).bounding_box()
    assert last["x"] + last["width"] <= 1280
    assert page.console_errors == []


def test_a_portfolio_run_draws_its_allocation_timeline_and_analytics(logged_in_page, live_server):
    from backtests.portfolio.examples import examples
    from backtests.portfolio.services import portfolio_backtest_run

    page = logged_in_page
    switching = next(
        document for document in examples().values() if document["strategy"].get("switching_logic")
    )
    backtest = portfolio_backtest_run(payload=switching, user=None).backtest

    page.goto(f"{live_server.url}/backtests/{backtest.id}/")

    for chart in (
        "#equity-chart",
        "#allocation-chart",
        "#portfolio-rolling-chart",
        "#correlation-chart",
        "#risk-contribution-chart",
    ):
        page.wait_for_selector(f"{chart} .main-svg")
    page.wait_for_function("document.getElementById('portfolio-analytics').dataset.drawn")
    assert page.locator("#transaction-analysis dt").count() >= 5
    # The timeline spans the equity chart's dates, so switches line up with it.
    ranges = page.evaluate(
        """() => [document.getElementById('equity-chart').layout.xaxis.range,
                  document.getElementById('allocation-chart').layout.xaxis.range]"""
    )
    assert ranges[0][0][:10] == ranges[1][0][:10]
    assert page.locator("#benchmark-comparison dt").first.inner_text() == "Benchmark"
    assert page.locator("#benchmark-comparison dd").first.inner_text() == "SPY"
    assert page.locator("#allocation-summary tbody tr").count() >= 1
    assert page.console_errors == []


def test_a_v1_allocation_run_draws_the_same_panels(logged_in_page, live_server):
    from backtests import services
    from strategies.models import Strategy
    from tests.factories import StrategyFactory
    from tests.pages.test_portfolio_panels import ALLOCATION, V1_CONFIG

    page = logged_in_page
    strategy = StrategyFactory(kind=Strategy.Kind.ALLOCATION, definition=ALLOCATION)
    backtest = services.backtest_execute(
        backtest=services.backtest_create(
            strategy=strategy, engine="vectorbt", config=V1_CONFIG, benchmark="QQQ"
        )
    )

    page.goto(f"{live_server.url}/backtests/{backtest.id}/")

    for chart in (
        "#equity-chart",
        "#allocation-chart",
        "#portfolio-rolling-chart",
        "#correlation-chart",
        "#risk-contribution-chart",
    ):
        page.wait_for_selector(f"{chart} .main-svg")
    page.wait_for_function("document.getElementById('portfolio-analytics').dataset.drawn")
    # Both groups on the timeline, over the equity chart's dates.
    groups = page.evaluate(
        "() => document.getElementById('allocation-chart').data[0].y.filter(y => y !== null)"
    )
    assert set(groups) == {"stocks", "bonds"}
    ranges = page.evaluate(
        """() => [document.getElementById('equity-chart').layout.xaxis.range,
                  document.getElementById('allocation-chart').layout.xaxis.range]"""
    )
    assert ranges[0][0][:10] == ranges[1][0][:10]
    assert page.evaluate("() => document.getElementById('correlation-chart').data[0].x") == [
        "SPY",
        "QQQ",
        "TLT",
    ]
    comparison = page.locator("#benchmark-comparison").inner_text()
    assert "QQQ" in comparison and "Beta" in comparison
    assert "Orders" in page.locator("#transaction-analysis").inner_text()
    assert page.locator("#allocation-summary tbody tr").count() == 2
    assert page.locator("#drawdown-periods tbody tr").count() >= 1
    assert page.locator("#allocation-analytics-missing").count() == 0
    assert page.console_errors == []

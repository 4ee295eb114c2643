"""The research sweep and walk-forward pages in the browser: charts drawn with data, the
heatmap's parameters chosen, no console errors."""

import pytest

from tests.pages.test_research_pages import completed_sweep  # noqa: F401  (a fixture)
from tests.pages.test_walk_forward_page import _walk_forward

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_research_sweep_page_draws_heatmap_lambda_and_scatter(
    logged_in_page,
    live_server,
    completed_sweep,  # noqa: F811
):
    page = logged_in_page

    page.goto(f"{live_server.url}/research/sweeps/{completed_sweep.id}/")

    page.wait_for_selector("#research-heatmap .main-svg")
    page.wait_for_selector("#lambda-chart .main-svg")
    page.wait_for_selector("#is-oos-chart .main-svg")
    assert page.locator("#is-oos-chart .scatterlayer .trace").count() == 2
    assert page.locator("#research-leaderboard tbody tr").count() == 6
    page.select_option("#heatmap-x", "signal_plugin_params.slow")
    page.select_option("#heatmap-y", "signal_plugin_params.fast")
    page.wait_for_function(
        "document.querySelector('#research-heatmap .xtitle').textContent"
        " === 'signal_plugin_params.slow'"
    )
    assert page.console_errors == []


def test_the_best_entries_of_a_research_sweep_are_compared(
    logged_in_page,
    live_server,
    completed_sweep,  # noqa: F811
):
    page = logged_in_page
    page.goto(f"{live_server.url}/research/sweeps/{completed_sweep.id}/")

    page.select_option("#compare-top-count", "4")
    page.click("#compare-top")
    page.wait_for_url("**/compare/?ids=*")

    page.wait_for_selector("#compare-chart .main-svg")
    page.wait_for_selector("#compare-drawdown-chart .main-svg")
    assert page.locator("#compare-chart .scatterlayer .trace").count() == 4
    assert page.locator("#compare-table thead th").count() == 5
    assert page.console_errors == []


def test_walk_forward_page_draws_equity_and_choices(logged_in_page, live_server):
    page = logged_in_page
    walk_forward = _walk_forward()

    page.goto(f"{live_server.url}/research/walk-forwards/{walk_forward.id}/")

    page.wait_for_selector("#walk-forward-equity .main-svg")
    page.wait_for_selector("#walk-forward-chosen .main-svg")
    assert page.locator("#walk-forward-equity .scatterlayer .trace").count() == 2
    assert page.locator("#walk-forward-folds tbody tr").count() == 2
    assert page.console_errors == []


def test_sweeps_index_opens(logged_in_page, live_server):
    page = logged_in_page
    page.goto(f"{live_server.url}/sweeps/")
    page.wait_for_selector("#research-sweeps")
    assert page.console_errors == []

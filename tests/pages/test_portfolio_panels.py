"""A Backfolio portfolio run's panels: the held group over time, rolling metrics,
correlations, risk contribution, benchmark comparison and transactions, as its saved result
holds them (a real run through the service)."""

import pytest

from backtests.portfolio.examples import examples
from backtests.portfolio.services import portfolio_backtest_run, saved_result

pytestmark = pytest.mark.django_db


@pytest.fixture
def portfolio_run():
    switching = next(
        document for document in examples().values() if document["strategy"].get("switching_logic")
    )
    return portfolio_backtest_run(payload=switching, user=None).backtest


def test_the_held_group_is_shown_as_segments_that_rebuild_the_allocation_log(
    staff_client, portfolio_run
):
    data = staff_client.get(f"/backtests/{portfolio_run.id}/chart-data").json()

    portfolio = data["portfolio"]
    log = saved_result(portfolio_run)["allocation_log"]
    days = list(log)
    rebuilt = {}
    for segment in portfolio["allocation"]:
        inside = days[days.index(segment["start"]) : days.index(segment["end"]) + 1]
        rebuilt.update(dict.fromkeys(inside, segment["group"]))
    assert rebuilt == log
    assert all(
        before["group"] != after["group"]
        for before, after in zip(portfolio["allocation"], portfolio["allocation"][1:], strict=False)
    )
    result = saved_result(portfolio_run)
    assert portfolio["correlation"] == result["correlation_matrix"]
    assert portfolio["risk_contribution"] == result["risk_contribution"]
    assert portfolio["transaction_analysis"] == result["transaction_analysis"]
    assert portfolio["rolling"]["dates"] == list(result["rolling_metrics"])
    page = staff_client.get(f"/backtests/{portfolio_run.id}/").content.decode()
    assert 'id="allocation-chart"' in page and 'id="correlation-chart"' in page


def test_a_signal_run_has_no_portfolio_panels(staff_client):
    from tests.pages.runs import completed_backtest

    backtest = completed_backtest()
    assert staff_client.get(f"/backtests/{backtest.id}/chart-data").json()["portfolio"] is None
    assert (
        'id="allocation-chart"'
        not in staff_client.get(f"/backtests/{backtest.id}/").content.decode()
    )

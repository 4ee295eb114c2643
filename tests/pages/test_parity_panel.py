"""The backtest page's parity panel: a button that runs the backtest on the other engine."""

import pytest

from backtests import services
from backtests.models import Backtest
from tests.factories import BacktestFactory, StrategyFactory
from tests.pages.runs import completed_backtest

pytestmark = pytest.mark.django_db


def test_a_completed_run_offers_the_parity_check(staff_client):
    backtest = completed_backtest()
    content = staff_client.get(f"/backtests/{backtest.id}/").content.decode()
    assert f'action="/backtests/{backtest.id}/parity#parity"' in content
    assert 'id="parity-button"' in content and 'id="parity-result"' not in content


def test_a_real_run_agrees_with_the_other_engine(staff_client):
    backtest = services.backtest_create(
        strategy=StrategyFactory(),
        engine="vectorbt",
        config={"symbol": "SPY", "start_date": "2019-01-01", "end_date": "2020-12-31"},
        initial_capital=10_000.0,
        commission=0.0,
        slippage=0.0,
        owner=None,
        source="ui",
    )
    services.backtest_execute(backtest=backtest)

    response = staff_client.post(f"/backtests/{backtest.id}/parity")

    assert response.status_code == 200
    parity = response.context["parity"]
    assert (parity["engine"], parity["other_engine"]) == ("vectorbt", "backtrader")
    assert parity["agree"] is True and parity["engine_trades"] == parity["other_engine_trades"]
    content = response.content.decode()
    assert "They agree (within 1e-09 per bar)" in content
    assert "vectorbt: 1 · backtrader: 1" in content


def test_a_stored_curve_that_parts_from_the_rerun_shows_the_date(staff_client):
    # The stored curve is synthetic (business days from 2020-01-02); the rerun starts 2019-01-02.
    backtest = completed_backtest()
    response = staff_client.post(f"/backtests/{backtest.id}/parity")
    parity = response.context["parity"]
    assert parity["agree"] is False and parity["first_difference_date"] == "2019-01-02"
    assert "They part on 2019-01-02" in response.content.decode()


def test_a_run_that_is_not_completed_shows_why_with_409(staff_client):
    backtest = BacktestFactory(status=Backtest.Status.FAILED)
    response = staff_client.post(f"/backtests/{backtest.id}/parity")
    assert response.status_code == 409
    message = (
        f"Backtest {backtest.id} is not completed (status: failed); "
        "a parity check needs a completed run."
    )
    assert response.context["parity_error"] == message
    assert 'id="parity-error"' in response.content.decode()


def test_the_parity_check_needs_staff_and_post(client, non_staff_client, staff_client):
    backtest = completed_backtest()
    for visitor in (client, non_staff_client):
        response = visitor.post(f"/backtests/{backtest.id}/parity")
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")
    assert staff_client.get(f"/backtests/{backtest.id}/parity").status_code == 405

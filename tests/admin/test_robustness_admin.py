"""The read-only admin of kept robustness results."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from backtests.models import Robustness
from tests.factories import BacktestFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def kept_result():
    backtest = BacktestFactory(
        config={
            "symbol": "SPY",
            "start_date": "2019-01-01",
            "end_date": "2020-12-31",
            "signal_plugin_key": "sma_crossover",
            "signal_plugin_params": {"fast": 10, "slow": 40},
        }
    )
    client = APIClient()
    assert client.post(f"/api/v1/backtests/{backtest.id}/execute").json()["status"] == "completed"
    response = client.get(f"/api/v1/backtests/{backtest.id}/robustness?resamples=100")
    assert response.status_code == 200
    return Robustness.objects.get(), response.json()


def test_changelist_and_change_page_show_the_kept_result(staff_client, kept_result):
    robustness, body = kept_result
    changelist = staff_client.get(reverse("admin:backtests_robustness_changelist"))
    assert changelist.status_code == 200
    assert f"{body['psr']:.4f}" in changelist.content.decode()
    page = staff_client.get(reverse("admin:backtests_robustness_change", args=[robustness.id]))
    assert page.status_code == 200
    content = page.content.decode()
    assert "Cost sensitivity" in content and "&quot;breakeven_cost_bps&quot;" in content
    assert str(robustness.backtest_id)[:8] in content


def test_kept_results_are_read_only(staff_client, kept_result):
    robustness, _body = kept_result
    assert staff_client.get(reverse("admin:backtests_robustness_add")).status_code == 403
    change = reverse("admin:backtests_robustness_change", args=[robustness.id])
    assert staff_client.post(change, {"seed": 5}).status_code == 403
    delete = reverse("admin:backtests_robustness_delete", args=[robustness.id])
    assert staff_client.post(delete, {"post": "yes"}).status_code == 403
    assert Robustness.objects.get().seed == 0


def test_needs_a_staff_login(client, non_staff_client):
    url = reverse("admin:backtests_robustness_changelist")
    assert client.get(url).status_code == 302
    assert non_staff_client.get(url).status_code == 302

"""A deleted user's strategies, backtests, sweeps and tasks go with them: ownerless records are
public (SPEC §10), so leaving them ownerless would publish a private history."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.test import APIClient

from backtests.models import Backtest, Sweep, Task
from backtests.research.models import ResearchSweep
from backtests.research.walk_forward.models import WalkForward
from strategies.models import Strategy
from tests.factories import BacktestFactory, StrategyFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def leaving_users_data(user, other_user):
    strategy = StrategyFactory(owner=user)
    shared = StrategyFactory(owner=None)
    data = {
        "strategy": strategy,
        "backtest": BacktestFactory(owner=user, strategy=strategy),
        "on_shared": BacktestFactory(owner=user, strategy=shared),
        "sweep": Sweep.objects.create(
            strategy=shared, engine="vectorbt", rank_metric="perf_sharpe_ratio", owner=user
        ),
    }
    data["research_sweep"] = ResearchSweep.objects.create(
        strategy=shared,
        engine="vectorbt",
        rank_metric="perf_sharpe_ratio",
        benchmark="SPY",
        owner=user,
    )
    data["walk_forward"] = WalkForward.objects.create(
        strategy=shared,
        engine="vectorbt",
        rank_metric="perf_sharpe_ratio",
        scheme=WalkForward.Scheme.ROLLING,
        in_sample_months=12,
        out_of_sample_months=3,
        initial_capital=100_000.0,
        commission=0.0,
        slippage=0.0,
        owner=user,
    )
    data["task"] = Task.objects.create(
        kind=Task.Kind.EXECUTE, backtest=data["on_shared"], owner=user
    )
    kept = {
        "shared": shared,
        "public_run": BacktestFactory(owner=None, strategy=shared),
        "others_run": BacktestFactory(owner=other_user, strategy=shared),
    }
    return data, kept


def assert_gone_and_nothing_public(data, kept):
    for model, row in [
        (Strategy, data["strategy"]),
        (Backtest, data["backtest"]),
        (Backtest, data["on_shared"]),
        (Sweep, data["sweep"]),
        (ResearchSweep, data["research_sweep"]),
        (WalkForward, data["walk_forward"]),
        (Task, data["task"]),
    ]:
        assert not model.objects.filter(pk=row.pk).exists(), row
    for row in kept.values():
        assert type(row).objects.filter(pk=row.pk).exists(), row
    anonymous = APIClient()
    listed = {row["id"] for row in anonymous.get("/api/v1/backtests").json()}
    assert listed == {str(kept["public_run"].pk)}
    assert {row["id"] for row in anonymous.get("/api/v1/strategies").json()} == {
        str(kept["shared"].pk)
    }


def test_deleting_a_user_deletes_their_data(user, leaving_users_data):
    user.delete()
    assert_gone_and_nothing_public(*leaving_users_data)


def test_deleting_a_user_in_the_admin_deletes_their_data(user, staff_user, leaving_users_data):
    admin = Client()
    admin.force_login(staff_user)
    url = f"/admin/auth/user/{user.pk}/delete/"
    confirmation = admin.get(url)
    assert confirmation.status_code == 200
    response = admin.post(url, {"post": "yes"})
    assert response.status_code == 302
    assert not get_user_model().objects.filter(pk=user.pk).exists()
    assert_gone_and_nothing_public(*leaving_users_data)

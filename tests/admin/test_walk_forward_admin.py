"""Admin for walk-forward analyses: staff only, filters, folds inline, the result readable."""

from datetime import date

import pytest
from django.urls import reverse

from backtests.models import Task, WalkForward, WalkForwardFold
from tests.factories import StrategyFactory

pytestmark = pytest.mark.django_db


def completed_walk_forward() -> WalkForward:
    task = Task.objects.create(kind=Task.Kind.WALK_FORWARD, status=Task.Status.SUCCESS, total=6)
    walk_forward = WalkForward.objects.create(
        strategy=StrategyFactory(name="SMA study"),
        engine="vectorbt",
        base_config={"symbol": "SPY", "start_date": "2016-01-01", "end_date": "2019-12-31"},
        grid={"signal_plugin_params.fast": [10, 20]},
        combinations=[
            {"signal_plugin_params": {"fast": 10}},
            {"signal_plugin_params": {"fast": 20}},
        ],
        rank_metric="perf_sharpe_ratio",
        scheme="anchored",
        in_sample_months=36,
        out_of_sample_months=12,
        initial_capital=100_000.0,
        commission=0.0005,
        slippage=0.0005,
        status=WalkForward.Status.COMPLETED,
        done=6,
        total=6,
        task=task,
        result={
            # Rows keep the core's metrics (``compute_metrics``' keys); the admin shows v1's.
            "metrics": {"total_return": 0.125, "cagr": 0.1234, "sharpe_ratio": 0.9},
            "psr": 0.8771,
            "walk_forward_efficiency": 0.4321,
            "choice_changes": 0,
            "choice_change_rate": None,
            "equity": [],
        },
    )
    WalkForwardFold.objects.create(
        walk_forward=walk_forward,
        index=0,
        in_sample_start=date(2016, 1, 1),
        in_sample_end=date(2018, 12, 31),
        out_of_sample_start=date(2019, 1, 1),
        out_of_sample_end=date(2019, 12, 31),
        status=WalkForwardFold.Status.CHOSEN,
        chosen_index=1,
        in_sample_score=1.25,
        out_of_sample_metrics={"total_return": 0.125},
    )
    return walk_forward


def test_walk_forward_admin_needs_staff(client, non_staff_client):
    url = reverse("admin:backtests_walkforward_changelist")
    assert client.get(url).status_code == 302
    assert non_staff_client.get(url).status_code == 302


def test_changelist_shows_the_headline_numbers_and_filters(staff_client):
    walk_forward = completed_walk_forward()
    url = reverse("admin:backtests_walkforward_changelist")

    page = staff_client.get(url).content.decode()
    assert str(walk_forward.pk)[:8] in page
    assert "36 / 12 months" in page
    assert "12.34%" in page  # OOS CAGR
    assert "0.877" in page  # PSR
    assert "0.432" in page  # efficiency
    assert "6 / 6 runs" in page
    assert (
        str(walk_forward.pk)[:8] in staff_client.get(url, {"scheme": "anchored"}).content.decode()
    )
    assert (
        str(walk_forward.pk)[:8]
        not in staff_client.get(url, {"scheme": "rolling"}).content.decode()
    )
    assert str(walk_forward.pk)[:8] in staff_client.get(url, {"q": "SMA study"}).content.decode()


def test_change_page_shows_folds_and_result_and_nothing_is_added_by_hand(staff_client):
    walk_forward = completed_walk_forward()

    page = staff_client.get(
        reverse("admin:backtests_walkforward_change", args=[walk_forward.pk])
    ).content.decode()
    assert "2016-01-01" in page or "Jan. 1, 2016" in page
    assert "{&quot;signal_plugin_params&quot;: {&quot;fast&quot;: 20}}" in page
    assert "12.50%" in page  # the fold's out-of-sample return
    assert "walk_forward_efficiency" in page
    assert staff_client.get(reverse("admin:backtests_walkforward_add")).status_code == 403


def test_the_task_links_to_its_walk_forward(staff_client):
    walk_forward = completed_walk_forward()

    page = staff_client.get(reverse("admin:backtests_task_changelist")).content.decode()

    assert reverse("admin:backtests_walkforward_change", args=[walk_forward.pk]) in page
    assert f"walk-forward {str(walk_forward.pk)[:8]}" in page


def test_progress_shows_runs_and_folds_while_running(staff_client):
    walk_forward = completed_walk_forward()
    WalkForwardFold.objects.create(
        walk_forward=walk_forward,
        index=1,
        in_sample_start=date(2017, 1, 1),
        in_sample_end=date(2019, 12, 31),
        out_of_sample_start=date(2020, 1, 1),
        out_of_sample_end=date(2020, 12, 31),
    )
    WalkForward.objects.filter(pk=walk_forward.pk).update(status="running", done=2, total=6)

    listing = staff_client.get(reverse("admin:backtests_walkforward_changelist")).content.decode()
    change = staff_client.get(
        reverse("admin:backtests_walkforward_change", args=[walk_forward.pk])
    ).content.decode()

    for page in (listing, change):
        assert '<progress value="2" max="6"' in page
        assert "2 / 6 runs (33%)" in page
        assert "1 of 2" in page  # folds chosen


def test_the_walk_forward_links_to_its_strategy_task_owner_page_and_api(staff_client, user):
    walk_forward = completed_walk_forward()
    WalkForward.objects.filter(pk=walk_forward.pk).update(owner=user)
    pk = walk_forward.pk

    listing = staff_client.get(reverse("admin:backtests_walkforward_changelist")).content.decode()
    change = staff_client.get(reverse("admin:backtests_walkforward_change", args=[pk])).content
    change = change.decode()

    strategy = reverse("admin:strategies_strategy_change", args=[walk_forward.strategy_id])
    page = reverse("pages:walk_forward_detail", args=[pk])
    assert strategy in listing and page in listing
    for url in (
        strategy,
        page,
        reverse("admin:backtests_task_change", args=[walk_forward.task_id]),
        reverse("admin:auth_user_change", args=[user.pk]),
        f"/api/v1/research/walk-forward/{pk}",
        f"/api/v1/research/walk-forward/{pk}/equity.parquet",
    ):
        assert f'href="{url}"' in change, url


def test_the_equity_link_waits_for_completion(staff_client):
    walk_forward = completed_walk_forward()
    WalkForward.objects.filter(pk=walk_forward.pk).update(status="running", owner=None)

    change = staff_client.get(
        reverse("admin:backtests_walkforward_change", args=[walk_forward.pk])
    ).content.decode()

    assert "equity.parquet" not in change
    assert f'href="/api/v1/research/walk-forward/{walk_forward.pk}"' in change
    assert "— (public)" in change

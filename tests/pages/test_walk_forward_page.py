"""The walk-forward page: folds in words, efficiency in a sentence, stitched equity with fold
boundaries and the in-sample promise, chosen parameters over time (hand-made analysis)."""

from datetime import date

import pandas as pd
import pytest

from backtests.models import Task, WalkForward, WalkForwardFold
from backtests.pages.charts import in_sample_promise
from tests.factories import StrategyFactory

pytestmark = pytest.mark.django_db


def _walk_forward() -> WalkForward:
    task = Task.objects.create(kind=Task.Kind.WALK_FORWARD, status=Task.Status.SUCCESS, total=4)
    dates = pd.bdate_range("2018-01-01", "2019-12-31")
    walk_forward = WalkForward.objects.create(
        strategy=StrategyFactory(name="SMA study"),
        engine="vectorbt",
        base_config={"symbol": "SPY", "start_date": "2015-01-01", "end_date": "2019-12-31"},
        grid={"signal_plugin_params.fast": [10, 20]},
        combinations=[
            {"signal_plugin_params": {"fast": 10}},
            {"signal_plugin_params": {"fast": 20}},
        ],
        rank_metric="perf_sharpe_ratio",
        scheme="rolling",
        in_sample_months=36,
        out_of_sample_months=12,
        initial_capital=100.0,
        commission=0.0,
        slippage=0.0,
        status=WalkForward.Status.COMPLETED,
        done=4,
        total=4,
        task=task,
        result={
            "metrics": {"perf_cagr": 0.05},
            "psr": 0.7,
            "walk_forward_efficiency": 0.25,
            "choice_changes": 1,
            "choice_change_rate": 1.0,
            "equity": [
                {"date": day.strftime("%Y-%m-%d"), "equity": 100.0 + number * 0.01}
                for number, day in enumerate(dates)
            ],
        },
    )
    for index, (year, chosen) in enumerate(((2018, 0), (2019, 1))):
        WalkForwardFold.objects.create(
            walk_forward=walk_forward,
            index=index,
            in_sample_start=date(year - 3, 1, 1),
            in_sample_end=date(year - 1, 12, 31),
            out_of_sample_start=date(year, 1, 1),
            out_of_sample_end=date(year, 12, 31),
            status=WalkForwardFold.Status.CHOSEN,
            chosen_index=chosen,
            in_sample_score=1.5 - index,
            in_sample_metrics={"perf_cagr": 0.2},
            out_of_sample_metrics={"total_return": 0.05, "perf_cagr": 0.05},
        )
    return walk_forward


def test_the_page_shows_folds_in_words_and_the_efficiency_in_a_sentence(staff_client):
    walk_forward = _walk_forward()

    response = staff_client.get(f"/research/walk-forwards/{walk_forward.id}/")

    assert response.status_code == 200
    folds = response.context["folds"]
    assert [fold["chosen"] for fold in folds] == ["fast 10", "fast 20"]
    assert folds[0]["out_of_sample"] == "2018-01-01 → 2018-12-31"
    assert folds[1]["in_sample_cagr"] == "20.00%"
    page = response.content.decode()
    assert "earned 25% of the annual return its in-sample choices promised" in page
    assert "The choice changed 1 time across 2 folds." in page


def test_chart_data_has_boundaries_promise_and_chosen_parameters(staff_client):
    walk_forward = _walk_forward()

    data = staff_client.get(f"/research/walk-forwards/{walk_forward.id}/chart-data").json()

    assert data["boundaries"] == ["2018-01-01", "2019-01-01"]
    assert data["chosen"] == {
        "signal_plugin_params.fast": {"dates": ["2018-01-01", "2019-01-01"], "values": [10, 20]}
    }
    assert len(data["equity"]["values"]) == len(pd.bdate_range("2018-01-01", "2019-12-31"))
    assert data["in_sample"]["values"].count(None) == 2


def test_the_in_sample_promise_grows_at_the_folds_cagr_from_the_equity_before_it():
    equity = pd.Series(
        [100.0, 110.0, 120.0],
        index=pd.to_datetime(["2019-12-31", "2020-01-02", "2021-01-01"]),
    )
    promise = in_sample_promise(equity, [{"start": "2020-01-01", "end": "2021-01-01", "cagr": 0.1}])
    assert promise["dates"] == ["2020-01-02", "2021-01-01", "2021-01-01"]
    assert promise["values"][0] == pytest.approx(100.0 * 1.1 ** (2 / 365.25))
    assert promise["values"][1] == pytest.approx(100.0 * 1.1 ** (367 / 365.25))
    assert promise["values"][2] is None

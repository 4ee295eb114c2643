"""The walk-forward page: folds in words, efficiency in a sentence, stitched equity with fold
boundaries and each fold's choice's own in-sample equity, chosen parameters over time (a
hand-made analysis of real runs)."""

from datetime import date

import pandas as pd
import pytest

from backtests.models import Task, WalkForward, WalkForwardFold
from tests.factories import StrategyFactory

pytestmark = pytest.mark.django_db


def _walk_forward() -> WalkForward:
    task = Task.objects.create(kind=Task.Kind.WALK_FORWARD, status=Task.Status.SUCCESS, total=4)
    dates = pd.bdate_range("2018-01-01", "2019-12-31")
    strategy = StrategyFactory(name="SMA study", definition=None)
    walk_forward = WalkForward.objects.create(
        strategy=strategy,
        strategy_snapshot=strategy.run_snapshot(),
        engine="vectorbt",
        base_config={
            "symbol": "SPY",
            "start_date": "2015-01-01",
            "end_date": "2019-12-31",
            "signal_plugin_key": "sma_crossover",
            "signal_plugin_params": {"slow": 50},
        },
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
            "metrics": {"cagr": 0.05},  # rows keep the core's metrics
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
            in_sample_metrics={"cagr": 0.2},
            out_of_sample_metrics={"total_return": 0.05, "cagr": 0.05},
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


def test_the_in_sample_curve_is_each_folds_choice_run_on_its_in_sample_window(staff_client):
    from backtests.pipeline import run_backtest
    from backtests.run_config import parse_run_config

    walk_forward = _walk_forward()

    data = staff_client.get(f"/research/walk-forwards/{walk_forward.id}/chart-data").json()

    # Independently: the second fold's choice (fast 20) as a v1 run of 2016–2018.
    spec, problems = parse_run_config(
        {
            "symbol": "SPY",
            "start_date": "2016-01-01",
            "end_date": "2018-12-31",
            "signal_plugin_key": "sma_crossover",
            "signal_plugin_params": {"fast": 20, "slow": 50},
        },
        strategy_kind="signal",
        strategy_definition=None,
        strategy_timeframe="1d",
        engine="vectorbt",
        initial_capital=100.0,
        commission=0.0,
        slippage=0.0,
    )
    assert problems == []
    expected = run_backtest(spec).equity
    values, dates = data["in_sample"]["values"], data["in_sample"]["dates"]
    gap = values.index(None)
    second = pd.Series(values[gap + 1 : -1], index=pd.to_datetime(dates[gap + 1 : -1]))
    assert second.index[0] == expected.index[0] and second.index[-1] == expected.index[-1]
    # Scaled to meet the stitched equity where the fold's out-of-sample window starts.
    stitched = {point["date"]: point["equity"] for point in walk_forward.result["equity"]}
    base = stitched["2018-12-31"]
    assert second.iloc[-1] == pytest.approx(base)
    assert (second / expected.reindex(second.index)).to_numpy() == pytest.approx(
        base / expected.iloc[-1]
    )

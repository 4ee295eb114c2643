"""The chart series, checked by hand on small curves (no database)."""

import pandas as pd
import pytest

from backtests.pages.charts import benchmark_curve, drawdown_series, monthly_returns, sweep_heatmap


def test_drawdown_counts_the_initial_capital_as_the_first_peak():
    equity = pd.Series([90.0, 120.0, 60.0, 130.0], index=pd.bdate_range("2021-01-04", periods=4))
    assert drawdown_series(equity, 100.0).tolist() == pytest.approx([-0.1, 0.0, -0.5, 0.0])


def test_monthly_returns_chain_from_the_capital_across_years():
    dates = pd.to_datetime(["2020-11-30", "2020-12-15", "2020-12-31", "2021-02-26"])
    equity = pd.Series([110.0, 99.0, 121.0, 96.8], index=dates)

    grid = monthly_returns(equity, 100.0)

    assert grid["years"] == [2020, 2021]
    november, december = grid["values"][0][10], grid["values"][0][11]
    assert (november, december) == (pytest.approx(0.1), pytest.approx(0.1))
    assert grid["values"][1][:3] == [None, pytest.approx(-0.2), None]
    assert grid["yearly"] == [pytest.approx(0.21), pytest.approx(-0.2)]


def test_benchmark_is_bought_on_the_first_date_and_carried_over_missing_days():
    close = pd.Series(
        [50.0, 55.0, 60.0], index=pd.to_datetime(["2021-01-04", "2021-01-05", "2021-01-07"])
    )
    dates = pd.bdate_range("2021-01-04", periods=4)
    assert benchmark_curve(close, dates, 1000.0).tolist() == [1000.0, 1100.0, 1100.0, 1200.0]


def _runs(grid):
    return [{"overrides": overrides, "score": float(index)} for index, overrides in enumerate(grid)]


def test_heatmap_needs_exactly_two_varying_parameters():
    one = [{"signal_plugin_params": {"window": w}} for w in (5, 10)]
    three = [{"a": a, "b": b, "c": c} for a in (1, 2) for b in (1, 2) for c in (1, 2)]
    assert sweep_heatmap(_runs(one)) is None
    assert sweep_heatmap(_runs(three)) is None
    assert sweep_heatmap([]) is None


def test_heatmap_places_each_score_at_its_parameters_with_gaps_as_none():
    grid = [
        {"stop_loss": 0.05, "take_profit": 0.1, "symbol": "SPY"},
        {"stop_loss": 0.02, "take_profit": 0.1, "symbol": "SPY"},
        {"stop_loss": 0.02, "take_profit": 0.2, "symbol": "SPY"},
    ]

    heatmap = sweep_heatmap(_runs(grid))

    assert (heatmap["x_name"], heatmap["y_name"]) == ("stop_loss", "take_profit")
    assert (heatmap["x"], heatmap["y"]) == ([0.02, 0.05], [0.1, 0.2])
    assert heatmap["z"] == [[1.0, 0.0], [2.0, None]]

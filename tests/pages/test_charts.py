"""The chart series, checked by hand on small curves (no database)."""

import math

import numpy as np
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


# --- display downsampling ---------------------------------------------------------------------


def test_a_short_series_is_drawn_whole():
    from backtests.pages.charts import display_positions

    assert display_positions(np.arange(5.0), max_points=10).tolist() == [0, 1, 2, 3, 4]


def test_downsampling_keeps_ends_and_each_buckets_low_and_high_in_time_order():
    from backtests.pages.charts import display_positions

    # 2 + 8 inner points, 6 points allowed → 2 buckets of 4 inner points each.
    values = np.array([5.0, 1, 9, 3, 4, 7, 2, 8, 6, 0])
    # Inner positions 1..8: bucket 1..4 holds 1, 9, 3, 4 → low at 1, high at 2;
    # bucket 5..8 holds 7, 2, 8, 6 → low at 6, high at 7.
    assert display_positions(values, max_points=6).tolist() == [0, 1, 2, 6, 7, 9]


def test_downsampling_never_loses_the_deepest_drawdown_and_stays_under_the_cap():
    from backtests.pages.charts import MAX_CHART_POINTS, display_series

    dates = pd.bdate_range("2000-01-03", periods=5040)
    values = np.sin(np.arange(5040) / 50.0)
    values[3333] = -7.0  # one bar's crash
    shown = display_series(pd.Series(values, index=dates))
    assert len(shown["values"]) <= MAX_CHART_POINTS
    assert min(shown["values"]) == -7.0
    assert shown["dates"][0] == "2000-01-03" and shown["dates"][-1] == dates[-1].strftime(
        "%Y-%m-%d"
    )
    assert shown["values"][-1] == pytest.approx(values[-1])


# --- tear sheet -------------------------------------------------------------------------------


def test_rolling_statistics_match_a_window_by_window_computation():
    from backtests.pages.charts import rolling_statistics

    rng = np.random.default_rng(7)
    dates = pd.bdate_range("2021-01-04", periods=40)
    strategy = pd.Series(rng.normal(0.001, 0.01, 40), index=dates)
    market = pd.Series(rng.normal(0.0005, 0.012, 40), index=dates)
    window = 10

    result = rolling_statistics(strategy, market, window=window, bars_per_year=252)

    for end in (9, 25, 39):
        r = strategy.to_numpy()[end - window + 1 : end + 1]
        b = market.to_numpy()[end - window + 1 : end + 1]
        # Independent: sample moments written out, beta as the least-squares slope.
        std = math.sqrt(sum((x - r.mean()) ** 2 for x in r) / (window - 1))
        slope = np.polyfit(b, r, 1)[0]
        assert result["sharpe"].iloc[end] == pytest.approx(r.mean() / std * math.sqrt(252))
        assert result["volatility"].iloc[end] == pytest.approx(std * math.sqrt(252))
        assert result["beta"].iloc[end] == pytest.approx(slope)
    assert result["sharpe"].iloc[:9].isna().all()


def test_rolling_sharpe_of_constant_returns_is_missing_and_volatility_zero():
    from backtests.pages.charts import rolling_statistics

    dates = pd.bdate_range("2021-01-04", periods=6)
    result = rolling_statistics(pd.Series(0.001, index=dates), None, window=3)
    assert result["sharpe"].iloc[2:].isna().all()
    assert result["volatility"].iloc[2:].tolist() == [0.0] * 4
    assert "beta" not in result


def test_a_window_with_a_gap_has_no_statistics():
    from backtests.pages.charts import rolling_statistics

    rng = np.random.default_rng(3)
    dates = pd.bdate_range("2021-01-04", periods=12)
    strategy = pd.Series(rng.normal(0.001, 0.01, 12), index=dates)
    market = pd.Series(rng.normal(0.0005, 0.012, 12), index=dates)
    market.iloc[5] = np.nan  # the benchmark did not trade that day

    result = rolling_statistics(strategy, market, window=4)

    assert result["beta"].iloc[5:9].isna().all()
    assert result["beta"].iloc[[4, 9]].notna().all()
    assert result["sharpe"].iloc[3:].notna().all()


def test_worst_drawdowns_are_the_deepest_first_with_their_dates():
    from backtests.pages.charts import worst_drawdowns

    dates = pd.to_datetime(
        ["2021-01-04", "2021-01-05", "2021-01-06", "2021-01-07", "2021-01-08", "2021-01-11"]
    )
    # Capital 100: dip to 95 (−5%) recovered at 101, then 101 → 70.7 (−30%), not recovered.
    equity = pd.Series([95.0, 101.0, 90.0, 70.7, 80.0, 85.0], index=dates)

    periods = worst_drawdowns(equity, 100.0, count=5)

    assert [round(period["max_drawdown"], 4) for period in periods] == [-0.3, -0.05]
    deepest = periods[0]
    assert (deepest["start_date"], deepest["end_date"], deepest["recovery_date"]) == (
        "2021-01-05",
        "2021-01-07",
        None,
    )
    assert deepest["duration_days"] == 2
    assert worst_drawdowns(equity, 100.0, count=1) == periods[:1]


def test_worst_drawdowns_are_the_deepest_of_every_period_as_the_full_analysis_lists_them():
    from backtests.pages.charts import worst_drawdowns
    from metrics.analytics import drawdown_analysis

    rng = np.random.default_rng(11)
    dates = pd.bdate_range("2010-01-04", periods=2000)
    equity = pd.Series(100.0 * np.cumprod(1 + rng.normal(0.0003, 0.01, 2000)), index=dates)
    every = drawdown_analysis(equity, 100.0, threshold=0.0)["periods"]

    assert (
        worst_drawdowns(equity, 100.0, count=5)
        == sorted(every, key=lambda period: period["max_drawdown"])[:5]
    )
    assert worst_drawdowns(equity.iloc[:0], 100.0) == []


def test_yearly_returns_chain_from_the_capital():
    from backtests.pages.charts import yearly_returns

    equity = pd.Series(
        [110.0, 121.0, 108.9], index=pd.to_datetime(["2020-06-30", "2020-12-31", "2021-03-31"])
    )
    assert yearly_returns(equity, 100.0) == {2020: pytest.approx(0.21), 2021: pytest.approx(-0.1)}


# --- compare ----------------------------------------------------------------------------------


def test_curves_are_rebased_to_100_on_the_period_they_share():
    from backtests.pages.charts import common_period, rebased

    first = pd.Series([10.0, 20.0, 30.0, 40.0], index=pd.bdate_range("2021-01-04", periods=4))
    second = pd.Series([5.0, 6.0, 3.0], index=pd.bdate_range("2021-01-05", periods=3))
    start, end = common_period([first, second])
    assert (start, end) == (pd.Timestamp("2021-01-05"), pd.Timestamp("2021-01-07"))
    assert rebased(first, start, end).tolist() == [100.0, 150.0, 200.0]
    assert rebased(second, start, end).tolist() == [100.0, 120.0, 60.0]
    assert common_period([first, pd.Series([1.0], index=[pd.Timestamp("2022-01-03")])]) is None

"""Compiling definitions into engine input: timing, delay, direction, groups and rebalancing."""

import time

import numpy as np
import pandas as pd
import pytest

from strategies.language import (
    build_plugin,
    compile_allocation_strategy,
    compile_signal_strategy,
    evaluate_condition,
)


def leaf(left, comparison, right):
    return {"left": left, "comparison": comparison, "right": right}


FAST_ABOVE = leaf({"type": "SMA", "window": 10}, ">", {"type": "SMA", "window": 50})
FAST_BELOW = leaf({"type": "SMA", "window": 10}, "<", {"type": "SMA", "window": 50})
CROSSOVER = {"entry": FAST_ABOVE, "exit": FAST_BELOW}


def run_mask(prices):
    index = prices.close.index
    return (index >= prices.start) & (index <= prices.end)


def full(condition, prices):
    return evaluate_condition(condition, prices, "SPY").to_numpy()


def test_frames_cover_the_run_bars_with_one_column(spy_prices):
    plan = compile_signal_strategy(CROSSOVER, spy_prices, "SPY")
    run = run_mask(spy_prices)
    for frame in (plan.entries, plan.exits, plan.short_entries, plan.short_exits):
        assert list(frame.columns) == ["SPY"]
        assert frame.index.equals(spy_prices.close.index[run])
        assert all(dtype == np.dtype(bool) for dtype in frame.dtypes)
    assert frame.index[0] == spy_prices.start and frame.index[-1] == spy_prices.end
    np.testing.assert_array_equal(plan.entries["SPY"], full(FAST_ABOVE, spy_prices)[run])
    np.testing.assert_array_equal(plan.exits["SPY"], full(FAST_BELOW, spy_prices)[run])
    assert not plan.short_entries.values.any() and not plan.short_exits.values.any()


@pytest.mark.parametrize("delay", [1, 3])
def test_delay_shifts_on_the_full_index_then_cuts(spy_prices, delay):
    plan = compile_signal_strategy(CROSSOVER, spy_prices, "SPY", signal_delay=delay)
    run = run_mask(spy_prices)
    start = int(np.argmax(run))
    entry = full(FAST_ABOVE, spy_prices)
    # Bar t acts on the signal raised `delay` bars earlier, warm-up bars included.
    np.testing.assert_array_equal(plan.entries["SPY"], entry[start - delay : len(entry) - delay])
    # The last `delay` signals fall off the end.
    assert len(plan.entries) == run.sum()


def test_delay_moves_a_single_signal(spy_prices):
    index = spy_prices.close.index
    day = index[index.get_loc(spy_prices.start) + 10]
    on_day = leaf({"type": "Close"}, "==", float(spy_prices.close["SPY"][day]))
    assert full(on_day, spy_prices).sum() >= 1
    plan = compile_signal_strategy({"entry": on_day}, spy_prices, "SPY", signal_delay=2)
    shifted = index[index.get_loc(day) + 2]
    assert plan.entries["SPY"][shifted]
    assert not plan.entries["SPY"][day]


def test_short_mirrors_the_long_rules(spy_prices):
    run = run_mask(spy_prices)
    short = compile_signal_strategy(CROSSOVER, spy_prices, "SPY", direction="short")
    assert not short.entries.values.any() and not short.exits.values.any()
    np.testing.assert_array_equal(short.short_entries["SPY"], full(FAST_BELOW, spy_prices)[run])
    np.testing.assert_array_equal(short.short_exits["SPY"], full(FAST_ABOVE, spy_prices)[run])
    both = compile_signal_strategy(CROSSOVER, spy_prices, "SPY", direction="both")
    assert both.entries.equals(compile_signal_strategy(CROSSOVER, spy_prices, "SPY").entries)
    assert both.short_entries.equals(short.short_entries)


def test_explicit_short_rules_are_used_as_written(spy_prices):
    run = run_mask(spy_prices)
    rsi_high = leaf({"type": "RSI"}, ">", 70)
    definition = {**CROSSOVER, "short_entry": rsi_high}
    plan = compile_signal_strategy(definition, spy_prices, "SPY", direction="both")
    np.testing.assert_array_equal(plan.short_entries["SPY"], full(rsi_high, spy_prices)[run])
    assert not plan.short_exits.values.any()  # no short_exit given: never fires


def test_none_is_buy_and_hold(spy_prices):
    plan = compile_signal_strategy(None, spy_prices, "SPY")
    assert plan.entries["SPY"].sum() == 1 and plan.entries["SPY"].iloc[0]
    assert not plan.exits.values.any() and not plan.short_entries.values.any()
    short = compile_signal_strategy(None, spy_prices, "SPY", direction="short")
    assert short.short_entries["SPY"].sum() == 1 and short.short_entries["SPY"].iloc[0]
    assert not short.entries.values.any()
    delayed = compile_signal_strategy(None, spy_prices, "SPY", signal_delay=1)
    assert delayed.entries["SPY"].sum() == 1 and delayed.entries["SPY"].iloc[1]


def test_bad_input_raises(spy_prices):
    with pytest.raises(ValueError, match=r"entry\.left\.window"):
        compile_signal_strategy({"entry": leaf({"type": "SMA"}, ">", 0)}, spy_prices, "SPY")
    with pytest.raises(ValueError, match="direction"):
        compile_signal_strategy(CROSSOVER, spy_prices, "SPY", direction="sideways")
    with pytest.raises(ValueError, match="signal_delay"):
        compile_signal_strategy(CROSSOVER, spy_prices, "SPY", signal_delay=-1)


def test_sma_crossover_on_twenty_years_compiles_in_milliseconds(spy_prices):
    definition = build_plugin("sma_crossover")
    compile_signal_strategy(definition, spy_prices, "SPY")
    started = time.perf_counter()
    for _ in range(10):
        compile_signal_strategy(definition, spy_prices, "SPY")
    assert (time.perf_counter() - started) / 10 < 0.02


# --- allocation strategies -----------------------------------------------------------------

ABOVE_SMA = leaf(
    {"type": "Close", "symbol": "SPY"}, ">", {"type": "SMA", "symbol": "SPY", "window": 50}
)
SWITCHING = {
    "allocations": {
        "defensive": {"BND": 0.7, "CASH": 0.3},
        "aggressive": {"SPY": 0.6, "QQQ": 0.4},
    },
    "fallback_allocation": "defensive",
    "switching_logic": [
        {"name": "Trend", "condition": ABOVE_SMA, "target_allocation": "aggressive"}
    ],
}
STATIC = {
    "allocations": {"stocks": {"SPY": 0.6, "BND": 0.4}},
    "fallback_allocation": "stocks",
    "switching_logic": [],
}


@pytest.mark.parametrize(
    ("rebalance", "period", "expected"),
    [
        ("monthly", "M", 48),
        ("quarterly", "Q", 16),
        ("yearly", "Y", 4),
        ("weekly", "W", None),
        ("daily", None, None),
    ],
)
def test_rebalance_schedules_over_2020_to_2023(portfolio_prices, rebalance, period, expected):
    plan = compile_allocation_strategy(STATIC, portfolio_prices, rebalance=rebalance)
    index = plan.target_weights.index
    assert index[0] == pd.Timestamp("2020-01-02") and index[-1] == pd.Timestamp("2023-12-29")
    trading = plan.target_weights.notna().all(axis=1)
    assert trading.equals(plan.rebalance_mask) and not plan.switch_mask.any()
    if period is None:
        assert trading.all()
        return
    first_days = pd.Series(index, index=index).groupby(index.to_period(period)).min()
    assert list(index[trading]) == list(first_days)
    if expected is not None:
        assert trading.sum() == expected
    else:  # weekly: the first trading day of each ISO week
        assert trading.sum() == 209
        iso = index.isocalendar()
        iso_week_starts = ~iso.duplicated(subset=["year", "week"]).to_numpy()
        np.testing.assert_array_equal(trading.to_numpy(), iso_week_starts)
    np.testing.assert_allclose(plan.target_weights[trading].sum(axis=1), 1.0)
    assert list(plan.target_weights.columns) == ["SPY", "BND"]
    np.testing.assert_allclose(
        plan.target_weights[trading].to_numpy(), [[0.6, 0.4]] * trading.sum()
    )


def test_switching_acts_on_the_same_bar(portfolio_prices):
    plan = compile_allocation_strategy(SWITCHING, portfolio_prices, rebalance="monthly")
    run = run_mask(portfolio_prices)
    above = evaluate_condition(ABOVE_SMA, portfolio_prices).to_numpy()[run]
    np.testing.assert_array_equal(
        plan.groups.to_numpy(), np.where(above, "aggressive", "defensive")
    )
    switched = np.r_[False, above[1:] != above[:-1]]
    np.testing.assert_array_equal(plan.switch_mask.to_numpy(), switched)
    assert 10 < switched.sum() < 200
    assert list(plan.target_weights.columns) == ["BND", "CASH", "SPY", "QQQ"]
    trading = plan.switch_mask | plan.rebalance_mask
    weights = plan.target_weights
    assert weights[trading].notna().all().all() and weights[~trading].isna().all().all()
    for day in plan.switch_mask[plan.switch_mask].index[:5]:
        expected = [0, 0, 0.6, 0.4] if plan.groups[day] == "aggressive" else [0.7, 0.3, 0, 0]
        np.testing.assert_allclose(weights.loc[day].to_numpy(), expected)


def test_first_true_rule_wins_and_the_fallback_takes_the_rest(portfolio_prices):
    low_rsi = leaf({"type": "RSI", "symbol": "QQQ"}, "<", 45)
    definition = {
        "allocations": {"a": {"SPY": 1.0}, "b": {"QQQ": 1.0}, "c": {"CASH": 1.0}},
        "fallback_allocation": "c",
        "switching_logic": [
            {"condition": ABOVE_SMA, "target_allocation": "a"},
            {"condition": low_rsi, "target_allocation": "b"},
        ],
    }
    plan = compile_allocation_strategy(definition, portfolio_prices, rebalance="daily")
    run = run_mask(portfolio_prices)
    first = evaluate_condition(ABOVE_SMA, portfolio_prices).to_numpy()[run]
    second = evaluate_condition(low_rsi, portfolio_prices).to_numpy()[run]
    expected = np.where(first, "a", np.where(second, "b", "c"))
    np.testing.assert_array_equal(plan.groups.to_numpy(), expected)
    assert set(expected) == {"a", "b", "c"} and (first & second).any()


def test_contract_sma_above_zero_is_evaluated_literally(portfolio_prices):
    literal = {
        **SWITCHING,
        "switching_logic": [
            {
                "condition": leaf(
                    {"type": "SMA", "symbol": "SPY", "window": 200},
                    ">",
                    {"type": "constant", "value": 0.0},
                ),
                "target_allocation": "aggressive",
            }
        ],
    }
    plan = compile_allocation_strategy(literal, portfolio_prices)
    assert (plan.groups == "aggressive").all()  # 2015 history makes SMA 200 valid on day one


def test_allocation_bad_input_raises(portfolio_prices):
    with pytest.raises(ValueError, match=r"weights sum to 0\.9"):
        compile_allocation_strategy(
            {**STATIC, "allocations": {"stocks": {"SPY": 0.9}}}, portfolio_prices
        )
    with pytest.raises(ValueError, match="rebalance"):
        compile_allocation_strategy(STATIC, portfolio_prices, rebalance="hourly")


# --- evaluation frequency and signal delay (SPEC §8.1) ----------------------------------------

PERIODS = {"weekly": "W", "monthly": "M", "quarterly": "Q"}


@pytest.mark.parametrize("evaluation", ["weekly", "monthly", "quarterly"])
def test_switching_happens_only_at_period_ends(portfolio_prices, evaluation):
    plan = compile_allocation_strategy(
        SWITCHING, portfolio_prices, rebalance="monthly", evaluation=evaluation
    )
    index = plan.groups.index
    full = portfolio_prices.close.index
    above = evaluate_condition(ABOVE_SMA, portfolio_prices).to_numpy()
    decided = pd.Series(np.where(above, "aggressive", "defensive"), index=full)
    # Independent: the last trading day of each period of the full index, by pandas' calendar.
    period_ends = pd.Series(full, index=full).groupby(full.to_period(PERIODS[evaluation])).max()
    ends = set(period_ends.iloc[:-1])  # the data's last period may go on
    switches = index[plan.switch_mask.to_numpy()]
    assert len(switches) > 2
    assert set(switches) <= ends
    # Each bar holds the decision of the latest period end before it (the first bar: its own).
    for day in index:
        earlier = [end for end in ends if index[0] <= end <= day]
        source = max(earlier) if earlier else index[0]
        assert plan.groups[day] == decided[source], day
    daily = compile_allocation_strategy(SWITCHING, portfolio_prices, rebalance="monthly")
    assert plan.switch_mask.sum() < daily.switch_mask.sum()


@pytest.mark.parametrize("evaluation", ["daily", "monthly"])
@pytest.mark.parametrize("delay", [1, 2])
def test_a_delay_shifts_the_held_group_by_exactly_that_many_bars(
    portfolio_prices, evaluation, delay
):
    undelayed = compile_allocation_strategy(
        SWITCHING, portfolio_prices, evaluation=evaluation, rebalance="monthly"
    )
    delayed = compile_allocation_strategy(
        SWITCHING, portfolio_prices, evaluation=evaluation, rebalance="monthly", signal_delay=delay
    )
    np.testing.assert_array_equal(
        delayed.groups.to_numpy()[delay:], undelayed.groups.to_numpy()[:-delay]
    )
    np.testing.assert_array_equal(
        delayed.switch_mask.to_numpy()[delay:], undelayed.switch_mask.to_numpy()[:-delay]
    )
    np.testing.assert_array_equal(delayed.rebalance_mask, undelayed.rebalance_mask)
    # The first bars hold what was decided on the warm-up bars before the run.
    full = portfolio_prices.close.index
    first = full.get_loc(delayed.groups.index[0])
    above = evaluate_condition(ABOVE_SMA, portfolio_prices).to_numpy()
    if evaluation == "daily":
        for bar in range(delay):
            expected = "aggressive" if above[first + bar - delay] else "defensive"
            assert delayed.groups.iloc[bar] == expected


def test_daily_evaluation_without_delay_is_todays_plan(portfolio_prices):
    today = compile_allocation_strategy(SWITCHING, portfolio_prices, rebalance="weekly")
    explicit = compile_allocation_strategy(
        SWITCHING, portfolio_prices, rebalance="weekly", evaluation="daily", signal_delay=0
    )
    pd.testing.assert_series_equal(today.groups, explicit.groups)
    pd.testing.assert_frame_equal(today.target_weights, explicit.target_weights)


def test_evaluation_and_delay_bad_input_raises(portfolio_prices):
    with pytest.raises(ValueError, match="evaluation must be one of daily, weekly, monthly"):
        compile_allocation_strategy(STATIC, portfolio_prices, evaluation="yearly")
    for delay in (-1, 3, 1.0, True):
        with pytest.raises(ValueError, match="signal_delay must be an integer from 0 to 2"):
            compile_allocation_strategy(STATIC, portfolio_prices, signal_delay=delay)

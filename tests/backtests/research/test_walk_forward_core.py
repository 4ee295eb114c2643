"""The walk-forward core: fold scheduling (rolling vs anchored), windows as v1 runs, choosing the
best in sample (first on ties), positions closed at the end of a window, efficiency."""

from dataclasses import replace
from datetime import date

import numpy as np
import pytest

from backtests.pipeline import RunError, run_backtest, run_equity_batch
from backtests.research.ranking import score_of
from backtests.research.walk_forward import core
from backtests.run_config import parse_run_config
from metrics.calculations import compute_metrics
from metrics.presenters import V1_METRIC_HIGHER_IS_BETTER, v1_row_metrics

D = date.fromisoformat


def windows(folds):
    return [
        (
            str(fold.in_sample_start),
            str(fold.in_sample_end),
            str(fold.out_of_sample_start),
            str(fold.out_of_sample_end),
        )
        for fold in folds
    ]


def test_rolling_moves_the_in_sample_start_by_the_out_of_sample_length():
    folds = core.schedule_folds(
        D("2016-01-01"), D("2019-12-31"), scheme="rolling", in_sample_months=24,
        out_of_sample_months=6,
    )  # fmt: skip
    assert windows(folds) == [
        ("2016-01-01", "2017-12-31", "2018-01-01", "2018-06-30"),
        ("2016-07-01", "2018-06-30", "2018-07-01", "2018-12-31"),
        ("2017-01-01", "2018-12-31", "2019-01-01", "2019-06-30"),
        ("2017-07-01", "2019-06-30", "2019-07-01", "2019-12-31"),
    ]
    assert [fold.index for fold in folds] == [0, 1, 2, 3]


def test_anchored_keeps_the_in_sample_start():
    folds = core.schedule_folds(
        D("2016-01-01"), D("2019-12-31"), scheme="anchored", in_sample_months=24,
        out_of_sample_months=6,
    )  # fmt: skip
    assert windows(folds) == [
        ("2016-01-01", "2017-12-31", "2018-01-01", "2018-06-30"),
        ("2016-01-01", "2018-06-30", "2018-07-01", "2018-12-31"),
        ("2016-01-01", "2018-12-31", "2019-01-01", "2019-06-30"),
        ("2016-01-01", "2019-06-30", "2019-07-01", "2019-12-31"),
    ]


def test_the_last_out_of_sample_window_ends_on_or_before_the_span_end():
    # A span ending mid-month leaves the last partial window out.
    folds = core.schedule_folds(
        D("2016-01-01"), D("2019-12-30"), scheme="rolling", in_sample_months=24,
        out_of_sample_months=6,
    )  # fmt: skip
    assert len(folds) == 3
    assert folds[-1].out_of_sample_end == D("2019-06-30")


def test_month_ends_do_not_drift():
    folds = core.schedule_folds(
        D("2020-01-31"), D("2021-12-31"), scheme="rolling", in_sample_months=1,
        out_of_sample_months=1,
    )  # fmt: skip
    # Each boundary is the start plus whole months (the 31st clipped to the month's last day).
    assert windows(folds)[:3] == [
        ("2020-01-31", "2020-02-28", "2020-02-29", "2020-03-30"),
        ("2020-02-29", "2020-03-30", "2020-03-31", "2020-04-29"),
        ("2020-03-31", "2020-04-29", "2020-04-30", "2020-05-30"),
    ]


def test_a_span_too_short_says_how_many_months_it_needs():
    with pytest.raises(core.SpanTooShort) as raised:
        core.schedule_folds(
            D("2019-01-01"), D("2020-06-15"), scheme="anchored", in_sample_months=12,
            out_of_sample_months=7,
        )  # fmt: skip
    assert raised.value.months_needed == 19
    assert str(raised.value) == (
        "The span 2019-01-01..2020-06-15 holds 17 whole months; one fold needs 19 "
        "(in_sample_months + out_of_sample_months)."
    )
    assert core.months_in_span(D("2019-01-01"), D("2019-01-30")) == 0
    assert core.months_in_span(D("2019-01-01"), D("2019-01-31")) == 1


def spec_for(params, *, start="2016-01-01", end="2019-12-31", engine="vectorbt"):
    spec, problems = parse_run_config(
        {
            "symbol": "SPY",
            "start_date": start,
            "end_date": end,
            "signal_plugin_key": "sma_crossover",
            "signal_plugin_params": params,
        },
        strategy_kind="signal",
        strategy_definition=None,
        strategy_timeframe="1d",
        engine=engine,
        initial_capital=100_000.0,
        commission=0.0005,
        slippage=0.0005,
    )
    assert not problems
    return spec


def test_a_window_is_exactly_the_v1_run_with_those_dates():
    whole = spec_for({"fast": 10, "slow": 50})
    window = core.window_spec(whole, D("2017-01-01"), D("2017-12-31"))
    direct = spec_for({"fast": 10, "slow": 50}, start="2017-01-01", end="2017-12-31")
    assert window == direct
    assert run_backtest(window).fingerprint == run_backtest(direct).fingerprint


def test_the_first_of_equal_scores_wins_and_the_direction_is_the_metrics():
    fold = core.schedule_folds(
        D("2016-01-01"), D("2019-12-31"), scheme="rolling", in_sample_months=24,
        out_of_sample_months=6,
    )[0]  # fmt: skip
    same = spec_for({"fast": 10, "slow": 50})
    other = spec_for({"fast": 20, "slow": 100})
    best = core.choose_in_sample([other, same, same], fold, "perf_sharpe_ratio")
    scores = [
        score_of(
            run_backtest(core.window_spec(s, fold.in_sample_start, fold.in_sample_end)).metrics,
            "perf_sharpe_ratio",
        )
        for s in (other, same)
    ]
    expected = 0 if scores[0] >= scores[1] else 1
    assert best.position == expected
    assert (best.completed, best.failed) == (3, 0)
    lowest = core.choose_in_sample([same, other, same], fold, "risk_max_drawdown")
    # The choice keeps its run's core metrics (drawdown a negative return); its score is the
    # v1 value it was ranked by (a positive loss).
    assert v1_row_metrics(lowest.metrics)["risk_max_drawdown"] == lowest.score
    assert lowest.metrics["max_drawdown"] == -lowest.score
    assert lowest.position in (0, 1)
    with pytest.raises(ValueError, match="has no direction"):
        core.choose_in_sample([same], fold, "metrics_spec_version")


@pytest.mark.parametrize("engine", ["vectorbt", "backtrader"])
def test_an_out_of_sample_window_ends_flat_having_paid_to_close(engine):
    # SMA 5/30 is long at the end of 2019 (a rising market), so closing costs something.
    fold = core.Fold(0, D("2018-01-01"), D("2018-12-31"), D("2019-01-01"), D("2019-12-31"))
    spec = spec_for({"fast": 5, "slow": 30}, engine=engine)
    kept = run_backtest(core.window_spec(spec, fold.out_of_sample_start, fold.out_of_sample_end))
    assert kept.positions.iloc[-1].abs().sum() > 0

    closed = core.run_out_of_sample(spec, fold, 123_456.0)

    assert closed.positions.iloc[-1].abs().sum() == 0.0
    assert closed.equity.iloc[0] == pytest.approx(
        kept.equity.iloc[0] * 123_456.0 / 100_000.0, rel=1e-9
    )
    shares = kept.positions.iloc[-1].sum() * 123_456.0 / 100_000.0
    close = kept.trades.iloc[-1]["exit_price"]
    # The sale fills at the close less slippage and pays commission on what it sold.
    exit_cost = shares * close * (1 - (1 - 0.0005) * (1 - 0.0005))
    expected = kept.equity.iloc[-1] * 123_456.0 / 100_000.0 - exit_cost
    assert closed.equity.iloc[-1] == pytest.approx(expected, rel=1e-9)
    assert closed.trades.iloc[-1]["exit_reason"] != "end_of_data"
    assert closed.fingerprint != kept.fingerprint


def test_efficiency_and_choice_changes():
    assert core.walk_forward_efficiency(0.05, [0.1, 0.2, 0.3]) == pytest.approx(0.25)
    assert core.walk_forward_efficiency(0.05, [0.1, -0.1]) is None
    assert core.walk_forward_efficiency(None, [0.1]) is None
    assert core.walk_forward_efficiency(0.05, [0.1, None]) is None
    assert core.choice_changes([1, 1, 2, 2, 1]) == 2
    assert core.choice_changes([3]) == 0
    assert score_of({"sharpe_ratio": float("nan")}, "perf_sharpe_ratio") is None
    assert score_of({"sharpe_ratio": True}, "perf_sharpe_ratio") is None
    assert score_of({"sharpe_ratio": 2}, "perf_sharpe_ratio") == 2.0
    assert score_of({"max_drawdown": -0.25}, "risk_max_drawdown") == 0.25
    assert score_of({"max_drawdown": 0.0}, "risk_max_drawdown") == 0.0
    assert score_of({"sharpe_ratio": 2}, "metrics_spec_version") is None


def test_equity_rank_metrics_need_nothing_but_the_equity():
    run = run_backtest(spec_for({"fast": 5, "slow": 30}, start="2018-01-01", end="2019-12-31"))
    alone = v1_row_metrics(
        compute_metrics(run.equity, initial_capital=100_000.0, bars_per_year=252)
    )
    full = v1_row_metrics(run.metrics)
    for key in core.EQUITY_RANK_METRICS:
        assert alone[key] == full[key], key
        assert full[key] is not None, key
    others = set(V1_METRIC_HIGHER_IS_BETTER) - core.EQUITY_RANK_METRICS
    assert all(alone[key] in (None, 0) for key in others)


@pytest.mark.parametrize("engine", ["vectorbt", "backtrader"])
def test_equity_batch_is_each_runs_own_equity(engine):
    specs = [
        spec_for({"fast": fast, "slow": slow}, start="2018-01-01", end="2019-12-31", engine=engine)
        for fast, slow in ((5, 30), (10, 50), (20, 100))
    ]
    broken = replace(specs[0], start=D("1990-01-01"))
    outcomes = run_equity_batch([*specs, broken])
    for spec, equity in zip(specs, outcomes, strict=False):
        expected = run_backtest(spec).equity
        assert equity.index.equals(expected.index)
        np.testing.assert_array_equal(equity.to_numpy(), expected.to_numpy())
    assert isinstance(outcomes[-1], RunError)


def test_a_trade_metric_ranks_on_full_runs():
    fold = core.Fold(0, D("2017-01-01"), D("2018-12-31"), D("2019-01-01"), D("2019-06-30"))
    specs = [spec_for({"fast": fast, "slow": 60}) for fast in (5, 10, 20, 40)]
    assert "trade_total_trades" not in core.EQUITY_RANK_METRICS

    choice = core.choose_in_sample(specs, fold, "trade_total_trades")

    counts = [
        v1_row_metrics(
            run_backtest(core.window_spec(s, fold.in_sample_start, fold.in_sample_end)).metrics
        )
        for s in specs
    ]
    values = [metrics["trade_total_trades"] for metrics in counts]
    assert choice.position == values.index(max(values))
    assert v1_row_metrics(choice.metrics) == counts[choice.position]


@pytest.mark.parametrize("rank_metric", ["perf_sharpe_ratio", "risk_max_drawdown", "risk_cvar_95"])
def test_the_choice_is_the_best_of_each_runs_own_metrics(rank_metric):
    # Scored together (a metric computed for all columns at once) or one by one, the choice is
    # the first of the best by each run's own v1 metrics; a duplicate never beats its original.
    fold = core.Fold(0, D("2016-01-01"), D("2017-12-31"), D("2018-01-01"), D("2018-06-30"))
    pairs = [(fast, slow) for fast in (5, 10, 20, 40) for slow in (60, 120, 200)]
    specs = [spec_for({"fast": fast, "slow": slow}) for fast, slow in pairs]
    specs = [*specs, *specs[:3]]
    chunks = []

    choice = core.choose_in_sample(specs, fold, rank_metric, chunk_size=5, on_chunk=chunks.append)

    flats = [
        v1_row_metrics(
            run_backtest(core.window_spec(s, fold.in_sample_start, fold.in_sample_end)).metrics
        )
        for s in specs
    ]
    scores = [flat[rank_metric] for flat in flats]
    best = (max if V1_METRIC_HIGHER_IS_BETTER[rank_metric] else min)(scores)
    assert choice.position == scores.index(best)
    assert choice.score == best
    assert v1_row_metrics(choice.metrics) == flats[choice.position]
    assert (choice.completed, choice.failed) == (len(specs), 0)
    assert chunks == [5, 5, 5]


def test_a_failed_combination_is_counted_with_its_error():
    fold = core.Fold(0, D("2016-01-01"), D("2017-12-31"), D("2018-01-01"), D("2018-06-30"))
    good = [spec_for({"fast": fast, "slow": 60}) for fast in (5, 10)]
    broken = replace(good[0], symbols=("ZZZZ",))
    window = core.window_spec(broken, fold.in_sample_start, fold.in_sample_end)
    with pytest.raises(RunError) as raised:
        run_backtest(window)

    choice = core.choose_in_sample([broken, *good], fold, "perf_sharpe_ratio")

    assert (choice.completed, choice.failed) == (2, 1)
    assert choice.first_error == str(raised.value)
    assert choice.position in (1, 2)

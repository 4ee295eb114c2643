"""Golden tests of compute_metrics against empyrical-reloaded and ffn on real bundled data.

empyrical and ffn are given exactly the series SPEC §5 defines: empyrical the per-bar returns
r (r_1 = E_1/C − 1) with rf_p = (1 + rf)^(1/P) − 1 as its per-period `risk_free` /
`required_return`, ffn a price series that starts at C on t_1 and ends at E_n on t_n.
ffn's `year_frac` divides seconds by 31,557,600 = 365.25 days, so its CAGR is SPEC's
(E_n/C)^(365.25/D) − 1 without any conversion; the tests also check that arithmetic directly.
"""

from __future__ import annotations

import json
import math
import time

import empyrical
import ffn
import numpy as np
import pandas as pd
import pytest

from backtests.engines.base import TRADE_COLUMNS  # the trades table the metrics read
from metrics.calculations import (
    COLUMN_METRIC_KEYS,
    METRIC_KEYS,
    METRICS_SPEC_VERSION,
    compute_metrics,
    drawdown_series,
    equity_metrics_by_column,
    metrics_by_column,
    per_period_risk_free,
    returns_from_equity,
)
from tests.metrics.conftest import INITIAL_CAPITAL

TOLERANCE = 1e-9


def resample_last(equity: pd.Series, rule: str) -> pd.Series:
    """The curve observed at the last trading day of each week or month."""
    return equity.groupby(equity.index.to_period(rule)).tail(1)


CURVES = ["buy_and_hold_spy", "sixty_forty_daily"]
FREQUENCIES = [(None, 252), ("W-FRI", 52), ("M", 12)]


@pytest.fixture(params=CURVES)
def curve(request) -> pd.Series:
    return request.getfixturevalue(request.param)


@pytest.mark.parametrize("risk_free_rate", [0.0, 0.03])
@pytest.mark.parametrize(("rule", "bars_per_year"), FREQUENCIES)
def test_matches_empyrical_and_ffn_on_real_data(curve, rule, bars_per_year, risk_free_rate):
    equity = curve if rule is None else resample_last(curve, rule)
    metrics = compute_metrics(
        equity,
        initial_capital=INITIAL_CAPITAL,
        bars_per_year=bars_per_year,
        risk_free_rate=risk_free_rate,
    )
    returns = returns_from_equity(equity, INITIAL_CAPITAL)
    rf_per_bar = (1 + risk_free_rate) ** (1 / bars_per_year) - 1

    assert metrics["sharpe_ratio"] == pytest.approx(
        empyrical.sharpe_ratio(returns, risk_free=rf_per_bar, annualization=bars_per_year),
        abs=TOLERANCE,
    )
    assert metrics["sortino_ratio"] == pytest.approx(
        empyrical.sortino_ratio(returns, required_return=rf_per_bar, annualization=bars_per_year),
        abs=TOLERANCE,
    )
    assert metrics["volatility_annualised"] == pytest.approx(
        empyrical.annual_volatility(returns, annualization=bars_per_year), abs=TOLERANCE
    )
    assert metrics["max_drawdown"] == pytest.approx(empyrical.max_drawdown(returns), abs=TOLERANCE)
    assert metrics["var_95"] == pytest.approx(
        empyrical.value_at_risk(returns, cutoff=0.05), abs=TOLERANCE
    )
    assert metrics["var_99"] == pytest.approx(
        empyrical.value_at_risk(returns, cutoff=0.01), abs=TOLERANCE
    )

    priced_from_capital = equity.copy()
    priced_from_capital.iloc[0] = INITIAL_CAPITAL  # ffn compounds from its first price
    assert metrics["cagr"] == pytest.approx(ffn.calc_cagr(priced_from_capital), abs=TOLERANCE)
    days = (equity.index[-1] - equity.index[0]).days
    assert metrics["cagr"] == pytest.approx(
        (equity.iloc[-1] / INITIAL_CAPITAL) ** (365.25 / days) - 1, abs=TOLERANCE
    )


def test_buy_and_hold_spy_independent_pandas_arithmetic(buy_and_hold_spy):
    metrics = compute_metrics(buy_and_hold_spy, initial_capital=INITIAL_CAPITAL)
    returns = returns_from_equity(buy_and_hold_spy, INITIAL_CAPITAL)

    assert metrics["total_return"] == pytest.approx(
        buy_and_hold_spy.iloc[-1] / INITIAL_CAPITAL - 1, abs=TOLERANCE
    )
    assert metrics["final_value"] == buy_and_hold_spy.iloc[-1]
    assert metrics["calmar_ratio"] == pytest.approx(
        metrics["cagr"] / abs(metrics["max_drawdown"]), abs=TOLERANCE
    )
    tail = returns.quantile(0.05)
    assert metrics["cvar_95"] == pytest.approx(returns[returns <= tail].mean(), abs=TOLERANCE)
    tail = returns.quantile(0.01)
    assert metrics["cvar_99"] == pytest.approx(returns[returns <= tail].mean(), abs=TOLERANCE)
    assert metrics["max_drawdown_duration"] == _longest_underwater_run(buy_and_hold_spy)
    assert metrics["start_date"] == "2005-01-03"
    assert metrics["end_date"] == "2024-12-31"
    assert metrics["n_bars"] == len(buy_and_hold_spy)
    assert metrics["metrics_spec_version"] == METRICS_SPEC_VERSION == "1.0"
    # SPY's 2007-2009 drawdown is the longest underwater stretch: more than four years of bars.
    assert metrics["max_drawdown_duration"] > 4 * 252


def _longest_underwater_run(equity: pd.Series, capital: float = INITIAL_CAPITAL) -> int:
    peak, run, longest = capital, 0, 0
    for value in equity:
        peak = max(peak, value)
        run = run + 1 if value < peak else 0
        longest = max(longest, run)
    return longest


def test_keys_are_exactly_the_spec_table_and_json_safe(sixty_forty_daily):
    metrics = compute_metrics(sixty_forty_daily, initial_capital=INITIAL_CAPITAL)
    assert tuple(metrics) == METRIC_KEYS
    json.dumps(metrics, allow_nan=False)
    assert all(type(value) in (int, float, str, type(None)) for value in metrics.values())


def test_returns_from_equity_counts_the_first_bar_against_capital():
    equity = pd.Series([9_900.0, 10_395.0], index=pd.to_datetime(["2024-01-02", "2024-01-03"]))
    returns = returns_from_equity(equity, 10_000)
    assert returns.tolist() == pytest.approx([-0.01, 0.05])


def test_loss_on_first_bar_counts_in_returns_and_drawdown(spy_prices):
    # A 1% cost on the first fill: every value is 99% of the cost-free curve.
    equity = 0.99 * INITIAL_CAPITAL * spy_prices.loc["2019"] / spy_prices.loc["2019"].iloc[0]
    metrics = compute_metrics(equity, initial_capital=INITIAL_CAPITAL)
    returns = returns_from_equity(equity, INITIAL_CAPITAL)

    assert returns.iloc[0] == pytest.approx(-0.01)
    assert metrics["sharpe_ratio"] == pytest.approx(empyrical.sharpe_ratio(returns), abs=TOLERANCE)
    assert metrics["max_drawdown"] == pytest.approx(empyrical.max_drawdown(returns), abs=TOLERANCE)
    assert metrics["max_drawdown"] <= -0.01
    days = (equity.index[-1] - equity.index[0]).days
    assert metrics["cagr"] == pytest.approx(
        (equity.iloc[-1] / INITIAL_CAPITAL) ** (365.25 / days) - 1, abs=TOLERANCE
    )
    # The first bar is already below the initial capital, the first peak.
    assert drawdown_series(equity, INITIAL_CAPITAL).iloc[0] == pytest.approx(-0.01)


def test_one_bar():
    equity = pd.Series([9_990.0], index=pd.to_datetime(["2024-01-02"]))
    metrics = compute_metrics(equity, initial_capital=10_000)
    assert metrics["total_return"] == pytest.approx(-0.001)
    assert metrics["cagr"] is None  # D = 0 < 1
    assert metrics["calmar_ratio"] is None
    assert metrics["volatility_annualised"] is None
    assert metrics["sharpe_ratio"] is None
    assert metrics["sortino_ratio"] is None
    assert metrics["max_drawdown"] == pytest.approx(-0.001)
    assert metrics["max_drawdown_duration"] == 1
    assert metrics["var_95"] == pytest.approx(-0.001)
    assert metrics["cvar_99"] == pytest.approx(-0.001)
    assert metrics["n_bars"] == 1
    assert metrics["start_date"] == metrics["end_date"] == "2024-01-02"


def test_intraday_span_under_one_day_has_no_cagr():
    equity = pd.Series(
        [10_000.0, 10_100.0], index=pd.to_datetime(["2024-01-02 10:00", "2024-01-02 16:00"])
    )
    assert compute_metrics(equity, initial_capital=10_000)["cagr"] is None


@pytest.mark.parametrize("risk_free_rate", [0.0, 0.04])
def test_flat_curve(risk_free_rate):
    index = pd.bdate_range("2024-01-01", periods=30)
    equity = pd.Series(10_000.0, index=index)
    metrics = compute_metrics(equity, initial_capital=10_000, risk_free_rate=risk_free_rate)
    assert metrics["total_return"] == 0.0
    assert metrics["cagr"] == 0.0
    assert metrics["volatility_annualised"] == 0.0
    assert metrics["sharpe_ratio"] is None  # zero standard deviation
    assert metrics["max_drawdown"] == 0.0
    assert math.copysign(1.0, metrics["max_drawdown"]) == 1.0  # not -0.0
    assert metrics["calmar_ratio"] is None  # no drawdown
    assert metrics["max_drawdown_duration"] == 0
    assert metrics["var_95"] == 0.0
    if risk_free_rate == 0.0:
        assert metrics["sortino_ratio"] is None  # no downside at all
    else:
        # Every bar misses the risk-free rate by the same amount: −rf_p·P / (rf_p·√P) = −√P.
        returns = returns_from_equity(equity, 10_000)
        rf_p = per_period_risk_free(risk_free_rate, 252)
        assert metrics["sortino_ratio"] == pytest.approx(-math.sqrt(252))
        assert metrics["sortino_ratio"] == pytest.approx(
            empyrical.sortino_ratio(returns, required_return=rf_p), abs=TOLERANCE
        )


def test_unrecovered_drawdown_at_the_end_counts_as_ongoing():
    index = pd.bdate_range("2024-01-01", periods=8)
    equity = pd.Series([10_000, 10_500, 11_000, 10_800, 10_900, 10_200, 10_400, 10_600.0], index)
    metrics = compute_metrics(equity, initial_capital=10_000)
    assert metrics["max_drawdown"] == pytest.approx(10_200 / 11_000 - 1)
    assert metrics["max_drawdown_duration"] == 5  # bars 4..8 all below the 11,000 peak
    assert metrics["calmar_ratio"] == pytest.approx(metrics["cagr"] / (1 - 10_200 / 11_000))


def test_increasing_curve_has_no_drawdown_and_no_calmar():
    index = pd.bdate_range("2024-01-01", periods=10)
    equity = pd.Series(np.linspace(10_100, 11_000, 10), index=index)
    metrics = compute_metrics(equity, initial_capital=10_000)
    assert metrics["max_drawdown"] == 0.0
    assert metrics["calmar_ratio"] is None
    assert metrics["sortino_ratio"] is None  # no bar below the threshold
    assert metrics["sharpe_ratio"] is not None


def test_bankrupt_curve_yields_none_not_nan():
    index = pd.bdate_range("2024-01-01", periods=4)
    equity = pd.Series([10_000.0, 5_000.0, 0.0, 0.0], index=index)
    metrics = compute_metrics(equity, initial_capital=10_000)
    json.dumps(metrics, allow_nan=False)
    assert metrics["total_return"] == -1.0
    assert metrics["max_drawdown"] == -1.0
    assert metrics["cagr"] == -1.0
    assert metrics["sharpe_ratio"] is None


def make_trades(pnls: list[float]) -> pd.DataFrame:
    entry = pd.bdate_range("2024-01-01", periods=len(pnls))
    return pd.DataFrame(
        {
            "symbol": "SPY",
            "side": "long",
            "entry_date": entry,
            "exit_date": entry + pd.Timedelta(days=1),
            "entry_price": 100.0,
            "exit_price": [100.0 + pnl / 10 for pnl in pnls],
            "size": 10.0,
            "pnl": pnls,
            "return_pct": [pnl / 1000 for pnl in pnls],
            "exit_reason": "opposite_signal",
            "fees": 0.0,
        },
        columns=TRADE_COLUMNS,
    )


@pytest.fixture
def short_curve() -> pd.Series:
    index = pd.bdate_range("2024-01-01", periods=10)
    return pd.Series(np.linspace(10_000, 10_450, 10), index=index)


def test_trade_metrics(short_curve):
    trades = make_trades([300.0, -100.0, 150.0, -50.0, 0.0])
    metrics = compute_metrics(short_curve, initial_capital=10_000, trades=trades)
    assert metrics["total_trades"] == 5
    assert metrics["win_rate"] == pytest.approx(2 / 5)
    assert metrics["profit_factor"] == pytest.approx(450 / 150)
    assert metrics["avg_win"] == pytest.approx(225.0)
    assert metrics["avg_loss"] == pytest.approx(-75.0)  # negative: the mean pnl of losing trades
    assert metrics["expectancy"] == pytest.approx(300 / 5)


def test_open_trade_without_pnl_is_not_counted(short_curve):
    trades = make_trades([100.0, 200.0])
    trades.loc[1, "pnl"] = np.nan
    metrics = compute_metrics(short_curve, initial_capital=10_000, trades=trades)
    assert metrics["total_trades"] == 1
    assert metrics["expectancy"] == pytest.approx(100.0)


@pytest.mark.parametrize("trades", [None, make_trades([])])
def test_no_trades(short_curve, trades):
    metrics = compute_metrics(short_curve, initial_capital=10_000, trades=trades)
    assert metrics["total_trades"] == 0
    for key in ("win_rate", "profit_factor", "avg_win", "avg_loss", "expectancy"):
        assert metrics[key] is None


def test_no_losing_trade(short_curve):
    metrics = compute_metrics(short_curve, initial_capital=10_000, trades=make_trades([10.0, 20.0]))
    assert metrics["profit_factor"] is None
    assert metrics["avg_loss"] is None
    assert metrics["win_rate"] == 1.0
    assert metrics["avg_win"] == pytest.approx(15.0)


def test_only_losing_trades_have_zero_profit_factor(short_curve):
    metrics = compute_metrics(short_curve, initial_capital=10_000, trades=make_trades([-10.0]))
    assert metrics["profit_factor"] == 0.0
    assert metrics["win_rate"] == 0.0
    assert metrics["avg_win"] is None


def test_turnover_annualised(short_curve):
    orders = pd.DataFrame(
        {
            "date": short_curve.index[[0, 4, 9]],
            "symbol": "SPY",
            "side": ["buy", "sell", "buy"],
            "size": [50.0, -20.0, 10.0],
            "price": [200.0, 210.0, 205.0],
            "fees": 0.0,
        }
    )
    metrics = compute_metrics(short_curve, initial_capital=10_000, orders=orders, bars_per_year=252)
    notional = 50 * 200 + 20 * 210 + 10 * 205
    years = len(short_curve) / 252
    assert metrics["turnover_annualised"] == pytest.approx(
        notional / short_curve.mean() / years, rel=1e-12
    )
    empty = orders.iloc[0:0]
    assert compute_metrics(short_curve, initial_capital=10_000, orders=empty)[
        "turnover_annualised"
    ] == (0.0)
    assert compute_metrics(short_curve, initial_capital=10_000)["turnover_annualised"] is None


def test_bars_in_market(short_curve):
    positions = pd.DataFrame(
        {"SPY": [0, 10, 10, 0, 0, 0, 0, 0, 5, 5.0], "AGG": [0, 0, 0, 3, 0, 0, 0, 0, 0, np.nan]},
        index=short_curve.index,
    )
    assert compute_metrics(short_curve, initial_capital=10_000, positions=positions)[
        "bars_in_market"
    ] == (5)
    assert compute_metrics(short_curve, initial_capital=10_000, positions=positions["SPY"])[
        "bars_in_market"
    ] == (4)
    assert compute_metrics(short_curve, initial_capital=10_000)["bars_in_market"] is None


def test_rejects_what_cannot_be_measured():
    with pytest.raises(ValueError, match="empty"):
        compute_metrics(pd.Series([], dtype=float), initial_capital=10_000)
    with pytest.raises(ValueError, match="initial_capital"):
        compute_metrics(pd.Series([1.0], index=pd.to_datetime(["2024-01-02"])), initial_capital=0)
    with pytest.raises(ValueError, match="dates"):
        compute_metrics(pd.Series([1.0, 2.0]), initial_capital=1.0)
    by_text = compute_metrics(
        pd.Series([1.0, 2.0], index=["2024-01-02", "2025-01-02"]), initial_capital=1.0
    )
    assert by_text["cagr"] == pytest.approx(2 ** (365.25 / 366) - 1)


def test_fast_enough_for_5000_bars(buy_and_hold_spy):
    equity = buy_and_hold_spy.iloc[:5000]
    trades = make_trades([10.0, -5.0] * 50)
    best = math.inf
    for _ in range(5):
        started = time.process_time()
        for _ in range(10):
            compute_metrics(equity, initial_capital=INITIAL_CAPITAL, trades=trades)
        best = min(best, (time.process_time() - started) / 10)
    # About 1 ms of CPU (CPU time, so a busy shared machine does not make this flaky).
    assert best < 0.010


@pytest.mark.parametrize(("bars_per_year", "risk_free_rate"), [(252, 0.0), (52, 0.03)])
def test_metrics_by_column_are_each_columns_own(spy_prices, bars_per_year, risk_free_rate):
    # Real curves of every kind next to each other: rising, falling, flat (undefined Sharpe and
    # Sortino), never below the capital (no drawdown), bankrupt (undefined returns), one that
    # gains and loses the same each bar.
    prices = spy_prices.loc["2015":"2019"]
    index = prices.index
    n = len(index)
    rng = np.random.default_rng(7)
    columns = {
        "hold": prices.to_numpy() / prices.iloc[0] * INITIAL_CAPITAL,
        "short": (2 - prices.to_numpy() / prices.iloc[0]) * INITIAL_CAPITAL,
        "noise": INITIAL_CAPITAL * np.cumprod(1 + rng.normal(0.0003, 0.01, n)),
        "flat": np.full(n, float(INITIAL_CAPITAL)),
        "rising": np.linspace(INITIAL_CAPITAL * 1.01, INITIAL_CAPITAL * 2, n),
        "bankrupt": np.concatenate([np.linspace(INITIAL_CAPITAL, 1.0, n - 5), np.zeros(5)]),
        "zigzag": INITIAL_CAPITAL * np.cumprod(np.where(np.arange(n) % 2, 1.01, 1 / 1.01)),
    }
    matrix = np.column_stack(list(columns.values()))

    together = equity_metrics_by_column(
        matrix,
        index,
        initial_capital=INITIAL_CAPITAL,
        bars_per_year=bars_per_year,
        risk_free_rate=risk_free_rate,
    )

    assert set(together) == set(COLUMN_METRIC_KEYS)
    for column, name in enumerate(columns):
        alone = compute_metrics(
            pd.Series(matrix[:, column], index=index),
            initial_capital=INITIAL_CAPITAL,
            bars_per_year=bars_per_year,
            risk_free_rate=risk_free_rate,
        )
        for key in COLUMN_METRIC_KEYS:
            value = together[key][column]
            if alone[key] is None:
                assert np.isnan(value), (name, key)
            else:
                assert value == pytest.approx(alone[key], rel=1e-12, abs=1e-12), (name, key)
    assert np.isnan(together["sharpe_ratio"][list(columns).index("flat")])
    assert together["cagr"][list(columns).index("bankrupt")] == -1.0


def test_metrics_by_column_of_one_bar_and_of_a_day():
    index = pd.DatetimeIndex(["2024-01-02"])
    together = equity_metrics_by_column(
        np.array([[10_100.0, 9_900.0]]), index, initial_capital=10_000
    )
    for column, value in enumerate((10_100.0, 9_900.0)):
        alone = compute_metrics(pd.Series([value], index=index), initial_capital=10_000)
        for key in COLUMN_METRIC_KEYS:
            expected = alone[key]
            assert (np.isnan(together[key][column]) if expected is None else
                    together[key][column] == pytest.approx(expected, rel=1e-12)), key  # fmt: skip


@pytest.mark.parametrize(("bars_per_year", "risk_free_rate"), [(252, 0.0), (52, 0.03)])
def test_all_metrics_by_column_are_bit_for_bit_each_columns_own(
    spy_prices, bars_per_year, risk_free_rate
):
    # Every key of compute_metrics, with trades, orders and positions, exactly (==): curves of
    # every kind, trades won, lost, open (NaN pnl) or none, and a run never in the market.
    prices = spy_prices.loc["2012":"2019"]
    index = prices.index
    n = len(index)
    rng = np.random.default_rng(11)
    curves = {
        "hold": prices.to_numpy() / prices.iloc[0] * INITIAL_CAPITAL,
        "noise": INITIAL_CAPITAL * np.cumprod(1 + rng.normal(0.0003, 0.01, n)),
        "flat": np.full(n, float(INITIAL_CAPITAL)),
        "rising": np.linspace(INITIAL_CAPITAL * 1.01, INITIAL_CAPITAL * 2, n),
        "bankrupt": np.concatenate([np.linspace(INITIAL_CAPITAL, 1.0, n - 5), np.zeros(5)]),
        "negative": np.linspace(INITIAL_CAPITAL, -INITIAL_CAPITAL * 3, n),
    }
    pnls = [
        rng.normal(50, 400, 37),
        np.array([120.5, -30.25, np.nan]),
        np.array([]),
        np.array([10.0] * 9),
        np.array([-5.0, -7.5]),
        rng.normal(0, 100, 300),
    ]
    traded = rng.uniform(0, 5e6, len(curves))
    held = rng.integers(0, n, len(curves))
    held[2] = 0
    matrix = np.column_stack(list(curves.values()))

    together = metrics_by_column(
        matrix,
        index,
        initial_capital=INITIAL_CAPITAL,
        trade_pnl=pnls,
        traded_notional=traded,
        bars_held=held,
        bars_per_year=bars_per_year,
        risk_free_rate=risk_free_rate,
    )

    assert len(together) == len(curves)
    for column, name in enumerate(curves):
        positions = pd.DataFrame({"SPY": np.where(np.arange(n) < held[column], 3.0, 0.0)}, index)
        orders = pd.DataFrame({"size": [traded[column]], "price": [1.0]})
        alone = compute_metrics(
            pd.Series(matrix[:, column], index=index),
            initial_capital=INITIAL_CAPITAL,
            trades=make_trades(list(pnls[column])),
            positions=positions,
            orders=orders,
            bars_per_year=bars_per_year,
            risk_free_rate=risk_free_rate,
        )
        assert list(together[column]) == list(METRIC_KEYS), name
        assert together[column] == alone, name
    assert together[2]["sharpe_ratio"] is None and together[2]["total_trades"] == 0
    assert together[4]["var_95"] is None  # a return after the wipe-out is undefined
    assert together[1]["total_trades"] == 2  # the open trade does not count


def test_all_metrics_by_column_of_one_bar():
    index = pd.DatetimeIndex(["2024-01-02"])
    together = metrics_by_column(
        np.array([[10_100.0, 9_900.0]]),
        index,
        initial_capital=10_000,
        trade_pnl=[np.array([]), np.array([-100.0])],
        traded_notional=np.array([0.0, 9_900.0]),
        bars_held=np.array([0, 1]),
    )
    for column, value in enumerate((10_100.0, 9_900.0)):
        alone = compute_metrics(
            pd.Series([value], index=index),
            initial_capital=10_000,
            trades=make_trades([] if column == 0 else [-100.0]),
            positions=pd.DataFrame({"SPY": [float(column)]}, index=index),
            orders=pd.DataFrame({"size": [0.0 if column == 0 else 9_900.0], "price": [1.0]}),
        )
        assert together[column] == alone

"""The portfolio runner on real bundled data: strategies, frequencies, leverage, CASH, and every
analytics block recomputed independently with pandas."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from backtests.portfolio.examples import examples
from backtests.portfolio.requests import parse_portfolio_request
from backtests.portfolio.runner import fingerprint, validation_score
from strategies.language import compute_signal

from .support import above, constant, load_prices, payload, rule, run

RESULT_KEYS = {
    "is_valid",
    "validation_score",
    "metrics",
    "portfolio_log",
    "allocation_log",
    "returns_log",
    "allocation_summary",
    "risk_metrics",
    "benchmark_comparison",
    "transaction_analysis",
    "drawdown_analysis",
    "allocation_efficiency",
    "rolling_metrics",
    "correlation_matrix",
    "risk_contribution",
    "data_quality",
    "rebalancing_frequency",
    "execution_time",
    "warnings",
    "errors",
    "chart_data",
}


def log_series(log: dict) -> pd.Series:
    return pd.Series(list(log.values()), index=pd.DatetimeIndex(list(log)))


CONTRACT_EXAMPLES = [name for name in examples() if name != "dual_momentum_month_end"]


@pytest.mark.parametrize("name", CONTRACT_EXAMPLES)
def test_each_contract_example_runs(name):
    result = run(examples()[name]).result
    assert set(result) == RESULT_KEYS
    assert result["is_valid"] is True
    assert result["errors"] == [] and result["warnings"] == []
    assert result["validation_score"] == 1.0
    metrics = result["metrics"]
    assert 1_000 < metrics["final_value"] < 100_000
    assert metrics["total_return"] == metrics["cumulative_return"]
    assert metrics["final_value"] == pytest.approx(10_000 * (1 + metrics["total_return"]))
    assert -1 < metrics["max_drawdown"] < 0
    assert 0 < metrics["volatility"] < 2
    assert next(iter(result["portfolio_log"])) == "2020-01-02"
    assert list(result["portfolio_log"])[-1] == "2023-12-29"
    assert len(result["portfolio_log"]) == 1006
    assert result["data_quality"]["date_range_days"] == 1006
    assert "SPY" in result["benchmark_comparison"]
    assert result["rebalancing_frequency"] == examples()[name]["config"]["rebalance_frequency"]


def test_known_values_of_buy_and_hold_spy():
    """SPY total return 2020-01-02 … 2023-12-29 from the bundled adj_close, less one commission."""
    result = run(examples()["buy_and_hold_spy"]).result
    spy = load_prices(parse_portfolio_request(examples()["buy_and_hold_spy"])).close["SPY"]
    spy = spy.loc["2020-01-02":"2023-12-29"]
    shares = 10_000 / (1.0035 * spy.iloc[0])
    assert result["metrics"]["final_value"] == pytest.approx(shares * spy.iloc[-1], rel=1e-9)
    assert result["transaction_analysis"]["total_trades"] == 1
    assert result["transaction_analysis"]["total_transaction_costs"] == pytest.approx(
        shares * spy.iloc[0] * 0.0035, rel=1e-9
    )


SIGNALS = [
    {"type": "SMA", "symbol": "SPY", "window": 20},
    {"type": "EMA", "symbol": "SPY", "window": 20},
    {"type": "RSI", "symbol": "SPY", "window": 14},
    {"type": "MACD", "symbol": "SPY", "fast": 12, "slow": 26, "signal": 9},
    {"type": "Momentum", "symbol": "SPY", "window": 20},
    {"type": "ROC", "symbol": "QQQ", "window": 20},
    {"type": "Volatility", "symbol": "SPY", "window": 20},
    {"type": "ATR", "symbol": "SPY", "window": 14},
    {"type": "BollingerBands", "symbol": "SPY", "window": 20, "num_std": 2},
    {"type": "StochasticOscillator", "symbol": "SPY", "window": 14, "smooth_window": 3},
    {
        "type": "RollingSharpe",
        "symbol": "SPY",
        "window": 63,
        "trading_days": 252,
        "risk_free_rate": 0.02,
    },
    {
        "type": "RollingSortino",
        "symbol": "SPY",
        "window": 63,
        "trading_days": 252,
        "risk_free_rate": 0.02,
    },
    {"type": "RollingReturn", "symbol": "SPY", "window": 20},
    {"type": "Drawdown", "symbol": "SPY"},
    {"type": "Close", "symbol": "SPY"},
    {"type": "Open", "symbol": "SPY"},
    {"type": "High", "symbol": "SPY"},
    {"type": "Low", "symbol": "SPY"},
    {"type": "Volume", "symbol": "SPY"},
]


@pytest.mark.parametrize("signal", SIGNALS, ids=lambda signal: signal["type"])
def test_each_signal_type_drives_a_switching_rule(signal):
    allocations = {"risk_on": {"SPY": 1.0}, "risk_off": {"IEF": 0.5, "CASH": 0.5}}
    probe = payload(allocations, fallback="risk_off")
    request = parse_portfolio_request(probe)
    prices = load_prices(payload(allocations, rules=[rule(above(signal, constant(0)), "risk_on")]))
    values = compute_signal(signal, prices)
    window = values.loc["2020-01-02":"2021-12-31"]
    threshold = float(window.median())
    document = payload(
        allocations,
        fallback="risk_off",
        rules=[rule(above(signal, constant(threshold)), "risk_on")],
    )
    outcome = run(document)
    groups = log_series(outcome.result["allocation_log"])
    expected = np.where(window.reindex(groups.index) > threshold, "risk_on", "risk_off")
    assert (groups.to_numpy() == expected).all()
    switches = groups.index[1:][groups.to_numpy()[1:] != groups.to_numpy()[:-1]]
    assert len(switches) > 0
    assert outcome.result["allocation_efficiency"]["allocation_changes"] == len(switches)
    order_dates = set(pd.DatetimeIndex(outcome.orders["date"]))
    assert set(switches) <= order_dates
    assert request.rebalance_frequency == "monthly"


def test_composite_and_or_nested_conditions():
    spy_close = {"type": "Close", "symbol": "SPY"}
    sma = {"type": "SMA", "symbol": "SPY", "window": 50}
    rsi = {"type": "RSI", "symbol": "SPY", "window": 14}
    momentum = {"type": "Momentum", "symbol": "QQQ", "window": 20}
    condition = {
        "op": "and",
        "conditions": [
            above(spy_close, sma),
            {
                "op": "OR",
                "conditions": [
                    {"left": rsi, "comparison": "<", "right": constant(60)},
                    above(momentum, constant(0.03)),
                ],
            },
        ],
    }
    allocations = {"growth": {"QQQ?L=3": 1.0}, "defensive": {"SPY": 0.7, "CASH": 0.3}}
    document = payload(allocations, fallback="defensive", rules=[rule(condition, "growth")])
    outcome = run(document)
    prices = load_prices(parse_portfolio_request(document))
    index = outcome.equity.index

    def values(spec):
        return compute_signal(spec, prices).reindex(index)

    expected = (values(spy_close) > values(sma)) & ((values(rsi) < 60) | (values(momentum) > 0.03))
    groups = log_series(outcome.result["allocation_log"])
    assert (groups == np.where(expected, "growth", "defensive")).all()
    assert 0 < expected.sum() < len(expected)


def test_first_matching_rule_wins():
    spy_close = {"type": "Close", "symbol": "SPY"}
    allocations = {"a": {"SPY": 1.0}, "b": {"TLT": 1.0}, "c": {"CASH": 1.0}}
    document = payload(
        allocations,
        fallback="c",
        rules=[
            rule(above(spy_close, {"type": "SMA", "symbol": "SPY", "window": 100}), "a"),
            rule(above(constant(1), constant(0)), "b"),
        ],
    )
    outcome = run(document)
    prices = load_prices(parse_portfolio_request(document))
    index = outcome.equity.index
    first = compute_signal(spy_close, prices).reindex(index) > compute_signal(
        {"type": "SMA", "symbol": "SPY", "window": 100}, prices
    ).reindex(index)
    groups = log_series(outcome.result["allocation_log"])
    assert (groups == np.where(first, "a", "b")).all()


def test_a_2x_symbols_daily_returns_are_exactly_twice_the_underlyings():
    document = payload({"lev": {"SPY?L=2": 1.0}}, base_commission=0)
    outcome = run(document)
    prices = load_prices(parse_portfolio_request(payload({"x": {"SPY": 0.5, "SPY?L=2": 0.5}})))
    window = prices.close.loc[outcome.equity.index]
    underlying = window["SPY"].pct_change().iloc[1:]
    leveraged = window["SPY?L=2"].pct_change().iloc[1:]
    np.testing.assert_allclose(leveraged, 2 * underlying, rtol=0, atol=1e-12)
    returns = log_series(outcome.result["returns_log"]).iloc[1:]
    np.testing.assert_allclose(returns, 2 * underlying, rtol=0, atol=1e-12)


def test_cash_earns_nothing_and_is_not_traded():
    document = payload(
        {"d": {"BND": 0.7, "CASH": 0.3}}, base_commission=0, rebalance_frequency="daily"
    )
    outcome = run(document)
    bnd = load_prices(parse_portfolio_request(document)).close["BND"].loc[outcome.equity.index]
    returns = log_series(outcome.result["returns_log"]).iloc[1:]
    np.testing.assert_allclose(returns, 0.7 * bnd.pct_change().iloc[1:], rtol=0, atol=1e-12)
    assert set(outcome.orders["symbol"]) == {"BND"}
    assert outcome.result["correlation_matrix"] == {"BND": {"BND": 1.0}}
    assert outcome.result["data_quality"]["total_symbols"] == 1


def test_all_cash_keeps_the_capital():
    outcome = run(payload({"c": {"CASH": 1.0}}))
    assert (outcome.equity == 10_000).all()
    assert outcome.result["transaction_analysis"]["total_trades"] == 0
    assert outcome.result["metrics"]["total_return"] == 0


def expected_rebalance_dates(index: pd.DatetimeIndex, frequency: str) -> set:
    if frequency == "daily":
        return set(index)
    period = {"weekly": "W-SUN", "monthly": "M", "quarterly": "Q", "yearly": "Y"}[frequency]
    dates = index.to_series()
    return set(dates.groupby(index.to_period(period)).min())


@pytest.mark.parametrize("frequency", ["daily", "weekly", "monthly", "quarterly", "yearly", None])
def test_every_rebalance_frequency_trades_on_its_schedule(frequency):
    config = {} if frequency is None else {"rebalance_frequency": frequency}
    outcome = run(payload({"mix": {"SPY": 0.5, "TLT": 0.5}}, **config))
    index = outcome.equity.index
    expected = expected_rebalance_dates(index, frequency or "monthly")
    order_dates = pd.DatetimeIndex(outcome.orders["date"])
    assert set(order_dates) == expected
    assert len(outcome.orders) == 2 * len(expected)
    counts = {"daily": 505, "weekly": 105, "monthly": 24, "quarterly": 8, "yearly": 2}
    assert len(expected) == counts[frequency or "monthly"]
    analysis = outcome.result["transaction_analysis"]
    assert analysis["total_trades"] == len(outcome.orders)
    assert outcome.result["rebalancing_frequency"] == (frequency or "monthly")
    assert analysis["total_transaction_costs"] == pytest.approx(
        0.0035 * analysis["total_turnover"], rel=1e-12
    )


def test_both_engines_give_the_same_numbers():
    spy_close = {"type": "Close", "symbol": "SPY"}
    document = payload(
        {"on": {"QQQ?L=2": 0.6, "SPY": 0.3, "CASH": 0.1}, "off": {"TLT": 0.5, "GLD": 0.5}},
        fallback="off",
        rules=[rule(above(spy_close, {"type": "SMA", "symbol": "SPY", "window": 50}), "on")],
        start_date="2021-01-01",
        end_date="2022-12-31",
    )
    vectorbt = run(document, engine="vectorbt")
    backtrader = run(document, engine="backtrader")
    np.testing.assert_allclose(backtrader.equity, vectorbt.equity, rtol=1e-6, atol=0)
    assert len(backtrader.orders) == len(vectorbt.orders)
    for key, value in vectorbt.result["metrics"].items():
        assert backtrader.result["metrics"][key] == pytest.approx(value, rel=1e-6, abs=1e-9)
    for block in ("risk_metrics", "transaction_analysis"):
        for key, value in vectorbt.result[block].items():
            assert backtrader.result[block][key] == pytest.approx(value, rel=1e-6, abs=1e-9)


# --- every analytics block against an independent pandas computation --------------------------


@pytest.fixture(scope="module")
def tactical():
    spy_close = {"type": "Close", "symbol": "SPY"}
    document = payload(
        {"risk_on": {"SPY": 0.8, "TLT": 0.2}, "risk_off": {"SPY": 0.2, "TLT": 0.6, "CASH": 0.2}},
        fallback="risk_off",
        rules=[rule(above(spy_close, {"type": "SMA", "symbol": "SPY", "window": 50}), "risk_on")],
    )
    outcome = run(document)
    prices = load_prices(parse_portfolio_request(document))
    return outcome, prices


def test_daily_logs_are_the_equity_curve_and_its_returns(tactical):
    outcome, _ = tactical
    result = outcome.result
    equity = log_series(result["portfolio_log"])
    np.testing.assert_array_equal(equity.to_numpy(), outcome.equity.to_numpy())
    returns = log_series(result["returns_log"])
    assert returns.iloc[0] == pytest.approx(equity.iloc[0] / 10_000 - 1, abs=1e-15)
    np.testing.assert_allclose(returns.iloc[1:], equity.pct_change().iloc[1:], rtol=0, atol=1e-15)
    assert result["chart_data"]["dates"] == list(result["portfolio_log"])
    assert result["chart_data"]["values"] == list(result["portfolio_log"].values())
    assert all(len(date) == 10 for date in result["portfolio_log"])


def test_metrics_block(tactical):
    outcome, _ = tactical
    metrics = outcome.result["metrics"]
    equity = outcome.equity
    returns = equity / np.concatenate(([10_000.0], equity.to_numpy()[:-1])) - 1
    days = (equity.index[-1] - equity.index[0]).days
    cagr = (equity.iloc[-1] / 10_000) ** (365.25 / days) - 1
    peaks = np.maximum.accumulate(np.concatenate(([10_000.0], equity.to_numpy())))[1:]
    max_drawdown = (equity.to_numpy() / peaks - 1).min()
    assert metrics["final_value"] == equity.iloc[-1]
    assert metrics["total_return"] == pytest.approx(equity.iloc[-1] / 10_000 - 1, rel=1e-12)
    assert metrics["cagr"] == pytest.approx(cagr, rel=1e-12)
    assert metrics["annualized_return"] == metrics["cagr"]
    assert metrics["volatility"] == pytest.approx(returns.std(ddof=1) * math.sqrt(252), rel=1e-9)
    assert metrics["sharpe_ratio"] == pytest.approx(
        returns.mean() / returns.std(ddof=1) * math.sqrt(252), rel=1e-9
    )
    downside = math.sqrt((returns.clip(upper=0) ** 2).mean())
    assert metrics["sortino_ratio"] == pytest.approx(
        returns.mean() * 252 / (downside * math.sqrt(252)), rel=1e-9
    )
    assert metrics["max_drawdown"] == pytest.approx(max_drawdown, rel=1e-12)
    assert metrics["max_drawdown"] < 0
    assert metrics["calmar_ratio"] == pytest.approx(cagr / abs(max_drawdown), rel=1e-9)
    assert metrics["win_rate"] == pytest.approx((returns > 0).mean(), rel=1e-12)


def test_risk_metrics_block(tactical):
    outcome, _ = tactical
    block = outcome.result["risk_metrics"]
    returns = outcome.returns
    var_95, var_99 = np.percentile(returns, 5), np.percentile(returns, 1)
    assert block["var_95"] == pytest.approx(var_95, rel=1e-12)
    assert block["var_99"] == pytest.approx(var_99, rel=1e-12)
    assert block["cvar_95"] == pytest.approx(returns[returns <= var_95].mean(), rel=1e-12)
    assert block["cvar_99"] == pytest.approx(returns[returns <= var_99].mean(), rel=1e-12)
    assert block["var_95"] < 0 and block["cvar_99"] < block["var_99"] < 0
    assert block["skewness"] == pytest.approx(returns.skew(), rel=1e-9)
    assert block["kurtosis"] == pytest.approx(returns.kurt(), rel=1e-9)
    losing = (returns < 0).astype(int)
    streaks = losing.groupby((losing != losing.shift()).cumsum()).sum()
    assert block["max_consecutive_losses"] == streaks.max()
    assert block["volatility_clustering"] == pytest.approx((returns**2).autocorr(1), rel=1e-9)


def test_benchmark_comparison_block(tactical):
    outcome, prices = tactical
    block = outcome.result["benchmark_comparison"]
    assert list(block) == ["SPY"]
    spy = block["SPY"]
    returns = outcome.returns
    benchmark = prices.close["SPY"].loc[returns.index].pct_change().fillna(0.0)
    beta = returns.cov(benchmark) / benchmark.var()
    assert spy["beta"] == pytest.approx(beta, rel=1e-9)
    assert spy["correlation"] == pytest.approx(returns.corr(benchmark), rel=1e-9)
    assert spy["alpha_annualized"] == pytest.approx(
        (returns.mean() - beta * benchmark.mean()) * 252, rel=1e-9
    )
    active = returns - benchmark
    tracking_error = active.std(ddof=1) * math.sqrt(252)
    assert spy["tracking_error"] == pytest.approx(tracking_error, rel=1e-9)
    assert spy["information_ratio"] == pytest.approx(active.mean() * 252 / tracking_error, rel=1e-9)
    days = (returns.index[-1] - returns.index[0]).days
    benchmark_cagr = (1 + benchmark).prod() ** (365.25 / days) - 1
    portfolio_cagr = (1 + returns).prod() ** (365.25 / days) - 1
    assert spy["benchmark_cagr"] == pytest.approx(benchmark_cagr, rel=1e-9)
    assert spy["excess_return_cagr"] == pytest.approx(portfolio_cagr - benchmark_cagr, rel=1e-9)

    def annual(values):
        return (1 + values).prod() ** (252 / len(values)) - 1

    up, down = benchmark > 0, benchmark < 0
    assert spy["up_capture"] == pytest.approx(annual(returns[up]) / annual(benchmark[up]), rel=1e-9)
    assert spy["down_capture"] == pytest.approx(
        annual(returns[down]) / annual(benchmark[down]), rel=1e-9
    )


def test_another_benchmark_can_be_named():
    outcome = run(payload({"mix": {"SPY": 0.5, "TLT": 0.5}}, benchmark="AGG"))
    assert list(outcome.result["benchmark_comparison"]) == ["AGG"]


def test_transaction_analysis_block(tactical):
    outcome, _ = tactical
    block = outcome.result["transaction_analysis"]
    orders = outcome.orders
    costs = orders["fees"].sum()
    turnover = (orders["size"] * orders["price"]).abs().sum()
    assert block["total_transaction_costs"] == pytest.approx(costs, rel=1e-12)
    assert block["total_trades"] == len(orders)
    assert block["total_turnover"] == pytest.approx(turnover, rel=1e-12)
    assert block["avg_cost_per_trade"] == pytest.approx(costs / len(orders), rel=1e-12)
    assert block["cost_as_pct_of_portfolio"] == pytest.approx(costs / 10_000 * 100, rel=1e-12)
    assert block["turnover_ratio"] == pytest.approx(turnover / outcome.equity.mean(), rel=1e-12)
    assert block["trading_frequency"] == pytest.approx(len(orders) / len(outcome.equity), rel=1e-12)
    assert costs == pytest.approx(0.0035 * turnover, rel=1e-12)


def drawdown_periods(equity: pd.Series, capital: float, threshold: float = 0.05) -> list[dict]:
    """Peak → trough → recovery, walked bar by bar."""
    periods, peak, peak_date, trough, trough_date = [], capital, equity.index[0], 0.0, None
    for date, value in equity.items():
        if value >= peak:
            if trough_date is not None and trough < -threshold:
                periods.append((peak_date, trough_date, date, trough))
            peak, peak_date, trough, trough_date = value, date, 0.0, None
            continue
        depth = value / peak - 1
        if depth < trough:
            trough, trough_date = depth, date
    if trough_date is not None and trough < -threshold:
        periods.append((peak_date, trough_date, None, trough))
    return [
        {
            "start_date": start.strftime("%Y-%m-%d"),
            "end_date": bottom.strftime("%Y-%m-%d"),
            "recovery_date": None if back is None else back.strftime("%Y-%m-%d"),
            "max_drawdown": pytest.approx(depth, rel=1e-12),
            "duration_days": (bottom - start).days,
            "recovery_days": None if back is None else (back - bottom).days,
        }
        for start, bottom, back, depth in periods
    ]


def test_drawdown_analysis_block(tactical):
    outcome, _ = tactical
    block = outcome.result["drawdown_analysis"]
    expected = drawdown_periods(outcome.equity, 10_000.0)
    assert block["periods"] == expected
    assert len(expected) >= 1
    summary = block["summary"]
    assert summary["max_drawdown"] == outcome.result["metrics"]["max_drawdown"]
    assert summary["drawdown_frequency"] == len(expected)
    assert summary["avg_drawdown"] == pytest.approx(
        np.mean([p["max_drawdown"].expected for p in expected]), rel=1e-12
    )
    assert summary["avg_drawdown_duration"] == pytest.approx(
        np.mean([p["duration_days"] for p in expected])
    )
    recoveries = [p["recovery_days"] for p in expected if p["recovery_days"] is not None]
    if recoveries:
        assert summary["max_recovery_time"] == max(recoveries)
        assert summary["avg_recovery_time"] == pytest.approx(np.mean(recoveries))


def test_allocation_summary_and_efficiency_blocks(tactical):
    outcome, _ = tactical
    groups = log_series(outcome.result["allocation_log"])
    returns = outcome.returns
    held = groups.shift(1)
    held.iloc[0] = groups.iloc[0]
    summary = {entry["allocation"]: entry for entry in outcome.result["allocation_summary"]}
    assert set(summary) == {"risk_on", "risk_off"}
    for name, entry in summary.items():
        group_returns = returns[held.to_numpy() == name]
        assert entry["days"] == len(group_returns)
        assert entry["avg_daily_return"] == pytest.approx(group_returns.mean(), rel=1e-12)
        assert entry["total_return"] == pytest.approx((1 + group_returns).prod() - 1, rel=1e-9)
    assert sum(entry["days"] for entry in summary.values()) == len(returns)

    efficiency = outcome.result["allocation_efficiency"]
    changes = int((groups != groups.shift()).iloc[1:].sum())
    assert efficiency["allocation_changes"] == changes
    assert efficiency["switching_frequency"] == pytest.approx(changes / len(groups))
    for name in summary:
        group_returns = returns[held.to_numpy() == name]
        assert efficiency["allocation_percentages"][name] == pytest.approx(
            len(group_returns) / len(groups) * 100
        )
        performance = efficiency["allocation_performance"][name]
        assert performance["avg_return"] == pytest.approx(group_returns.mean(), rel=1e-12)
        assert performance["volatility"] == pytest.approx(group_returns.std(ddof=1), rel=1e-9)
        assert performance["sharpe"] == pytest.approx(
            group_returns.mean() / group_returns.std(ddof=1) * math.sqrt(252), rel=1e-9
        )


def test_rolling_metrics_block(tactical):
    outcome, _ = tactical
    block = outcome.result["rolling_metrics"]
    returns = outcome.returns
    month_starts = returns.index.to_series().groupby(returns.index.to_period("M")).min()
    expected_dates = [d for d in month_starts if returns.index.get_loc(d) >= 62]
    assert list(block) == [d.strftime("%Y-%m-%d") for d in expected_dates]
    for date in expected_dates[:3] + expected_dates[-2:]:
        position = returns.index.get_loc(date)
        window = returns.iloc[position - 62 : position + 1]
        entry = block[date.strftime("%Y-%m-%d")]
        assert entry["rolling_volatility"] == pytest.approx(
            window.std(ddof=1) * math.sqrt(252), rel=1e-9
        )
        assert entry["rolling_sharpe"] == pytest.approx(
            window.mean() / window.std(ddof=1) * math.sqrt(252), rel=1e-9
        )
        downside = math.sqrt((window.clip(upper=0) ** 2).mean())
        assert entry["rolling_sortino"] == pytest.approx(
            window.mean() * 252 / (downside * math.sqrt(252)), rel=1e-9
        )


def test_correlation_and_risk_contribution_blocks(tactical):
    outcome, prices = tactical
    index = outcome.equity.index
    asset_returns = prices.close[["SPY", "TLT"]].pct_change().loc[index]
    correlation = asset_returns.corr()
    block = outcome.result["correlation_matrix"]
    assert set(block) == {"SPY", "TLT"}
    assert block["SPY"]["TLT"] == pytest.approx(correlation.loc["SPY", "TLT"], rel=1e-12)
    assert block["SPY"]["SPY"] == pytest.approx(1.0)

    held = outcome.positions[["SPY", "TLT"]] * prices.close[["SPY", "TLT"]].loc[index]
    weights = held.div(outcome.equity, axis=0).mean().to_numpy()
    covariance = asset_returns.cov().to_numpy()
    marginal = covariance @ weights
    shares = weights * marginal / (weights @ marginal)
    contribution = outcome.result["risk_contribution"]
    assert contribution["SPY"] == pytest.approx(shares[0], rel=1e-9)
    assert contribution["TLT"] == pytest.approx(shares[1], rel=1e-9)
    assert sum(contribution.values()) == pytest.approx(1.0)


def test_data_quality_block_and_validation_score(tactical):
    outcome, _ = tactical
    block = outcome.result["data_quality"]
    assert block == {
        "total_symbols": 2,
        "date_range_days": len(outcome.equity),
        "start_date": "2020-01-02",
        "end_date": "2021-12-31",
        "missing_data_issues": [],
        "data_completeness": {"SPY": 1.0, "TLT": 1.0},
    }
    assert outcome.result["validation_score"] == 1.0
    assert validation_score({"A": 1.0, "B": 0.9}, ["w1"]) == pytest.approx(0.9)
    assert validation_score({"A": 0.1}, ["w"] * 5) == 0.0


def test_fingerprint_changes_with_what_decides_the_numbers():
    first = parse_portfolio_request(payload({"a": {"SPY": 1.0}}))
    second = parse_portfolio_request(payload({"a": {"SPY": 1.0}}, base_commission=0.001))
    assert fingerprint(first, "hash") == fingerprint(first, "hash")
    assert fingerprint(first, "hash") != fingerprint(second, "hash")
    assert fingerprint(first, "hash") != fingerprint(first, "other")


def test_missing_warm_up_history_is_a_warning():
    bnd_above_average = above(
        {"type": "Close", "symbol": "BND"}, {"type": "SMA", "symbol": "BND", "window": 200}
    )
    document = payload(
        {"bonds": {"BND": 1.0}, "cash": {"CASH": 1.0}},
        fallback="cash",
        rules=[rule(bnd_above_average, "bonds")],
        start_date="2007-06-01",
        end_date="2008-06-30",
        benchmark="AGG",
    )
    outcome = run(document)
    (warning,) = outcome.result["warnings"]
    assert warning.startswith("Only 37 of the 200 bars of history the indicators need before ")
    assert outcome.result["validation_score"] == pytest.approx(0.95)
    # SMA 200 of BND is undefined until its 200th bar: the fallback holds until then.
    prices = load_prices(document)
    first_defined = compute_signal(bnd_above_average["right"], prices).first_valid_index()
    assert prices.close.index[0] == pd.Timestamp("2007-04-10")
    assert first_defined == prices.close.index[199]
    groups = log_series(outcome.result["allocation_log"])
    assert (groups.loc[: first_defined - pd.Timedelta(days=1)] == "cash").all()
    assert (groups.loc[first_defined:] == "bonds").any()


# --- evaluation frequency and signal delay (SPEC §8.1) ----------------------------------------


@pytest.fixture(scope="module")
def dual_momentum():
    document = examples()["dual_momentum_month_end"]
    return document, {engine: run(document, engine=engine) for engine in ENGINE_NAMES}


ENGINE_NAMES = ("vectorbt", "backtrader")


def test_the_dual_momentum_example_switches_a_day_after_month_ends_on_both_engines(dual_momentum):
    document, runs = dual_momentum
    vectorbt, backtrader = runs["vectorbt"], runs["backtrader"]
    result = vectorbt.result
    assert result["is_valid"] is True and result["errors"] == []
    groups = log_series(result["allocation_log"])
    assert groups.index[0] == pd.Timestamp("2005-01-03")
    assert set(groups) == {"us_stocks", "international_stocks", "bonds"}
    # Each switch is the bar after a month's last trading day (evaluated there, traded a day on).
    index = groups.index
    switches = index[1:][groups.to_numpy()[1:] != groups.to_numpy()[:-1]]
    assert 5 < len(switches) < 100
    positions = index.get_indexer(switches)
    previous = index[positions - 1]
    assert all(day.month != before.month for day, before in zip(switches, previous, strict=True))
    # Parity: the same equity curve and the same trades on both engines.
    np.testing.assert_allclose(backtrader.equity, vectorbt.equity, rtol=1e-9, atol=0)
    pd.testing.assert_frame_equal(
        backtrader.trades[["symbol", "side", "entry_date", "exit_date"]],
        vectorbt.trades[["symbol", "side", "entry_date", "exit_date"]],
    )
    assert backtrader.result["allocation_log"] == result["allocation_log"]
    # Fewer switches than the same rules evaluated every day.
    daily = {**document, "config": {**document["config"], "evaluation_frequency": "daily"}}
    daily_groups = run({**daily, "config": {**daily["config"], "signal_delay": 0}}).groups
    assert (daily_groups != daily_groups.shift()).sum() > len(switches) + 1


def test_allocation_log_shows_the_group_held_a_delay_later(dual_momentum):
    document, runs = dual_momentum
    undelayed = run({**document, "config": {**document["config"], "signal_delay": 0}})
    delayed = log_series(runs["vectorbt"].result["allocation_log"])
    held = log_series(undelayed.result["allocation_log"])
    np.testing.assert_array_equal(delayed.to_numpy()[1:], held.to_numpy()[:-1])
    # The trades follow the log: every buy of a group's symbol is on a bar that holds its group.
    orders = runs["vectorbt"].orders
    buys = orders[orders["side"] == "buy"]
    group_of = {"SPY": "us_stocks", "EFA": "international_stocks", "AGG": "bonds"}
    for _, order in buys.iterrows():
        assert delayed[order["date"]] == group_of[order["symbol"]]

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from metrics.calculations import compute_metrics, returns_from_equity
from metrics.jsonsafe import clean_number, iso_date, json_safe
from metrics.presenters import (
    V1_FLAT_KEYS,
    V1_FLOW_KEYS,
    V1_METRIC_HIGHER_IS_BETTER,
    backfolio_metrics,
    results_api_equity_curve,
    results_api_results,
    results_api_trades,
    v1_row_metrics,
    v1_structured,
)
from tests.metrics.conftest import INITIAL_CAPITAL

# The v1 contract's "Flat key | Structured path" table, verbatim.
CONTRACT_TABLE = {
    "total_return": "total_return",
    "bars_in_market": "bars_in_market",
    "perf_cagr": "performance.cagr",
    "perf_sharpe_ratio": "performance.sharpe_ratio",
    "perf_sortino_ratio": "performance.sortino_ratio",
    "perf_calmar_ratio": "performance.calmar_ratio",
    "risk_max_drawdown": "risk.max_drawdown",
    "risk_max_drawdown_duration": "risk.max_drawdown_duration",
    "risk_var_95": "risk.var_95",
    "risk_cvar_95": "risk.cvar_95",
    "risk_var_99": "risk.var_99",
    "risk_cvar_99": "risk.cvar_99",
    "risk_volatility_annualised": "risk.volatility_annualised",
    "trade_total_trades": "trading.total_trades",
    "trade_win_rate": "trading.win_rate",
    "trade_profit_factor": "trading.profit_factor",
    "trade_avg_win": "trading.avg_win",
    "trade_avg_loss": "trading.avg_loss",
    "trade_expectancy": "trading.expectancy",
    "trade_turnover_annualised": "trading.turnover_annualised",
}


@pytest.fixture
def spy_metrics(buy_and_hold_spy) -> dict:
    trades = pd.DataFrame({"pnl": [120.0, -40.0, 15.0]})
    positions = pd.Series(1.0, index=buy_and_hold_spy.index)
    return compute_metrics(
        buy_and_hold_spy, initial_capital=INITIAL_CAPITAL, trades=trades, positions=positions
    )


def test_v1_flat_keys_and_units(spy_metrics):
    flat = v1_row_metrics(spy_metrics)
    assert tuple(flat) == V1_FLAT_KEYS
    assert set(CONTRACT_TABLE) | {"final_value", "metrics_spec_version"} == set(flat)
    assert flat["total_return"] == spy_metrics["total_return"]
    assert flat["perf_cagr"] == spy_metrics["cagr"]
    assert flat["perf_sharpe_ratio"] == spy_metrics["sharpe_ratio"]
    assert flat["risk_volatility_annualised"] == spy_metrics["volatility_annualised"]
    # Losses as positive magnitudes, so that "lower is better" holds.
    assert flat["risk_max_drawdown"] == -spy_metrics["max_drawdown"] > 0.5
    for level in ("95", "99"):
        assert flat[f"risk_var_{level}"] == -spy_metrics[f"var_{level}"] > 0
        assert flat[f"risk_cvar_{level}"] == -spy_metrics[f"cvar_{level}"] > 0
    assert flat["risk_cvar_99"] > flat["risk_var_99"] > flat["risk_var_95"]
    assert flat["risk_max_drawdown_duration"] == spy_metrics["max_drawdown_duration"]
    assert flat["trade_avg_loss"] == -40.0
    assert flat["trade_total_trades"] == 3
    assert flat["bars_in_market"] == spy_metrics["n_bars"]
    assert flat["metrics_spec_version"] == "1.0"
    json.dumps(flat, allow_nan=False)


def test_v1_flat_no_drawdown_is_zero_not_negative_zero():
    index = pd.bdate_range("2024-01-01", periods=5)
    equity = pd.Series([10_000.0, 10_100, 10_200, 10_300, 10_400], index=index)
    flat = v1_row_metrics(compute_metrics(equity, initial_capital=10_000))
    assert flat["risk_max_drawdown"] == 0.0
    assert str(flat["risk_max_drawdown"]) == "0.0"
    assert flat["perf_calmar_ratio"] is None


def test_v1_structured_follows_the_contract_table(spy_metrics):
    flat = v1_row_metrics(spy_metrics)
    structured = v1_structured(flat)
    assert set(structured) == {"total_return", "bars_in_market", "performance", "risk", "trading"}
    for flat_key, path in CONTRACT_TABLE.items():
        node = structured
        for part in path.split("."):
            node = node[part]
        assert node == flat[flat_key], flat_key
    leaves = 2 + sum(len(structured[group]) for group in ("performance", "risk", "trading"))
    assert leaves == len(CONTRACT_TABLE)


def test_v1_structured_of_a_partial_dict_has_nulls():
    structured = v1_structured({"total_return": 0.1, "perf_cagr": float("nan")})
    assert structured["total_return"] == 0.1
    assert structured["performance"]["cagr"] is None
    assert structured["risk"]["max_drawdown"] is None


def test_v1_directions_hold_the_contracts_sets_and_every_numeric_flat_key():
    higher = {key for key, value in V1_METRIC_HIGHER_IS_BETTER.items() if value}
    lower = {key for key, value in V1_METRIC_HIGHER_IS_BETTER.items() if not value}
    assert {
        "perf_cagr",
        "perf_sharpe_ratio",
        "perf_sortino_ratio",
        "perf_calmar_ratio",
        "total_return",
        "trade_win_rate",
        "trade_profit_factor",
        "trade_expectancy",
        "bars_in_market",
    } <= higher
    assert {
        "risk_max_drawdown",
        "risk_max_drawdown_duration",
        "risk_var_95",
        "risk_cvar_95",
        "risk_var_99",
        "risk_cvar_99",
        "risk_volatility_annualised",
    } <= lower
    numeric_flat_keys = set(V1_FLAT_KEYS) - {"metrics_spec_version"}
    assert set(V1_METRIC_HIGHER_IS_BETTER) == numeric_flat_keys


def _with_flows(metrics: dict, **flows) -> dict:
    return {
        **metrics,
        "total_contributions": 1500.0,
        "total_withdrawals": 0.0,
        "money_weighted_return": 0.0731,
        **flows,
    }


def test_flow_metrics_appear_only_for_runs_with_cash_flows(spy_metrics):
    assert not set(V1_FLOW_KEYS) & set(v1_row_metrics(spy_metrics))
    flat = v1_row_metrics(_with_flows(spy_metrics))
    assert tuple(flat) == (*V1_FLAT_KEYS, *V1_FLOW_KEYS)
    # The core's units: fractions and currency, withdrawals positive.
    assert (flat["total_contributions"], flat["total_withdrawals"]) == (1500.0, 0.0)
    assert flat["money_weighted_return"] == 0.0731
    assert (
        v1_row_metrics(_with_flows(spy_metrics, money_weighted_return=None))[
            "money_weighted_return"
        ]
        is None
    )
    block = backfolio_metrics(_with_flows(spy_metrics), np.array([0.01, -0.01]))
    assert list(block)[-3:] == list(V1_FLOW_KEYS)
    assert "money_weighted_return" not in backfolio_metrics(spy_metrics, np.array([0.01]))


def test_results_api_shows_flows_in_its_units(buy_and_hold_spy, spy_metrics):
    plain = results_api_results(spy_metrics, None, buy_and_hold_spy, INITIAL_CAPITAL)
    assert not {"totalContributions", "totalWithdrawals", "moneyWeightedReturn"} & set(plain)
    flowing = _with_flows(spy_metrics, total_withdrawals=250.456, money_weighted_return=0.07315)
    results = results_api_results(flowing, None, buy_and_hold_spy, INITIAL_CAPITAL)
    assert results["totalContributions"] == 1500.0
    assert results["totalWithdrawals"] == 250.46
    assert results["moneyWeightedReturn"] == 7.32  # percent
    # With flows E_n/C − 1 counts the money added: the return is the time-weighted one.
    assert results["returnOnInvestment"] == round(spy_metrics["total_return"] * 100, 2)
    flowing["total_return"] = 0.5
    results = results_api_results(flowing, None, buy_and_hold_spy, INITIAL_CAPITAL)
    assert results["returnOnInvestment"] == 50.0


def test_backfolio_metrics(sixty_forty_daily):
    metrics = compute_metrics(sixty_forty_daily, initial_capital=INITIAL_CAPITAL)
    returns = returns_from_equity(sixty_forty_daily, INITIAL_CAPITAL)
    block = backfolio_metrics(metrics, returns)
    assert list(block) == [
        "final_value",
        "cagr",
        "cumulative_return",
        "annualized_return",
        "volatility",
        "sharpe_ratio",
        "max_drawdown",
        "sortino_ratio",
        "calmar_ratio",
        "win_rate",
        "total_return",
    ]
    assert block["final_value"] == sixty_forty_daily.iloc[-1]
    assert block["cumulative_return"] == block["total_return"] == metrics["total_return"]
    assert block["annualized_return"] == block["cagr"] == metrics["cagr"]
    assert block["volatility"] == metrics["volatility_annualised"]
    assert block["max_drawdown"] == metrics["max_drawdown"] < 0
    assert block["win_rate"] == pytest.approx((returns > 0).sum() / len(returns), abs=1e-12)
    assert 0.5 < block["win_rate"] < 0.6


def contract_example_trades() -> pd.DataFrame:
    """The results contract's example: 28 winners (18,000) and 17 losers (3,000), 180 minutes."""
    # Largest win 2,500 and largest loss 500, as in the example; the rest share the totals.
    pnls = [2_500.0] + [15_500 / 27] * 27 + [-500.0] + [-2_500 / 16] * 16
    entries = pd.date_range("2024-01-02 10:15", periods=len(pnls), freq="D")
    return pd.DataFrame(
        {
            "symbol": "NSE:RELIANCE",
            "side": "long",
            "entry_date": entries,
            "exit_date": entries + pd.Timedelta(minutes=180),
            "entry_price": 2_500.0,
            "exit_price": 2_550.0,
            "size": 10.0,
            "pnl": pnls,
            "return_pct": 0.02,
            "exit_reason": "take_profit",
            "fees": 0.0,
        }
    )


def test_results_api_results_reproduces_the_contract_example():
    trades = contract_example_trades()
    assert trades["pnl"][trades["pnl"] > 0].sum() == pytest.approx(18_000)
    assert trades["pnl"][trades["pnl"] < 0].sum() == pytest.approx(-3_000)
    index = pd.date_range("2024-01-01", periods=3)
    equity = pd.Series([100_000.0, 110_000.0, 115_000.0], index=index)
    metrics = compute_metrics(equity, initial_capital=100_000, trades=trades)

    results = results_api_results(metrics, trades, equity, 100_000)
    assert results == {
        "totalTrades": 45,
        "winningTrades": 28,
        "losingTrades": 17,
        "totalProfit": 18_000.0,
        "totalLoss": 3_000.0,
        "netProfit": 15_000.0,
        "winRate": 62.22,
        "profitFactor": 6.0,
        "sharpeRatio": round(metrics["sharpe_ratio"], 2),
        "maxDrawdown": 0.0,
        "maxDrawdownPercent": 0.0,
        "averageWin": 642.86,
        "averageLoss": 176.47,
        "largestWin": 2_500.0,
        "largestLoss": 500.0,
        "averageTradeDuration": 180.0,
        "expectancy": 333.33,
        "returnOnInvestment": 15.0,
    }
    json.dumps(results, allow_nan=False)


def test_results_api_drawdown_in_positive_percent(buy_and_hold_spy):
    metrics = compute_metrics(buy_and_hold_spy, initial_capital=INITIAL_CAPITAL)
    results = results_api_results(metrics, None, buy_and_hold_spy, INITIAL_CAPITAL)
    assert results["maxDrawdown"] == round(-metrics["max_drawdown"] * 100, 2) > 50
    assert results["maxDrawdownPercent"] == results["maxDrawdown"]
    assert results["returnOnInvestment"] == round(metrics["total_return"] * 100, 2)
    assert results["totalTrades"] == 0
    assert results["winRate"] is None
    assert results["profitFactor"] is None
    assert results["averageTradeDuration"] is None
    assert results["netProfit"] == 0.0


def test_results_api_equity_curve_and_trades():
    index = pd.date_range("2024-01-01", periods=2)
    curve = results_api_equity_curve(pd.Series([100_000.0, 101_500.123], index=index))
    assert curve == [
        {"date": "2024-01-01", "balance": 100_000.0},
        {"date": "2024-01-02", "balance": 101_500.12},
    ]
    trades = results_api_trades(contract_example_trades().head(1))
    assert trades == [
        {
            "symbol": "NSE:RELIANCE",
            "entryTime": "2024-01-02T10:15:00Z",
            "entryPrice": 2_500.0,
            "exitTime": "2024-01-02T13:15:00Z",
            "exitPrice": 2_550.0,
            "quantity": 10.0,
            "side": "long",
            "profit": 2_500.0,
            "profitPercent": 2.0,
            "exitReason": "take_profit",
        }
    ]
    assert results_api_trades(None) == []


def test_json_safe_converts_everything_nested():
    value = {
        "nan": np.float64("nan"),
        "inf": float("inf"),
        "neg_inf": -np.inf,
        "int": np.int64(3),
        "bool": np.bool_(True),
        "float": np.float32(0.5),
        "stamp": pd.Timestamp("2024-03-01"),
        "stamp_with_time": pd.Timestamp("2024-03-01 09:30"),
        "date": dt.date(2024, 3, 1),
        "nat": pd.NaT,
        "na": pd.NA,
        "array": np.array([1.0, np.nan]),
        "series": pd.Series([1.5, np.inf], index=pd.to_datetime(["2024-01-01", "2024-01-02"])),
        "frame": pd.DataFrame({"a": [1, 2], "b": [np.nan, 2.5]}),
        "tuple": (np.int32(1), None),
        pd.Timestamp("2024-01-05"): "timestamp key",
    }
    safe = json_safe(value)
    assert safe == {
        "nan": None,
        "inf": None,
        "neg_inf": None,
        "int": 3,
        "bool": True,
        "float": 0.5,
        "stamp": "2024-03-01",
        "stamp_with_time": "2024-03-01T09:30:00",
        "date": "2024-03-01",
        "nat": None,
        "na": None,
        "array": [1.0, None],
        "series": {"2024-01-01": 1.5, "2024-01-02": None},
        "frame": [{"a": 1, "b": None}, {"a": 2, "b": 2.5}],
        "tuple": [1, None],
        "2024-01-05": "timestamp key",
    }
    json.dumps(safe, allow_nan=False)
    assert type(safe["int"]) is int
    assert type(safe["float"]) is float


def test_clean_number_and_iso_date():
    assert clean_number(np.float64(1.25)) == 1.25
    assert clean_number(float("nan")) is None
    assert clean_number(np.inf) is None
    assert clean_number(None) is None
    assert iso_date(pd.Timestamp("2020-02-19")) == "2020-02-19"
    assert iso_date(None) is None

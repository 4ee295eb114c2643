"""Each contract's keys and units for the one set of metrics (SPEC §5 "Presentations").

`compute_metrics` returns fractions, with drawdown/VaR/CVaR as (negative) returns. The three
contracts show them differently; the conversions live here and nowhere else:

- v1 resource API: flat prefixed keys, fractions, drawdown/VaR/CVaR as positive loss magnitudes.
- Backfolio (v2): fractions, drawdown negative, `win_rate` = fraction of positive days.
- Results API: camelCase, percentages, positive losses, 2 decimals (see the section at the end).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from metrics.calculations import FLOW_METRIC_KEYS, closed_trade_pnl
from metrics.jsonsafe import clean_number, iso_date

Metrics = dict[str, Any]

# --- v1 resource API (contracts/v1-backtests-api.md) ------------------------------------------

# Flat key → (key in compute_metrics' output, factor). A factor of −1 turns a return that is
# negative for a loss into a positive loss magnitude, so that "lower is better" holds.
_V1_FLAT_SOURCES: dict[str, tuple[str, float]] = {
    "total_return": ("total_return", 1.0),
    "bars_in_market": ("bars_in_market", 1.0),
    "perf_cagr": ("cagr", 1.0),
    "perf_sharpe_ratio": ("sharpe_ratio", 1.0),
    "perf_sortino_ratio": ("sortino_ratio", 1.0),
    "perf_calmar_ratio": ("calmar_ratio", 1.0),
    "risk_max_drawdown": ("max_drawdown", -1.0),
    "risk_max_drawdown_duration": ("max_drawdown_duration", 1.0),
    "risk_var_95": ("var_95", -1.0),
    "risk_cvar_95": ("cvar_95", -1.0),
    "risk_var_99": ("var_99", -1.0),
    "risk_cvar_99": ("cvar_99", -1.0),
    "risk_volatility_annualised": ("volatility_annualised", 1.0),
    "trade_total_trades": ("total_trades", 1.0),
    "trade_win_rate": ("win_rate", 1.0),
    "trade_profit_factor": ("profit_factor", 1.0),
    "trade_avg_win": ("avg_win", 1.0),
    "trade_avg_loss": ("avg_loss", 1.0),
    "trade_expectancy": ("expectancy", 1.0),
    "trade_turnover_annualised": ("turnover_annualised", 1.0),
    "final_value": ("final_value", 1.0),
}

V1_FLAT_KEYS: tuple[str, ...] = (*_V1_FLAT_SOURCES, "metrics_spec_version")

# Shown only for a run with cash flows (SPEC §8.1), after the keys above, under the core's names
# and units: fractions (the money-weighted return annualised) and currency (both totals
# positive). They are no ranking metrics: runs without flows have none.
V1_FLOW_KEYS: tuple[str, ...] = FLOW_METRIC_KEYS

# Every numeric flat key → True when higher is better, False when lower is. The contract lists
# the first sixteen; the rest extend them once, here, for compare's `higher_is_better` and the
# sweep leaderboard's ranking alike.
V1_METRIC_HIGHER_IS_BETTER: dict[str, bool] = {
    # the contract's higher-is-better set
    "perf_cagr": True,
    "perf_sharpe_ratio": True,
    "perf_sortino_ratio": True,
    "perf_calmar_ratio": True,
    "total_return": True,
    "trade_win_rate": True,
    "trade_profit_factor": True,
    "trade_expectancy": True,
    "bars_in_market": True,
    # the contract's lower-is-better set
    "risk_max_drawdown": False,
    "risk_max_drawdown_duration": False,
    "risk_var_95": False,
    "risk_cvar_95": False,
    "risk_var_99": False,
    "risk_cvar_99": False,
    "risk_volatility_annualised": False,
    # the other numeric flat keys
    "final_value": True,  # more money at the end
    "trade_avg_win": True,  # a larger mean winning trade
    "trade_avg_loss": True,  # negative currency: closer to 0 is a smaller mean loss
    "trade_total_trades": True,  # more closed trades: more evidence behind the trade statistics
    "trade_turnover_annualised": False,  # less trading: less paid in costs
}

# Structured group → {field: flat key}, the contract's mapping table.
V1_STRUCTURE: dict[str, dict[str, str]] = {
    "performance": {
        "cagr": "perf_cagr",
        "sharpe_ratio": "perf_sharpe_ratio",
        "sortino_ratio": "perf_sortino_ratio",
        "calmar_ratio": "perf_calmar_ratio",
    },
    "risk": {
        "max_drawdown": "risk_max_drawdown",
        "max_drawdown_duration": "risk_max_drawdown_duration",
        "var_95": "risk_var_95",
        "cvar_95": "risk_cvar_95",
        "var_99": "risk_var_99",
        "cvar_99": "risk_cvar_99",
        "volatility_annualised": "risk_volatility_annualised",
    },
    "trading": {
        "total_trades": "trade_total_trades",
        "win_rate": "trade_win_rate",
        "profit_factor": "trade_profit_factor",
        "avg_win": "trade_avg_win",
        "avg_loss": "trade_avg_loss",
        "expectancy": "trade_expectancy",
        "turnover_annualised": "trade_turnover_annualised",
    },
}


def _flow_metrics(metrics: Metrics) -> dict[str, Any]:
    """``FLOW_METRIC_KEYS`` as ``metrics`` has them: none for a run without cash flows."""
    if not any(key in metrics for key in FLOW_METRIC_KEYS):
        return {}
    return {key: clean_number(metrics.get(key)) for key in FLOW_METRIC_KEYS}


# What a row of runs stores (``Backtest.metrics``) is the core's own dict: ``compute_metrics``'s
# keys in its units (a failed run: only ``error``). Metric names a v1 caller writes that are not
# the contract's (a PATCH may add any) are kept apart from them, as the caller wrote them.
ERROR_KEY = "error"
# Shown by v1 under the core's own names, as they are.
_V1_SAME_NAMES = ("metrics_spec_version", *V1_FLOW_KEYS, ERROR_KEY)


def v1_row_metrics(core: Metrics | None, extra: Metrics | None = None) -> dict[str, Any]:
    """A row's v1 flat ``metrics``: the contract's keys for the core metrics the row has (in the
    contract's order; a completed run has them all), the cash-flow
    metrics of a run with flows, its ``error`` when it failed, then the names a v1 caller added
    (``extra``) as written."""
    core = core if isinstance(core, dict) else {}
    flat: dict[str, Any] = {}
    for flat_key, (source_key, factor) in _V1_FLAT_SOURCES.items():
        if source_key in core:
            flat[flat_key] = _scaled(core[source_key], factor)
    for key in _V1_SAME_NAMES:
        if key in core:
            flat[key] = (
                core[key]
                if key in ("metrics_spec_version", ERROR_KEY)
                else (clean_number(core[key]))
            )
    flat.update(extra if isinstance(extra, dict) else {})
    return flat


def core_from_v1(flat: Metrics) -> tuple[dict[str, Any], dict[str, Any]]:
    """A v1 flat metrics map as a row keeps it: (the core metrics its contract keys name, in the
    core's units; every other name as written). ``v1_row_metrics`` of the pair is ``flat``."""
    core: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in flat.items():
        source = _V1_FLAT_SOURCES.get(key)
        if source is not None:
            core[source[0]] = _scaled(value, source[1])
        elif key in _V1_SAME_NAMES:
            core[key] = value
        else:
            extra[key] = value
    return core, extra


def v1_flat_source(flat_key: str) -> tuple[str, float] | None:
    """The ``compute_metrics`` key a numeric v1 flat key shows and the factor it is shown with
    (−1 for losses shown positive); None for a key that is not one."""
    return _V1_FLAT_SOURCES.get(flat_key)


def v1_structured(flat: Metrics) -> dict[str, Any]:
    """`structured_metrics` from a flat v1 dict; keys the dict lacks are null."""
    return {
        "total_return": clean_number(flat.get("total_return")),
        "bars_in_market": clean_number(flat.get("bars_in_market")),
        **{
            group: {field: clean_number(flat.get(flat_key)) for field, flat_key in fields.items()}
            for group, fields in V1_STRUCTURE.items()
        },
    }


def _scaled(value: Any, factor: float) -> int | float | None:
    number = clean_number(value)
    if number is None or factor == 1.0:
        return number
    if isinstance(number, int):  # a whole number written by a caller stays one (factor ±1)
        return number if factor > 0 else -number
    return number * factor + 0.0  # + 0.0 turns -0.0 into 0.0


# --- Backfolio portfolio backtest (contracts/backfolio-portfolio-backtest-v2.md) --------------


def backfolio_metrics(metrics: Metrics, returns: pd.Series | np.ndarray) -> dict[str, Any]:
    """The Backfolio `metrics` block: fractions, `max_drawdown` negative.

    `annualized_return` is the CAGR (the contract's example shows them equal) and
    `cumulative_return` the total return; `win_rate` is the fraction of bars with a positive
    return ("winning days"), over the same returns the other metrics use.
    """
    values = np.asarray(returns, dtype=float)
    values = values[np.isfinite(values)]
    positive_days = float((values > 0).mean()) if len(values) else None
    return {
        "final_value": clean_number(metrics.get("final_value")),
        "cagr": clean_number(metrics.get("cagr")),
        "cumulative_return": clean_number(metrics.get("total_return")),
        "annualized_return": clean_number(metrics.get("cagr")),
        "volatility": clean_number(metrics.get("volatility_annualised")),
        "sharpe_ratio": clean_number(metrics.get("sharpe_ratio")),
        "max_drawdown": clean_number(metrics.get("max_drawdown")),
        "sortino_ratio": clean_number(metrics.get("sortino_ratio")),
        "calmar_ratio": clean_number(metrics.get("calmar_ratio")),
        "win_rate": positive_days,
        "total_return": clean_number(metrics.get("total_return")),
        **_flow_metrics(metrics),
    }


def backfolio_run_summary(metrics: Metrics) -> dict[str, Any]:
    """A saved run's headline numbers in the Backfolio runs list, from the core metrics a row
    stores: fractions, `volatility` annualised, `max_drawdown` negative."""

    def number(key: str) -> Any:
        value = metrics.get(key)
        return None if value is None else value + 0.0 if key == "max_drawdown" else value

    return {
        "final_value": number("final_value"),
        "total_return": number("total_return"),
        "cagr": number("cagr"),
        "sharpe_ratio": number("sharpe_ratio"),
        "sortino_ratio": number("sortino_ratio"),
        "volatility": number("volatility_annualised"),
        "max_drawdown": number("max_drawdown"),  # + 0.0: never -0.0
    }


# --- Results API with auth (contracts/results-api-with-auth.md) -------------------------------
# The only place in the core that knows this contract's camelCase keys. Percentages are
# fraction × 100; losses are positive amounts; every number is rounded to 2 decimals.


def results_api_results(
    metrics: Metrics, trades: pd.DataFrame | None, equity: pd.Series, initial_capital: float
) -> dict[str, Any]:
    """The `results` block of `GET /api/backtests/{id}`.

    Trade sums come from the closed trades' pnl (so netProfit = totalProfit − totalLoss);
    `returnOnInvestment` is E_n/C − 1 in percent, or for a run with cash flows its
    time-weighted `total_return` (SPEC §8.1), which then also shows `totalContributions`,
    `totalWithdrawals` (currency, positive) and `moneyWeightedReturn` (annualised, percent);
    `averageTradeDuration` is the mean of exit − entry in minutes.
    """
    pnl = closed_trade_pnl(trades)
    wins = pnl[pnl > 0]
    losses = -pnl[pnl < 0]
    total_profit = float(wins.sum())
    total_loss = float(losses.sum())
    count = len(pnl)
    max_drawdown = clean_number(metrics.get("max_drawdown"))
    drawdown_percent = None if max_drawdown is None else -max_drawdown * 100
    final_value = float(equity.iloc[-1]) if len(equity) else None
    roi = None if final_value is None else (final_value / initial_capital - 1) * 100
    flows = _flow_metrics(metrics)
    if flows:
        total_return = clean_number(metrics.get("total_return"))
        roi = None if total_return is None else total_return * 100
    results = {
        "totalTrades": count,
        "winningTrades": len(wins),
        "losingTrades": len(losses),
        "totalProfit": total_profit,
        "totalLoss": total_loss,
        "netProfit": float(pnl.sum()),
        "winRate": len(wins) / count * 100 if count else None,
        "profitFactor": total_profit / total_loss if total_loss > 0 else None,
        "sharpeRatio": metrics.get("sharpe_ratio"),
        "maxDrawdown": drawdown_percent,
        "maxDrawdownPercent": drawdown_percent,
        "averageWin": float(wins.mean()) if len(wins) else None,
        "averageLoss": float(losses.mean()) if len(losses) else None,
        "largestWin": float(wins.max()) if len(wins) else None,
        "largestLoss": float(losses.max()) if len(losses) else None,
        "averageTradeDuration": _average_duration_minutes(trades),
        "expectancy": float(pnl.mean()) if count else None,
        "returnOnInvestment": roi,
    }
    if flows:
        mwr = flows["money_weighted_return"]
        results["totalContributions"] = flows["total_contributions"]
        results["totalWithdrawals"] = flows["total_withdrawals"]
        results["moneyWeightedReturn"] = None if mwr is None else mwr * 100
    return {key: _round2(value) for key, value in results.items()}


def results_api_equity_curve(equity: pd.Series) -> list[dict[str, Any]]:
    """`equityCurve`: one `{date, balance}` per bar, exactly the series the metrics use."""
    return [{"date": iso_date(date), "balance": _round2(value)} for date, value in equity.items()]


def results_api_trades(trades: pd.DataFrame | None) -> list[dict[str, Any]]:
    """`trades` in the contract's field names; `profitPercent` is return_pct × 100."""
    if trades is None or len(trades) == 0:
        return []
    records = []
    for trade in trades.to_dict(orient="records"):
        return_pct = clean_number(trade.get("return_pct"))
        records.append(
            {
                "symbol": trade.get("symbol"),
                "entryTime": _utc_iso(trade.get("entry_date")),
                "entryPrice": _round2(trade.get("entry_price")),
                "exitTime": _utc_iso(trade.get("exit_date")),
                "exitPrice": _round2(trade.get("exit_price")),
                "quantity": clean_number(trade.get("size")),
                "side": trade.get("side"),
                "profit": _round2(trade.get("pnl")),
                "profitPercent": None if return_pct is None else _round2(return_pct * 100),
                "exitReason": trade.get("exit_reason"),
            }
        )
    return records


def _average_duration_minutes(trades: pd.DataFrame | None) -> float | None:
    if trades is None or len(trades) == 0 or not {"entry_date", "exit_date"} <= set(trades):
        return None
    closed = trades[pd.to_numeric(trades["pnl"], errors="coerce").notna()]
    durations = pd.to_datetime(closed["exit_date"]) - pd.to_datetime(closed["entry_date"])
    minutes = durations.dt.total_seconds() / 60
    return clean_number(minutes.mean()) if minutes.notna().any() else None


def _utc_iso(value: Any) -> str | None:
    if value is None or value is pd.NaT or (isinstance(value, float) and np.isnan(value)):
        return None
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")


def _round2(value: Any) -> int | float | None:
    number = clean_number(value)
    if number is None or isinstance(number, int):
        return number
    return round(number, 2) + 0.0

"""The four example strategies of the contract, exactly as it lists them, its usage line, and a
month-end dual-momentum example of the options beyond v2.0 (SPEC §8.1).

Served by ``GET /api/v1/backtest/examples``; each one is a complete request that can be posted to
``POST /api/v1/backtest`` as it is (``name`` and ``description`` are accepted there).
"""

from __future__ import annotations

import copy
from typing import Any

USAGE = "Copy any example and POST to /api/v1/backtest to run a backtest"

_CONFIG_2020_2023 = {
    "start_date": "2020-01-01",
    "end_date": "2023-12-31",
    "initial_capital": 10000,
}


def _twelve_month_return(symbol: str) -> dict[str, Any]:
    return {"type": "RollingReturn", "symbol": symbol, "window": 252}


def _beats_both(symbol: str, others: tuple[str, str]) -> dict[str, Any]:
    return {
        "op": "and",
        "conditions": [
            {
                "left": _twelve_month_return(symbol),
                "comparison": ">",
                "right": _twelve_month_return(other),
            }
            for other in others
        ],
    }


_EXAMPLES: dict[str, dict[str, Any]] = {
    "buy_and_hold_spy": {
        "name": "Buy and Hold SPY",
        "description": "Simple buy and hold S&P 500 strategy",
        "strategy": {
            "allocations": {"stocks": {"SPY": 1.0}},
            "fallback_allocation": "stocks",
            "switching_logic": [],
        },
        "config": {**_CONFIG_2020_2023, "rebalance_frequency": "monthly"},
    },
    "leveraged_growth": {
        "name": "Leveraged Growth Strategy",
        "description": "Using leveraged ETFs for growth",
        "strategy": {
            "allocations": {"growth": {"QQQ?L=3": 0.5, "SPY?L=2": 0.5}},
            "fallback_allocation": "growth",
            "switching_logic": [],
        },
        "config": {**_CONFIG_2020_2023, "rebalance_frequency": "monthly"},
    },
    "conservative_portfolio": {
        "name": "Conservative 60/40 Portfolio",
        "description": "60% stocks, 40% bonds portfolio",
        "strategy": {
            "allocations": {"balanced": {"SPY": 0.6, "BND": 0.4}},
            "fallback_allocation": "balanced",
            "switching_logic": [],
        },
        "config": {**_CONFIG_2020_2023, "rebalance_frequency": "quarterly"},
    },
    "defensive_strategy": {
        "name": "Defensive Cash Strategy",
        "description": "Conservative strategy with cash allocation",
        "strategy": {
            "allocations": {"defensive": {"BND": 0.7, "CASH": 0.3}},
            "fallback_allocation": "defensive",
            "switching_logic": [],
        },
        "config": {**_CONFIG_2020_2023, "rebalance_frequency": "quarterly"},
    },
    "dual_momentum_month_end": {
        "name": "Dual Momentum (month-end)",
        "description": "US or international stocks, whichever returned more over 252 days if it "
        "also beat short-term Treasuries (SHY), else bonds; evaluated at each month's last "
        "trading day and traded the next day",
        "strategy": {
            "allocations": {
                "us_stocks": {"SPY": 1.0},
                "international_stocks": {"EFA": 1.0},
                "bonds": {"AGG": 1.0},
            },
            "fallback_allocation": "bonds",
            "switching_logic": [
                {
                    "name": "US stocks lead",
                    "condition": _beats_both("SPY", ("EFA", "SHY")),
                    "target_allocation": "us_stocks",
                },
                {
                    "name": "International stocks lead",
                    "condition": _beats_both("EFA", ("SPY", "SHY")),
                    "target_allocation": "international_stocks",
                },
            ],
        },
        "config": {
            "start_date": "2005-01-01",
            "end_date": "2023-12-31",
            "initial_capital": 10000,
            "rebalance_frequency": "monthly",
            "evaluation_frequency": "monthly",
            "signal_delay": 1,
        },
    },
}


def examples() -> dict[str, dict[str, Any]]:
    """A fresh copy of the examples (callers may change what they get)."""
    return copy.deepcopy(_EXAMPLES)


def examples_response() -> dict[str, Any]:
    """The body of ``GET /api/v1/backtest/examples``."""
    return {"examples": examples(), "usage": USAGE}

"""OpenAPI documentation of this contract's requests, its error envelope and its examples
(documentation only: the views validate with ``backtests.portfolio.requests``, which collects
every problem at once). The response shapes that are rendered live in ``serializers``, which
both renders and documents them."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema_field
from rest_framework import serializers

from backfolio.common.openapi import add_components, component_ref
from backfolio.common.serializers import StrictFieldsMixin
from backfolio.limits import MAX_CASHFLOW_AMOUNT
from backtests.portfolio import requests
from backtests.portfolio.examples import examples, examples_response
from strategies.language.schema import SYMBOL

TAGS = ["portfolio backtest (Backfolio v2.0)"]


def _bounded(low, high=None, *, low_exclusive=False, high_exclusive=False, **extra) -> dict:
    schema = {"type": "number", "minimum": low, "nullable": True, **extra}
    if low_exclusive:
        schema["exclusiveMinimum"] = True
    if high is not None:
        schema["maximum"] = high
        if high_exclusive:
            schema["exclusiveMaximum"] = True
    return schema


def portfolio_components() -> dict[str, dict]:
    """This contract's request documents, from the limits and defaults the parser applies
    (``backtests.portfolio.requests``). Rules across fields (the start before the end, the
    minimum position not above the maximum, the data covering the range, the weights of a group
    summing to 1) are reported as a 400 listing every problem."""
    fraction = {"low_exclusive": True, "high_exclusive": True}
    date = {"type": "string", "format": "date", "description": "YYYY-MM-DD"}
    return {
        "PortfolioStrategy": {
            "allOf": [
                component_ref("AllocationDefinition"),
                {
                    "type": "object",
                    "properties": {
                        "allocations": {"maxProperties": requests.MAX_ALLOCATION_GROUPS},
                        "switching_logic": {"maxItems": requests.MAX_SWITCHING_RULES},
                    },
                },
            ],
            "description": f"At most {requests.MAX_ALLOCATION_GROUPS} groups, "
            f"{requests.MAX_SYMBOLS} symbols and {requests.MAX_SWITCHING_RULES} rules.",
        },
        "PortfolioConfig": {
            "type": "object",
            "properties": {
                "start_date": date,
                "end_date": {**date, "description": "YYYY-MM-DD, after start_date"},
                "initial_capital": _bounded(
                    0, low_exclusive=True, default=requests.DEFAULT_INITIAL_CAPITAL
                ),
                "rebalance_frequency": {
                    "type": "string",
                    "enum": list(requests.REBALANCE_FREQUENCIES),
                    "nullable": True,
                    "default": requests.DEFAULT_REBALANCE_FREQUENCY,
                },
                "base_commission": _bounded(
                    0, requests.MAX_COMMISSION, default=requests.DEFAULT_COMMISSION
                ),
                "enable_risk_management": {"type": "boolean", "nullable": True, "default": False},
                "stop_loss": _bounded(0, 1, **fraction),
                "take_profit": _bounded(0, low_exclusive=True),
                "trailing_stop": _bounded(0, 1, **fraction),
                "max_drawdown_limit": _bounded(0, 1, **fraction),
                "volatility_exit_threshold": _bounded(0, low_exclusive=True),
                "target_volatility": _bounded(0, low_exclusive=True),
                "max_position_size": _bounded(
                    0, 1, low_exclusive=True, default=requests.DEFAULT_MAX_POSITION_SIZE
                ),
                "min_position_size": _bounded(0, 1, default=requests.DEFAULT_MIN_POSITION_SIZE),
                "engine": {
                    "type": "string",
                    "enum": list(requests.ENGINES),
                    "nullable": True,
                    "default": requests.DEFAULT_ENGINE,
                },
                "benchmark": {**SYMBOL, "nullable": True, "default": requests.DEFAULT_BENCHMARK},
                "price_adjustment": {
                    "type": "string",
                    "enum": list(requests.PRICE_ADJUSTMENTS),
                    "nullable": True,
                    "default": requests.DEFAULT_PRICE_ADJUSTMENT,
                },
                "evaluation_frequency": {
                    "type": "string",
                    "enum": list(requests.EVALUATION_FREQUENCIES),
                    "nullable": True,
                    "default": requests.DEFAULT_EVALUATION_FREQUENCY,
                    "description": "When switching rules are evaluated: every bar, or the first "
                    "bar and the last trading day of each period (SPEC §8.1).",
                },
                "signal_delay": {
                    "type": "integer",
                    "minimum": 0,
                    "maximum": requests.MAX_ALLOCATION_SIGNAL_DELAY,
                    "nullable": True,
                    "default": requests.DEFAULT_SIGNAL_DELAY,
                    "description": "Bars between an evaluation's close and the trades it decides.",
                },
                "cashflow_amount": {
                    "type": "number",
                    "minimum": -MAX_CASHFLOW_AMOUNT,
                    "maximum": MAX_CASHFLOW_AMOUNT,
                    "nullable": True,
                    "description": "Per period: positive a contribution, negative a withdrawal "
                    "(not 0); needs cashflow_frequency. Traded into the current target weights "
                    "(kept in CASH after a risk exit).",
                },
                "cashflow_frequency": {
                    "type": "string",
                    "enum": list(requests.CASHFLOW_FREQUENCIES),
                    "nullable": True,
                    "description": "Flows at the first trading day of each period after the "
                    "first bar; needs cashflow_amount.",
                },
            },
            "required": ["start_date", "end_date"],
            "additionalProperties": False,
        },
    }


def add_portfolio_components(result, generator, request, public):
    """drf-spectacular postprocessing hook: ``PortfolioStrategy`` and ``PortfolioConfig``."""
    return add_components(result, portfolio_components())


@extend_schema_field(component_ref("PortfolioStrategy"))
class PortfolioStrategyField(serializers.JSONField):
    pass


@extend_schema_field(component_ref("PortfolioConfig"))
class PortfolioConfigField(serializers.JSONField):
    pass


class PortfolioBacktestRequestSchema(StrictFieldsMixin, serializers.Serializer):
    strategy = PortfolioStrategyField()
    config = PortfolioConfigField()
    name = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    description = serializers.CharField(required=False, allow_null=True, allow_blank=True)


class PortfolioErrorSchema(serializers.Serializer):
    success = serializers.BooleanField(default=False)
    error = serializers.CharField()
    warnings = serializers.ListField(child=serializers.CharField())
    errors = serializers.ListField(child=serializers.CharField(), required=False)


class PortfolioExamplesSchema(serializers.Serializer):
    examples = serializers.JSONField()
    usage = serializers.CharField()


REQUEST_EXAMPLES = [
    OpenApiExample(
        "Simple buy & hold with cash",
        value={
            "strategy": {
                "allocations": {"growth": {"SPY": 0.6, "QQQ": 0.3, "CASH": 0.1}},
                "fallback_allocation": "growth",
                "switching_logic": [],
            },
            "config": {
                "start_date": "2020-01-01",
                "end_date": "2023-12-31",
                "initial_capital": 10000,
                "rebalance_frequency": "monthly",
                "base_commission": 0.0035,
            },
        },
        request_only=True,
    ),
    OpenApiExample(
        "Tactical switch on a composite condition",
        value={
            "strategy": {
                "allocations": {
                    "GROWTH": {"QQQ?L=3": 1.0},
                    "DEFENSIVE": {"SPY": 0.7, "CASH": 0.3},
                },
                "fallback_allocation": "DEFENSIVE",
                "switching_logic": [
                    {
                        "name": "Trend and momentum",
                        "condition": {
                            "op": "and",
                            "conditions": [
                                {
                                    "left": {"type": "Momentum", "symbol": "SPY", "window": 120},
                                    "comparison": ">",
                                    "right": {"type": "constant", "value": 0.0},
                                },
                                {
                                    "left": {"type": "Close", "symbol": "SPY"},
                                    "comparison": ">",
                                    "right": {"type": "SMA", "symbol": "SPY", "window": 200},
                                },
                            ],
                        },
                        "target_allocation": "GROWTH",
                    }
                ],
            },
            "config": {
                "start_date": "2020-01-01",
                "end_date": "2023-12-31",
                "initial_capital": 10000,
                "rebalance_frequency": "monthly",
            },
        },
        request_only=True,
    ),
    *[
        OpenApiExample(f"Example: {example['name']}", value=example, request_only=True)
        for example in examples().values()
    ],
]

ERROR_EXAMPLE = OpenApiExample(
    "Every problem at once",
    value={
        "success": False,
        "error": "Backtest failed",
        "warnings": [
            "Missing required field: fallback_allocation",
            "Allocation 'growth' weights sum to 1.05, not 1.0",
            "Symbol XYZ data not available for requested date range 2020-01-01 to 2023-12-31 "
            "(no data for XYZ; available symbols: AAPL, AGG, …)",
        ],
        "errors": [
            "Missing required field: fallback_allocation",
            "Allocation 'growth' weights sum to 1.05, not 1.0",
            "Symbol XYZ data not available for requested date range 2020-01-01 to 2023-12-31 "
            "(no data for XYZ; available symbols: AAPL, AGG, …)",
        ],
    },
    response_only=True,
    status_codes=["400"],
)

INTERNAL_ERROR_EXAMPLE = OpenApiExample(
    "A bug on our side",
    value={
        "success": False,
        "error": "Internal server error during backtest execution",
        "warnings": [],
    },
    response_only=True,
    status_codes=["500"],
)

SUCCESS_EXAMPLE = OpenApiExample(
    "A completed run (logs shortened)",
    value={
        "success": True,
        "backtest_id": "5f0c7c7e-2b7e-4d55-9d3e-0f1f6f0b3a11",
        "result": {
            "is_valid": True,
            "validation_score": 1.0,
            "metrics": {
                "final_value": 14111.12,
                "cagr": 0.0868,
                "cumulative_return": 0.4111,
                "annualized_return": 0.0868,
                "volatility": 0.3231,
                "sharpe_ratio": 0.2685,
                "max_drawdown": -0.4313,
                "sortino_ratio": 0.35,
                "calmar_ratio": 0.2,
                "win_rate": 0.52,
                "total_return": 0.4111,
            },
            "portfolio_log": {"2020-01-02": 9965.0, "2020-01-03": 9902.31},
            "allocation_log": {"2020-01-02": "growth", "2020-01-03": "growth"},
            "returns_log": {"2020-01-02": -0.0035, "2020-01-03": -0.00629},
            "allocation_summary": [
                {
                    "allocation": "growth",
                    "days": 1006,
                    "avg_daily_return": 0.0004,
                    "total_return": 0.4111,
                }
            ],
            "risk_metrics": {
                "var_95": -0.0234,
                "cvar_95": -0.0312,
                "var_99": -0.0345,
                "cvar_99": -0.0421,
                "skewness": -0.15,
                "kurtosis": 3.2,
                "max_consecutive_losses": 5,
                "volatility_clustering": 0.042,
            },
            "benchmark_comparison": {"SPY": {"correlation": 0.85, "beta": 1.12}},
            "transaction_analysis": {"total_transaction_costs": 125.43, "total_trades": 48},
            "drawdown_analysis": {"summary": {"max_drawdown": -0.4313}, "periods": []},
            "allocation_efficiency": {"allocation_changes": 0, "switching_frequency": 0.0},
            "rolling_metrics": {
                "2020-04-01": {
                    "rolling_sharpe": 0.45,
                    "rolling_sortino": 0.62,
                    "rolling_volatility": 0.28,
                }
            },
            "correlation_matrix": {
                "SPY": {"SPY": 1.0, "QQQ": 0.82},
                "QQQ": {"SPY": 0.82, "QQQ": 1.0},
            },
            "risk_contribution": {"SPY": 0.55, "QQQ": 0.45},
            "data_quality": {
                "total_symbols": 2,
                "date_range_days": 1006,
                "start_date": "2020-01-02",
                "end_date": "2023-12-29",
                "missing_data_issues": [],
                "data_completeness": {"SPY": 1.0, "QQQ": 1.0},
            },
            "rebalancing_frequency": "monthly",
            "execution_time": 0.031,
            "warnings": [],
            "errors": [],
            "chart_data": {"dates": ["2020-01-02", "2020-01-03"], "values": [9965.0, 9902.31]},
        },
    },
    response_only=True,
    status_codes=["200"],
)

EXAMPLES_EXAMPLE = OpenApiExample(
    "The contract's four examples and a month-end dual momentum",
    value=examples_response(),
    response_only=True,
)

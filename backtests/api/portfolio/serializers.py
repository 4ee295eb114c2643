"""The Backfolio contract's response shapes: each serializer renders its shape and documents it.

A run's ``result`` block is built by the pure core (``backtests.portfolio.runner``) and saved as
the run's report; ``PortfolioBacktestResponseSchema`` renders it in the run endpoint's envelope,
for a new run and for a saved one alike, and its declared fields are what the OpenAPI document
shows. The blocks are stored shapes (``PresentingSerializer.stored``): a report saved by an
older release reads exactly as it did then. Named ``*Schema`` as the document's components are:
generated clients keep their types.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from rest_framework import serializers

from backfolio.common.serializers import PresentingSerializer
from backtests.models import Backtest
from metrics.calculations import FLOW_METRIC_KEYS
from metrics.presenters import backfolio_run_summary


def _number(**kwargs) -> serializers.FloatField:
    return serializers.FloatField(allow_null=True, **kwargs)


def _numbers(names: str) -> dict[str, serializers.Field]:
    return {name: _number() for name in names.split()}


def _block(name: str, fields: dict[str, serializers.Field], doc: str = "") -> type:
    return type(name, (PresentingSerializer,), {"__doc__": doc, "stored": True, **fields})


PortfolioMetricsSchema = _block(
    "PortfolioMetricsSchema",
    {
        **_numbers(
            "final_value cagr cumulative_return annualized_return volatility sharpe_ratio "
            "max_drawdown sortino_ratio calmar_ratio win_rate total_return"
        ),
        **{name: _number(required=False) for name in FLOW_METRIC_KEYS},
    },
    "Fractions; `max_drawdown` is negative; `win_rate` is the fraction of positive days. With "
    "cash flows the returns are time-weighted (flows ignored) and `total_contributions`, "
    "`total_withdrawals` (positive) and `money_weighted_return` (annualised IRR) are added.",
)
AllocationSummarySchema = _block(
    "AllocationSummarySchema",
    {
        "allocation": serializers.CharField(),
        "days": serializers.IntegerField(),
        **_numbers("avg_daily_return total_return"),
    },
)
RiskMetricsSchema = _block(
    "RiskMetricsSchema",
    {
        **_numbers("var_95 cvar_95 var_99 cvar_99 skewness kurtosis"),
        "max_consecutive_losses": serializers.IntegerField(),
        "volatility_clustering": _number(),
    },
)
BenchmarkComparisonSchema = _block(
    "BenchmarkComparisonSchema",
    _numbers(
        "correlation beta alpha_annualized information_ratio tracking_error up_capture "
        "down_capture benchmark_cagr excess_return_cagr"
    ),
)
TransactionAnalysisSchema = _block(
    "TransactionAnalysisSchema",
    {
        "total_transaction_costs": _number(),
        "total_trades": serializers.IntegerField(),
        **_numbers(
            "total_turnover avg_cost_per_trade cost_as_pct_of_portfolio turnover_ratio "
            "trading_frequency"
        ),
    },
)
DrawdownSummarySchema = _block(
    "DrawdownSummarySchema",
    {
        **_numbers("max_drawdown avg_drawdown"),
        "drawdown_frequency": serializers.IntegerField(),
        **_numbers("avg_drawdown_duration avg_recovery_time max_recovery_time"),
    },
)
DrawdownPeriodSchema = _block(
    "DrawdownPeriodSchema",
    {
        "start_date": serializers.DateField(),
        "end_date": serializers.DateField(),
        "recovery_date": serializers.DateField(allow_null=True),
        "max_drawdown": _number(),
        "duration_days": serializers.IntegerField(),
        "recovery_days": serializers.IntegerField(allow_null=True),
    },
)
DrawdownAnalysisSchema = _block(
    "DrawdownAnalysisSchema",
    {"summary": DrawdownSummarySchema(), "periods": DrawdownPeriodSchema(many=True)},
)
AllocationPerformanceSchema = _block(
    "AllocationPerformanceSchema", _numbers("avg_return volatility sharpe")
)
AllocationEfficiencySchema = _block(
    "AllocationEfficiencySchema",
    {
        "allocation_changes": serializers.IntegerField(),
        "switching_frequency": _number(),
        "allocation_percentages": serializers.DictField(child=_number(), help_text="group → share"),
        "allocation_performance": serializers.DictField(child=AllocationPerformanceSchema()),
    },
)
RollingMetricsSchema = _block(
    "RollingMetricsSchema", _numbers("rolling_sharpe rolling_sortino rolling_volatility")
)
DataQualitySchema = _block(
    "DataQualitySchema",
    {
        "total_symbols": serializers.IntegerField(),
        "date_range_days": serializers.IntegerField(),
        "start_date": serializers.DateField(),
        "end_date": serializers.DateField(),
        "missing_data_issues": serializers.ListField(child=serializers.CharField()),
        "data_completeness": serializers.DictField(child=_number(), help_text="symbol → fraction"),
    },
)
ChartDataSchema = _block(
    "ChartDataSchema",
    {
        "dates": serializers.ListField(child=serializers.DateField()),
        "values": serializers.ListField(child=_number()),
    },
)


class PortfolioResultSchema(PresentingSerializer):
    """Every block of a run's analysis (conventions: ``metrics.analytics``)."""

    # Values: the ``result`` block ``backtests.portfolio.runner.run_portfolio`` builds, as it was
    # saved with the run (a run saved before a block or key existed reads without it).
    stored = True

    is_valid = serializers.BooleanField()
    validation_score = serializers.FloatField()
    metrics = PortfolioMetricsSchema()
    portfolio_log = serializers.DictField(child=_number(), help_text="date → portfolio value")
    allocation_log = serializers.DictField(
        child=serializers.CharField(), help_text="date → allocation group held"
    )
    returns_log = serializers.DictField(child=_number(), help_text="date → daily return")
    allocation_summary = AllocationSummarySchema(many=True)
    risk_metrics = RiskMetricsSchema()
    benchmark_comparison = serializers.DictField(
        child=BenchmarkComparisonSchema(), help_text="benchmark symbol → comparison"
    )
    transaction_analysis = TransactionAnalysisSchema()
    drawdown_analysis = DrawdownAnalysisSchema()
    allocation_efficiency = AllocationEfficiencySchema()
    rolling_metrics = serializers.DictField(
        child=RollingMetricsSchema(), help_text="date → rolling window metrics"
    )
    correlation_matrix = serializers.DictField(
        child=serializers.DictField(child=_number()), help_text="symbol → symbol → correlation"
    )
    risk_contribution = serializers.DictField(child=_number(), help_text="symbol → share")
    data_quality = DataQualitySchema()
    rebalancing_frequency = serializers.CharField()
    execution_time = serializers.FloatField(help_text="Seconds")
    warnings = serializers.ListField(child=serializers.CharField())
    errors = serializers.ListField(child=serializers.CharField())
    chart_data = ChartDataSchema()


class PortfolioBacktestResponseSchema(PresentingSerializer):
    """A run and its whole analysis: the run endpoint's answer, and a saved run's."""

    # The ``result`` block comes in the context (``result``): the run's, or the saved report.

    success = serializers.BooleanField()
    backtest_id = serializers.UUIDField()
    result = PortfolioResultSchema()

    def present(self, backtest: Backtest) -> dict[str, Any]:
        return {"success": True, "backtest_id": str(backtest.id), "result": self.context["result"]}


class PortfolioRunMetricsSchema(serializers.Serializer):
    final_value = _number()
    total_return = _number()
    cagr = _number()
    sharpe_ratio = _number()
    sortino_ratio = _number()
    volatility = _number()
    max_drawdown = _number(help_text="Negative: the worst fall from a peak.")


class PortfolioRunSummarySerializer(serializers.Serializer):
    """One saved run in the runs list: renders the row and documents the result."""

    backtest_id = serializers.UUIDField(source="id")
    name = serializers.SerializerMethodField()
    description = serializers.SerializerMethodField()
    engine = serializers.CharField()
    status = serializers.CharField()
    user_ref = serializers.CharField()
    start_date = serializers.SerializerMethodField()
    end_date = serializers.SerializerMethodField()
    rebalance_frequency = serializers.SerializerMethodField()
    created_at = serializers.SerializerMethodField()
    completed_at = serializers.SerializerMethodField()
    metrics = serializers.SerializerMethodField()

    @staticmethod
    def _request(backtest) -> dict:
        return backtest.config if isinstance(backtest.config, dict) else {}

    def _config(self, backtest) -> dict:
        return self._request(backtest).get("config", {})

    def get_name(self, backtest) -> str:
        return self._request(backtest).get("name", "")

    def get_description(self, backtest) -> str:
        return self._request(backtest).get("description", "")

    def get_start_date(self, backtest) -> dt.date | None:
        return self._config(backtest).get("start_date")

    def get_end_date(self, backtest) -> dt.date | None:
        return self._config(backtest).get("end_date")

    def get_rebalance_frequency(self, backtest) -> str | None:
        return self._config(backtest).get("rebalance_frequency")

    # The timestamps stay datetimes so that the renderer writes them as every other contract does.
    def get_created_at(self, backtest) -> dt.datetime:
        return backtest.created_at

    def get_completed_at(self, backtest) -> dt.datetime | None:
        return backtest.completed_at

    def get_metrics(self, backtest) -> PortfolioRunMetricsSchema:
        return backfolio_run_summary(backtest.metrics or {})

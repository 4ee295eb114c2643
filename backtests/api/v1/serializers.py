"""Request and response shapes of the v1 resource API (contracts/v1-backtests-api.md)."""

from __future__ import annotations

import math

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

# The v1 error body, re-exported for the v1 views that document it.
from backfolio.common.openapi import ErrorDetailSerializer as ErrorDetailSerializer
from backfolio.common.openapi import component_ref
from backfolio.common.serializers import (
    PresentingSerializer,
    StrictFieldsMixin,
    inline_choice_field,
)
from backtests.models import Backtest, Task
from backtests.services import (
    DEFAULT_COMMISSION,
    DEFAULT_ENGINE,
    DEFAULT_INITIAL_CAPITAL,
    DEFAULT_SLIPPAGE,
)
from metrics.presenters import (
    V1_FLAT_KEYS,
    V1_FLOW_KEYS,
    V1_STRUCTURE,
    v1_row_metrics,
    v1_structured,
)


class NumberField(serializers.FloatField):
    """A JSON number (not a string, not a boolean), finite."""

    default_error_messages = {"invalid": "A number is required."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        if not math.isfinite(data):
            self.fail("invalid")
        return float(data)


class JSONObjectField(serializers.JSONField):
    default_error_messages = {"not_object": "Must be a JSON object."}

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            self.fail("not_object")
        return data


BacktestStatusField = inline_choice_field(Backtest.Status.values)
TaskStatusField = inline_choice_field(Task.Status.values)
BacktestSourceField = inline_choice_field(Backtest.Source.values)


# --- responses ---------------------------------------------------------------------------------


# The metrics a run with cash flows adds (SPEC §8.1); runs without flows do not have them.
_FLOW_METRIC_SCHEMAS = {
    "total_contributions": {
        "type": "number",
        "description": "Runs with cash flows only: the contributions made.",
    },
    "total_withdrawals": {
        "type": "number",
        "description": "Runs with cash flows only: the withdrawals made, positive.",
    },
    "money_weighted_return": {
        "type": "number",
        "nullable": True,
        "description": "Runs with cash flows only: the annualised internal rate of return of "
        "the capital, the flows and final_value, a fraction (null when no rate balances them). "
        "Every other return of such a run is time-weighted.",
    },
}


@extend_schema_field(
    {
        "type": "object",
        "description": (
            "The run's flat metrics (null values where a metric is undefined); a failed run has "
            "only `error`. Metric names added by PATCH appear next to them."
        ),
        "properties": {
            **{
                key: {"type": "number", "nullable": True}
                for key in V1_FLAT_KEYS
                if key != "metrics_spec_version"
            },
            "metrics_spec_version": {"type": "string", "nullable": True},
            **{key: _FLOW_METRIC_SCHEMAS[key] for key in V1_FLOW_KEYS},
            "error": {"type": "string", "description": "Why a failed run failed."},
        },
        "additionalProperties": {"type": "number", "nullable": True},
    }
)
class V1MetricsField(serializers.JSONField):
    """A row's metrics as the v1 contract shows them (``v1_row_metrics`` of the core metrics the
    row stores and the names a PATCH added), documented from ``V1_FLAT_KEYS``."""

    def to_representation(self, value):
        if isinstance(value, Backtest):
            return v1_row_metrics(value.metrics, value.extra_metrics)
        return value


class BacktestReadSerializer(serializers.ModelSerializer):
    strategy_id = serializers.UUIDField(read_only=True, allow_null=True)
    metrics = V1MetricsField(source="*", read_only=True)
    status = BacktestStatusField(read_only=True)

    class Meta:
        model = Backtest
        fields = [
            "id",
            "strategy_id",
            "engine",
            "status",
            "initial_capital",
            "commission",
            "slippage",
            "config",
            "metrics",
            "trades_uri",
            "equity_curve_uri",
            "progress",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


def _structured_group(group: str, fields: dict[str, str]) -> serializers.Serializer:
    """One group of ``structured_metrics``, documented from the presenter's own table."""
    declared = {name: serializers.FloatField(allow_null=True) for name in fields}
    serializer_class = type(
        f"{group.title()}MetricsSerializer", (serializers.Serializer,), declared
    )
    return serializer_class()


class StructuredMetricsSerializer(serializers.Serializer):
    """``v1_structured``'s output; each group's fields come from ``V1_STRUCTURE``."""

    total_return = serializers.FloatField(allow_null=True)
    bars_in_market = serializers.IntegerField(allow_null=True)
    performance = _structured_group("performance", V1_STRUCTURE["performance"])
    risk = _structured_group("risk", V1_STRUCTURE["risk"])
    trading = _structured_group("trading", V1_STRUCTURE["trading"])


class BacktestResultSerializer(BacktestReadSerializer):
    """BacktestResultResponse: BacktestRead + ``structured_metrics`` (null unless completed)."""

    structured_metrics = serializers.SerializerMethodField()
    error = serializers.SerializerMethodField()

    class Meta(BacktestReadSerializer.Meta):
        fields = [
            *BacktestReadSerializer.Meta.fields,
            "structured_metrics",
            "started_at",
            "completed_at",
            "error",
            "fingerprint",
            "source",
        ]
        read_only_fields = fields

    def get_structured_metrics(self, backtest) -> StructuredMetricsSerializer(allow_null=True):
        if backtest.status != Backtest.Status.COMPLETED:
            return None
        return v1_structured(v1_row_metrics(backtest.metrics, backtest.extra_metrics))

    def get_error(self, backtest) -> str | None:
        return backtest.error or None


class AsyncDispatchSerializer(PresentingSerializer):
    """A run queued: the task to poll."""

    task_id = serializers.UUIDField()
    status = serializers.CharField()
    backtest_id = serializers.UUIDField()

    def present(self, task) -> dict:
        return {
            "task_id": str(task.pk),
            "status": task.status,
            "backtest_id": str(task.backtest_id),
        }


class SweepDispatchSerializer(PresentingSerializer):
    """A sweep queued: the task to poll and how many runs it has."""

    task_id = serializers.UUIDField()
    status = serializers.CharField()
    n_configs = serializers.IntegerField()

    def present(self, task) -> dict:
        return {"task_id": str(task.pk), "status": task.status, "n_configs": task.total}


class EnginesSerializer(serializers.Serializer):
    engines = serializers.ListField(child=serializers.CharField())


class EquityPointSerializer(PresentingSerializer):
    # Values: backtests.selectors.equity_curve_records, one per bar.

    date = serializers.DateField()
    equity = serializers.FloatField()


class TradeSerializer(PresentingSerializer):
    # Values: backtests.selectors.trade_records, the run's stored trade table as records: a
    # table stored by another engine or an older release keeps its own columns.
    stored = True

    symbol = serializers.CharField()
    side = serializers.CharField()
    entry_date = serializers.DateField()
    exit_date = serializers.DateField()
    entry_price = serializers.FloatField()
    exit_price = serializers.FloatField()
    size = serializers.FloatField()
    pnl = serializers.FloatField()
    return_pct = serializers.FloatField()
    exit_reason = serializers.CharField()
    fees = serializers.FloatField()


class CompareRunSerializer(PresentingSerializer):
    id = serializers.UUIDField()
    strategy_id = serializers.UUIDField(allow_null=True)
    engine = serializers.CharField()
    status = serializers.CharField()
    metrics = V1MetricsField()


class MetricDiffSerializer(PresentingSerializer):
    values = serializers.DictField(child=serializers.FloatField(allow_null=True))
    best_id = serializers.UUIDField(allow_null=True)
    higher_is_better = serializers.BooleanField()


class CompareResponseSerializer(PresentingSerializer):
    """Runs side by side, in the request's order, and per metric each run's value and the best
    run."""

    # Values: selectors.backtest_compare.

    runs = CompareRunSerializer(many=True)
    metric_diff = serializers.DictField(child=MetricDiffSerializer())


class ParitySerializer(serializers.Serializer):
    backtest_id = serializers.UUIDField()
    engine = serializers.CharField(help_text="The engine the backtest ran on.")
    other_engine = serializers.CharField(help_text="The engine it was run again on.")
    max_relative_difference = serializers.FloatField(
        help_text="max over bars of |E_other − E| / max(|E|, |E_other|); 0 when identical."
    )
    first_difference_date = serializers.DateField(
        allow_null=True,
        help_text="The first bar the curves part on (differ by more than tolerance); null when "
        "they agree.",
    )
    agree = serializers.BooleanField()
    tolerance = serializers.FloatField(help_text="Relative tolerance of agreement per bar.")
    engine_trades = serializers.IntegerField(help_text="Trades of the stored run.")
    other_engine_trades = serializers.IntegerField(help_text="Trades of the run on other_engine.")


class TaskSerializer(serializers.Serializer):
    task_id = serializers.UUIDField(source="id")
    kind = serializers.CharField()
    status = TaskStatusField()
    done = serializers.IntegerField()
    total = serializers.IntegerField()
    result = serializers.JSONField(allow_null=True)
    error = serializers.SerializerMethodField()
    backtest_id = serializers.UUIDField(allow_null=True)

    def get_error(self, task) -> str | None:
        return task.error or None


MIN_COMPARED, MAX_COMPARED = 2, 10

# --- requests ----------------------------------------------------------------------------------


@extend_schema_field(component_ref("RunConfig"))
class RunConfigField(JSONObjectField):
    """A run configuration: documented by ``RunConfig``, checked against the strategy by the
    pipeline when the run is created."""


@extend_schema_field({"type": "array", "items": component_ref("RunConfig"), "minItems": 1})
class ParamGridField(serializers.JSONField):
    """The sweep's entries: each overrides keys of ``base_config``."""


class V1BacktestCreateSerializer(StrictFieldsMixin, serializers.Serializer):
    strategy_id = serializers.UUIDField()
    engine = serializers.CharField(default=DEFAULT_ENGINE)
    initial_capital = NumberField(default=DEFAULT_INITIAL_CAPITAL)
    commission = NumberField(default=DEFAULT_COMMISSION)
    slippage = NumberField(default=DEFAULT_SLIPPAGE)
    config = RunConfigField(default=dict)


class BacktestPatchSerializer(StrictFieldsMixin, serializers.Serializer):
    status = BacktestStatusField(required=False)
    metrics = JSONObjectField(required=False)
    trades_uri = serializers.CharField(required=False, allow_null=True, max_length=500)
    equity_curve_uri = serializers.CharField(required=False, allow_null=True, max_length=500)


class ExecuteSerializer(StrictFieldsMixin, serializers.Serializer):
    async_mode = serializers.BooleanField(default=False)


@extend_schema_field(
    {
        "type": "array",
        "items": {"type": "string", "format": "uuid"},
        "minItems": MIN_COMPARED,
        "maxItems": MAX_COMPARED,
        "uniqueItems": True,
    }
)
class ComparedIdsField(serializers.ListField):
    child = serializers.UUIDField()


class CompareSerializer(StrictFieldsMixin, serializers.Serializer):
    backtest_ids = ComparedIdsField()

    def validate_backtest_ids(self, value):
        if not MIN_COMPARED <= len(value) <= MAX_COMPARED:
            raise serializers.ValidationError(
                f"Give between {MIN_COMPARED} and {MAX_COMPARED} backtest ids (got {len(value)})."
            )
        if len(set(value)) != len(value):
            raise serializers.ValidationError("Each backtest id may appear only once.")
        return value


class SweepSerializer(StrictFieldsMixin, serializers.Serializer):
    strategy_id = serializers.UUIDField()
    engine = serializers.CharField()
    base_config = RunConfigField(default=dict)
    param_grid = ParamGridField()
    rank_metric = serializers.CharField()
    initial_capital = NumberField(default=100_000.0)
    commission = NumberField(default=0.0)
    slippage = NumberField(default=0.0)

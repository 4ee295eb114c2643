"""Request and response shapes of ``/api/v1/research/walk-forward`` (SPEC §13.3)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from backfolio.common.serializers import inline_choice_field
from backtests.api.v1.serializers import (
    EquityPointSerializer,
    JSONObjectField,
    NumberField,
    StrictFieldsMixin,
)
from backtests.research.api import SkippedCombinationSerializer
from backtests.research.walk_forward.models import WalkForward, WalkForwardFold
from backtests.research.walk_forward.services import (
    DEFAULT_COST,
    DEFAULT_ENGINE,
    DEFAULT_INITIAL_CAPITAL,
)


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": {"type": "array", "items": {}},
        "description": "Dotted configuration path → list of values; their cartesian product.",
    }
)
class GridField(serializers.JSONField):
    """Checked by the service, which names the path that is wrong."""


@extend_schema_field(
    {
        "type": "array",
        "items": {"type": "object", "additionalProperties": True},
        "description": "The v1 list of override objects.",
    }
)
class ParamGridField(serializers.JSONField):
    """Checked by the service, which names the entry that is wrong."""


@extend_schema_field({"type": "integer", "minimum": 1})
class MonthsField(serializers.JSONField):
    """Checked by the service ("Must be a positive integer (months).")."""


class WalkForwardCreateSerializer(StrictFieldsMixin, serializers.Serializer):
    strategy_id = serializers.UUIDField()
    engine = serializers.CharField(default=DEFAULT_ENGINE)
    base_config = JSONObjectField()
    grid = GridField(required=False)
    param_grid = ParamGridField(required=False)
    rank_metric = serializers.CharField()
    scheme = serializers.CharField()
    in_sample_months = MonthsField()
    out_of_sample_months = MonthsField()
    initial_capital = NumberField(default=DEFAULT_INITIAL_CAPITAL)
    commission = NumberField(default=DEFAULT_COST)
    slippage = NumberField(default=DEFAULT_COST)


WalkForwardStatusField = inline_choice_field(WalkForward.Status.values)
WalkForwardSchemeField = inline_choice_field(WalkForward.Scheme.values)
FoldStatusField = inline_choice_field(WalkForwardFold.Status.values)


class WalkForwardDispatchSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    task_id = serializers.UUIDField()
    status = WalkForwardStatusField()
    n_configs = serializers.IntegerField()
    n_folds = serializers.IntegerField()
    n_skipped = serializers.IntegerField()


class WindowSerializer(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()


class FoldSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    in_sample = WindowSerializer()
    out_of_sample = WindowSerializer()
    status = FoldStatusField()
    chosen = serializers.DictField(allow_null=True)
    chosen_index = serializers.IntegerField(allow_null=True)
    in_sample_score = serializers.FloatField(allow_null=True)
    in_sample_failed = serializers.IntegerField()
    done = serializers.IntegerField(help_text="In-sample runs of this fold ended so far.")
    out_of_sample_metrics = serializers.DictField(allow_null=True)


class WalkForwardResultSerializer(serializers.Serializer):
    metrics = serializers.DictField(help_text="v1 flat metrics of the stitched equity (SPEC §5).")
    psr = serializers.FloatField(allow_null=True)
    walk_forward_efficiency = serializers.FloatField(allow_null=True)
    choice_changes = serializers.IntegerField()
    choice_change_rate = serializers.FloatField(allow_null=True)
    equity = EquityPointSerializer(many=True)


class WalkForwardSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    task_id = serializers.UUIDField(allow_null=True)
    strategy_id = serializers.UUIDField()
    engine = serializers.CharField()
    status = WalkForwardStatusField()
    done = serializers.IntegerField()
    total = serializers.IntegerField()
    scheme = serializers.CharField()
    in_sample_months = serializers.IntegerField()
    out_of_sample_months = serializers.IntegerField()
    rank_metric = serializers.CharField()
    base_config = serializers.DictField()
    grid = serializers.DictField(allow_null=True)
    initial_capital = serializers.FloatField()
    commission = serializers.FloatField()
    slippage = serializers.FloatField()
    n_configs = serializers.IntegerField()
    n_folds = serializers.IntegerField()
    n_skipped = serializers.IntegerField()
    skipped = SkippedCombinationSerializer(many=True)
    error = serializers.CharField(allow_null=True)
    folds = FoldSerializer(many=True)
    result = WalkForwardResultSerializer(allow_null=True)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)


class WalkForwardSummarySerializer(serializers.Serializer):
    """A walk-forward as the list shows it: its settings, progress and headline result; the
    folds, the stitched equity and the full metrics are in ``GET …/{id}``."""

    id = serializers.UUIDField()
    task_id = serializers.UUIDField(allow_null=True)
    strategy_id = serializers.UUIDField()
    engine = serializers.CharField()
    status = WalkForwardStatusField()
    done = serializers.IntegerField(help_text="Runs ended (in-sample and out-of-sample).")
    total = serializers.IntegerField(help_text="Runs in all: folds × (combinations + 1).")
    scheme = WalkForwardSchemeField()
    in_sample_months = serializers.IntegerField()
    out_of_sample_months = serializers.IntegerField()
    rank_metric = serializers.CharField()
    n_configs = serializers.IntegerField()
    n_folds = serializers.IntegerField()
    n_skipped = serializers.IntegerField()
    psr = serializers.FloatField(allow_null=True, help_text="Of the stitched returns.")
    walk_forward_efficiency = serializers.FloatField(allow_null=True)
    error = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)

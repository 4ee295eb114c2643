"""Strategy shapes for the v1 API (``/api/v1/strategies``)."""

from rest_framework import serializers

from backtests.api.v1.serializers import StrictFieldsMixin, inline_choice_field
from strategies.models import Strategy

StrategyStatusField = inline_choice_field(Strategy.Status.values)


class StrategyReadSerializer(serializers.ModelSerializer):
    status = StrategyStatusField(read_only=True)
    owner_id = serializers.IntegerField(read_only=True, allow_null=True)

    class Meta:
        model = Strategy
        fields = [
            "id",
            "name",
            "description",
            "kind",
            "universe",
            "timeframe",
            "definition",
            "status",
            "version",
            "owner_id",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class StrategyWriteSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    definition = serializers.JSONField(required=False, allow_null=True)
    universe = serializers.JSONField(required=False)
    status = StrategyStatusField(required=False)

    class Meta:
        model = Strategy
        fields = ["name", "description", "kind", "universe", "timeframe", "definition", "status"]

"""Strategy shapes for the v1 API (``/api/v1/strategies``)."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from backfolio.common.openapi import component_ref
from backfolio.common.serializers import StrictFieldsMixin, inline_choice_field
from strategies.language.schema import SYMBOL
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


@extend_schema_field(
    {
        "anyOf": [component_ref("SignalDefinition"), component_ref("AllocationDefinition")],
        "nullable": True,
        "description": "A definition of the strategy's kind (null: buy and hold for a signal "
        "strategy).",
    }
)
class DefinitionField(serializers.JSONField):
    """Checked by the strategy language against the strategy's kind."""


@extend_schema_field({"type": "array", "items": SYMBOL})
class UniverseField(serializers.JSONField):
    """The symbols a signal strategy trades by default."""


class StrategyWriteSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    definition = DefinitionField(required=False, allow_null=True)
    universe = UniverseField(required=False)
    status = StrategyStatusField(required=False)

    class Meta:
        model = Strategy
        fields = ["name", "description", "kind", "universe", "timeframe", "definition", "status"]

"""``GET /api/v1/backtests/{id}/robustness`` (SPEC §13.4): the query, the answers, the view.

v1 conventions: snake_case, 400 field → messages, 404 for a run the caller may not see, 409 for
a run that is not completed. 200 with the result once it is computed; 202 with ``status`` and
``done``/``total`` while a computation queued on the workers is in progress (see
``backtests.robustness`` for which runs are answered at once and which are queued).
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from backfolio.common.openapi import ErrorDetailSerializer
from backfolio.common.v1.exceptions import VALIDATION_ERRORS_SCHEMA
from backfolio.common.v1.views import ERROR_404, V1View, validated
from backtests import robustness as services
from backtests import selectors
from backtests.api.v1.views import BACKTEST_ID
from backtests.models import Robustness
from metrics.research import (
    DEFAULT_CONFIDENCE,
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    MAX_RESAMPLES,
    check_block_length,
    check_confidence,
    check_resamples,
)

MAX_SEED = 2**63 - 1  # the column is a 64-bit integer; numpy accepts any non-negative integer


def _checked(check, value):
    try:
        return check(value)
    except ValueError as error:
        raise serializers.ValidationError(str(error)) from None


class RobustnessQuerySerializer(serializers.Serializer):
    resamples = serializers.IntegerField(
        default=DEFAULT_RESAMPLES, help_text="Bootstrap resamples, 1–10,000."
    )
    confidence = serializers.FloatField(
        default=DEFAULT_CONFIDENCE, help_text="Confidence level, strictly between 0 and 1."
    )
    block_length = serializers.IntegerField(
        required=False,
        help_text=(
            "Mean block length of the stationary bootstrap (bars, a positive integer); "
            "default: arch's optimal block length for the run's returns."
        ),
    )
    seed = serializers.IntegerField(
        default=DEFAULT_SEED,
        min_value=0,
        max_value=MAX_SEED,
        help_text="Seed of the bootstrap (non-negative integer).",
    )

    def validate_resamples(self, value):
        return _checked(check_resamples, value)

    def validate_confidence(self, value):
        return _checked(check_confidence, value)

    def validate_block_length(self, value):
        return _checked(check_block_length, value)


class IntervalSerializer(serializers.Serializer):
    point = serializers.FloatField(allow_null=True, help_text="The run's own value (SPEC §5).")
    lower = serializers.FloatField(allow_null=True)
    upper = serializers.FloatField(allow_null=True)


class BootstrapMetricsSerializer(serializers.Serializer):
    cagr = IntervalSerializer()
    sharpe = IntervalSerializer(help_text="Annualised Sharpe ratio.")
    sortino = IntervalSerializer()
    volatility = IntervalSerializer(help_text="Annualised volatility.")
    max_drawdown = IntervalSerializer(help_text="Negative fraction (SPEC §5).")


class BootstrapSerializer(serializers.Serializer):
    block_length = serializers.FloatField(
        help_text="Mean block length used (bars); arch's optimal length when not given."
    )
    resamples = serializers.IntegerField()
    confidence = serializers.FloatField()
    seed = serializers.IntegerField()
    metrics = BootstrapMetricsSerializer()
    probability_positive = serializers.FloatField(
        help_text="Share of resampled Sharpe ratios above 0."
    )


class CostRowSerializer(serializers.Serializer):
    multiplier = serializers.IntegerField(
        allow_null=True,
        help_text="× the run's own costs; null when the run had none (fixed bps levels).",
    )
    commission = serializers.FloatField(help_text="Fraction of traded notional, per side.")
    slippage = serializers.FloatField(help_text="Fraction of price, per side.")
    cagr = serializers.FloatField(allow_null=True)
    sharpe = serializers.FloatField(allow_null=True)
    max_drawdown = serializers.FloatField(allow_null=True)
    total_costs = serializers.FloatField(
        allow_null=True, help_text="Commission plus slippage paid (currency)."
    )
    error = serializers.CharField(allow_null=True, help_text="Why the re-run failed, else null.")


class CostSensitivitySerializer(serializers.Serializer):
    rows = CostRowSerializer(many=True)
    breakeven_cost_bps = serializers.FloatField(
        allow_null=True,
        help_text=(
            "Per-side cost (commission = slippage = x bps) at which CAGR reaches 0, by bisection "
            "to 0.1 bps on [0, 500]; null when CAGR ≤ 0 at 0 or > 0 at 500 bps."
        ),
    )


class RobustnessSerializer(serializers.Serializer):
    psr = serializers.FloatField(allow_null=True, help_text="Probabilistic Sharpe ratio, SR* = 0.")
    bootstrap = BootstrapSerializer()
    cost_sensitivity = CostSensitivitySerializer()


class RobustnessProgressSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=[Robustness.Status.PENDING, Robustness.Status.RUNNING])
    done = serializers.IntegerField()
    total = serializers.IntegerField()


QUERY_PARAMETERS = [
    OpenApiParameter(
        "resamples",
        {"type": "integer", "minimum": 1, "maximum": MAX_RESAMPLES},
        description=f"Default {DEFAULT_RESAMPLES}.",
    ),
    OpenApiParameter(
        "confidence",
        {
            "type": "number",
            "minimum": 0,
            "exclusiveMinimum": True,
            "maximum": 1,
            "exclusiveMaximum": True,
        },
        description=f"Default {DEFAULT_CONFIDENCE}.",
    ),
    OpenApiParameter(
        "block_length", {"type": "integer", "minimum": 1}, description="Default: optimal."
    ),
    OpenApiParameter(
        "seed",
        {"type": "integer", "minimum": 0, "maximum": MAX_SEED},
        description=f"Default {DEFAULT_SEED}.",
    ),
]


class BacktestRobustnessView(V1View):
    @extend_schema(
        operation_id="backtests_robustness",
        summary="Robustness of a completed run: PSR, bootstrap intervals, cost sensitivity",
        description=(
            "Computed on the first request for a set of parameters and kept with the run: the "
            "same request gets the same answer. vectorbt runs are answered at once (200); "
            "runs on slower engines are computed on the workers: 202 with progress until then."
        ),
        parameters=[BACKTEST_ID, *QUERY_PARAMETERS],
        responses={
            200: RobustnessSerializer,
            202: OpenApiResponse(
                RobustnessProgressSerializer, description="Being computed; ask again."
            ),
            400: OpenApiResponse(
                VALIDATION_ERRORS_SCHEMA,
                description="A bad query parameter: its name → messages.",
                examples=[
                    OpenApiExample(
                        "Confidence",
                        value={
                            "confidence": ["confidence must be strictly between 0 and 1, got 1.5"]
                        },
                        response_only=True,
                    )
                ],
            ),
            404: ERROR_404,
            409: OpenApiResponse(
                ErrorDetailSerializer,
                description="The run is not completed (or its computation failed).",
            ),
        },
        tags=["v1 results"],
    )
    def get(self, request, backtest_id):
        query = validated(RobustnessQuerySerializer, request.query_params)
        backtest = selectors.backtest_get(backtest_id=backtest_id, user=request.user)
        robustness = services.robustness_get_or_start(
            backtest=backtest,
            parameters=services.RobustnessParameters(
                resamples=query["resamples"],
                confidence=query["confidence"],
                block_length=query.get("block_length"),
                seed=query["seed"],
            ),
        )
        if robustness.status == Robustness.Status.COMPLETED:
            return Response(RobustnessSerializer(robustness.result).data)
        return Response(
            RobustnessProgressSerializer(robustness).data, status=status.HTTP_202_ACCEPTED
        )

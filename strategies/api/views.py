"""``/api/v1/strategies``: CRUD; the definition is validated by the strategy language and every
problem is returned under ``definition``, keyed by its path."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response

from backfolio.common.ownership import owner_for
from backfolio.common.v1.views import (
    ERROR_404,
    ERROR_409,
    ERRORS_400,
    V1ListView,
    V1View,
    validated,
)
from strategies import selectors, services
from strategies.api.serializers import StrategyReadSerializer, StrategyWriteSerializer
from strategies.models import Strategy

STRATEGY_ID = OpenApiParameter("strategy_id", OpenApiTypes.UUID, OpenApiParameter.PATH)
EXAMPLE = {
    "name": "SPY trend",
    "kind": "signal",
    "universe": ["SPY"],
    "definition": {
        "entry": {
            "left": {"type": "Close"},
            "comparison": ">",
            "right": {"type": "SMA", "window": 200},
        },
        "exit": {
            "left": {"type": "Close"},
            "comparison": "<",
            "right": {"type": "SMA", "window": 200},
        },
    },
}


class StrategyListView(V1ListView):
    queryset = Strategy.objects.none()  # the rows' model, for the schema
    serializer_class = StrategyReadSerializer

    def get_queryset(self):
        return selectors.strategy_list(user=self.request.user)

    @extend_schema(
        operation_id="strategies_list",
        summary="List strategies",
        description="The strategies you may see, oldest first: `skip` of them, then at most "
        "`limit`.",
        responses={200: StrategyReadSerializer(many=True), 400: ERRORS_400},
        tags=["v1 strategies"],
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        operation_id="strategies_create",
        summary="Create a strategy",
        request=StrategyWriteSerializer,
        responses={201: StrategyReadSerializer, 400: ERRORS_400},
        examples=[
            OpenApiExample("Trend following", value=EXAMPLE, request_only=True),
            OpenApiExample(
                "Bad definition",
                value={"definition": {"entry.right.window": ["must be a positive integer"]}},
                response_only=True,
                status_codes=["400"],
            ),
        ],
        tags=["v1 strategies"],
    )
    def post(self, request):
        data = validated(StrategyWriteSerializer, request.data)
        strategy = services.strategy_create(owner=owner_for(request.user), **data)
        return Response(StrategyReadSerializer(strategy).data, status=status.HTTP_201_CREATED)


class StrategyDetailView(V1View):
    @extend_schema(
        operation_id="strategies_retrieve",
        parameters=[STRATEGY_ID],
        responses={200: StrategyReadSerializer, 404: ERROR_404},
        tags=["v1 strategies"],
    )
    def get(self, request, strategy_id):
        strategy = selectors.strategy_get(strategy_id=strategy_id, user=request.user)
        return Response(StrategyReadSerializer(strategy).data)

    @extend_schema(
        operation_id="strategies_partial_update",
        parameters=[STRATEGY_ID],
        request=StrategyWriteSerializer,
        responses={200: StrategyReadSerializer, 400: ERRORS_400, 404: ERROR_404},
        tags=["v1 strategies"],
    )
    def patch(self, request, strategy_id):
        strategy = selectors.strategy_get(strategy_id=strategy_id, user=request.user)
        data = validated(StrategyWriteSerializer, request.data, partial=True)
        strategy = services.strategy_update(strategy=strategy, data=data)
        return Response(StrategyReadSerializer(strategy).data)

    @extend_schema(
        operation_id="strategies_destroy",
        parameters=[STRATEGY_ID],
        description=(
            "Deletes the strategy with its backtests and sweeps. 409 while other users' runs "
            "are built on it (a shared strategy): their runs are never deleted."
        ),
        responses={204: None, 404: ERROR_404, 409: ERROR_409},
        tags=["v1 strategies"],
    )
    def delete(self, request, strategy_id):
        strategy = selectors.strategy_get(strategy_id=strategy_id, user=request.user)
        services.strategy_delete(strategy=strategy, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

"""``/api/v1/research/walk-forward``: validate, call one service or selector, shape the output.
Errors are the v1 API's (field-keyed 400, ``{"detail"}`` 404/409)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response

from backfolio.common.openapi import ErrorDetailSerializer
from backfolio.common.ownership import owner_for
from backfolio.common.renderers import FastJSONRenderer
from backfolio.common.v1.views import (
    ERROR_404,
    ERROR_409,
    ERRORS_400,
    V1ListView,
    V1View,
    validated,
)
from backtests.api.research import walk_forward_serializers as s
from backtests.api.research.walk_forward_filters import WalkForwardFilter
from backtests.api.v1.views import PARQUET_MEDIA_TYPE, ParquetRenderer, _parquet_response
from backtests.research.walk_forward import selectors, services
from backtests.research.walk_forward.models import WalkForward
from strategies.selectors import strategy_get

TAGS = ["research"]
WALK_FORWARD_ID = OpenApiParameter(
    "walk_forward_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="Walk-forward UUID."
)


class WalkForwardListView(V1ListView):
    queryset = WalkForward.objects.none()  # the rows' model, for the schema
    serializer_class = s.WalkForwardSummarySerializer
    filterset_class = WalkForwardFilter

    def get_queryset(self):
        return selectors.walk_forward_list(user=self.request.user)

    def present(self, rows):
        return self.get_serializer(
            [selectors.walk_forward_summary(row) for row in rows], many=True
        ).data

    @extend_schema(
        operation_id="research_walk_forward_list",
        summary="List walk-forward analyses",
        description=(
            "The walk-forward analyses you may see, oldest first: `skip` of them, then at most "
            "`limit`, narrowed by the filters given. Each with its progress (`done`/`total` "
            "runs) and, once completed, the PSR and walk-forward efficiency; folds and the "
            "stitched equity are in `GET …/{id}`."
        ),
        responses={200: s.WalkForwardSummarySerializer(many=True), 400: ERRORS_400},
        tags=TAGS,
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        operation_id="research_walk_forward_create",
        summary="Start a walk-forward analysis (rolling or anchored folds)",
        description=(
            "Every combination of `grid` (dotted config paths → value lists, their cartesian "
            "product) or `param_grid` runs on each fold's in-sample window; the best by "
            "`rank_metric` runs on the following out-of-sample window, starting from the "
            "previous window's final equity and ending flat. Poll `GET …/{id}`."
        ),
        request=s.WalkForwardCreateSerializer,
        responses={
            202: s.WalkForwardDispatchSerializer,
            400: ERRORS_400,
            404: OpenApiResponse(ErrorDetailSerializer, description="Unknown strategy."),
        },
        examples=[
            OpenApiExample(
                "SMA crossover, rolling 24/6 months",
                value={
                    "strategy_id": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
                    "engine": "vectorbt",
                    "base_config": {
                        "symbol": "SPY",
                        "start_date": "2010-01-01",
                        "end_date": "2019-12-31",
                        "signal_plugin_key": "sma_crossover",
                    },
                    "grid": {
                        "signal_plugin_params.fast": [10, 20, 50],
                        "signal_plugin_params.slow": [100, 150, 200],
                    },
                    "rank_metric": "perf_sharpe_ratio",
                    "scheme": "rolling",
                    "in_sample_months": 24,
                    "out_of_sample_months": 6,
                },
                request_only=True,
            ),
            OpenApiExample(
                "Span too short",
                value={
                    "base_config": {
                        "end_date": [
                            "The span 2019-01-01..2019-12-31 holds 12 whole months; one fold "
                            "needs 30 (in_sample_months + out_of_sample_months)."
                        ]
                    }
                },
                response_only=True,
                status_codes=["400"],
            ),
        ],
        tags=TAGS,
    )
    def post(self, request):
        data = validated(s.WalkForwardCreateSerializer, request.data)
        strategy = strategy_get(strategy_id=data.pop("strategy_id"), user=request.user)
        walk_forward = services.walk_forward_create(
            strategy=strategy, owner=owner_for(request.user), **data
        )
        body = {
            "id": walk_forward.pk,
            "task_id": walk_forward.task_id,
            "status": walk_forward.status,
            "n_configs": len(walk_forward.combinations),
            "n_folds": walk_forward.folds.count(),
            "n_skipped": walk_forward.n_skipped,
        }
        return Response(s.WalkForwardDispatchSerializer(body).data, status=status.HTTP_202_ACCEPTED)


class WalkForwardDetailView(V1View):
    @extend_schema(
        operation_id="research_walk_forward_retrieve",
        summary="A walk-forward analysis: progress, folds, and the result once completed",
        parameters=[WALK_FORWARD_ID],
        responses={200: s.WalkForwardSerializer, 404: ERROR_404},
        tags=TAGS,
    )
    def get(self, request, walk_forward_id):
        walk_forward = selectors.walk_forward_get(
            walk_forward_id=walk_forward_id, user=request.user
        )
        detail = selectors.walk_forward_detail(walk_forward=walk_forward)
        return Response(s.WalkForwardSerializer(detail).data)


class WalkForwardEquityParquetView(V1View):
    renderer_classes = [FastJSONRenderer, ParquetRenderer]

    @extend_schema(
        operation_id="research_walk_forward_equity_parquet",
        summary="The stitched out-of-sample equity as Parquet (date index, equity)",
        parameters=[WALK_FORWARD_ID],
        responses={
            (200, PARQUET_MEDIA_TYPE): OpenApiTypes.BINARY,
            404: ERROR_404,
            409: ERROR_409,
        },
        tags=TAGS,
    )
    def get(self, request, walk_forward_id):
        walk_forward = selectors.walk_forward_get(
            walk_forward_id=walk_forward_id, user=request.user
        )
        content = selectors.walk_forward_equity_parquet(walk_forward=walk_forward)
        return _parquet_response(content, f"walk_forward_equity_{walk_forward.pk}.parquet")

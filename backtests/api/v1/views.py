"""v1 resource API views: validate the input, call one service or selector, shape the output."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import BaseRenderer
from rest_framework.response import Response

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
from backtests import selectors, services
from backtests.api.v1 import serializers as s
from backtests.api.v1.filters import V1BacktestFilter
from backtests.engines import available_engines
from backtests.models import Backtest
from strategies.models import Strategy
from strategies.selectors import strategy_get

PARQUET_MEDIA_TYPE = "application/vnd.apache.parquet"

BACKTEST_ID = OpenApiParameter(
    "backtest_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="Backtest UUID."
)
TASK_ID = OpenApiParameter("task_id", OpenApiTypes.UUID, OpenApiParameter.PATH)

CONFIG_EXAMPLE = {
    "symbol": "SPY",
    "start_date": "2019-01-01",
    "end_date": "2020-12-31",
    "signal_plugin_key": "sma_crossover",
    "signal_plugin_params": {"fast": 20, "slow": 50},
}


def _strategy_for(strategy_id, user) -> Strategy:
    """The strategy a request names, or a 400 naming ``strategy_id``."""
    try:
        return strategy_get(strategy_id=strategy_id, user=user)
    except Strategy.DoesNotExist:
        raise ValidationError(
            {"strategy_id": [f"Strategy {strategy_id} does not exist."]}
        ) from None


class BacktestListView(V1ListView):
    queryset = Backtest.objects.none()  # the rows' model, for the schema
    serializer_class = s.BacktestReadSerializer
    filterset_class = V1BacktestFilter

    def get_queryset(self):
        return selectors.backtest_list(user=self.request.user)

    @extend_schema(
        operation_id="backtests_list",
        summary="List backtests",
        description="The backtests you may see, oldest first: `skip` of them, then at most "
        "`limit`, narrowed by the filters given.",
        responses={200: s.BacktestReadSerializer(many=True), 400: ERRORS_400},
        tags=["v1 backtests"],
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        operation_id="backtests_create",
        summary="Create a backtest (pending)",
        request=s.V1BacktestCreateSerializer,
        responses={201: s.BacktestReadSerializer, 400: ERRORS_400},
        examples=[
            OpenApiExample(
                "SMA crossover on SPY",
                value={
                    "strategy_id": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
                    "engine": "vectorbt",
                    "initial_capital": 100000,
                    "commission": 0.0005,
                    "slippage": 0.0005,
                    "config": CONFIG_EXAMPLE,
                },
                request_only=True,
            )
        ],
        tags=["v1 backtests"],
    )
    def post(self, request):
        data = validated(s.V1BacktestCreateSerializer, request.data)
        strategy = _strategy_for(data["strategy_id"], request.user)
        backtest = services.backtest_create(
            strategy=strategy,
            engine=data["engine"],
            config=data["config"],
            initial_capital=data["initial_capital"],
            commission=data["commission"],
            slippage=data["slippage"],
            owner=owner_for(request.user),
            source="v1",
        )
        return Response(s.BacktestReadSerializer(backtest).data, status=status.HTTP_201_CREATED)


class BacktestDetailView(V1View):
    @extend_schema(
        operation_id="backtests_retrieve",
        summary="Get a backtest with structured metrics",
        parameters=[BACKTEST_ID],
        responses={200: s.BacktestResultSerializer, 404: ERROR_404},
        tags=["v1 backtests"],
    )
    def get(self, request, backtest_id):
        backtest = selectors.backtest_get_fresh(backtest_id=backtest_id, user=request.user)
        return Response(s.BacktestResultSerializer(backtest).data)

    @extend_schema(
        operation_id="backtests_partial_update",
        summary="Correct a backtest (status, metrics, artifact URIs)",
        parameters=[BACKTEST_ID],
        request=s.BacktestPatchSerializer,
        responses={200: s.BacktestReadSerializer, 400: ERRORS_400, 404: ERROR_404},
        examples=[OpenApiExample("Reset", value={"status": "pending"}, request_only=True)],
        tags=["v1 backtests"],
    )
    def patch(self, request, backtest_id):
        backtest = selectors.backtest_get(backtest_id=backtest_id, user=request.user)
        data = validated(s.BacktestPatchSerializer, request.data)
        backtest = services.backtest_update(backtest=backtest, data=data)
        return Response(s.BacktestReadSerializer(backtest).data)

    @extend_schema(
        operation_id="backtests_destroy",
        summary="Delete a backtest (its artifacts stay in storage)",
        parameters=[BACKTEST_ID],
        responses={204: None, 404: ERROR_404},
        tags=["v1 backtests"],
    )
    def delete(self, request, backtest_id):
        backtest = selectors.backtest_get(backtest_id=backtest_id, user=request.user)
        services.backtest_delete(backtest=backtest)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _dispatch_async(request, backtest) -> Response:
    task = services.backtest_execute_async(backtest=backtest, owner=owner_for(request.user))
    return Response(s.AsyncDispatchSerializer(task).data, status=status.HTTP_200_OK)


class BacktestExecuteView(V1View):
    @extend_schema(
        operation_id="backtests_execute",
        summary="Execute a backtest (sync by default; async_mode queues it)",
        description=(
            'An empty body means `{"async_mode": false}`. Sync: 200 with the completed or '
            'failed result (a failed run has `status: "failed"` and `metrics.error`). '
            'Async: 200 with `{task_id, status: "PENDING", backtest_id}`; poll /api/v1/tasks/{id}.'
        ),
        parameters=[BACKTEST_ID],
        request=s.ExecuteSerializer,
        responses={
            200: PolymorphicProxySerializer(
                component_name="ExecuteResponse",
                serializers=[s.BacktestResultSerializer, s.AsyncDispatchSerializer],
                resource_type_field_name=None,
            ),
            400: ERRORS_400,
            404: ERROR_404,
            409: ERROR_409,
        },
        examples=[
            OpenApiExample("Sync", value={"async_mode": False}, request_only=True),
            OpenApiExample("Async", value={"async_mode": True}, request_only=True),
        ],
        tags=["v1 execution"],
    )
    def post(self, request, backtest_id):
        backtest = selectors.backtest_get(backtest_id=backtest_id, user=request.user)
        data = validated(s.ExecuteSerializer, request.data)
        if data["async_mode"]:
            return _dispatch_async(request, backtest)
        backtest = services.backtest_execute(backtest=backtest)
        return Response(s.BacktestResultSerializer(backtest).data)


class BacktestExecuteAsyncView(V1View):
    @extend_schema(
        operation_id="backtests_execute_async",
        summary="Queue a backtest on the workers",
        parameters=[BACKTEST_ID],
        request=None,
        responses={200: s.AsyncDispatchSerializer, 404: ERROR_404, 409: ERROR_409},
        examples=[
            OpenApiExample(
                "Queued",
                value={
                    "task_id": "9b2f6a1e-0d7c-4c8e-9a55-3e1d2f0b7c44",
                    "status": "PENDING",
                    "backtest_id": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
                },
                response_only=True,
            )
        ],
        tags=["v1 execution"],
    )
    def post(self, request, backtest_id):
        backtest = selectors.backtest_get(backtest_id=backtest_id, user=request.user)
        return _dispatch_async(request, backtest)


class ParquetRenderer(BaseRenderer):
    media_type = PARQUET_MEDIA_TYPE
    format = "parquet"
    charset = None
    render_style = "binary"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data


def _parquet_response(content: bytes, filename: str) -> HttpResponse:
    response = HttpResponse(content, content_type=PARQUET_MEDIA_TYPE)
    response["Content-Disposition"] = f"attachment; filename={filename}"
    return response


class EquityCurveView(V1View):
    @extend_schema(
        operation_id="backtests_equity_curve",
        summary="Equity curve as JSON",
        parameters=[BACKTEST_ID],
        responses={200: s.EquityPointSerializer(many=True), 404: ERROR_404, 409: ERROR_409},
        tags=["v1 results"],
    )
    def get(self, request, backtest_id):
        backtest = selectors.backtest_get(backtest_id=backtest_id, user=request.user)
        equity = selectors.backtest_equity_curve(backtest=backtest)
        return Response(
            s.EquityPointSerializer(selectors.equity_curve_records(equity), many=True).data
        )


class EquityCurveParquetView(V1View):
    renderer_classes = [FastJSONRenderer, ParquetRenderer]

    @extend_schema(
        operation_id="backtests_equity_curve_parquet",
        summary="Equity curve as Parquet (date index, equity column)",
        parameters=[BACKTEST_ID],
        responses={
            (200, PARQUET_MEDIA_TYPE): OpenApiTypes.BINARY,
            404: ERROR_404,
            409: ERROR_409,
        },
        tags=["v1 results"],
    )
    def get(self, request, backtest_id):
        backtest = selectors.backtest_get(backtest_id=backtest_id, user=request.user)
        content = selectors.backtest_equity_parquet(backtest=backtest)
        return _parquet_response(content, f"equity_{backtest.pk}.parquet")


class TradesView(V1View):
    @extend_schema(
        operation_id="backtests_trades",
        summary="Closed trades as JSON records",
        parameters=[BACKTEST_ID],
        responses={200: s.TradeSerializer(many=True), 404: ERROR_404, 409: ERROR_409},
        tags=["v1 results"],
    )
    def get(self, request, backtest_id):
        backtest = selectors.backtest_get(backtest_id=backtest_id, user=request.user)
        trades = selectors.backtest_trades(backtest=backtest)
        return Response(s.TradeSerializer(selectors.trade_records(trades), many=True).data)


class TradesParquetView(V1View):
    renderer_classes = [FastJSONRenderer, ParquetRenderer]

    @extend_schema(
        operation_id="backtests_trades_parquet",
        summary="Closed trades as Parquet (no index)",
        parameters=[BACKTEST_ID],
        responses={
            (200, PARQUET_MEDIA_TYPE): OpenApiTypes.BINARY,
            404: ERROR_404,
            409: ERROR_409,
        },
        tags=["v1 results"],
    )
    def get(self, request, backtest_id):
        backtest = selectors.backtest_get(backtest_id=backtest_id, user=request.user)
        content = selectors.backtest_trades_parquet(backtest=backtest)
        return _parquet_response(content, f"trades_{backtest.pk}.parquet")


class BacktestParityView(V1View):
    @extend_schema(
        operation_id="backtests_parity",
        summary="Run a completed backtest again on the other engine and compare",
        description=(
            "Runs the backtest's stored configuration on the other registered engine (nothing "
            "is saved) and compares its equity curve with the stored run's, bar by bar. 409 "
            "when the backtest is not completed or the other engine cannot run it."
        ),
        parameters=[BACKTEST_ID],
        request=None,
        responses={200: s.ParitySerializer, 404: ERROR_404, 409: ERROR_409},
        examples=[
            OpenApiExample(
                "The engines agree",
                value={
                    "backtest_id": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
                    "engine": "vectorbt",
                    "other_engine": "backtrader",
                    "max_relative_difference": 4.4e-16,
                    "first_difference_date": None,
                    "agree": True,
                    "tolerance": 1e-9,
                    "engine_trades": 12,
                    "other_engine_trades": 12,
                },
                response_only=True,
            )
        ],
        tags=["v1 results"],
    )
    def post(self, request, backtest_id):
        backtest = selectors.backtest_get(backtest_id=backtest_id, user=request.user)
        return Response(s.ParitySerializer(selectors.backtest_parity(backtest=backtest)).data)


class EnginesView(V1View):
    @extend_schema(
        operation_id="backtests_engines_available",
        summary="Registered engines",
        responses={200: s.EnginesSerializer},
        examples=[
            OpenApiExample(
                "Both", value={"engines": ["backtrader", "vectorbt"]}, response_only=True
            )
        ],
        tags=["v1 backtests"],
    )
    def get(self, request):
        return Response({"engines": available_engines()})


class CompareView(V1View):
    @extend_schema(
        operation_id="backtests_compare",
        summary="Compare 2–10 backtests metric by metric",
        request=s.CompareSerializer,
        responses={200: s.CompareResponseSerializer, 400: ERRORS_400, 404: ERROR_404},
        examples=[
            OpenApiExample(
                "Two runs",
                value={
                    "backtest_ids": [
                        "3fa85f64-5717-4562-b3fc-2c963f66afa6",
                        "0b9e1c1f-6a52-4d0e-9a0c-6f7f2f3b1a10",
                    ]
                },
                request_only=True,
            )
        ],
        tags=["v1 results"],
    )
    def post(self, request):
        data = validated(s.CompareSerializer, request.data)
        backtests = selectors.backtests_in_order(
            backtest_ids=data["backtest_ids"], user=request.user
        )
        compared = selectors.backtest_compare(backtests=backtests)
        return Response(s.CompareResponseSerializer(compared).data)


class SweepView(V1View):
    @extend_schema(
        operation_id="backtests_sweep",
        summary="Run a parameter grid (one child backtest per entry, in parallel)",
        request=s.SweepSerializer,
        responses={
            200: s.SweepDispatchSerializer,
            400: ERRORS_400,
            404: ERROR_404,
        },
        examples=[
            OpenApiExample(
                "SMA grid",
                value={
                    "strategy_id": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
                    "engine": "vectorbt",
                    "base_config": {
                        "symbol": "SPY",
                        "start_date": "2019-01-01",
                        "end_date": "2020-12-31",
                        "signal_plugin_key": "sma_crossover",
                    },
                    "param_grid": [
                        {"signal_plugin_params": {"fast": 10, "slow": 50}},
                        {"signal_plugin_params": {"fast": 20, "slow": 100}},
                    ],
                    "rank_metric": "perf_sharpe_ratio",
                },
                request_only=True,
            ),
            OpenApiExample(
                "Bad grid entry",
                value={"param_grid": {"1": {"stop_loss": ["Must be greater than 0."]}}},
                response_only=True,
                status_codes=["400"],
            ),
        ],
        tags=["v1 execution"],
    )
    def post(self, request):
        data = validated(s.SweepSerializer, request.data)
        strategy = strategy_get(strategy_id=data["strategy_id"], user=request.user)
        task = services.sweep_create(
            strategy=strategy,
            engine=data["engine"],
            base_config=data["base_config"],
            param_grid=data["param_grid"],
            rank_metric=data["rank_metric"],
            initial_capital=data["initial_capital"],
            commission=data["commission"],
            slippage=data["slippage"],
            owner=owner_for(request.user),
        )
        return Response(s.SweepDispatchSerializer(task).data, status=status.HTTP_200_OK)


class TaskView(V1View):
    @extend_schema(
        operation_id="tasks_retrieve",
        summary="Poll an asynchronous task",
        parameters=[TASK_ID],
        responses={200: s.TaskSerializer, 404: ERROR_404},
        examples=[
            OpenApiExample(
                "Sweep in progress",
                value={
                    "task_id": "9b2f6a1e-0d7c-4c8e-9a55-3e1d2f0b7c44",
                    "kind": "sweep",
                    "status": "PROGRESS",
                    "done": 5,
                    "total": 12,
                    "result": None,
                    "error": None,
                    "backtest_id": None,
                },
                response_only=True,
            )
        ],
        tags=["v1 tasks"],
    )
    def get(self, request, task_id):
        task = selectors.task_get(task_id=task_id, user=request.user)
        return Response(s.TaskSerializer(task).data)

"""The results API (``contracts/results-api-with-auth.md``): a caller's backtests, camelCase.

Every endpoint requires a user (Bearer token or session), whatever ``BACKFOLIO_REQUIRE_AUTH``
says: this contract documents authentication as required. Someone else's backtest is a 403 here
(the contract says so) where the v1 API answers 404.
"""

from __future__ import annotations

import re
import uuid

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import F
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from backfolio.common.ownership import visible_to
from backtests import artifacts
from backtests.models import Backtest
from strategies.models import Strategy

from . import serializers as wire
from .exceptions import (
    ResultsApiError,
    ResultsApiMixin,
    forbidden,
    not_found,
    validation_error,
)
from .throttles import BacktestCreateThrottle

TAGS = ["results API"]
DEFAULT_ENGINE = "vectorbt"

_ERRORS = {
    401: OpenApiResponse(wire.ErrorSchema, description="UNAUTHORIZED: Authentication required"),
    403: OpenApiResponse(wire.ErrorSchema, description="FORBIDDEN"),
    404: OpenApiResponse(wire.ErrorSchema, description="NOT_FOUND"),
}


class ResultsApiView(ResultsApiMixin, APIView):
    permission_classes = [IsAuthenticated]


def _parse_id(raw: str) -> uuid.UUID:
    """A malformed id names no backtest: 404, like an unknown one."""
    try:
        return uuid.UUID(str(raw))
    except ValueError as exc:
        raise not_found() from exc


def visible_backtest(user, backtest_id: str) -> Backtest:
    """The backtest, or 404 when it does not exist and 403 when ``user`` may not see it."""
    backtest = Backtest.objects.filter(pk=_parse_id(backtest_id)).first()
    if backtest is None:
        raise not_found()
    if not visible_to(Backtest.objects.filter(pk=backtest.pk), user).exists():
        raise forbidden()
    return backtest


class BacktestDetailView(ResultsApiView):
    @extend_schema(
        operation_id="results_backtest_retrieve",
        tags=TAGS,
        summary="Get a backtest's results",
        description=(
            "Completed: results, equity curve and trades. Pending or running: `progress` "
            "(0–100) and `message` (a queued run shows as `running` at 0 %). Failed: `error`."
        ),
        responses={
            200: PolymorphicProxySerializer(
                component_name="ResultsBacktest",
                serializers=[
                    wire.CompletedBacktestSchema,
                    wire.RunningBacktestSchema,
                    wire.FailedBacktestSchema,
                ],
                resource_type_field_name="status",
            ),
            **_ERRORS,
            409: OpenApiResponse(
                wire.ErrorSchema, description="CONFLICT: the run's artifacts are missing"
            ),
        },
    )
    def get(self, request, backtest_id: str):
        backtest = visible_backtest(request.user, backtest_id)
        if backtest.status == Backtest.Status.FAILED:
            return Response(wire.present_failed(backtest))
        if backtest.status != Backtest.Status.COMPLETED:
            return Response(wire.present_in_progress(backtest))
        try:
            equity = artifacts.read_equity(backtest.equity_curve_uri)
            trades = artifacts.read_trades(backtest.trades_uri) if backtest.trades_uri else None
        except artifacts.ArtifactMissing as exc:
            raise ResultsApiError(
                status_code=status.HTTP_409_CONFLICT,
                message="The results of this backtest are missing from storage; run it again",
            ) from exc
        return Response(wire.present_completed(backtest, equity=equity, trades=trades))


class BacktestListCreateView(ResultsApiView):
    def get_throttles(self):
        if self.request.method == "POST":
            return [BacktestCreateThrottle()]
        return []

    @extend_schema(
        operation_id="results_backtests_list",
        tags=TAGS,
        summary="List your backtests",
        description="Only the caller's own backtests, newest first unless `sort`/`order` say.",
        parameters=[
            OpenApiParameter("page", int, description="1-based page number (default 1)"),
            OpenApiParameter(
                "limit", int, description=f"Page size, at most {wire.MAX_PAGE_SIZE} (default 20)"
            ),
            OpenApiParameter("algorithmId", str, description="Only this algorithm's backtests"),
            OpenApiParameter("status", str, enum=["running", "completed", "failed", "pending"]),
            OpenApiParameter("sort", str, enum=list(wire.SORT_FIELDS)),
            OpenApiParameter("order", str, enum=["asc", "desc"]),
        ],
        responses={
            200: wire.BacktestPageSchema,
            400: OpenApiResponse(wire.ErrorSchema, description="VALIDATION_ERROR"),
            401: _ERRORS[401],
        },
    )
    def get(self, request):
        query = wire.BacktestListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data

        backtests = Backtest.objects.filter(owner=request.user)
        if "algorithmId" in params:
            backtests = backtests.filter(strategy_id=params["algorithmId"])
        if "status" in params:
            backtests = backtests.filter(status__in=wire.statuses_for_filter(params["status"]))

        column = F(wire.SORT_FIELDS[params["sort"]])
        descending = params["order"] == "desc"
        ordering = column.desc(nulls_last=True) if descending else column.asc(nulls_last=True)
        tiebreak = ("-created_at", "-id") if descending else ("created_at", "id")
        backtests = backtests.order_by(ordering, *tiebreak)

        page, limit = params["page"], params["limit"]
        total = backtests.count()
        rows = list(backtests[(page - 1) * limit : page * limit])
        return Response(wire.present_page(rows, page=page, limit=limit, total=total))

    @extend_schema(
        operation_id="results_backtests_create",
        tags=TAGS,
        summary="Create and start a backtest",
        description=(
            "Creates a backtest of an algorithm (a strategy id) that you own or that has no "
            "owner, and runs it asynchronously; poll `GET /api/backtests/{id}` for progress. "
            "Limited to 10 creates per minute per user."
        ),
        request=wire.BacktestCreateSerializer,
        responses={
            201: wire.CreatedBacktestSchema,
            400: OpenApiResponse(wire.ErrorSchema, description="VALIDATION_ERROR"),
            **_ERRORS,
            429: OpenApiResponse(wire.ErrorSchema, description="RATE_LIMITED"),
        },
    )
    def post(self, request):
        from backtests import services  # the v1 engineer's services own creating and queueing

        serializer = wire.BacktestCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data

        strategy = Strategy.objects.filter(pk=data["algorithmId"]).first()
        if strategy is None:
            raise not_found("Algorithm not found")
        if not visible_to(Strategy.objects.filter(pk=strategy.pk), request.user).exists():
            raise forbidden("Access denied (not your algorithm)")

        symbols = data.get("symbols") or list(strategy.universe or [])
        if not symbols:
            raise validation_error("symbols: required when the algorithm has no universe")
        config = {
            "symbols": symbols,
            "start_date": data["startDate"].isoformat(),
            "end_date": data["endDate"].isoformat(),
        }
        try:
            with transaction.atomic():
                backtest = services.backtest_create(
                    strategy=strategy,
                    engine=data.get("engine", DEFAULT_ENGINE),
                    config=config,
                    owner=request.user,
                    initial_capital=data["initialBalance"],
                    commission=data.get("commission", 0.0),
                    slippage=data.get("slippage", 0.0),
                    source=Backtest.Source.RESULTS_API,
                )
                services.backtest_execute_async(backtest=backtest)
        except DjangoValidationError as exc:
            raise validation_error(_camel_case_message(exc)) from exc
        return Response(wire.present_created(backtest), status=status.HTTP_201_CREATED)


_CAMEL_FIELDS = {
    "start_date": "startDate",
    "end_date": "endDate",
    "initial_capital": "initialBalance",
    "strategy": "algorithmId",
    "strategy_id": "algorithmId",
    "symbol": "symbols",
}


def _camel_case_message(error: DjangoValidationError) -> str:
    """A service's validation error in this contract's field names."""
    if hasattr(error, "message_dict"):
        parts = []
        for field, messages in error.message_dict.items():
            name = field.rsplit(".", 1)[-1]
            name = _CAMEL_FIELDS.get(name, name)
            text = " ".join(messages)
            parts.append(text if field == "__all__" else f"{name}: {text}")
        return "; ".join(parts)
    text = " ".join(error.messages)
    for snake in ("start_date", "end_date", "initial_capital", "strategy_id"):
        text = re.sub(rf"\b{snake}\b", _CAMEL_FIELDS[snake], text)
    return text

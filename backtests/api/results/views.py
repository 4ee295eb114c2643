"""The results API (``contracts/results-api-with-auth.md``): a caller's backtests, camelCase.

Every endpoint requires a user (Bearer token or session), whatever ``BACKFOLIO_REQUIRE_AUTH``
says: this contract documents authentication as required. Someone else's backtest is a 403 here
(the contract says so) where the v1 API answers 404.
"""

from __future__ import annotations

import uuid

from django.db import transaction
from drf_spectacular.utils import (
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from backfolio.common.errors import Conflict, InvalidInput
from backfolio.common.ownership import visible_to
from backfolio.common.pagination import CheckedListMixin
from backtests import selectors, services
from backtests.jobs import reaper
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
from .filters import ResultsBacktestFilter
from .pagination import ResultsPagination
from .throttles import BacktestCreateThrottle

TAGS = ["results API"]

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
    # A run whose worker died is failed (or re-queued) before anyone is shown it as running.
    reaper.maybe_reap()
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
                serializers={
                    "completed": wire.CompletedBacktestSchema,
                    "running": wire.RunningBacktestSchema,
                    "failed": wire.FailedBacktestSchema,
                },
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
            return Response(wire.FailedBacktestSchema(backtest).data)
        if backtest.status != Backtest.Status.COMPLETED:
            return Response(wire.RunningBacktestSchema(backtest).data)
        try:
            equity = selectors.backtest_equity_curve(backtest=backtest)
            trades = selectors.backtest_trades(backtest=backtest)
        except Conflict as exc:
            raise ResultsApiError(
                status_code=status.HTTP_409_CONFLICT,
                message="The results of this backtest are missing from storage; run it again",
            ) from exc
        context = {"equity": equity, "trades": trades}
        return Response(wire.CompletedBacktestSchema(backtest, context=context).data)


class BacktestListCreateView(CheckedListMixin, ResultsApiMixin, GenericAPIView):
    permission_classes = [IsAuthenticated]
    queryset = Backtest.objects.none()  # the rows' model, for the schema
    filterset_class = ResultsBacktestFilter
    pagination_class = ResultsPagination

    def get_throttles(self):
        if self.request.method == "POST":
            return [BacktestCreateThrottle()]
        return []

    def get_queryset(self):
        return Backtest.objects.filter(owner=self.request.user).select_related("strategy")

    def present(self, rows):
        return wire.BacktestSummarySchema(rows, many=True).data

    @extend_schema(
        operation_id="results_backtests_list",
        tags=TAGS,
        summary="List your backtests",
        description="Only the caller's own backtests, newest first unless `sort`/`order` say.",
        responses={
            200: wire.BacktestSummarySchema(many=True),
            400: OpenApiResponse(wire.ErrorSchema, description="VALIDATION_ERROR"),
            401: _ERRORS[401],
        },
    )
    def get(self, request):
        return self.list(request)

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
        serializer = wire.BacktestCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data

        strategy = Strategy.objects.filter(pk=data["algorithmId"]).first()
        if strategy is None:
            raise not_found("Algorithm not found")
        if not visible_to(Strategy.objects.filter(pk=strategy.pk), request.user).exists():
            raise forbidden("Access denied (not your algorithm)")

        config = {
            "start_date": data["startDate"].isoformat(),
            "end_date": data["endDate"].isoformat(),
        }
        # An allocation strategy holds the symbols of its groups: the run needs none. Symbols
        # given with one still reach the run's validation, which says why they do not belong.
        symbols = data.get("symbols")
        if strategy.kind == Strategy.Kind.SIGNAL:
            symbols = symbols or list(strategy.universe or [])
            if not symbols:
                raise validation_error("symbols: required when the algorithm has no universe")
        if symbols:
            config["symbols"] = symbols
        config.update({key: data[name] for name, key in wire.RUN_OPTIONS.items() if name in data})
        try:
            with transaction.atomic():
                backtest = services.backtest_create(
                    strategy=strategy,
                    engine=data.get("engine", services.DEFAULT_ENGINE),
                    config=config,
                    owner=request.user,
                    initial_capital=data["initialBalance"],
                    commission=data.get("commission", 0.0),
                    slippage=data.get("slippage", 0.0),
                    source=Backtest.Source.RESULTS_API,
                )
                services.backtest_execute_async(backtest=backtest, owner=request.user)
        except InvalidInput as exc:
            raise validation_error(camel_case_problems(exc.errors)) from exc
        return Response(wire.CreatedBacktestSchema(backtest).data, status=status.HTTP_201_CREATED)


# The services' field names (and the run config's) as this contract's request names them.
_CAMEL_FIELDS = {
    "strategy": "algorithmId",
    "strategy_id": "algorithmId",
    "initial_capital": "initialBalance",
    "start_date": "startDate",
    "end_date": "endDate",
    "symbol": "symbols",
    "signal": "algorithmId",
    "definition": "algorithmId",
    **{key: name for name, key in wire.RUN_OPTIONS.items()},
}


def camel_case_problems(errors: dict) -> str:
    """The services' field-keyed problems as one message in this contract's field names.

    The run configuration is built here from the request's own fields, so its problems are
    reported under those fields (``config.start_date`` → ``startDate``).
    """
    parts: list[str] = []

    def walk(value, path: list[str]) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(inner, path if key in ("config", "non_field_errors", "") else [*path, key])
        elif isinstance(value, (list, tuple)):
            text = " ".join(str(item) for item in value)
            for camel, snake in wire.RUN_OPTIONS.items():
                text = text.replace(snake, camel)  # "Needs cashflow_frequency" names the field
            name = ".".join(_CAMEL_FIELDS.get(part, part) for part in path)
            parts.append(f"{name}: {text}" if name else text)
        else:
            walk([value], path)

    walk(errors, [])
    return "; ".join(parts) or "Invalid request"

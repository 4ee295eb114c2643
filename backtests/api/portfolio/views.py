"""The Backfolio portfolio-backtest contract (v2.0): run, examples, and saved runs.

The same views serve ``/api/v1/backtest…`` and ``/api/v2/backtest…`` (one subclass per version,
so that each path has its own OpenAPI operation). Open without credentials unless
``BACKFOLIO_REQUIRE_AUTH`` is on; saved runs are scoped by ownership (SPEC §10): a run the caller
may not see is a 404.
"""

from __future__ import annotations

import functools

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from backtests import artifacts
from backtests.models import Backtest
from backtests.portfolio import selectors, services
from backtests.portfolio.examples import examples_response

from . import schema, serializers
from .errors import PortfolioApiError, PortfolioApiMixin
from .pagination import PortfolioPagination

USER_ID_HEADER = "X-User-Id"
RUN_NOT_FOUND = "Backtest run not found"

_USER_ID_PARAMETER = OpenApiParameter(
    USER_ID_HEADER,
    str,
    OpenApiParameter.HEADER,
    description="Optional label that groups a caller's saved runs (not an identity)",
)


def _user_ref(request) -> str:
    return request.headers.get(USER_ID_HEADER, "").strip()


def _run_response(backtest: Backtest, result: dict) -> dict:
    """A run's answer, new or saved: the ``result`` block in the run endpoint's envelope."""
    return serializers.PortfolioBacktestResponseSchema(backtest, context={"result": result}).data


class PortfolioView(PortfolioApiMixin, APIView):
    pass


class RunBacktestView(PortfolioView):
    def post(self, request, *args, **kwargs):
        outcome = services.portfolio_backtest_run(
            payload=request.data, user=request.user, user_ref=_user_ref(request)
        )
        return Response(_run_response(outcome.backtest, outcome.result))


class ExamplesView(PortfolioView):
    def get(self, request, *args, **kwargs):
        return Response(examples_response())


class RunListView(PortfolioApiMixin, GenericAPIView):
    """The runs saved under the caller's ``X-User-Id`` (required), newest first, paged."""

    queryset = Backtest.objects.none()  # the rows' model, for the schema
    serializer_class = serializers.PortfolioRunSummarySerializer
    pagination_class = PortfolioPagination
    filter_backends = []  # no query filters: the header chooses the runs

    def get_queryset(self):
        user_ref = _user_ref(self.request)
        if not user_ref:
            raise PortfolioApiError(
                status_code=status.HTTP_400_BAD_REQUEST,
                error="X-User-Id header required",
                messages=["Send the X-User-Id header to list the runs saved under it"],
            )
        return selectors.portfolio_run_list(user=self.request.user, user_ref=user_ref)

    def get(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


class RunDetailView(PortfolioView):
    def get(self, request, backtest_id: str, *args, **kwargs):
        backtest = selectors.portfolio_run_get(user=request.user, backtest_id=backtest_id)
        if backtest is None:
            raise PortfolioApiError(
                status_code=status.HTTP_404_NOT_FOUND,
                error=RUN_NOT_FOUND,
                messages=[f"No saved backtest run {backtest_id}"],
            )
        try:
            result = services.saved_result(backtest)
        except artifacts.ArtifactMissing as missing:
            raise PortfolioApiError(
                status_code=status.HTTP_404_NOT_FOUND,
                error=RUN_NOT_FOUND,
                messages=[f"The saved result of backtest run {backtest_id} is not available"],
            ) from missing
        return Response(_run_response(backtest, result))


# --- one documented subclass per version ---------------------------------------------------------

_ERRORS = {
    400: OpenApiResponse(schema.PortfolioErrorSchema, examples=[schema.ERROR_EXAMPLE]),
    500: OpenApiResponse(schema.PortfolioErrorSchema, examples=[schema.INTERNAL_ERROR_EXAMPLE]),
}


def _copy(method):
    """A new function calling ``method``: each version's schema annotation needs its own."""

    @functools.wraps(method)
    def handler(self, request, *args, **kwargs):
        return method(self, request, *args, **kwargs)

    return handler


def _documented(version: str) -> dict[str, type[APIView]]:
    prefix = f"portfolio_{version}"
    run = extend_schema(
        operation_id=f"{prefix}_backtest_run",
        tags=schema.TAGS,
        summary="Run a portfolio backtest",
        description=(
            "Runs a tactical-allocation backtest synchronously and returns the whole analysis. "
            "Every run is saved; its `backtest_id` is returned. A 400 lists every problem found."
        ),
        parameters=[_USER_ID_PARAMETER],
        request=schema.PortfolioBacktestRequestSchema,
        examples=schema.REQUEST_EXAMPLES,
        responses={
            200: OpenApiResponse(
                serializers.PortfolioBacktestResponseSchema, examples=[schema.SUCCESS_EXAMPLE]
            ),
            **_ERRORS,
        },
    )(_copy(RunBacktestView.post))
    examples = extend_schema(
        operation_id=f"{prefix}_backtest_examples",
        tags=schema.TAGS,
        summary="The contract's example strategies",
        responses={
            200: OpenApiResponse(schema.PortfolioExamplesSchema, examples=[schema.EXAMPLES_EXAMPLE])
        },
    )(_copy(ExamplesView.get))
    run_list = extend_schema(
        operation_id=f"{prefix}_backtest_runs_list",
        tags=schema.TAGS,
        summary="Saved runs of an X-User-Id, newest first",
        parameters=[
            OpenApiParameter(
                USER_ID_HEADER,
                {"type": "string", "pattern": r"\S"},
                OpenApiParameter.HEADER,
                required=True,
                description="The label the runs were saved under (not blank)",
            ),
        ],
        responses={
            200: serializers.PortfolioRunSummarySerializer(many=True),
            400: schema.PortfolioErrorSchema,
        },
    )(_copy(RunListView.get))
    run_detail = extend_schema(
        operation_id=f"{prefix}_backtest_runs_retrieve",
        tags=schema.TAGS,
        summary="A saved run's result, in the run endpoint's envelope",
        parameters=[OpenApiParameter("backtest_id", OpenApiTypes.UUID, OpenApiParameter.PATH)],
        responses={
            200: serializers.PortfolioBacktestResponseSchema,
            404: schema.PortfolioErrorSchema,
        },
    )(_copy(RunDetailView.get))
    return {
        "run": type(f"RunBacktest{version.upper()}View", (RunBacktestView,), {"post": run}),
        "examples": type(f"Examples{version.upper()}View", (ExamplesView,), {"get": examples}),
        "runs": type(f"RunList{version.upper()}View", (RunListView,), {"get": run_list}),
        "run_detail": type(
            f"RunDetail{version.upper()}View", (RunDetailView,), {"get": run_detail}
        ),
    }


VIEWS = {version: _documented(version) for version in ("v1", "v2")}

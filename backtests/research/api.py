"""``/api/v1/research/sweeps`` (SPEC §13.2): the v1 conventions — snake_case, 400 with
field-keyed problems, 404 for what the caller may not see, 409 for a state that forbids it."""

from __future__ import annotations

import django_filters
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.renderers import BaseRenderer
from rest_framework.response import Response

from backfolio.common.ownership import owner_for
from backfolio.common.pagination import check_query
from backfolio.common.renderers import FastJSONRenderer
from backfolio.common.v1.pagination import LeaderboardPagination
from backfolio.common.v1.views import ERROR_404, ERROR_409, ERRORS_400, V1View, validated
from backtests.api.v1 import serializers as v1
from backtests.api.v1.filters import choice_filter
from backtests.api.v1.views import PARQUET_MEDIA_TYPE, ParquetRenderer, _parquet_response
from backtests.engines.registry import DEFAULT_ENGINE
from backtests.research import selectors, services
from backtests.research.grid import MAX_COMBINATIONS
from backtests.research.models import ResearchSweep, ResearchSweepEntry
from metrics import research
from strategies.selectors import strategy_get

CSV_MEDIA_TYPE = "text/csv"
SWEEP_ID = OpenApiParameter("sweep_id", OpenApiTypes.UUID, OpenApiParameter.PATH)
ENTRY_NUMBER = OpenApiParameter(
    "number", OpenApiTypes.INT, OpenApiParameter.PATH, description="The entry's number."
)
TAGS = ["research"]


# --- requests ----------------------------------------------------------------------------------


class ResearchSweepCreateSerializer(v1.StrictFieldsMixin, serializers.Serializer):
    strategy_id = serializers.UUIDField()
    engine = serializers.CharField(default=DEFAULT_ENGINE)
    base_config = v1.JSONObjectField(default=dict)
    grid = serializers.JSONField(
        required=False,
        help_text="Dotted config path → list of values; their cartesian product, in key order.",
    )
    param_grid = serializers.JSONField(
        required=False, help_text="The v1 list of override objects (instead of grid)."
    )
    rank_metric = serializers.CharField()
    initial_capital = v1.NumberField(default=100_000.0)
    commission = v1.NumberField(default=0.0)
    slippage = v1.NumberField(default=0.0)
    benchmark = serializers.CharField(required=False, max_length=60)
    # Ranges are checked by the service with the research module's own checks; the bounds
    # here only keep a number within what the database column holds.
    partitions = serializers.IntegerField(
        default=research.DEFAULT_PARTITIONS, min_value=-(2**31), max_value=2**31
    )
    spa_reps = serializers.IntegerField(
        default=research.DEFAULT_RESAMPLES, min_value=-(2**31), max_value=2**31
    )
    seed = serializers.IntegerField(default=research.DEFAULT_SEED, min_value=0, max_value=2**63 - 1)


class LeaderboardFilter(django_filters.FilterSet):
    """The leaderboard's ordering (``skip``/``limit`` are ``LeaderboardPagination``'s). The
    entries are ranked in memory (``selectors.research_sweep_ranking``), so this FilterSet
    reads the parameters and the selector applies them."""

    sort = choice_filter([(key, key) for key in selectors.SORT_KEYS])
    order = choice_filter([("asc", "asc"), ("desc", "desc")])

    class Meta:
        model = ResearchSweepEntry
        fields = ["sort", "order"]


def _leaderboard_parameters() -> list[OpenApiParameter]:
    paging = [
        OpenApiParameter(parameter["name"], parameter["schema"])
        for parameter in LeaderboardPagination().get_schema_operation_parameters(None)
    ]
    return [
        *paging,
        OpenApiParameter("sort", str, enum=list(selectors.SORT_KEYS), default="rank"),
        OpenApiParameter(
            "order",
            str,
            enum=["asc", "desc"],
            description="Default: best first for a metric with a direction, ascending for "
            "rank and number.",
        ),
    ]


# --- responses ---------------------------------------------------------------------------------


class SkippedCombinationSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    overrides = serializers.JSONField()
    problems = serializers.DictField(help_text="Config path → messages.")


class ResearchSweepDispatchSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    task_id = serializers.UUIDField()
    status = serializers.CharField()
    n_configs = serializers.IntegerField()
    n_skipped = serializers.IntegerField()
    skipped = SkippedCombinationSerializer(many=True)


class EntrySerializer(serializers.Serializer):
    number = serializers.IntegerField()
    rank = serializers.IntegerField()
    overrides = serializers.DictField(help_text="The entry in param_grid form.")
    status = serializers.ChoiceField(choices=ResearchSweepEntry.Status.values)
    score = serializers.FloatField(allow_null=True)
    metrics = serializers.DictField(help_text="v1 flat metrics (empty when failed).")
    fingerprint = serializers.CharField(allow_null=True)
    error = serializers.CharField(allow_null=True)


class LeaderboardSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    skip = serializers.IntegerField()
    limit = serializers.IntegerField()
    sort = serializers.CharField()
    order = serializers.ChoiceField(choices=["asc", "desc"])
    entries = EntrySerializer(many=True)


class PboSerializer(serializers.Serializer):
    value = serializers.FloatField()
    partitions = serializers.IntegerField()
    combinations = serializers.IntegerField()
    logit_histogram = serializers.JSONField()
    probability_of_loss = serializers.FloatField()
    performance_degradation = serializers.JSONField()


class SpaSerializer(serializers.Serializer):
    benchmark = serializers.CharField()
    pvalue_lower = serializers.FloatField()
    pvalue_consistent = serializers.FloatField()
    pvalue_upper = serializers.FloatField()
    reps = serializers.IntegerField()
    block_size = serializers.IntegerField()
    seed = serializers.IntegerField()


class OverfittingSerializer(serializers.Serializer):
    n_trials = serializers.IntegerField()
    best = serializers.IntegerField(help_text="Number of the best entry by rank_metric.")
    psr = serializers.FloatField(allow_null=True)
    dsr = serializers.FloatField(allow_null=True)
    sr0 = serializers.FloatField(allow_null=True)
    pbo = PboSerializer(allow_null=True)
    spa = SpaSerializer(allow_null=True)


class ResearchSweepSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    task_id = serializers.UUIDField(allow_null=True)
    strategy_id = serializers.UUIDField()
    engine = serializers.CharField()
    status = serializers.ChoiceField(choices=ResearchSweep.Status.values)
    done = serializers.IntegerField()
    total = serializers.IntegerField()
    n_skipped = serializers.IntegerField()
    skipped = SkippedCombinationSerializer(many=True)
    base_config = serializers.DictField()
    grid = serializers.DictField(allow_null=True)
    rank_metric = serializers.CharField()
    initial_capital = serializers.FloatField()
    commission = serializers.FloatField()
    slippage = serializers.FloatField()
    benchmark = serializers.CharField()
    partitions = serializers.IntegerField()
    spa_reps = serializers.IntegerField()
    seed = serializers.IntegerField()
    leaderboard = LeaderboardSerializer()
    overfitting = OverfittingSerializer(allow_null=True)
    error = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)


# --- views -------------------------------------------------------------------------------------


class ResearchSweepListView(V1View):
    @extend_schema(
        operation_id="research_sweeps_create",
        summary="Start a research sweep (chunks across every worker; overfitting block at the end)",
        request=ResearchSweepCreateSerializer,
        responses={202: ResearchSweepDispatchSerializer, 400: ERRORS_400, 404: ERROR_404},
        examples=[
            OpenApiExample(
                "SMA grid",
                value={
                    "strategy_id": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
                    "engine": "vectorbt",
                    "base_config": {
                        "symbol": "SPY",
                        "start_date": "2005-01-01",
                        "end_date": "2024-12-06",
                        "signal_plugin_key": "sma_crossover",
                    },
                    "grid": {
                        "signal_plugin_params.fast": [10, 20, 50],
                        "signal_plugin_params.slow": [100, 150, 200],
                    },
                    "rank_metric": "perf_sharpe_ratio",
                    "commission": 0.0005,
                    "slippage": 0.0005,
                },
                request_only=True,
            ),
            OpenApiExample(
                "Too many combinations",
                value={"grid": [f"12,000 combinations; at most {MAX_COMBINATIONS:,} are allowed."]},
                response_only=True,
                status_codes=["400"],
            ),
        ],
        tags=TAGS,
    )
    def post(self, request):
        data = validated(ResearchSweepCreateSerializer, request.data)
        strategy = strategy_get(strategy_id=data["strategy_id"], user=request.user)
        sweep = services.research_sweep_create(
            strategy=strategy,
            engine=data["engine"],
            base_config=data["base_config"],
            grid=data.get("grid"),
            param_grid=data.get("param_grid"),
            rank_metric=data["rank_metric"],
            initial_capital=data["initial_capital"],
            commission=data["commission"],
            slippage=data["slippage"],
            benchmark=data.get("benchmark"),
            partitions=data["partitions"],
            spa_reps=data["spa_reps"],
            seed=data["seed"],
            owner=owner_for(request.user),
        )
        body = {
            "id": str(sweep.pk),
            "task_id": str(sweep.task_id),
            "status": sweep.status,
            "n_configs": sweep.total,
            "n_skipped": sweep.n_skipped,
            "skipped": sweep.skipped,
        }
        return Response(body, status=status.HTTP_202_ACCEPTED)


class ResearchSweepDetailView(V1View):
    @extend_schema(
        operation_id="research_sweeps_retrieve",
        summary="A research sweep: progress, leaderboard page, overfitting block when complete",
        parameters=[SWEEP_ID, *_leaderboard_parameters()],
        responses={200: ResearchSweepSerializer, 400: ERRORS_400, 404: ERROR_404},
        tags=TAGS,
    )
    def get(self, request, sweep_id):
        sweep = selectors.research_sweep_get(sweep_id=sweep_id, user=request.user)
        paginator = LeaderboardPagination()
        query = LeaderboardFilter(data=request.query_params, queryset=sweep.entries.all())
        check_query(request, paginator, query)
        sort = query.form.cleaned_data["sort"] or "rank"
        order, ranked = selectors.research_sweep_ranking(
            sweep=sweep, sort=sort, order=query.form.cleaned_data["order"] or None
        )
        page = paginator.paginate_queryset(ranked, request, self)
        leaderboard = paginator.leaderboard(
            [selectors.entry_view(entry) for entry in selectors.with_details(sweep, page)],
            sort=sort,
            order=order,
        )
        body = {
            "id": str(sweep.pk),
            "task_id": str(sweep.task_id) if sweep.task_id else None,
            "strategy_id": str(sweep.strategy_id),
            "engine": sweep.engine,
            "status": sweep.status,
            "done": sweep.done,
            "total": sweep.total,
            "n_skipped": sweep.n_skipped,
            "skipped": sweep.skipped,
            "base_config": sweep.base_config,
            "grid": sweep.grid,
            "rank_metric": sweep.rank_metric,
            "initial_capital": sweep.initial_capital,
            "commission": sweep.commission,
            "slippage": sweep.slippage,
            "benchmark": sweep.benchmark,
            "partitions": sweep.partitions,
            "spa_reps": sweep.spa_reps,
            "seed": sweep.seed,
            "leaderboard": leaderboard,
            "overfitting": sweep.overfitting,
            "error": sweep.error or None,
            "created_at": sweep.created_at,
            "started_at": sweep.started_at,
            "completed_at": sweep.completed_at,
        }
        return Response(ResearchSweepSerializer(body).data)


class ResearchSweepReturnsView(V1View):
    renderer_classes = [FastJSONRenderer, ParquetRenderer]

    @extend_schema(
        operation_id="research_sweeps_returns_parquet",
        summary="Per-bar returns of every completed entry (date index, one column per entry)",
        parameters=[SWEEP_ID],
        responses={
            (200, PARQUET_MEDIA_TYPE): OpenApiTypes.BINARY,
            404: ERROR_404,
            409: ERROR_409,
        },
        tags=TAGS,
    )
    def get(self, request, sweep_id):
        sweep = selectors.research_sweep_get(sweep_id=sweep_id, user=request.user)
        content = services.research_sweep_returns_parquet(sweep=sweep)
        return _parquet_response(content, f"returns_{sweep.pk}.parquet")


class CSVRenderer(BaseRenderer):
    media_type = CSV_MEDIA_TYPE
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data


class ResearchSweepResultsView(V1View):
    renderer_classes = [FastJSONRenderer, CSVRenderer]

    @extend_schema(
        operation_id="research_sweeps_results_csv",
        summary="One row per entry: number, rank, status, parameters, metrics",
        parameters=[SWEEP_ID],
        responses={
            (200, CSV_MEDIA_TYPE): OpenApiTypes.STR,
            404: ERROR_404,
            409: ERROR_409,
        },
        tags=TAGS,
    )
    def get(self, request, sweep_id):
        sweep = selectors.research_sweep_get(sweep_id=sweep_id, user=request.user)
        content = selectors.research_sweep_results_csv(sweep=sweep)
        response = HttpResponse(content, content_type=f"{CSV_MEDIA_TYPE}; charset=utf-8")
        response["Content-Disposition"] = f"attachment; filename=results_{sweep.pk}.csv"
        return response


class ResearchEntryBacktestView(V1View):
    @extend_schema(
        operation_id="research_sweeps_entry_backtest",
        summary="Run one entry as a full v1 backtest (artifacts; same fingerprint and numbers)",
        parameters=[SWEEP_ID, ENTRY_NUMBER],
        request=None,
        responses={201: v1.BacktestResultSerializer, 404: ERROR_404, 409: ERROR_409},
        tags=TAGS,
    )
    def post(self, request, sweep_id, number):
        sweep = selectors.research_sweep_get(sweep_id=sweep_id, user=request.user)
        if not number.isdigit():
            raise ResearchSweepEntry.DoesNotExist(f"Sweep {sweep.pk} has no entry {number}.")
        backtest = services.research_entry_backtest(
            sweep=sweep, number=int(number), owner=owner_for(request.user)
        )
        return Response(v1.BacktestResultSerializer(backtest).data, status=status.HTTP_201_CREATED)

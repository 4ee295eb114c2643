"""Admin for walk-forward analyses (SPEC §11): read-only, since an analysis exists only because
the API dispatched it; filters by status, engine, scheme, strategy and owner; progress as runs
and folds; links to the strategy, task, owner, the analysis's page and its API resources; folds
inline."""

import json

from django.contrib import admin
from django.db.models import Count, Q
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from backtests.pages import selectors as page_selectors
from backtests.research.walk_forward.models import WalkForward, WalkForwardFold
from backtests.research.walk_forward.selectors import v1_result
from metrics.presenters import v1_row_metrics

SUMMARY_METRICS = ("total_return", "perf_cagr", "perf_sharpe_ratio", "risk_max_drawdown")


def _pretty_json(document) -> str:
    return format_html(
        '<pre style="white-space: pre-wrap; margin: 0">{}</pre>',
        json.dumps(document, indent=2, sort_keys=True, default=str),
    )


def _number(value, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _progress_bar(done: int, total: int) -> str:
    share = done / total if total else 0.0
    return format_html(
        '<progress value="{}" max="{}" style="width: 8em; vertical-align: middle"></progress> '
        "{} / {} runs ({}%)",
        done,
        total,
        done,
        total,
        f"{100 * share:.0f}",
    )


class WalkForwardFoldInline(admin.TabularInline):
    model = WalkForwardFold
    extra = 0
    can_delete = False
    ordering = ("index",)
    fields = (
        "index",
        "in_sample_start",
        "in_sample_end",
        "out_of_sample_start",
        "out_of_sample_end",
        "status",
        "chosen",
        "in_sample_score",
        "in_sample_failed",
        "out_of_sample_return",
        "error",
    )
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description="Chosen")
    def chosen(self, fold):
        if fold.chosen_index is None:
            return "—"
        return json.dumps(fold.walk_forward.combinations[fold.chosen_index], sort_keys=True)

    @admin.display(description="Out-of-sample return")
    def out_of_sample_return(self, fold):
        value = v1_row_metrics(fold.out_of_sample_metrics).get("total_return")
        return page_selectors.metric_display("total_return", value) if value is not None else "—"


@admin.register(WalkForward)
class WalkForwardAdmin(admin.ModelAdmin):
    list_display = (
        "short_id",
        "strategy_link",
        "engine",
        "scheme",
        "windows",
        "n_combinations",
        "status",
        "progress",
        "folds_chosen",
        "out_of_sample_cagr",
        "psr",
        "efficiency",
        "created_at",
        "owner",
        "page_link",
    )
    list_filter = ("status", "engine", "scheme", "strategy", "owner")
    search_fields = ("id", "strategy__name", "error")
    list_select_related = ("strategy", "owner")
    date_hierarchy = "created_at"
    inlines = (WalkForwardFoldInline,)
    readonly_fields = (
        "id",
        "links",
        "strategy_link",
        "engine",
        "status",
        "progress",
        "folds_chosen",
        "error",
        "scheme",
        "in_sample_months",
        "out_of_sample_months",
        "rank_metric",
        "initial_capital",
        "commission",
        "slippage",
        "base_config_display",
        "grid_display",
        "n_combinations",
        "n_skipped",
        "skipped_display",
        "summary",
        "task_link",
        "owner_link",
        "created_at",
        "started_at",
        "completed_at",
    )
    fields = readonly_fields

    def has_add_permission(self, request):
        return False

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                n_folds=Count("folds", distinct=True),
                n_chosen=Count(
                    "folds",
                    filter=Q(folds__status=WalkForwardFold.Status.CHOSEN),
                    distinct=True,
                ),
            )
        )

    @admin.display(description="Walk-forward", ordering="created_at")
    def short_id(self, walk_forward):
        return str(walk_forward.pk)[:8]

    @admin.display(description="In / out of sample")
    def windows(self, walk_forward):
        return f"{walk_forward.in_sample_months} / {walk_forward.out_of_sample_months} months"

    @admin.display(description="Combinations")
    def n_combinations(self, walk_forward):
        return len(walk_forward.combinations)

    @admin.display(description="Progress")
    def progress(self, walk_forward):
        return _progress_bar(walk_forward.done, walk_forward.total)

    @admin.display(description="Folds chosen")
    def folds_chosen(self, walk_forward):
        return f"{walk_forward.n_chosen} of {walk_forward.n_folds}"

    @admin.display(description="Strategy", ordering="strategy__name")
    def strategy_link(self, walk_forward):
        url = reverse("admin:strategies_strategy_change", args=[walk_forward.strategy_id])
        return format_html('<a href="{}">{}</a>', url, walk_forward.strategy)

    @admin.display(description="Task")
    def task_link(self, walk_forward):
        if walk_forward.task_id is None:
            return "—"
        url = reverse("admin:backtests_task_change", args=[walk_forward.task_id])
        return format_html('<a href="{}">{}</a>', url, walk_forward.task_id)

    @admin.display(description="Owner")
    def owner_link(self, walk_forward):
        if walk_forward.owner_id is None:
            return "— (public)"
        url = reverse("admin:auth_user_change", args=[walk_forward.owner_id])
        return format_html('<a href="{}">{}</a>', url, walk_forward.owner)

    @admin.display(description="Page")
    def page_link(self, walk_forward):
        url = reverse("pages:walk_forward_detail", args=[walk_forward.pk])
        return format_html('<a href="{}">Open</a>', url)

    @admin.display(description="Links")
    def links(self, walk_forward):
        items = [
            ("Analysis page", reverse("pages:walk_forward_detail", args=[walk_forward.pk])),
            (
                "API (JSON)",
                reverse("research-walk-forward-detail", args=[walk_forward.pk]),
            ),
        ]
        if walk_forward.status == WalkForward.Status.COMPLETED:
            items.append(
                (
                    "Stitched equity (Parquet)",
                    reverse("research-walk-forward-equity-parquet", args=[walk_forward.pk]),
                )
            )
        pairs = ((url, label) for label, url in items)
        return format_html_join(" · ", '<a href="{}">{}</a>', pairs)

    def _result(self, walk_forward, key):
        """``key`` of the result as the API shows it (its metrics in v1 form)."""
        return (v1_result(walk_forward.result) or {}).get(key)

    @admin.display(description="OOS CAGR")
    def out_of_sample_cagr(self, walk_forward):
        value = (self._result(walk_forward, "metrics") or {}).get("perf_cagr")
        return page_selectors.metric_display("perf_cagr", value) if value is not None else "—"

    @admin.display(description="PSR")
    def psr(self, walk_forward):
        return _number(self._result(walk_forward, "psr"))

    @admin.display(description="WF efficiency")
    def efficiency(self, walk_forward):
        return _number(self._result(walk_forward, "walk_forward_efficiency"))

    @admin.display(description="Base configuration")
    def base_config_display(self, walk_forward):
        return _pretty_json(walk_forward.base_config)

    @admin.display(description="Grid")
    def grid_display(self, walk_forward):
        return _pretty_json(walk_forward.grid or walk_forward.combinations)

    @admin.display(description="Skipped combinations (first 20)")
    def skipped_display(self, walk_forward):
        return _pretty_json(walk_forward.skipped) if walk_forward.skipped else "—"

    @admin.display(description="Result")
    def summary(self, walk_forward):
        result = v1_result(walk_forward.result)
        if not result:
            return "—"
        metrics = result.get("metrics") or {}
        rows = [
            (key, page_selectors.metric_display(key, metrics.get(key))) for key in SUMMARY_METRICS
        ]
        rows += [
            ("psr", _number(result.get("psr"))),
            ("walk_forward_efficiency", _number(result.get("walk_forward_efficiency"))),
            ("choice_changes", result.get("choice_changes")),
        ]
        return format_html(
            "<table>{}</table>",
            format_html(
                "".join("<tr><th>{}</th><td>{}</td></tr>" for _ in rows),
                *[item for row in rows for item in row],
            ),
        )

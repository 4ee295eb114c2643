"""Admin for runs, sweeps and tasks (SPEC §11): filters, metrics as a table, charts, actions.

Actions call ``backtests.services`` exactly as the API does; nothing here runs an engine itself.
"""

import json

from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.templatetags.static import static
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django_dramatiq import admin as dramatiq_admin  # noqa: F401 (registers what is undone below)
from django_dramatiq.models import Task as DramatiqTask

from backfolio.common.errors import Conflict, InvalidInput
from backtests import services
from backtests.engines import registry
from backtests.models import Backtest, Robustness, Sweep, Task
from backtests.pages import selectors
from metrics.presenters import v1_row_metrics

# django_dramatiq registers its own "Tasks" table, which this service never fills (its runs are
# tracked in backtests.Task): importing its admin first makes the registration happen here, once,
# so that it can be taken out and the admin shows one "Tasks" entry, the one with rows.
if admin.site.is_registered(DramatiqTask):
    admin.site.unregister(DramatiqTask)

MIN_COMPARED, MAX_COMPARED = 2, 10


def _metric_column(key: str, description: str):
    @admin.display(description=description, ordering=f"_sort_{key}")
    def column(self, backtest):
        return selectors.metric_display(key, v1_row_metrics(backtest.metrics).get(key))

    return column


def _pretty_json(document) -> str:
    return format_html(
        '<pre style="white-space: pre-wrap; margin: 0">{}</pre>',
        json.dumps(document, indent=2, sort_keys=True, default=str),
    )


@admin.register(Backtest)
class BacktestAdmin(admin.ModelAdmin):
    list_display = (
        "short_id",
        "strategy",
        "engine",
        "status",
        "total_return",
        "sharpe_ratio",
        "max_drawdown",
        "created_at",
        "source",
        "owner",
    )
    list_filter = ("status", "engine", "strategy", "owner", "source")
    search_fields = ("id", "strategy__name", "user_ref", "fingerprint", "error")
    list_select_related = ("strategy", "owner")
    date_hierarchy = "created_at"
    actions = ("execute", "rerun_on_other_engine", "compare_selected")
    readonly_fields = (
        "id",
        "strategy",
        "engine",
        "initial_capital",
        "commission",
        "slippage",
        "owner",
        "source",
        "user_ref",
        "status",
        "progress",
        "progress_message",
        "metrics_table",
        "charts",
        "config_display",
        "fingerprint",
        "metrics_spec_version",
        "equity_curve_uri",
        "trades_uri",
        "report_uri",
        "error",
        "sweep",
        "sweep_index",
        "run_count",
        "created_at",
        "updated_at",
        "started_at",
        "completed_at",
        "heartbeat_at",
        "page_link",
    )
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "id",
                    "page_link",
                    "strategy",
                    "engine",
                    "status",
                    "progress",
                    "progress_message",
                    "error",
                )
            },
        ),
        ("Metrics", {"fields": ("metrics_table",)}),
        ("Charts", {"fields": ("charts",)}),
        (
            "Configuration",
            {
                "fields": (
                    "initial_capital",
                    "commission",
                    "slippage",
                    "config_display",
                    "fingerprint",
                    "metrics_spec_version",
                )
            },
        ),
        (
            "Record",
            {
                "classes": ("collapse",),
                "fields": (
                    "owner",
                    "source",
                    "user_ref",
                    "sweep",
                    "sweep_index",
                    "run_count",
                    "equity_curve_uri",
                    "trades_uri",
                    "report_uri",
                    "created_at",
                    "updated_at",
                    "started_at",
                    "completed_at",
                    "heartbeat_at",
                ),
            },
        ),
    )

    def has_add_permission(self, request):
        # Runs are created validated, through the strategy pages, the API or the actions here.
        return False

    total_return = _metric_column("total_return", "Total return")
    sharpe_ratio = _metric_column("perf_sharpe_ratio", "Sharpe")
    max_drawdown = _metric_column("risk_max_drawdown", "Max drawdown")

    def get_queryset(self, request):
        # The metric columns sort by the JSON values, cast to numbers.
        return (
            super()
            .get_queryset(request)
            .annotate(
                _sort_total_return=selectors.v1_metric_expression("total_return"),
                _sort_perf_sharpe_ratio=selectors.v1_metric_expression("perf_sharpe_ratio"),
                _sort_risk_max_drawdown=selectors.v1_metric_expression("risk_max_drawdown"),
            )
        )

    @admin.display(description="Run", ordering="created_at")
    def short_id(self, backtest):
        return str(backtest.id)[:8]

    @admin.display(description="Analyst page")
    def page_link(self, backtest):
        if backtest.pk is None:
            return "—"
        url = reverse("pages:backtest-detail", args=[backtest.pk])
        return format_html('<a href="{}">Open the backtest page</a>', url)

    @admin.display(description="Metrics")
    def metrics_table(self, backtest):
        if backtest.status != Backtest.Status.COMPLETED:
            return "Metrics appear when the run has completed."
        tables = format_html_join(
            "\n",
            '<table style="margin: 0 1.5em 1em 0; display: inline-table; vertical-align: top">'
            '<caption style="text-align: left; font-weight: bold">{}</caption>'
            "<tbody>{}</tbody></table>",
            (
                (
                    group,
                    format_html_join(
                        "",
                        '<tr><th title="{}">{}</th><td style="text-align: right">{}</td></tr>',
                        ((row.key, row.label, row.display) for row in rows),
                    ),
                )
                for group, rows in selectors.metric_groups(backtest.metrics)
            ),
        )
        return format_html('<div class="backtest-metrics">{}</div>', tables)

    @admin.display(description="Equity and drawdown")
    def charts(self, backtest):
        if backtest.pk is None or backtest.status != Backtest.Status.COMPLETED:
            return "Charts appear when the run has completed."
        return format_html(
            '<div id="backtest-charts" data-chart-url="{}" '
            'style="width: min(960px, 75vw); min-width: 280px">'
            '<div id="equity-chart" style="height: 320px"></div>'
            '<div id="drawdown-chart" style="height: 200px"></div>'
            '<div id="monthly-chart" style="height: 260px"></div>'
            '<p class="chart-error" style="color: #ba2121" hidden></p></div>'
            '<script src="{}"></script><script src="{}"></script>',
            reverse("pages:backtest-chart-data", args=[backtest.pk]),
            static("vendor/plotly.min.js"),
            static("js/backfolio.js"),
        )

    @admin.display(description="Run configuration")
    def config_display(self, backtest):
        return _pretty_json(backtest.config)

    # --- actions --------------------------------------------------------------------------

    @admin.action(description="Execute the selected backtests (in the background)")
    def execute(self, request, queryset):
        queued, skipped = 0, []
        for backtest in queryset:
            try:
                services.backtest_execute_async(backtest=backtest, owner=request.user)
            except Conflict:
                skipped.append(str(backtest.id)[:8])
                continue
            queued += 1
        if queued:
            self.message_user(request, f"Queued {queued} backtest(s).", messages.SUCCESS)
        if skipped:
            self.message_user(
                request,
                f"Already running, not queued again: {', '.join(skipped)}.",
                messages.WARNING,
            )

    @admin.action(description="Re-run on the other engine (vectorbt ↔ backtrader)")
    def rerun_on_other_engine(self, request, queryset):
        created = []
        for backtest in queryset.select_related("strategy"):
            registered = backtest.engine in registry.available_engines()
            other = registry.other_engine(backtest.engine) if registered else None
            if other is None or backtest.strategy_id is None:
                self.message_user(
                    request,
                    f"{str(backtest.id)[:8]} has no strategy run on vectorbt or backtrader; "
                    "skipped.",
                    messages.WARNING,
                )
                continue
            try:
                twin = services.backtest_create(
                    strategy=backtest.strategy,
                    strategy_snapshot=backtest.strategy_snapshot,  # what the original ran
                    engine=other,
                    config=backtest.config,
                    initial_capital=backtest.initial_capital,
                    commission=backtest.commission,
                    slippage=backtest.slippage,
                    owner=request.user,
                    source=Backtest.Source.UI,
                )
            except InvalidInput as error:
                self.message_user(
                    request,
                    f"{str(backtest.id)[:8]} cannot run there: {error.errors}",
                    messages.ERROR,
                )
                continue
            services.backtest_execute_async(backtest=twin, owner=request.user)
            created.append(twin)
        if len(created) == 1:
            url = reverse("admin:backtests_backtest_change", args=[created[0].pk])
            self.message_user(
                request,
                format_html(
                    'Queued <a href="{}">{}</a> on {}.',
                    url,
                    str(created[0].id)[:8],
                    created[0].engine,
                ),
                messages.SUCCESS,
            )
        elif created:
            self.message_user(
                request, f"Queued {len(created)} backtests on the other engine.", messages.SUCCESS
            )

    @admin.action(description="Compare the selected backtests (2–10)")
    def compare_selected(self, request, queryset):
        ids = [str(pk) for pk in queryset.order_by("created_at").values_list("pk", flat=True)]
        if not MIN_COMPARED <= len(ids) <= MAX_COMPARED:
            self.message_user(
                request,
                f"Select between {MIN_COMPARED} and {MAX_COMPARED} backtests to compare "
                f"({len(ids)} selected).",
                messages.ERROR,
            )
            return None
        return HttpResponseRedirect(f"{reverse('pages:compare')}?ids={','.join(ids)}")


@admin.register(Sweep)
class SweepAdmin(admin.ModelAdmin):
    list_display = (
        "short_id",
        "strategy",
        "engine",
        "rank_metric",
        "runs",
        "progress",
        "owner",
        "created_at",
    )
    list_filter = ("engine", "strategy", "owner")
    search_fields = ("id", "strategy__name", "rank_metric")
    list_select_related = ("strategy", "owner", "task")
    fields = (
        "id",
        "page_link",
        "strategy",
        "engine",
        "rank_metric",
        "owner",
        "progress",
        "leaderboard",
        "grid_display",
        "created_at",
        "updated_at",
    )
    # The grid and its runs are what the service validated and queued; they are not edited.
    readonly_fields = fields

    def has_add_permission(self, request):
        # A sweep's grid is validated and its runs queued by the service (strategy page or API).
        return False

    @admin.display(description="Sweep", ordering="created_at")
    def short_id(self, sweep):
        return str(sweep.id)[:8]

    @admin.display(description="Runs")
    def runs(self, sweep):
        return len(sweep.param_grid or [])

    @admin.display(description="Progress")
    def progress(self, sweep):
        task = getattr(sweep, "task", None) if sweep.pk else None
        if task is None:
            return "—"
        return f"{task.done}/{task.total} ({task.get_status_display()})"

    @admin.display(description="Analyst page")
    def page_link(self, sweep):
        if sweep.pk is None:
            return "—"
        return format_html(
            '<a href="{}">Open the sweep page</a>', reverse("pages:sweep-detail", args=[sweep.pk])
        )

    @admin.display(description="Leaderboard")
    def leaderboard(self, sweep):
        if sweep.pk is None:
            return "—"
        entries = selectors.sweep_leaderboard(sweep)
        if not entries:
            return "No runs yet."
        rows = format_html_join(
            "",
            '<tr><td>{}</td><td><a href="{}">{}</a></td><td><code>{}</code></td><td>{}</td>'
            '<td style="text-align: right">{}</td></tr>',
            (
                (
                    entry.get("rank") or "—",
                    reverse("admin:backtests_backtest_change", args=[entry["backtest_id"]]),
                    str(entry["backtest_id"])[:8],
                    json.dumps(entry.get("overrides"), sort_keys=True),
                    entry.get("status"),
                    entry["score_display"],
                )
                for entry in entries
            ),
        )
        return format_html(
            "<table><thead><tr><th>Rank</th><th>Run</th><th>Overrides</th><th>Status</th>"
            "<th>{}</th></tr></thead><tbody>{}</tbody></table>",
            sweep.rank_metric,
            rows,
        )

    @admin.display(description="Grid")
    def grid_display(self, sweep):
        return _pretty_json({"base_config": sweep.base_config, "param_grid": sweep.param_grid})


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "kind",
        "status",
        "done",
        "total",
        "subject",
        "owner",
        "created_at",
        "finished_at",
    )
    list_filter = ("kind", "status", "owner")
    search_fields = ("id", "backtest__id", "sweep__id", "error")
    list_select_related = ("backtest", "sweep", "owner")
    readonly_fields = (
        "id",
        "kind",
        "status",
        "done",
        "total",
        "subject",
        "result_display",
        "error",
        "owner",
        "created_at",
        "updated_at",
        "started_at",
        "finished_at",
    )
    fields = readonly_fields

    def has_add_permission(self, request):
        # A task exists only because a service dispatched work; one made by hand would never run.
        return False

    @admin.display(description="Work")
    def subject(self, task):
        if task.sweep_id:
            return format_html(
                '<a href="{}">sweep {}</a>',
                reverse("admin:backtests_sweep_change", args=[task.sweep_id]),
                str(task.sweep_id)[:8],
            )
        if task.backtest_id:
            return format_html(
                '<a href="{}">backtest {}</a>',
                reverse("admin:backtests_backtest_change", args=[task.backtest_id]),
                str(task.backtest_id)[:8],
            )
        if task.kind == Task.Kind.WALK_FORWARD:
            walk_forward = getattr(task, "walk_forward", None)
            if walk_forward is not None:
                return format_html(
                    '<a href="{}">walk-forward {}</a>',
                    reverse("admin:backtests_walkforward_change", args=[walk_forward.pk]),
                    str(walk_forward.pk)[:8],
                )
        return "—"

    @admin.display(description="Result")
    def result_display(self, task):
        return _pretty_json(task.result) if task.result is not None else "—"


@admin.register(Robustness)
class RobustnessAdmin(admin.ModelAdmin):
    """Kept robustness results, read-only: they are computed by the API on request and the same
    request must keep getting the same answer."""

    list_display = (
        "id",
        "backtest_link",
        "run_number",
        "resamples",
        "confidence",
        "block_length_display",
        "seed",
        "status",
        "done",
        "total",
        "psr",
        "breakeven_cost_bps",
        "created_at",
        "completed_at",
    )
    list_filter = ("status", "research_spec_version")
    search_fields = ("id", "backtest__id", "error")
    list_select_related = ("backtest",)
    readonly_fields = (
        "id",
        "backtest_link",
        "run_number",
        "resamples",
        "confidence",
        "block_length_display",
        "seed",
        "status",
        "done",
        "total",
        "psr",
        "breakeven_cost_bps",
        "cost_rows",
        "result_display",
        "error",
        "research_spec_version",
        "created_at",
        "updated_at",
        "completed_at",
    )
    fields = readonly_fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Backtest")
    def backtest_link(self, robustness):
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:backtests_backtest_change", args=[robustness.backtest_id]),
            str(robustness.backtest_id)[:8],
        )

    @admin.display(description="Block length")
    def block_length_display(self, robustness):
        return "optimal" if robustness.block_length is None else robustness.block_length

    @admin.display(description="PSR")
    def psr(self, robustness):
        value = (robustness.result or {}).get("psr")
        return "—" if value is None else f"{value:.4f}"

    @admin.display(description="Break-even (bps)")
    def breakeven_cost_bps(self, robustness):
        value = ((robustness.result or {}).get("cost_sensitivity") or {}).get("breakeven_cost_bps")
        return "—" if value is None else f"{value:.2f}"

    @admin.display(description="Cost sensitivity")
    def cost_rows(self, robustness):
        rows = ((robustness.result or {}).get("cost_sensitivity") or {}).get("rows") or []
        if not rows:
            return "—"
        columns = ("multiplier", "commission", "slippage", "cagr", "sharpe", "max_drawdown")
        return format_html(
            "<table><tr>{}</tr>{}</table>",
            format_html_join("", "<th>{}</th>", ((column,) for column in columns)),
            format_html_join(
                "",
                "<tr>{}</tr>",
                (
                    (
                        format_html_join(
                            "",
                            "<td>{}</td>",
                            (("—" if row.get(c) is None else f"{row[c]:.6g}",) for c in columns),
                        ),
                    )
                    for row in rows
                ),
            ),
        )

    @admin.display(description="Result")
    def result_display(self, robustness):
        return _pretty_json(robustness.result) if robustness.result is not None else "—"


# Research models have their admin next to them; importing it here registers it.
from backtests.research import admin as research_admin  # noqa: E402, F401
from backtests.research.walk_forward import admin as walk_forward_admin  # noqa: E402, F401

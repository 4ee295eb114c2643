"""Admin for research sweeps, their chunks and entries (SPEC §11): progress, the leaderboard's
head and the overfitting block on a sweep's page; read-only, since the service validates and
queues everything a sweep runs."""

import json

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from backtests.research import selectors
from backtests.research.models import ResearchSweep, ResearchSweepChunk, ResearchSweepEntry
from metrics.presenters import v1_row_metrics

LEADERBOARD_HEAD = 20


def _pretty_json(document) -> str:
    return format_html(
        '<pre style="white-space: pre-wrap; margin: 0">{}</pre>',
        json.dumps(document, indent=2, sort_keys=True, default=str),
    )


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ResearchSweep)
class ResearchSweepAdmin(ReadOnlyAdmin):
    list_display = (
        "short_id",
        "strategy",
        "engine",
        "status",
        "progress",
        "n_skipped",
        "rank_metric",
        "owner",
        "created_at",
    )
    list_filter = ("status", "engine", "strategy", "owner")
    search_fields = ("id", "strategy__name", "rank_metric", "benchmark")
    list_select_related = ("strategy", "owner")
    fields = (
        "id",
        "strategy",
        "engine",
        "status",
        "progress",
        "rank_metric",
        "owner",
        "task",
        "costs",
        "statistics_settings",
        "leaderboard_head",
        "overfitting_display",
        "skipped_display",
        "request_display",
        "error",
        "returns_uri",
        "created_at",
        "started_at",
        "completed_at",
    )
    readonly_fields = fields

    @admin.display(description="Sweep", ordering="created_at")
    def short_id(self, sweep):
        return str(sweep.id)[:8]

    @admin.display(description="Progress")
    def progress(self, sweep):
        return f"{sweep.done}/{sweep.total}"

    @admin.display(description="Capital and costs")
    def costs(self, sweep):
        return (
            f"capital {sweep.initial_capital:,.2f}; commission {sweep.commission:g}; "
            f"slippage {sweep.slippage:g}"
        )

    @admin.display(description="Overfitting settings")
    def statistics_settings(self, sweep):
        return (
            f"benchmark {sweep.benchmark}; partitions {sweep.partitions}; "
            f"SPA reps {sweep.spa_reps}; seed {sweep.seed}"
        )

    @admin.display(description=f"Leaderboard (first {LEADERBOARD_HEAD})")
    def leaderboard_head(self, sweep):
        if sweep.pk is None:
            return "—"
        board = selectors.research_sweep_leaderboard(sweep=sweep, limit=LEADERBOARD_HEAD)
        if not board["entries"]:
            return "No entries yet."
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td>"
            '<td style="text-align: right">{}</td></tr>',
            (
                (
                    entry["rank"],
                    entry["number"],
                    json.dumps(entry["overrides"], sort_keys=True),
                    entry["status"],
                    "—" if entry["score"] is None else f"{entry['score']:.4f}",
                )
                for entry in board["entries"]
            ),
        )
        return format_html(
            "<table><thead><tr><th>Rank</th><th>Entry</th><th>Overrides</th><th>Status</th>"
            "<th>{}</th></tr></thead><tbody>{}</tbody></table>",
            sweep.rank_metric,
            rows,
        )

    @admin.display(description="Overfitting")
    def overfitting_display(self, sweep):
        return "—" if sweep.overfitting is None else _pretty_json(sweep.overfitting)

    @admin.display(description="Skipped combinations")
    def skipped_display(self, sweep):
        return "None" if not sweep.n_skipped else _pretty_json(sweep.skipped)

    @admin.display(description="Request")
    def request_display(self, sweep):
        return _pretty_json({"base_config": sweep.base_config, "grid": sweep.grid})


@admin.register(ResearchSweepChunk)
class ResearchSweepChunkAdmin(ReadOnlyAdmin):
    list_display = ("sweep_link", "number", "first", "size", "status", "attempts", "heartbeat_at")
    list_filter = ("status",)
    search_fields = ("sweep__id",)
    list_select_related = ("sweep",)

    @admin.display(description="Sweep", ordering="sweep")
    def sweep_link(self, chunk):
        url = reverse("admin:backtests_researchsweep_change", args=[chunk.sweep_id])
        return format_html('<a href="{}">{}</a>', url, str(chunk.sweep_id)[:8])


@admin.register(ResearchSweepEntry)
class ResearchSweepEntryAdmin(ReadOnlyAdmin):
    list_display = ("sweep_link", "number", "status", "score", "overrides_display")
    list_filter = ("status",)
    search_fields = ("sweep__id", "fingerprint")
    list_select_related = ("sweep",)
    fields = ("sweep", "chunk", "number", "overrides", "status", "score", "metrics_display",
              "fingerprint", "error")  # fmt: skip
    readonly_fields = fields

    @admin.display(description="Sweep", ordering="sweep")
    def sweep_link(self, entry):
        url = reverse("admin:backtests_researchsweep_change", args=[entry.sweep_id])
        return format_html('<a href="{}">{}</a>', url, str(entry.sweep_id)[:8])

    @admin.display(description="Overrides")
    def overrides_display(self, entry):
        return json.dumps(entry.overrides, sort_keys=True)

    @admin.display(description="Metrics")
    def metrics_display(self, entry):
        return _pretty_json(v1_row_metrics(entry.metrics))  # as the v1 contract shows them

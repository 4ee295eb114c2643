from django.contrib import admin

from backtests.models import Backtest, Sweep, Task


@admin.register(Backtest)
class BacktestAdmin(admin.ModelAdmin):
    list_display = ("id", "strategy", "engine", "status", "source", "owner", "created_at")
    list_filter = ("status", "engine", "source", "strategy", "owner")
    search_fields = ("id", "strategy__name", "user_ref", "fingerprint")
    readonly_fields = ("id", "created_at", "updated_at", "started_at", "completed_at")
    list_select_related = ("strategy", "owner")
    date_hierarchy = "created_at"


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "status", "done", "total", "owner", "created_at")
    list_filter = ("kind", "status")
    search_fields = ("id",)
    readonly_fields = ("id", "created_at", "updated_at", "started_at", "finished_at")


@admin.register(Sweep)
class SweepAdmin(admin.ModelAdmin):
    list_display = ("id", "strategy", "engine", "rank_metric", "owner", "created_at")
    list_filter = ("engine", "strategy", "owner")
    search_fields = ("id", "strategy__name")
    readonly_fields = ("id", "created_at", "updated_at")

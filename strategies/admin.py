from django.contrib import admin

from strategies.models import Strategy


@admin.register(Strategy)
class StrategyAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "timeframe", "status", "version", "owner", "created_at")
    list_filter = ("kind", "status", "timeframe", "owner")
    search_fields = ("name", "description", "id")
    readonly_fields = ("id", "created_at", "updated_at")
    date_hierarchy = "created_at"

from django.contrib import admin

from marketdata.models import PriceSeries


@admin.register(PriceSeries)
class PriceSeriesAdmin(admin.ModelAdmin):
    list_display = ("symbol", "first_date", "last_date", "rows", "uploaded_by", "created_at")
    search_fields = ("symbol", "description")
    readonly_fields = ("first_date", "last_date", "rows", "sha256", "created_at", "updated_at")
    exclude = ("data",)

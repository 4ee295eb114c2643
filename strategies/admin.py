import json

from django import forms
from django.contrib import admin
from django.db.models import Count
from django.urls import reverse
from django.utils.html import format_html

from strategies.language import validate_definition
from strategies.models import Strategy


class PrettyJSONField(forms.JSONField):
    """Shows the document indented, so a definition reads like the strategy it is."""

    def prepare_value(self, value):
        if isinstance(value, str):
            return value
        return json.dumps(value, indent=2, ensure_ascii=False)


class StrategyAdminForm(forms.ModelForm):
    definition = PrettyJSONField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 20, "cols": 90, "style": "font-family: monospace"}),
        help_text="A strategy-language definition (SPEC §4); validated when saved.",
    )
    universe = PrettyJSONField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 90, "style": "font-family: monospace"}),
        help_text='A JSON list of symbols, e.g. ["SPY", "TLT"].',
    )

    class Meta:
        model = Strategy
        fields = (
            "name",
            "description",
            "kind",
            "timeframe",
            "status",
            "version",
            "universe",
            "definition",
            "owner",
        )

    def clean_universe(self):
        universe = self.cleaned_data.get("universe")
        if universe in (None, ""):
            return []
        if not isinstance(universe, list) or not all(isinstance(s, str) for s in universe):
            raise forms.ValidationError("The universe is a JSON list of symbols.")
        return universe

    def clean(self):
        cleaned = super().clean()
        definition, kind = cleaned.get("definition"), cleaned.get("kind")
        if definition is not None and kind:
            problems = validate_definition(kind, definition)
            if problems:
                self.add_error("definition", [str(problem) for problem in problems])
        return cleaned


@admin.register(Strategy)
class StrategyAdmin(admin.ModelAdmin):
    form = StrategyAdminForm
    list_display = (
        "name",
        "kind",
        "timeframe",
        "status",
        "version",
        "backtest_count",
        "owner",
        "created_at",
    )
    list_filter = ("kind", "status", "timeframe", "owner")
    search_fields = ("name", "description", "id")
    readonly_fields = ("id", "created_at", "updated_at", "page_link")
    list_select_related = ("owner",)
    date_hierarchy = "created_at"
    fieldsets = (
        (None, {"fields": ("name", "description", "kind", "timeframe", "status", "version")}),
        ("Definition", {"fields": ("universe", "definition")}),
        ("Record", {"fields": ("owner", "id", "created_at", "updated_at", "page_link")}),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(backtest_total=Count("backtests"))

    @admin.display(description="Backtests", ordering="backtest_total")
    def backtest_count(self, strategy):
        return strategy.backtest_total

    @admin.display(description="Analyst page")
    def page_link(self, strategy):
        if strategy.pk is None:
            return "—"
        url = reverse("pages:strategy-detail", args=[strategy.pk])
        return format_html(
            '<a href="{}">Open the strategy page (start a backtest or a sweep)</a>', url
        )

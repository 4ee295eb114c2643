"""Filters and sorting of the backtest list page (query-string driven, so links can be shared)."""

import django_filters
from django.contrib.auth import get_user_model

from backtests.filters import BacktestFilter
from strategies.models import Strategy

SORTABLE_FIELDS = (
    ("created_at", "created"),
    ("completed_at", "completed"),
    ("engine", "engine"),
    ("status", "status"),
    ("strategy__name", "strategy"),
    ("initial_capital", "capital"),
    ("metric_total_return", "total_return"),
    ("metric_perf_sharpe_ratio", "sharpe"),
    ("metric_risk_max_drawdown", "max_drawdown"),
)


class BacktestPageFilter(BacktestFilter):
    """The API's filters, plus what a person picks from lists: strategy and owner by name,
    free-text search, and sorting (the metric sorts need ``selectors.backtests_for_list``)."""

    strategy = django_filters.ModelChoiceFilter(queryset=Strategy.objects.all())
    owner = django_filters.ModelChoiceFilter(queryset=get_user_model().objects.all())
    q = django_filters.CharFilter(method="search", label="Search")
    sort = django_filters.OrderingFilter(fields=SORTABLE_FIELDS, label="Sort by")

    class Meta(BacktestFilter.Meta):
        fields = [*BacktestFilter.Meta.fields, "strategy", "owner"]

    def search(self, queryset, name, value):
        from django.db.models import Q

        text = value.strip()
        return queryset.filter(
            Q(strategy__name__icontains=text)
            | Q(user_ref__icontains=text)
            | Q(fingerprint__istartswith=text)
        )

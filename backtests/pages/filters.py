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


def _engine_choices() -> list[tuple[str, str]]:
    """The registered engines and any other engine a stored run names, picked from a list."""
    from backtests.engines.registry import available_engines
    from backtests.models import Backtest

    stored = Backtest.objects.order_by().values_list("engine", flat=True).distinct()
    names = sorted({*available_engines(), *stored})
    return [(name, name) for name in names]


class BacktestPageFilter(BacktestFilter):
    """The API's filters, plus what a person picks from lists: strategy and owner by name,
    free-text search, and sorting (the metric sorts need ``selectors.backtests_for_list``)."""

    engine = django_filters.ChoiceFilter(choices=_engine_choices, label="Engine")
    strategy = django_filters.ModelChoiceFilter(queryset=Strategy.objects.all())
    owner = django_filters.ModelChoiceFilter(queryset=get_user_model().objects.all())
    q = django_filters.CharFilter(method="search", label="Search")
    sort = django_filters.OrderingFilter(fields=SORTABLE_FIELDS, label="Sort by")

    class Meta(BacktestFilter.Meta):
        fields = [*BacktestFilter.Meta.fields, "strategy", "owner"]

    def search(self, queryset, name, value):
        from django.db.models import Q

        text = value.strip()
        if not text:
            return queryset
        # Strategy and portfolio names, symbols (one or several), built-in strategy keys.
        return queryset.filter(
            Q(strategy__name__icontains=text)
            | Q(config__name__icontains=text)
            | Q(config__symbol__iexact=text)
            | Q(config__symbols__icontains=f'"{text}"')
            | Q(config__signal_plugin_key__icontains=text)
            | Q(strategy__universe__icontains=f'"{text}"')
            | Q(user_ref__icontains=text)
            | Q(fingerprint__istartswith=text)
        )

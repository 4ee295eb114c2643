"""One FilterSet for backtests, shared by the v1 list endpoint and the HTML list page."""

import django_filters

from backtests.models import Backtest


class BacktestFilter(django_filters.FilterSet):
    strategy_id = django_filters.UUIDFilter(field_name="strategy_id")
    status = django_filters.ChoiceFilter(choices=Backtest.Status.choices)
    engine = django_filters.CharFilter(field_name="engine")
    source = django_filters.ChoiceFilter(choices=Backtest.Source.choices)

    class Meta:
        model = Backtest
        fields = ["strategy_id", "status", "engine", "source"]

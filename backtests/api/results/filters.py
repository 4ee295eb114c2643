"""The results API's list filters and ordering (``GET /api/backtests``), worded as this contract
words a bad value (``"status: \\"done\\" is not a valid choice."``)."""

from __future__ import annotations

import django_filters
from django.db.models import F
from rest_framework import serializers

from backtests.api.v1.filters import choice_filter, uuid_filter
from backtests.models import Backtest

SORT_FIELDS = {"createdAt": "created_at", "completedAt": "completed_at", "status": "status"}
STATUSES = ["pending", "running", "completed", "failed"]
DEFAULT_SORT = "createdAt"
DEFAULT_ORDER = "desc"


def _choices(values) -> list[tuple[str, str]]:
    return [(value, value) for value in values]


def statuses_for_filter(status: str) -> list[str]:
    """Row statuses behind a ``status`` filter: ``running`` covers queued runs too."""
    if status == "running":
        return [Backtest.Status.PENDING, Backtest.Status.RUNNING]
    return [status]


class ResultsBacktestFilter(django_filters.FilterSet):
    algorithmId = uuid_filter("must be a valid algorithm id (UUID)", field_name="strategy_id")
    status = choice_filter(
        _choices(STATUSES), serializers.ChoiceField(choices=STATUSES), method="filter_status"
    )
    # ``sort`` and ``order`` together order the rows (``filter_queryset``).
    sort = choice_filter(
        _choices(SORT_FIELDS),
        serializers.ChoiceField(choices=list(SORT_FIELDS), default=DEFAULT_SORT),
        method="keep",
    )
    order = choice_filter(
        _choices(["asc", "desc"]),
        serializers.ChoiceField(choices=["asc", "desc"], default=DEFAULT_ORDER),
        method="keep",
    )

    class Meta:
        model = Backtest
        fields = ["algorithmId", "status", "sort", "order"]

    def filter_status(self, queryset, name, value):
        return queryset.filter(status__in=statuses_for_filter(value))

    def keep(self, queryset, name, value):
        return queryset

    def filter_queryset(self, queryset):
        """Filtered, then ordered by ``sort`` (runs without the value last either way), newest
        first on ties when descending, oldest first when ascending."""
        queryset = super().filter_queryset(queryset)
        column = F(SORT_FIELDS[self.form.cleaned_data.get("sort") or DEFAULT_SORT])
        descending = (self.form.cleaned_data.get("order") or DEFAULT_ORDER) == "desc"
        ordering = column.desc(nulls_last=True) if descending else column.asc(nulls_last=True)
        tiebreak = ("-created_at", "-id") if descending else ("created_at", "id")
        return queryset.order_by(ordering, *tiebreak)

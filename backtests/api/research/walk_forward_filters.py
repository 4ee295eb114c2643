"""The walk-forward list's filters, worded and documented as the v1 lists' (``backtests.api.v1.
filters``): a bad value is a v1 400 naming the parameter."""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from backtests.api.research.walk_forward_serializers import (
    WalkForwardSchemeField,
    WalkForwardStatusField,
)
from backtests.api.v1.filters import NonBlankCharFilter, choice_filter, uuid_filter
from backtests.research.walk_forward.models import WalkForward


class WalkForwardFilter(django_filters.FilterSet):
    strategy_id = uuid_filter(field_name="strategy_id")
    status = choice_filter(WalkForward.Status.choices, WalkForwardStatusField())
    engine = extend_schema_field(serializers.CharField())(NonBlankCharFilter(field_name="engine"))
    scheme = choice_filter(WalkForward.Scheme.choices, WalkForwardSchemeField())

    class Meta:
        model = WalkForward
        fields = ["strategy_id", "status", "engine", "scheme"]

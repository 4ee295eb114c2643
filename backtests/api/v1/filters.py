"""The v1 lists' filters: the shared FilterSets with the v1 contract's wording for a bad value
(``{"status": ['"done" is not a valid choice.']}``) and each parameter documented as the v1
contract states it."""

from __future__ import annotations

import django_filters
from django import forms
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from backtests.api.v1.serializers import BacktestSourceField, BacktestStatusField
from backtests.filters import BacktestFilter
from backtests.models import Backtest

INVALID_CHOICE = '"%(value)s" is not a valid choice.'
INVALID_UUID = "Must be a valid UUID."
BLANK = "This field may not be blank."


class NonBlankCharField(forms.CharField):
    """Text that, once trimmed, must not be empty when it is sent (``?engine=`` is not sent;
    ``?engine=%20`` is blank)."""

    def to_python(self, value):
        text = super().to_python(value)
        if value not in self.empty_values and text == "":
            raise forms.ValidationError(BLANK, code="blank")
        return text


class NonBlankCharFilter(django_filters.CharFilter):
    field_class = NonBlankCharField


def choice_filter(choices, documented_as: serializers.Field | None = None, **kwargs):
    """A choice filter worded as the contract's serializers word a choice (and documented as
    ``documented_as`` says, when given)."""
    choice = django_filters.ChoiceFilter(
        choices=choices, error_messages={"invalid_choice": INVALID_CHOICE}, **kwargs
    )
    return extend_schema_field(documented_as)(choice) if documented_as is not None else choice


def uuid_filter(message: str = INVALID_UUID, **kwargs):
    """A UUID exactly as DRF reads one (no trimming), worded as the contract words it."""
    return extend_schema_field(serializers.UUIDField())(
        django_filters.UUIDFilter(strip=False, error_messages={"invalid": message}, **kwargs)
    )


class V1BacktestFilter(BacktestFilter):
    strategy_id = uuid_filter(field_name="strategy_id")
    status = choice_filter(Backtest.Status.choices, BacktestStatusField())
    engine = extend_schema_field(serializers.CharField())(NonBlankCharFilter(field_name="engine"))
    source = choice_filter(Backtest.Source.choices, BacktestSourceField())

    class Meta(BacktestFilter.Meta):
        pass

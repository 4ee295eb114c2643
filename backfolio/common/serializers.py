"""Serializer behaviour every contract shares."""

from collections.abc import Mapping
from functools import cached_property
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


class StrictFieldsMixin:
    """Reject keys the serializer does not declare: a typo must not be silently ignored."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = [key for key in data if key not in self.fields]
            if unknown:
                raise serializers.ValidationError({key: ["Unknown field."] for key in unknown})
        return super().to_internal_value(data)


# A response shape that both renders and documents itself.
#
# ``present(instance)`` gives every declared field's value, already in the contract's units
# and JSON types (the core's presenters compute them); the declared fields are the shape, so
# drf-spectacular documents exactly what is rendered. A field whose value is a presenting
# serializer (or a list of one) renders that part; any other field passes its value through
# as it is, so that the numbers are the presenters' own to the last digit. A field declared
# ``required=False`` is one the shape may leave out (the document does not require it):
# ``present`` omits it when it does not apply. Any other difference between ``present``'s
# keys and the declared fields is a programming error, raised at once.
#
# A shape whose values are a stored document (a saved run's report, a stored trade table) sets
# ``stored = True``: a document saved long ago reads today exactly as it did then. It is
# presented as it was stored: in its own key order, without the keys an older form lacks, with
# the columns another engine or a newer form added, and its declared nested parts rendered by
# their own (stored) shapes. The declared fields are what the current form holds, and what the
# document shows.
# (A comment, not a docstring: drf-spectacular would show it on every shape that has none.)
class PresentingSerializer(serializers.Serializer):
    stored = False

    def present(self, instance) -> Mapping[str, Any]:
        """The values by field name; the default is an instance that already is that mapping."""
        return instance

    def to_representation(self, instance) -> dict[str, Any]:
        values = self.present(instance)
        if self.stored:
            return self._as_stored(values)
        if type(values) is dict and tuple(values) == self._flat_order:
            return values  # already the shape, in its order, with no part to render
        names, plan = self._shape
        if values.keys() != names and not self._fits(values):
            raise ImproperlyConfigured(
                f"{type(self).__name__}.present gave {sorted(values)}, "
                f"the shape declares {sorted(names)}"
            )
        body: dict[str, Any] = {}
        for name, nested in plan:
            if name in values:
                value = values[name]
                body[name] = (
                    value if nested is None or value is None else nested.to_representation(value)
                )
        return body

    def _as_stored(self, values: Any) -> Any:
        if not isinstance(values, Mapping):
            return values  # a part an old form held differently: as it was stored
        nested = self._nested
        body: dict[str, Any] = {}
        for name, value in values.items():
            part = nested.get(name)
            many = isinstance(part, serializers.ListSerializer)
            fits = isinstance(value, list if many else Mapping)
            body[name] = part.to_representation(value) if part is not None and fits else value
        return body

    @cached_property
    def _flat_order(self) -> tuple[str, ...] | None:
        """The declared names in order when no field renders a part of its own."""
        plan = self._shape[1]
        return None if any(nested is not None for _, nested in plan) else tuple(self.fields)

    @cached_property
    def _nested(self) -> dict[str, Any]:
        """The declared fields that render their part, by name."""
        return {name: nested for name, nested in self._shape[1] if nested is not None}

    @cached_property
    def _shape(self) -> tuple[frozenset[str], tuple[tuple[str, Any], ...]]:
        """The declared names, and each field in order with itself when it renders its part."""
        fields = self.fields
        return frozenset(fields), tuple(
            (name, field if isinstance(field, serializers.BaseSerializer) else None)
            for name, field in fields.items()
        )

    def _fits(self, values: Mapping[str, Any]) -> bool:
        """Every key a declared field, and only fields that may be left out are missing."""
        fields = self.fields
        return values.keys() <= fields.keys() and all(
            not field.required for name, field in fields.items() if name not in values
        )


def inline_choice_field(choices: list[str]):
    """A ChoiceField documented as a string with a pattern of its values: three contracts each
    have a ``status`` with its own values, and enum components named after the field collide."""

    schema = {
        "type": "string",
        "pattern": "^(" + "|".join(choices) + ")$",
        "description": "One of: " + ", ".join(choices) + ".",
    }

    @extend_schema_field(schema)
    class InlineChoiceField(serializers.ChoiceField):
        def __init__(self, **kwargs):
            super().__init__(choices=list(choices), **kwargs)

    return InlineChoiceField

"""Serializer behaviour every contract shares."""

from rest_framework import serializers


class StrictFieldsMixin:
    """Reject keys the serializer does not declare: a typo must not be silently ignored."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = [key for key in data if key not in self.fields]
            if unknown:
                raise serializers.ValidationError({key: ["Unknown field."] for key in unknown})
        return super().to_internal_value(data)

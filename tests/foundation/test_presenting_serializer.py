"""``PresentingSerializer``: a current shape is exact; a stored shape presents what was stored."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from rest_framework import serializers

from backfolio.common.serializers import PresentingSerializer


class Point(PresentingSerializer):
    stored = True
    day = serializers.CharField()
    value = serializers.FloatField()


class Report(PresentingSerializer):
    stored = True
    name = serializers.CharField()
    points = Point(many=True)
    latest = Point()


class Envelope(PresentingSerializer):
    ok = serializers.BooleanField()
    report = Report()


def test_a_stored_document_keeps_its_order_and_its_keys():
    stored = {
        "retired": [1, 2],
        "latest": {"value": 2.0, "note": "added later", "day": "2020-01-02"},
        "points": [{"value": 1.0}, {"day": "2020-01-02", "value": 2.0}],
    }
    body = Envelope().to_representation({"ok": True, "report": stored})
    assert body == {"ok": True, "report": stored}
    assert list(body["report"]) == ["retired", "latest", "points"]
    assert list(body["report"]["latest"]) == ["value", "note", "day"]


def test_a_stored_part_held_in_another_form_is_passed_through():
    stored = {"points": {"2020-01-02": 2.0}, "latest": [1.0], "name": None}
    assert Report().to_representation(stored) == stored
    assert Report().to_representation([1, 2]) == [1, 2]


def test_a_current_shape_still_refuses_other_keys():
    with pytest.raises(ImproperlyConfigured, match=r"gave \['extra', 'ok', 'report'\]"):
        Envelope().to_representation({"ok": True, "report": {}, "extra": 1})

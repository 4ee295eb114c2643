"""The v1 contract's base views and the error responses every v1 operation documents."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiResponse
from rest_framework.generics import GenericAPIView
from rest_framework.views import APIView

from backfolio.common.openapi import ErrorDetailSerializer
from backfolio.common.pagination import CheckedListMixin
from backfolio.common.v1.exceptions import VALIDATION_ERRORS_SCHEMA, V1ErrorsMixin
from backfolio.common.v1.pagination import V1Pagination

ERRORS_400 = OpenApiResponse(
    VALIDATION_ERRORS_SCHEMA,
    description="Invalid input: field → messages; documents keyed by path inside them.",
    examples=[
        OpenApiExample(
            "Unknown strategy",
            value={"strategy_id": ["Strategy 0b9e… does not exist."]},
            response_only=True,
        ),
        OpenApiExample(
            "Bad config",
            value={"config": {"start_date": ["Invalid date '2020-13-01': expected YYYY-MM-DD."]}},
            response_only=True,
        ),
    ],
)
ERROR_404 = OpenApiResponse(ErrorDetailSerializer, description="Unknown id (or not yours).")
ERROR_409 = OpenApiResponse(ErrorDetailSerializer, description="The row's state forbids it.")


class V1View(V1ErrorsMixin, APIView):
    pass


class V1ListView(CheckedListMixin, V1ErrorsMixin, GenericAPIView):
    """A v1 list: ``get_queryset`` (what the caller may see, in order), ``filterset_class`` for
    its query parameters and ``serializer_class`` for its rows; ``get`` answers the page as a
    bare array, every bad parameter in one v1 400."""

    pagination_class = V1Pagination

    def get(self, request, *args, **kwargs):
        return self.list(request, *args, **kwargs)


def validated(serializer_class, data, **kwargs):
    """The serializer's validated data, or the v1 400 naming each field."""
    serializer = serializer_class(data=data if data is not None else {}, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data

"""What the three contracts' paginators and lists share: paging parameters that are checked, not
clamped, and one 400 that names every bad query parameter of a list at once.

DRF's paginators read a bad ``limit`` as the default and a page past the end as a 404; every
contract here answers a bad paging parameter with its own 400 naming the parameter, and a page
past the end with an empty page. A contract's paginator (``backtests/api/<contract>/pagination.py``)
subclasses DRF's ``LimitOffsetPagination`` or ``PageNumberPagination`` with
:class:`CheckedParameters`, declares its parameters as serializer fields (their bounds are the
contract's), renders its envelope (``get_paginated_response``) and documents it
(``get_paginated_response_schema``, ``get_schema_operation_parameters``).

A list view is a ``GenericAPIView`` with :class:`CheckedListMixin`: its queryset, a FilterSet
(``filterset_class``, through ``DjangoFilterBackend``) and ``pagination_class``; ``list`` returns
the page in the contract's envelope.
"""

from __future__ import annotations

from typing import Any

from django_filters.utils import translate_validation
from rest_framework import serializers
from rest_framework.exceptions import ValidationError


class CheckedParameters:
    """A paginator whose parameters are validated by serializer fields (``parameter_fields``,
    in the order their errors are listed): ``parameter_errors`` says what is wrong with them,
    ``parameters`` is their values (defaults filled) once they are right."""

    def parameter_fields(self) -> dict[str, serializers.Field]:
        raise NotImplementedError

    def parameter_errors(self, request) -> dict[str, Any]:
        """Every bad paging parameter of ``request`` (empty when they are all right)."""
        cached = getattr(self, "_checked", None)
        if cached is not None and cached[0] is request:
            return cached[1]
        serializer = type("PagingParameters", (serializers.Serializer,), self.parameter_fields())(
            data=request.query_params
        )
        valid = serializer.is_valid()
        self._values = dict(serializer.validated_data) if valid else {}
        self._checked = (request, {} if valid else dict(serializer.errors))
        return self._checked[1]

    def parameters(self, request) -> dict[str, Any]:
        """The paging parameters' values; a ``ValidationError`` naming each bad one."""
        if errors := self.parameter_errors(request):
            raise ValidationError(errors)
        return self._values


def integer_parameter(
    name: str, *, minimum: int, maximum: int, default: int | None = None, description: str = ""
) -> dict[str, Any]:
    """An optional integer query parameter as the OpenAPI document states it."""
    schema: dict[str, Any] = {"type": "integer"}
    if maximum > 2**31 - 1:
        schema["format"] = "int64"
    schema.update({"minimum": minimum, "maximum": maximum})
    if default is not None:
        schema["default"] = default
    parameter: dict[str, Any] = {"name": name, "in": "query", "required": False, "schema": schema}
    if description:
        parameter["description"] = description
    return parameter


def check_query(request, paginator: CheckedParameters | None, filterset=None) -> None:
    """One ``ValidationError`` naming every bad query parameter of a list: the paging ones
    first (each contract lists them so), then the FilterSet's in its declaration order."""
    errors = dict(paginator.parameter_errors(request)) if paginator is not None else {}
    if filterset is not None and not filterset.is_valid():
        errors.update(translate_validation(filterset.errors).detail)
    if errors:
        raise ValidationError(errors)


class CheckedListMixin:
    """For a ``GenericAPIView`` list: every bad query parameter in one 400 (``check_query``),
    the page in the paginator's envelope."""

    def filter_queryset(self, queryset):
        paging = self.paginator.parameter_errors(self.request) if self.paginator else {}
        try:
            queryset = super().filter_queryset(queryset)
        except ValidationError as invalid:
            if isinstance(invalid.detail, dict):
                raise ValidationError({**paging, **invalid.detail}) from invalid
            raise
        if paging:
            raise ValidationError(paging)
        return queryset

    def list(self, request, *args, **kwargs):
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(self.present(page))

    def present(self, rows) -> Any:
        """The page's rows as the contract shows them (the view's serializer by default)."""
        return self.get_serializer(rows, many=True).data

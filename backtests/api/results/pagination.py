"""The results API's paging: ``page`` (1-based) of ``limit`` rows, in
``{"data": [...], "pagination": {"page", "limit", "total", "totalPages"}}``.

A page past the end is an empty ``data`` with the true ``total`` (never a 404), and a bad
``page`` or ``limit`` is this contract's 400 naming it (``"limit: Ensure this value is …"``).
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response

from backfolio.common.pagination import CheckedParameters, integer_parameter
from backfolio.limits import MAX_LIST_PAGE

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


class ResultsPagination(CheckedParameters, PageNumberPagination):
    page_query_param = "page"
    page_size_query_param = "limit"
    page_size = DEFAULT_PAGE_SIZE
    max_page_size = MAX_PAGE_SIZE
    # Bounded so that the page number (echoed back) and its offset fit 64 bits.
    max_page = MAX_LIST_PAGE

    def parameter_fields(self) -> dict[str, serializers.Field]:
        return {
            self.page_query_param: serializers.IntegerField(
                min_value=1, max_value=self.max_page, default=1
            ),
            self.page_size_query_param: serializers.IntegerField(
                min_value=1, max_value=self.max_page_size, default=self.page_size
            ),
        }

    def get_page_size(self, request) -> int:
        return self.parameters(request)[self.page_size_query_param]

    def paginate_queryset(self, queryset, request, view=None) -> list:
        self.request = request
        self.page_number = self.parameters(request)[self.page_query_param]
        self.limit = self.get_page_size(request)
        self.total = queryset.count()
        offset = (self.page_number - 1) * self.limit
        # A page past the end is empty; never hand the database an offset it cannot hold.
        return list(queryset[offset : offset + self.limit]) if offset < self.total else []

    def get_paginated_response(self, data) -> Response:
        return Response(
            {
                "data": data,
                "pagination": {
                    "page": self.page_number,
                    "limit": self.limit,
                    "total": self.total,
                    "totalPages": (self.total + self.limit - 1) // self.limit,
                },
            }
        )

    def get_paginated_response_schema(self, schema: dict) -> dict:
        integer = {"type": "integer"}
        return {
            "type": "object",
            "properties": {
                "data": schema,
                "pagination": {
                    "type": "object",
                    "properties": {
                        "page": integer,
                        "limit": integer,
                        "total": integer,
                        "totalPages": integer,
                    },
                    "required": ["page", "limit", "total", "totalPages"],
                },
            },
            "required": ["data", "pagination"],
        }

    def get_schema_operation_parameters(self, view) -> list[dict[str, Any]]:
        return [
            integer_parameter(self.page_query_param, minimum=1, maximum=self.max_page, default=1),
            integer_parameter(
                self.page_size_query_param,
                minimum=1,
                maximum=self.max_page_size,
                default=self.page_size,
            ),
        ]

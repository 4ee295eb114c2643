"""The v1 contract's paging: ``skip`` rows, then at most ``limit`` (SPEC §2).

A v1 list (backtests, strategies, and any research list) is the bare array of the page's rows;
a bad ``skip`` or ``limit`` is the v1 400 naming it (``{"limit": ["Ensure this value is …"]}``).
A list view uses it with ``pagination_class = V1Pagination`` (see ``backtests.api.v1.views.
V1ListView``). A research sweep's leaderboard is a page inside the sweep's body:
:class:`LeaderboardPagination` gives it with its count.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response

from backfolio.common.pagination import CheckedParameters, integer_parameter
from backfolio.limits import MAX_LIST_OFFSET


class V1Pagination(CheckedParameters, LimitOffsetPagination):
    offset_query_param = "skip"
    limit_query_param = "limit"
    default_limit = 100
    max_limit = 1000
    max_offset = MAX_LIST_OFFSET

    def parameter_fields(self) -> dict[str, serializers.Field]:
        return {
            self.offset_query_param: serializers.IntegerField(
                min_value=0, max_value=self.max_offset, default=0
            ),
            self.limit_query_param: serializers.IntegerField(
                min_value=1, max_value=self.max_limit, default=self.default_limit
            ),
        }

    def get_limit(self, request) -> int:
        return self.parameters(request)[self.limit_query_param]

    def get_offset(self, request) -> int:
        return self.parameters(request)[self.offset_query_param]

    def paginate_queryset(self, queryset, request, view=None) -> list:
        """The rows ``skip`` to ``skip + limit`` (no count: a v1 list does not say how many)."""
        self.request = request
        self.limit = self.get_limit(request)
        self.offset = self.get_offset(request)
        return list(queryset[self.offset : self.offset + self.limit])

    def get_paginated_response(self, data) -> Response:
        return Response(data)

    def get_paginated_response_schema(self, schema: dict) -> dict:
        return schema

    def get_schema_operation_parameters(self, view) -> list[dict[str, Any]]:
        return [
            integer_parameter(
                self.offset_query_param, minimum=0, maximum=self.max_offset, default=0
            ),
            integer_parameter(
                self.limit_query_param,
                minimum=1,
                maximum=self.max_limit,
                default=self.default_limit,
            ),
        ]


class LeaderboardPagination(V1Pagination):
    """A research sweep's leaderboard: ``{count, skip, limit, sort, order, entries}``. The
    entries are ranked in memory, so ``skip`` may be any 64-bit offset."""

    max_offset = 2**63 - 1

    def paginate_queryset(self, queryset, request, view=None) -> list:
        self.count = self.get_count(queryset)
        return super().paginate_queryset(queryset, request, view)

    def leaderboard(self, entries: list, *, sort: str, order: str) -> dict[str, Any]:
        """The page of ``entries`` (already shown as the contract shows an entry) with its
        count and the ordering it was read in."""
        return {
            "count": self.count,
            "skip": self.offset,
            "limit": self.limit,
            "sort": sort,
            "order": order,
            "entries": entries,
        }

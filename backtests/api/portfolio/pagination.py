"""The Backfolio contract's paging of saved runs: ``limit``/``offset`` when either is given,
else ``page`` (1-based) and ``page_size``; the envelope echoes the pair used, counts every run
and links the next and previous pages with the same pair (other query parameters kept).

A bad value is this contract's 400 ``{"error": "Invalid pagination", …}`` naming the first bad
parameter (``limit`` before ``offset``, ``page`` before ``page_size``) and its bounds.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from rest_framework import status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response

from backfolio.limits import MAX_LIST_OFFSET, MAX_LIST_PAGE

from .errors import PortfolioApiError

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
INVALID_PAGINATION = "Invalid pagination"


def _whole_number(params, name: str, *, minimum: int, maximum: int) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or value < minimum or value > maximum:
        raise PortfolioApiError(
            status_code=status.HTTP_400_BAD_REQUEST,
            error=INVALID_PAGINATION,
            messages=[
                f"{name} must be a whole number between {minimum} and {maximum}, got '{raw}'"
            ],
        )
    return value


class PortfolioPagination(LimitOffsetPagination):
    limit_query_param = "limit"
    offset_query_param = "offset"
    page_query_param = "page"
    page_size_query_param = "page_size"
    default_limit = DEFAULT_PAGE_SIZE
    max_limit = MAX_PAGE_SIZE
    max_offset = MAX_LIST_OFFSET
    max_page = MAX_LIST_PAGE

    def parameters(self, request) -> tuple[int, int, dict[str, int]]:
        """(limit, offset, the paging pair to echo)."""
        params = request.query_params
        if self.limit_query_param in params or self.offset_query_param in params:
            limit = _whole_number(params, self.limit_query_param, minimum=1, maximum=self.max_limit)
            offset = _whole_number(
                params, self.offset_query_param, minimum=0, maximum=self.max_offset
            )
            limit = self.default_limit if limit is None else limit
            offset = offset or 0
            return limit, offset, {self.limit_query_param: limit, self.offset_query_param: offset}
        page = _whole_number(params, self.page_query_param, minimum=1, maximum=self.max_page) or 1
        size = (
            _whole_number(params, self.page_size_query_param, minimum=1, maximum=self.max_limit)
            or self.default_limit
        )
        return (
            size,
            (page - 1) * size,
            {self.page_query_param: page, self.page_size_query_param: size},
        )

    def paginate_queryset(self, queryset, request, view=None) -> list:
        self.request = request
        self.limit, self.offset, self.paging = self.parameters(request)
        self.count = self.get_count(queryset)
        return list(queryset[self.offset : self.offset + self.limit])

    def _link(self, offset: int) -> str:
        params = self.request.query_params.copy()
        if self.limit_query_param in self.paging:
            params[self.limit_query_param] = str(self.limit)
            params[self.offset_query_param] = str(offset)
        else:
            params[self.page_query_param] = str(offset // self.limit + 1)
            params[self.page_size_query_param] = str(self.limit)
        return self.request.build_absolute_uri(
            f"{self.request.path}?{urlencode(params, doseq=True)}"
        )

    def get_next_link(self) -> str | None:
        if self.offset + self.limit >= self.count:
            return None
        return self._link(self.offset + self.limit)

    def get_previous_link(self) -> str | None:
        if self.offset <= 0:
            return None
        return self._link(max(self.offset - self.limit, 0))

    def get_paginated_response(self, data) -> Response:
        return Response(
            {
                "success": True,
                "count": self.count,
                **self.paging,
                "next": self.get_next_link(),
                "previous": self.get_previous_link(),
                "runs": data,
            }
        )

    def get_paginated_response_schema(self, schema: dict) -> dict:
        link = {"type": "string", "format": "uri", "nullable": True}
        return {
            "type": "object",
            "properties": {
                "success": {"type": "boolean"},
                "count": {"type": "integer"},
                "page": {"type": "integer", "description": "When paged by page/page_size"},
                "page_size": {"type": "integer"},
                "limit": {"type": "integer", "description": "When paged by limit/offset"},
                "offset": {"type": "integer"},
                "next": link,
                "previous": link,
                "runs": schema,
            },
            "required": ["success", "count", "next", "previous", "runs"],
        }

    def get_schema_operation_parameters(self, view) -> list[dict[str, Any]]:
        def integer(name: str, description: str, **bounds) -> dict[str, Any]:
            return {
                "name": name,
                "in": "query",
                "required": False,
                "description": description,
                "schema": {"type": "integer", **bounds},
            }

        return [
            integer(
                self.page_query_param,
                "1-based page (default 1)",
                minimum=1,
                maximum=self.max_page,
            ),
            integer(
                self.page_size_query_param,
                f"default {self.default_limit}",
                minimum=1,
                maximum=self.max_limit,
            ),
            integer(
                self.limit_query_param,
                "alternative to page: at most this many",
                minimum=1,
                maximum=self.max_limit,
            ),
            integer(
                self.offset_query_param,
                "alternative to page: skip this many",
                minimum=0,
                maximum=self.max_offset,
            ),
        ]

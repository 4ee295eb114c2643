"""Walk-forward routes, each with and without a trailing slash; any id that is not a UUID reaches
the view and is a JSON 404."""

from django.urls import re_path

from backtests.api.research import walk_forward_views as views

ID = r"(?P<walk_forward_id>[^/]+)"

urlpatterns = [
    re_path(
        r"^api/v1/research/walk-forward(?:/)?$",
        views.WalkForwardListView.as_view(),
        name="research-walk-forward",
    ),
    re_path(
        rf"^api/v1/research/walk-forward/{ID}/equity\.parquet$",
        views.WalkForwardEquityParquetView.as_view(),
        name="research-walk-forward-equity-parquet",
    ),
    re_path(
        rf"^api/v1/research/walk-forward/{ID}(?:/)?$",
        views.WalkForwardDetailView.as_view(),
        name="research-walk-forward-detail",
    ),
]

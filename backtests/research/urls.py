"""Research routes, each with and without a trailing slash; any id reaches its view (a JSON
404 when it is not a UUID)."""

from django.urls import re_path

from backtests.research import api

SWEEP = r"^api/v1/research/sweeps/(?P<sweep_id>[^/]+)"

urlpatterns = [
    re_path(
        r"^api/v1/research/sweeps(?:/)?$",
        api.ResearchSweepListView.as_view(),
        name="research-sweeps",
    ),
    re_path(rf"{SWEEP}(?:/)?$", api.ResearchSweepDetailView.as_view(), name="research-sweep"),
    re_path(
        rf"{SWEEP}/returns\.parquet(?:/)?$",
        api.ResearchSweepReturnsView.as_view(),
        name="research-sweep-returns",
    ),
    re_path(
        rf"{SWEEP}/results\.csv(?:/)?$",
        api.ResearchSweepResultsView.as_view(),
        name="research-sweep-results",
    ),
    re_path(
        rf"{SWEEP}/entries/(?P<number>[^/]+)/backtest(?:/)?$",
        api.ResearchEntryBacktestView.as_view(),
        name="research-sweep-entry-backtest",
    ),
]

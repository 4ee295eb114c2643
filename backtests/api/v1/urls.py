"""v1 resource API routes, each with and without a trailing slash. Fixed paths (engines,
compare, sweep) come before ``{backtest_id}`` so that they are never read as an id; any id that
is not a UUID reaches the view and is a JSON 404."""

from django.urls import re_path

from backtests.api.v1 import robustness, views

ID = r"(?P<backtest_id>[^/]+)"

urlpatterns = [
    re_path(r"^api/v1/backtests(?:/)?$", views.BacktestListView.as_view(), name="v1-backtests"),
    re_path(
        r"^api/v1/backtests/engines/available(?:/)?$",
        views.EnginesView.as_view(),
        name="v1-engines",
    ),
    re_path(r"^api/v1/backtests/compare(?:/)?$", views.CompareView.as_view(), name="v1-compare"),
    re_path(r"^api/v1/backtests/sweep(?:/)?$", views.SweepView.as_view(), name="v1-sweep"),
    re_path(
        rf"^api/v1/backtests/{ID}(?:/)?$", views.BacktestDetailView.as_view(), name="v1-backtest"
    ),
    re_path(
        rf"^api/v1/backtests/{ID}/execute(?:/)?$",
        views.BacktestExecuteView.as_view(),
        name="v1-execute",
    ),
    re_path(
        rf"^api/v1/backtests/{ID}/execute/async(?:/)?$",
        views.BacktestExecuteAsyncView.as_view(),
        name="v1-execute-async",
    ),
    re_path(
        rf"^api/v1/backtests/{ID}/equity-curve(?:/)?$",
        views.EquityCurveView.as_view(),
        name="v1-equity-curve",
    ),
    re_path(
        rf"^api/v1/backtests/{ID}/equity-curve/parquet(?:/)?$",
        views.EquityCurveParquetView.as_view(),
        name="v1-equity-curve-parquet",
    ),
    re_path(
        rf"^api/v1/backtests/{ID}/parity(?:/)?$",
        views.BacktestParityView.as_view(),
        name="v1-parity",
    ),
    re_path(
        rf"^api/v1/backtests/{ID}/robustness(?:/)?$",
        robustness.BacktestRobustnessView.as_view(),
        name="v1-robustness",
    ),
    re_path(rf"^api/v1/backtests/{ID}/trades(?:/)?$", views.TradesView.as_view(), name="v1-trades"),
    re_path(
        rf"^api/v1/backtests/{ID}/trades/parquet(?:/)?$",
        views.TradesParquetView.as_view(),
        name="v1-trades-parquet",
    ),
    re_path(r"^api/v1/tasks/(?P<task_id>[^/]+)(?:/)?$", views.TaskView.as_view(), name="v1-task"),
]

"""Routes of the Backfolio portfolio-backtest contract, under /api/v1/ and /api/v2/, each with
or without a trailing slash."""

from django.urls import re_path

from .views import VIEWS

urlpatterns = []
for _version, _views in VIEWS.items():
    urlpatterns += [
        re_path(
            rf"^api/{_version}/backtest/?$",
            _views["run"].as_view(),
            name=f"portfolio-{_version}-backtest",
        ),
        re_path(
            rf"^api/{_version}/backtest/examples/?$",
            _views["examples"].as_view(),
            name=f"portfolio-{_version}-examples",
        ),
        re_path(
            rf"^api/{_version}/backtest/runs/?$",
            _views["runs"].as_view(),
            name=f"portfolio-{_version}-runs",
        ),
        re_path(
            rf"^api/{_version}/backtest/runs/(?P<backtest_id>[^/]+)/?$",
            _views["run_detail"].as_view(),
            name=f"portfolio-{_version}-run-detail",
        ),
    ]

"""Routes of the results API with auth; each accepts a trailing slash too."""

from django.urls import re_path

from .auth import LoginView, RefreshTokenView
from .views import BacktestDetailView, BacktestListCreateView

urlpatterns = [
    re_path(r"^api/auth/login(?:/)?$", LoginView.as_view(), name="results-auth-login"),
    re_path(
        r"^api/auth/refresh-token(?:/)?$", RefreshTokenView.as_view(), name="results-auth-refresh"
    ),
    re_path(r"^api/backtests(?:/)?$", BacktestListCreateView.as_view(), name="results-backtests"),
    re_path(
        r"^api/backtests/(?P<backtest_id>[^/]+)(?:/)?$",
        BacktestDetailView.as_view(),
        name="results-backtest-detail",
    ),
]

from django.urls import re_path

from strategies.api import views

urlpatterns = [
    re_path(r"^api/v1/strategies(?:/)?$", views.StrategyListView.as_view(), name="v1-strategies"),
    re_path(
        r"^api/v1/strategies/(?P<strategy_id>[^/]+)(?:/)?$",
        views.StrategyDetailView.as_view(),
        name="v1-strategy",
    ),
]

from django.urls import re_path

from marketdata.api import MarketDataSymbolsView

urlpatterns = [
    re_path(r"^api/v1/market-data/symbols/?$", MarketDataSymbolsView.as_view(), name="symbols"),
]

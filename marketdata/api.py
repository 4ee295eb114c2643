"""``GET /api/v1/market-data/symbols``: every symbol a backtest can use, with its coverage."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from marketdata.selectors import symbol_list


class SymbolCoverageSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    first_date = serializers.DateField()
    last_date = serializers.DateField()
    rows = serializers.IntegerField()
    source = serializers.CharField()


class MarketDataSymbolsView(APIView):
    @extend_schema(
        responses=inline_serializer("SymbolList", {"symbols": SymbolCoverageSerializer(many=True)}),
        summary="List symbols with their date coverage",
        tags=["market data"],
    )
    def get(self, request):
        return Response({"symbols": SymbolCoverageSerializer(symbol_list(), many=True).data})

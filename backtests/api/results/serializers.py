"""The results API's wire format: camelCase, ISO datetimes, 2-decimal numbers.

This module is the only place that knows this contract's field names. Inputs are DRF
serializers whose field names are the request's own, so validation messages name ``startDate``
rather than ``start_date``. Each response shape is one ``PresentingSerializer``: it builds the
body from the row (numbers from the core's presenters) and its declared fields are the shape the
OpenAPI document shows, so the two cannot drift apart.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from backfolio.common.serializers import PresentingSerializer
from backfolio.limits import MAX_CASHFLOW_AMOUNT
from backtests.models import Backtest
from backtests.run_config import MAX_SIGNAL_DELAY
from backtests.selectors import backtest_span
from metrics.jsonsafe import clean_number
from metrics.presenters import (
    results_api_equity_curve,
    results_api_results,
    results_api_trades,
)
from strategies.language.compiler import (
    CASHFLOW_FREQUENCIES,
    EVALUATION_FREQUENCIES,
    MAX_ALLOCATION_SIGNAL_DELAY,
    REBALANCE_FREQUENCIES,
)

# What each row status looks like to this contract's clients, which know only
# running/completed/failed: a queued run is a running run at 0 %.
_PRESENTED_STATUS = {
    Backtest.Status.PENDING: "running",
    Backtest.Status.RUNNING: "running",
    Backtest.Status.COMPLETED: "completed",
    Backtest.Status.FAILED: "failed",
}
_DEFAULT_MESSAGES = {
    Backtest.Status.PENDING: "Queued, waiting for a worker",
    Backtest.Status.RUNNING: "Running backtest",
}

# --- inputs ------------------------------------------------------------------------------------


class LoginSerializer(serializers.Serializer):
    requires_one_of = ("username", "email")
    username = serializers.CharField(required=False, allow_blank=False, max_length=254)
    email = serializers.EmailField(required=False, allow_blank=False)
    password = serializers.CharField(trim_whitespace=False, max_length=4096)

    def validate(self, attrs):
        if not attrs.get("username") and not attrs.get("email"):
            raise serializers.ValidationError("email or username is required")
        return attrs


class RefreshTokenSerializer(serializers.Serializer):
    refreshToken = serializers.CharField()


class TokenPairSchema(serializers.Serializer):
    accessToken = serializers.CharField()
    refreshToken = serializers.CharField()
    expiresIn = serializers.IntegerField(help_text="Seconds until the access token expires")


@extend_schema_field(
    {"type": "string", "format": "date", "description": "YYYY-MM-DD or an ISO datetime"}
)
class DayField(serializers.Field):
    """A calendar date given as ``2024-01-31`` or an ISO datetime (read in UTC)."""

    default_error_messages = {"invalid": "must be an ISO date (YYYY-MM-DD) or datetime"}

    def to_internal_value(self, data) -> dt.date:
        if not isinstance(data, str):
            self.fail("invalid")
        text = data.strip()
        try:
            moment = parse_datetime(text)
            if moment is not None:
                if timezone.is_aware(moment):
                    moment = moment.astimezone(dt.UTC)
                return moment.date()
            day = parse_date(text)
        except ValueError:
            self.fail("invalid")
        if day is None:
            self.fail("invalid")
        return day

    def to_representation(self, value) -> str:
        return value.isoformat()


def _run_option(schema: dict[str, Any]) -> serializers.Field:
    """An optional run setting handed to the run's validation as sent (it lists every problem
    of the settings together, in this contract's field names), documented by ``schema``."""

    @extend_schema_field(schema)
    class RunOptionField(serializers.Field):
        def to_internal_value(self, data):
            return data

        def to_representation(self, value):
            return value

    return RunOptionField(required=False)


# Allocation algorithms' run settings (SPEC §8.1): request name → the run config's key.
RUN_OPTIONS = {
    "rebalanceFrequency": "rebalance_frequency",
    "evaluationFrequency": "evaluation_frequency",
    "signalDelay": "signal_delay",
    "cashflowAmount": "cashflow_amount",
    "cashflowFrequency": "cashflow_frequency",
}


class BacktestCreateSerializer(serializers.Serializer):
    algorithmId = serializers.UUIDField(
        error_messages={"invalid": "must be a valid algorithm id (UUID)"}
    )
    startDate = DayField()
    endDate = DayField()
    initialBalance = serializers.FloatField(
        min_value=0.01, error_messages={"min_value": "must be greater than 0"}
    )
    symbols = serializers.ListField(
        child=serializers.CharField(max_length=100),
        required=False,
        min_length=1,
        max_length=50,
        help_text=(
            "Symbols a signal algorithm trades (default: its universe). An allocation algorithm "
            "trades the symbols of its groups and takes none."
        ),
    )
    engine = serializers.CharField(required=False, max_length=40)
    commission = serializers.FloatField(required=False, min_value=0.0, max_value=0.1)
    slippage = serializers.FloatField(required=False, min_value=0.0, max_value=0.1)
    rebalanceFrequency = _run_option(
        {
            "type": "string",
            "enum": list(REBALANCE_FREQUENCIES),
            "description": "Allocation algorithms: scheduled rebalancing (default monthly).",
        }
    )
    evaluationFrequency = _run_option(
        {
            "type": "string",
            "enum": list(EVALUATION_FREQUENCIES),
            "description": "Allocation algorithms: when the switching rules are evaluated "
            "(default daily; otherwise the first bar and the last trading day of each period).",
        }
    )
    signalDelay = _run_option(
        {
            "type": "integer",
            "minimum": 0,
            "maximum": MAX_SIGNAL_DELAY,
            "description": "Bars between a signal and the trades it decides (default 0; "
            f"allocation algorithms 0–{MAX_ALLOCATION_SIGNAL_DELAY}).",
        }
    )
    cashflowAmount = _run_option(
        {
            "type": "number",
            "minimum": -MAX_CASHFLOW_AMOUNT,
            "maximum": MAX_CASHFLOW_AMOUNT,
            "description": "Allocation algorithms: added at each cashflowFrequency period "
            "(positive a contribution, negative a withdrawal, not 0); needs cashflowFrequency.",
        }
    )
    cashflowFrequency = _run_option(
        {
            "type": "string",
            "enum": list(CASHFLOW_FREQUENCIES),
            "description": "Allocation algorithms: flows at the first trading day of each "
            "period after the first bar; needs cashflowAmount.",
        }
    )

    def to_internal_value(self, data):
        # A misspelt key (``initialbalance``) must not silently run with a default instead.
        if isinstance(data, dict):
            unknown = [key for key in data if key not in self.fields]
            if unknown:
                raise serializers.ValidationError({key: ["unknown field"] for key in unknown})
        return super().to_internal_value(data)

    def validate_engine(self, value: str) -> str:
        from backtests.engines.registry import available_engines

        engines = available_engines()
        if value not in engines:
            raise serializers.ValidationError(f"must be one of: {', '.join(sorted(engines))}")
        return value

    def validate(self, attrs):
        if attrs["startDate"] >= attrs["endDate"]:
            raise serializers.ValidationError({"endDate": "must be after startDate"})
        return attrs


# --- outputs -----------------------------------------------------------------------------------


def presented_status(backtest: Backtest) -> str:
    return _PRESENTED_STATUS.get(backtest.status, backtest.status)


def iso_datetime(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, dt.UTC)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _day_bound(value: Any, *, end: bool) -> str | None:
    """``startDate`` opens the first day, ``endDate`` closes the last (the contract's example)."""
    if not value:
        return None
    day = parse_date(str(value)[:10])
    if day is None:
        return None
    return f"{day.isoformat()}T{'23:59:59' if end else '00:00:00'}Z"


def _round2(value: Any) -> float | int | None:
    number = clean_number(value)
    if number is None or isinstance(number, int):
        return number
    return round(number, 2) + 0.0


def _id(value) -> str | None:
    return None if value is None else str(value)


# --- the response shapes: each serializer renders its shape and documents it -----------------
# Named ``*Schema`` as the OpenAPI document's components are: generated clients keep their types.


class ResultsSchema(PresentingSerializer):
    """A completed backtest's results: currency, percentages and positive losses, rounded to
    2 decimals."""

    # Values: metrics.presenters.results_api_results (the default ``present``).

    totalTrades = serializers.IntegerField()
    winningTrades = serializers.IntegerField()
    losingTrades = serializers.IntegerField()
    totalProfit = serializers.FloatField(help_text="Sum of winning trades' profit")
    totalLoss = serializers.FloatField(help_text="Sum of losing trades' loss, positive")
    netProfit = serializers.FloatField()
    winRate = serializers.FloatField(allow_null=True, help_text="Percent")
    profitFactor = serializers.FloatField(allow_null=True)
    sharpeRatio = serializers.FloatField(allow_null=True)
    maxDrawdown = serializers.FloatField(allow_null=True, help_text="Percent, positive")
    maxDrawdownPercent = serializers.FloatField(allow_null=True, help_text="Percent")
    averageWin = serializers.FloatField(allow_null=True)
    averageLoss = serializers.FloatField(allow_null=True, help_text="Positive")
    largestWin = serializers.FloatField(allow_null=True)
    largestLoss = serializers.FloatField(allow_null=True, help_text="Positive")
    averageTradeDuration = serializers.FloatField(allow_null=True, help_text="Minutes")
    expectancy = serializers.FloatField(allow_null=True, help_text="Mean profit per trade")
    returnOnInvestment = serializers.FloatField(
        allow_null=True,
        help_text="Percent: E_n/C − 1, or the time-weighted total return of a run with cash flows",
    )
    totalContributions = serializers.FloatField(
        required=False, help_text="Runs with cash flows only: the sum of the contributions"
    )
    totalWithdrawals = serializers.FloatField(
        required=False,
        help_text="Runs with cash flows only: the sum of the withdrawals, positive",
    )
    moneyWeightedReturn = serializers.FloatField(
        required=False,
        allow_null=True,
        help_text=(
            "Runs with cash flows only: the annualised internal rate of return of the capital, "
            "the flows and the final balance, percent (null when no rate balances them)"
        ),
    )


class EquityPointSchema(PresentingSerializer):
    """The balance at one bar's close."""

    # Values: metrics.presenters.results_api_equity_curve.

    date = serializers.DateField()
    balance = serializers.FloatField()


class TradeSchema(PresentingSerializer):
    """One trade, entry to exit."""

    # Values: metrics.presenters.results_api_trades.

    symbol = serializers.CharField()
    entryTime = serializers.DateTimeField()
    entryPrice = serializers.FloatField()
    exitTime = serializers.DateTimeField(allow_null=True)
    exitPrice = serializers.FloatField(allow_null=True)
    quantity = serializers.FloatField()
    side = serializers.ChoiceField(choices=["long", "short"])
    profit = serializers.FloatField(allow_null=True)
    profitPercent = serializers.FloatField(allow_null=True)
    exitReason = serializers.CharField(allow_null=True)


class CompletedBacktestSchema(PresentingSerializer):
    """A completed backtest: its results, equity curve and trades."""

    # The equity curve and trades come in the context (``equity``, ``trades``), read by the view
    # from the run's artifacts.

    id = serializers.UUIDField()
    algorithmId = serializers.UUIDField(allow_null=True)
    userId = serializers.CharField(allow_null=True)
    status = serializers.CharField(help_text="`completed`")
    progress = serializers.IntegerField()
    startDate = serializers.DateTimeField()
    endDate = serializers.DateTimeField()
    initialBalance = serializers.FloatField()
    finalBalance = serializers.FloatField()
    symbols = serializers.ListField(child=serializers.CharField())
    results = ResultsSchema()
    equityCurve = EquityPointSchema(many=True)
    trades = TradeSchema(many=True)
    createdAt = serializers.DateTimeField()
    completedAt = serializers.DateTimeField()

    def present(self, backtest: Backtest) -> dict[str, Any]:
        equity: pd.Series = self.context["equity"]
        trades: pd.DataFrame | None = self.context["trades"]
        final_balance = float(equity.iloc[-1]) if len(equity) else None
        span = backtest_span(backtest)
        return {
            "id": str(backtest.id),
            "algorithmId": _id(backtest.strategy_id),
            "userId": _id(backtest.owner_id),
            "status": "completed",
            "progress": 100,
            "startDate": _day_bound(span.start_date, end=False),
            "endDate": _day_bound(span.end_date, end=True),
            "initialBalance": _round2(backtest.initial_capital),
            "finalBalance": _round2(final_balance),
            "symbols": span.symbols,
            # The core's metrics (fractions, drawdown negative) in this contract's units.
            "results": results_api_results(
                backtest.metrics or {}, trades, equity, backtest.initial_capital
            ),
            "equityCurve": results_api_equity_curve(equity),
            "trades": results_api_trades(trades),
            "createdAt": iso_datetime(backtest.created_at),
            "completedAt": iso_datetime(backtest.completed_at),
        }


class RunningBacktestSchema(PresentingSerializer):
    """A queued or running backtest and how far it has come."""

    id = serializers.UUIDField()
    status = serializers.CharField(help_text="`running` (also while queued)")
    progress = serializers.IntegerField(min_value=0, max_value=100)
    message = serializers.CharField()

    def present(self, backtest: Backtest) -> dict[str, Any]:
        return {
            "id": str(backtest.id),
            "status": presented_status(backtest),
            "progress": backtest.progress,
            "message": backtest.progress_message or _DEFAULT_MESSAGES.get(backtest.status, ""),
        }


class FailedBacktestSchema(PresentingSerializer):
    """A failed backtest and why it failed."""

    id = serializers.UUIDField()
    status = serializers.CharField(help_text="`failed`")
    error = serializers.CharField()
    createdAt = serializers.DateTimeField()
    failedAt = serializers.DateTimeField()

    def present(self, backtest: Backtest) -> dict[str, Any]:
        return {
            "id": str(backtest.id),
            "status": "failed",
            "error": backtest.error or "The backtest failed",
            "createdAt": iso_datetime(backtest.created_at),
            "failedAt": iso_datetime(backtest.completed_at or backtest.updated_at),
        }


class CreatedBacktestSchema(PresentingSerializer):
    """The backtest created, queued to run."""

    id = serializers.UUIDField()
    algorithmId = serializers.UUIDField()
    status = serializers.CharField(help_text="`running` (also while queued)")
    progress = serializers.IntegerField()
    message = serializers.CharField()
    createdAt = serializers.DateTimeField()

    def present(self, backtest: Backtest) -> dict[str, Any]:
        return {
            "id": str(backtest.id),
            "algorithmId": _id(backtest.strategy_id),
            "status": "running",
            "progress": 0,
            "message": _DEFAULT_MESSAGES[Backtest.Status.PENDING],
            "createdAt": iso_datetime(backtest.created_at),
        }


class BacktestSummarySchema(PresentingSerializer):
    """One of your backtests, without its equity curve and trades."""

    # No artifacts read, so that a page stays cheap.

    id = serializers.UUIDField()
    algorithmId = serializers.UUIDField(allow_null=True)
    userId = serializers.CharField(allow_null=True)
    status = serializers.CharField(help_text="`running`, `completed` or `failed`")
    progress = serializers.IntegerField()
    engine = serializers.CharField()
    startDate = serializers.DateTimeField(allow_null=True)
    endDate = serializers.DateTimeField(allow_null=True)
    initialBalance = serializers.FloatField()
    finalBalance = serializers.FloatField(allow_null=True)
    returnOnInvestment = serializers.FloatField(allow_null=True, help_text="Percent")
    symbols = serializers.ListField(child=serializers.CharField())
    createdAt = serializers.DateTimeField()
    completedAt = serializers.DateTimeField(allow_null=True)

    def present(self, backtest: Backtest) -> dict[str, Any]:
        metrics = backtest.metrics or {}  # the core's metrics: fractions, currency
        total_return = clean_number(metrics.get("total_return"))
        completed = backtest.status == Backtest.Status.COMPLETED
        span = backtest_span(backtest)
        return {
            "id": str(backtest.id),
            "algorithmId": _id(backtest.strategy_id),
            "userId": _id(backtest.owner_id),
            "status": presented_status(backtest),
            "progress": 100 if completed else backtest.progress,
            "engine": backtest.engine,
            "startDate": _day_bound(span.start_date, end=False),
            "endDate": _day_bound(span.end_date, end=True),
            "initialBalance": _round2(backtest.initial_capital),
            "finalBalance": _round2(metrics.get("final_value")) if completed else None,
            "returnOnInvestment": (
                _round2(total_return * 100) if completed and total_return is not None else None
            ),
            "symbols": span.symbols,
            "createdAt": iso_datetime(backtest.created_at),
            "completedAt": iso_datetime(backtest.completed_at) if completed else None,
        }


class ErrorDetailSchema(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    status = serializers.IntegerField()


class ErrorSchema(serializers.Serializer):
    error = ErrorDetailSchema()

"""What the analyst pages read: rows for the templates, and the JSON their charts draw.

Reads only; writes go through ``backtests.services``. Every page is staff-only (SPEC §10), so
these read across all owners.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet

from backtests import artifacts, jobs
from backtests.models import Backtest, Sweep, Task
from backtests.pages import charts
from backtests.selectors import backtest_compare
from marketdata.base import MarketDataError
from metrics.presenters import V1_METRIC_HIGHER_IS_BETTER, V1_STRUCTURE, v1_structured
from strategies.models import Strategy

logger = logging.getLogger(__name__)

BENCHMARK_SYMBOL = "SPY"
TRADES_PER_PAGE = 25
BACKTESTS_PER_PAGE = 25
ACTIVE_BACKTEST_STATUSES = (Backtest.Status.PENDING, Backtest.Status.RUNNING)
ACTIVE_TASK_STATUSES = (Task.Status.PENDING, Task.Status.STARTED, Task.Status.PROGRESS)

# Units for showing each flat metric; anything not listed is a plain number.
PERCENT_METRICS = frozenset(
    {
        "total_return",
        "perf_cagr",
        "risk_max_drawdown",
        "risk_var_95",
        "risk_cvar_95",
        "risk_var_99",
        "risk_cvar_99",
        "risk_volatility_annualised",
        "trade_win_rate",
        "trade_turnover_annualised",
    }
)
CURRENCY_METRICS = frozenset({"trade_avg_win", "trade_avg_loss", "trade_expectancy", "final_value"})
COUNT_METRICS = frozenset({"bars_in_market", "risk_max_drawdown_duration", "trade_total_trades"})


# --- dashboard and lists ----------------------------------------------------------------------


def recent_backtests(*, limit: int = 10) -> QuerySet[Backtest]:
    return Backtest.objects.select_related("strategy", "owner").order_by("-created_at")[:limit]


def active_tasks(*, limit: int = 20) -> QuerySet[Task]:
    return (
        Task.objects.filter(status__in=ACTIVE_TASK_STATUSES)
        .select_related("backtest__strategy", "sweep__strategy")
        .order_by("-created_at")[:limit]
    )


SORTABLE_METRICS = ("total_return", "perf_sharpe_ratio", "risk_max_drawdown")


def backtests_for_list() -> QuerySet[Backtest]:
    """Every run, newest first, with the headline metrics as sortable numbers
    (``metric_total_return`` …) pulled out of the JSON."""
    from django.db.models import FloatField
    from django.db.models.fields.json import KT
    from django.db.models.functions import Cast

    return (
        Backtest.objects.select_related("strategy", "owner")
        .annotate(
            **{
                f"metric_{key}": Cast(KT(f"metrics__{key}"), FloatField())
                for key in SORTABLE_METRICS
            }
        )
        .order_by("-created_at")
    )


def backtest_page(queryset: QuerySet[Backtest], *, page: str | int | None) -> Page:
    return Paginator(queryset, BACKTESTS_PER_PAGE).get_page(page)


def strategy_list() -> QuerySet[Strategy]:
    from django.db.models import Count

    return Strategy.objects.select_related("owner").annotate(backtest_count=Count("backtests"))


def strategy_backtests(strategy: Strategy, *, limit: int = 50) -> QuerySet[Backtest]:
    return strategy.backtests.select_related("owner").order_by("-created_at")[:limit]


def strategy_sweeps(strategy: Strategy, *, limit: int = 20) -> QuerySet[Sweep]:
    return strategy.sweeps.select_related("task").order_by("-created_at")[:limit]


# --- metrics ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricRow:
    label: str
    key: str
    value: Any
    display: str


def metric_display(key: str, value: Any) -> str:
    """A metric as an analyst reads it: fractions as percent, money with two decimals."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return "—" if value is None else str(value)
    if key in PERCENT_METRICS:
        return f"{value * 100:.2f}%"
    if key in CURRENCY_METRICS:
        return f"{value:,.2f}"
    if key in COUNT_METRICS:
        return f"{value:,.0f}"
    return f"{value:.3f}"


_LABELS = {
    "cagr": "CAGR",
    "var_95": "VaR 95%",
    "cvar_95": "CVaR 95%",
    "var_99": "VaR 99%",
    "cvar_99": "CVaR 99%",
    "volatility_annualised": "Volatility (annualised)",
    "turnover_annualised": "Turnover (annualised)",
    "max_drawdown_duration": "Max drawdown duration (bars)",
    "avg_win": "Average win",
    "avg_loss": "Average loss",
}


def _label(field: str) -> str:
    return _LABELS.get(field, field.replace("_", " ").capitalize())


def metric_groups(flat: dict[str, Any]) -> list[tuple[str, list[MetricRow]]]:
    """The flat v1 metrics grouped as the contract's ``structured_metrics`` groups them."""
    structured = v1_structured(flat or {})
    summary = [
        MetricRow(_label(key), key, structured[key], metric_display(key, structured[key]))
        for key in ("total_return", "bars_in_market")
    ]
    if (flat or {}).get("final_value") is not None:
        summary.append(
            MetricRow(
                "Final value",
                "final_value",
                flat["final_value"],
                metric_display("final_value", flat["final_value"]),
            )
        )
    groups = [("Summary", summary)]
    for group, fields in V1_STRUCTURE.items():
        groups.append(
            (
                group.capitalize(),
                [
                    MetricRow(
                        _label(field),
                        flat_key,
                        structured[group][field],
                        metric_display(flat_key, structured[group][field]),
                    )
                    for field, flat_key in fields.items()
                ],
            )
        )
    return groups


def metric_direction(key: str) -> bool | None:
    """True when higher is better, False when lower is, None for a key without a direction."""
    return V1_METRIC_HIGHER_IS_BETTER.get(key)


# --- one backtest -----------------------------------------------------------------------------


def backtest_equity(backtest: Backtest) -> pd.Series | None:
    """The stored equity curve, or None when the run has none (not completed, or lost)."""
    if backtest.status != Backtest.Status.COMPLETED or not backtest.equity_curve_uri:
        return None
    try:
        return artifacts.read_equity(backtest.equity_curve_uri)
    except artifacts.ArtifactMissing:
        logger.warning("Equity curve of backtest %s cannot be read", backtest.id)
        return None


def backtest_trades(backtest: Backtest) -> pd.DataFrame | None:
    if backtest.status != Backtest.Status.COMPLETED or not backtest.trades_uri:
        return None
    try:
        return artifacts.read_trades(backtest.trades_uri)
    except artifacts.ArtifactMissing:
        logger.warning("Trades of backtest %s cannot be read", backtest.id)
        return None


def benchmark_close(start, end) -> pd.Series | None:
    """The benchmark's total-return close over the run's dates, or None when not available."""
    from marketdata.store import get_store

    try:
        frame = get_store().load([BENCHMARK_SYMBOL], start, end)
    except MarketDataError:
        return None
    return frame.close[BENCHMARK_SYMBOL]


def backtest_chart_data(backtest: Backtest) -> dict[str, Any] | None:
    """Equity with its benchmark, underwater drawdown and monthly returns, for the charts."""
    equity = backtest_equity(backtest)
    if equity is None or equity.empty:
        return None
    capital = backtest.initial_capital
    dates = pd.DatetimeIndex(equity.index)
    benchmark = None
    close = benchmark_close(dates[0].date(), dates[-1].date())
    if close is not None:
        benchmark = {
            "symbol": BENCHMARK_SYMBOL,
            **charts.series_payload(charts.benchmark_curve(close, dates, capital)),
        }
    return {
        "id": str(backtest.id),
        "label": backtest_label(backtest),
        "initial_capital": capital,
        "equity": charts.series_payload(equity),
        "benchmark": benchmark,
        "drawdown": charts.series_payload(charts.drawdown_series(equity, capital)),
        "monthly_returns": charts.monthly_returns(equity, capital),
    }


def backtest_label(backtest: Backtest) -> str:
    name = backtest.strategy.name if backtest.strategy_id else "Portfolio"
    return f"{name} · {backtest.engine} · {str(backtest.id)[:8]}"


TRADE_SORT_COLUMNS = (
    "symbol",
    "side",
    "entry_date",
    "exit_date",
    "entry_price",
    "exit_price",
    "size",
    "pnl",
    "return_pct",
    "exit_reason",
    "fees",
)


@dataclass(frozen=True)
class TradesPage:
    columns: Sequence[str]
    rows: list[dict[str, Any]]
    page: Page
    sort: str
    descending: bool


def trades_page(trades: pd.DataFrame, *, sort: str | None, page: str | int | None) -> TradesPage:
    """One page of trades, sorted by a trade column (``-pnl`` sorts descending)."""
    descending = bool(sort and sort.startswith("-"))
    column = (sort or "").lstrip("-")
    if column not in trades.columns or column not in TRADE_SORT_COLUMNS:
        column, descending = "entry_date" if "entry_date" in trades else "", False
    ordered = trades
    if column:
        ordered = trades.sort_values(column, ascending=not descending, kind="stable")
    paginator = Paginator(range(len(ordered)), TRADES_PER_PAGE)
    current = paginator.get_page(page)
    window = ordered.iloc[current.start_index() - 1 : current.end_index()]
    columns = [name for name in TRADE_SORT_COLUMNS if name in trades.columns]
    rows = [
        {name: _cell(name, record[name]) for name in columns}
        for record in window.to_dict("records")
    ]
    return TradesPage(columns=columns, rows=rows, page=current, sort=column, descending=descending)


def _cell(column: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NaT:
        return ""
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d")
    if column == "return_pct" and isinstance(value, int | float):
        return f"{value * 100:.2f}%"
    if isinstance(value, float):
        return f"{value:,.4f}" if column in ("size",) else f"{value:,.2f}"
    return str(value)


def backtest_status(backtest: Backtest) -> dict[str, Any]:
    return {
        "id": str(backtest.id),
        "status": backtest.status,
        "progress": backtest.progress,
        "message": backtest.progress_message,
        "error": backtest.error,
        "done": backtest.status in (Backtest.Status.COMPLETED, Backtest.Status.FAILED),
    }


# --- compare ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompareRow:
    key: str
    label: str
    cells: list[tuple[str, bool]]  # (shown value, is the best of the row)
    direction: bool | None


def compare_table(backtests: Sequence[Backtest]) -> list[CompareRow]:
    """The v1 compare result as table rows (grouped metric order); the contract's best run of
    each row is marked."""
    comparison = backtest_compare(backtests=backtests)
    order = ["total_return", *(key for group in V1_STRUCTURE.values() for key in group.values())]
    keys = sorted(
        comparison["metric_diff"],
        key=lambda key: (order.index(key) if key in order else len(order), key),
    )
    rows = []
    for key in keys:
        diff = comparison["metric_diff"][key]
        cells = [
            (
                metric_display(key, diff["values"][str(backtest.pk)]),
                diff["best_id"] == str(backtest.pk),
            )
            for backtest in backtests
        ]
        rows.append(CompareRow(key=key, label=key, cells=cells, direction=metric_direction(key)))
    return rows


def compare_chart_data(backtests: Sequence[Backtest]) -> dict[str, Any]:
    series = []
    for backtest in backtests:
        equity = backtest_equity(backtest)
        if equity is None:
            continue
        series.append(
            {
                "id": str(backtest.id),
                "label": backtest_label(backtest),
                **charts.series_payload(equity),
            }
        )
    return {"series": series}


# --- sweeps -----------------------------------------------------------------------------------


def sweep_task(sweep: Sweep) -> Task | None:
    return Task.objects.filter(sweep=sweep).first()


def sweep_leaderboard(sweep: Sweep) -> list[dict[str, Any]]:
    """The task's final leaderboard once written; while the sweep runs, the same ranking over
    the runs finished so far (the rest follow, unranked by score)."""
    task = sweep_task(sweep)
    if task is not None and isinstance(task.result, dict) and "leaderboard" in task.result:
        entries = task.result["leaderboard"]
    else:
        entries = jobs.sweep_leaderboard(sweep)["leaderboard"]
    return [
        {**entry, "score_display": metric_display(sweep.rank_metric, entry.get("score"))}
        for entry in entries
    ]


def sweep_status(sweep: Sweep) -> dict[str, Any]:
    task = sweep_task(sweep)
    leaderboard = sweep_leaderboard(sweep)
    total = task.total if task is not None else len(sweep.param_grid or [])
    done = task.done if task is not None else 0
    finished = task is not None and task.status in (Task.Status.SUCCESS, Task.Status.FAILURE)
    return {
        "id": str(sweep.id),
        "status": task.status if task is not None else Task.Status.PENDING,
        "done": done,
        "total": total,
        "finished": finished,
        "rank_metric": sweep.rank_metric,
        "leaderboard": leaderboard,
        "heatmap": charts.sweep_heatmap(leaderboard),
    }

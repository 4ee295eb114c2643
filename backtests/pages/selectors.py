"""What the analyst pages read: rows for the templates, and the JSON their charts draw.

Reads only; writes go through ``backtests.services``. Every page is staff-only (SPEC §10), so
these read across all owners.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pandas as pd
from django.core.cache import cache
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet

from backtests import artifacts
from backtests.jobs import leaderboard, runner
from backtests.models import Backtest, Sweep, Task
from backtests.pages import charts
from backtests.selectors import backtest_compare
from marketdata.base import MarketDataError
from metrics.calculations import TRADING_DAYS_PER_YEAR
from metrics.presenters import (
    V1_METRIC_HIGHER_IS_BETTER,
    V1_STRUCTURE,
    v1_flat_source,
    v1_row_metrics,
    v1_structured,
)
from strategies.models import Strategy

logger = logging.getLogger(__name__)

BENCHMARK_SYMBOL = "SPY"
TRADES_PER_PAGE = 25
BACKTESTS_PER_PAGE = 25
ACTIVE_BACKTEST_STATUSES = (Backtest.Status.PENDING, Backtest.Status.RUNNING)

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
        Task.objects.filter(status__in=runner.ACTIVE_TASK_STATUSES)
        .select_related("backtest__strategy", "sweep__strategy")
        .order_by("-created_at")[:limit]
    )


SORTABLE_METRICS = ("total_return", "perf_sharpe_ratio", "risk_max_drawdown")


def v1_metric_expression(flat_key: str):
    """A v1 flat metric of each row as a number the database sorts by: the stored core metric
    it shows, in the contract's units (losses positive)."""
    from django.db.models import FloatField
    from django.db.models.fields.json import KT
    from django.db.models.functions import Cast

    source_key, factor = v1_flat_source(flat_key)
    value = Cast(KT(f"metrics__{source_key}"), FloatField())
    return value if factor == 1.0 else value * factor


def backtests_for_list() -> QuerySet[Backtest]:
    """Every run, newest first, with the headline metrics as sortable numbers
    (``metric_total_return`` …) read from the JSON."""
    return (
        Backtest.objects.select_related("strategy", "owner")
        .annotate(**{f"metric_{key}": v1_metric_expression(key) for key in SORTABLE_METRICS})
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


def metric_groups(core: dict[str, Any] | None) -> list[tuple[str, list[MetricRow]]]:
    """A row's stored (core) metrics as the v1 contract shows them, grouped as its
    ``structured_metrics`` groups them."""
    flat = v1_row_metrics(core)
    structured = v1_structured(flat)
    summary = [
        MetricRow(_label(key), key, structured[key], metric_display(key, structured[key]))
        for key in ("total_return", "bars_in_market")
    ]
    if flat.get("final_value") is not None:
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


def benchmark_close(start, end, symbol: str = BENCHMARK_SYMBOL) -> pd.Series | None:
    """The benchmark's total-return close over the run's dates, or None when not available."""
    from marketdata.store import get_store

    try:
        frame = get_store().load([symbol], start, end)
    except MarketDataError:
        return None
    return frame.close[symbol]


def bundled_symbols() -> list[str]:
    from marketdata.selectors import symbol_list

    return [coverage.symbol for coverage in symbol_list()]


def default_benchmark(backtest: Backtest) -> str:
    """The benchmark chosen when the run was started, else the run's own (first) symbol when it
    has one, else SPY."""
    config = backtest.config or {}
    if backtest.source == Backtest.Source.V2:
        chosen = (config.get("config") or {}).get("benchmark")
        return str(chosen) if chosen else BENCHMARK_SYMBOL
    if backtest.benchmark:
        return backtest.benchmark
    symbols = _config_symbols(config)
    return symbols[0] if symbols else BENCHMARK_SYMBOL


def _config_symbols(config: dict[str, Any]) -> list[str]:
    """A v1 config's ``symbols``, or its one ``symbol``."""
    symbols = config.get("symbols") or ([config["symbol"]] if config.get("symbol") else [])
    return [str(symbol) for symbol in symbols]


class UnknownBenchmark(ValueError):
    pass


# Computed chart series are kept per run and artifact: a run's artifacts never change once
# written (a re-run writes new ones), so an entry is right until the prices or this format change.
CHART_CACHE_SECONDS = 7 * 24 * 3600
CHART_DATA_FORMAT = 3


def backtest_chart_data(backtest: Backtest, benchmark: str | None = None) -> dict[str, Any] | None:
    """The tear sheet's series: equity against a buy-and-hold benchmark (the run's own symbol
    unless another bundled one is chosen), underwater drawdown, rolling Sharpe, volatility and
    beta, monthly returns with each year's return beside the benchmark's, and the worst
    drawdown periods. Long series are downsampled for display (``charts.MAX_CHART_POINTS``).

    Computed once per run, artifact and benchmark (and prices' version), then read from the
    cache; the label is read fresh (a strategy may be renamed)."""
    if benchmark is not None and benchmark not in bundled_symbols():
        raise UnknownBenchmark(f"{benchmark} is not a bundled symbol.")
    if backtest.status != Backtest.Status.COMPLETED or not backtest.equity_curve_uri:
        return None
    symbol = benchmark or default_benchmark(backtest)
    key = _chart_cache_key(backtest, symbol)
    series = cache.get(key)
    if series is None:
        series = _chart_series(backtest, symbol)
        if series is None:
            return None
        cache.set(key, series, CHART_CACHE_SECONDS)
    return {"id": str(backtest.id), "label": backtest_label(backtest), **series}


def _chart_cache_key(backtest: Backtest, symbol: str) -> str:
    from marketdata.store import get_store

    identity = orjson.dumps(
        [
            backtest.equity_curve_uri,
            backtest.report_uri,
            backtest.run_count,
            backtest.initial_capital,
            backtest.config,
            symbol,
            repr(get_store().versions()),
        ],
        option=orjson.OPT_SORT_KEYS,
        default=str,
    )
    digest = hashlib.sha256(identity).hexdigest()[:32]
    return f"pages:chart-data:{CHART_DATA_FORMAT}:{backtest.pk}:{digest}"


def _chart_series(backtest: Backtest, symbol: str) -> dict[str, Any] | None:
    equity = backtest_equity(backtest)
    if equity is None or equity.empty:
        return None
    capital = backtest.initial_capital
    dates = pd.DatetimeIndex(equity.index)
    bars_per_year = float((backtest.config or {}).get("bars_per_year") or TRADING_DAYS_PER_YEAR)
    values = equity.to_numpy(dtype="float64")
    returns = pd.Series(
        np.concatenate([[values[0] / capital - 1.0], values[1:] / values[:-1] - 1.0]), index=dates
    )
    benchmark_payload = benchmark_returns = benchmark_yearly = None
    close = benchmark_close(dates[0].date(), dates[-1].date(), symbol)
    if close is not None:
        curve = charts.benchmark_curve(close, dates, capital)
        benchmark_payload = {"symbol": symbol, **charts.display_series(curve)}
        # Bought at the first bar's close: no return over the first bar.
        benchmark_returns = curve.pct_change().fillna({curve.index[0]: 0.0})
        benchmark_yearly = charts.yearly_returns(curve.dropna(), capital)
    rolling = charts.rolling_statistics(
        returns, benchmark_returns, window=charts.ROLLING_WINDOW_BARS, bars_per_year=bars_per_year
    )
    monthly = charts.monthly_returns(equity, capital)
    monthly["benchmark_yearly"] = [(benchmark_yearly or {}).get(year) for year in monthly["years"]]
    return {
        "initial_capital": capital,
        "bars": len(equity),
        "equity": charts.display_series(equity),
        "benchmark": benchmark_payload,
        "benchmark_symbol": symbol,
        "drawdown": charts.display_series(charts.drawdown_series(equity, capital)),
        "rolling": {
            "window": charts.ROLLING_WINDOW_BARS,
            **{name: charts.display_series(series.dropna()) for name, series in rolling.items()},
        },
        "monthly_returns": monthly,
        "worst_drawdowns": charts.worst_drawdowns(equity, capital),
        "portfolio": portfolio_analytics(backtest),
    }


def backtest_label(backtest: Backtest) -> str:
    """What the run is, in one line: name, symbol(s), parameters and period."""
    description = run_description(backtest)
    return " · ".join(
        part
        for part in (
            description.name,
            description.symbols,
            description.parameters,
            description.period,
        )
        if part
    )


@dataclass(frozen=True)
class RunDescription:
    name: str
    symbols: str
    parameters: str
    period: str


def _parameter_text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return ", ".join(_parameter_text(item) for item in value)
    return str(value)


def readable_parameters(values: dict[str, Any] | None, prefix: str = "") -> str:
    """``{"signal_plugin_params": {"fast": 20}, "stop_loss": 0.05}`` → ``fast 20, stop loss 0.05``:
    nested names flattened to their last part, underscores as spaces, in the given order."""
    parts = []
    for key, value in (values or {}).items():
        if isinstance(value, dict):
            inner = readable_parameters(value)
            if inner:
                parts.append(inner)
            continue
        parts.append(f"{str(key).replace('_', ' ')} {_parameter_text(value)}")
    return ", ".join(parts)


def _portfolio_symbols(strategy: dict[str, Any]) -> list[str]:
    symbols: list[str] = []
    groups = (strategy or {}).get("allocations") or {}
    for weights in [*groups.values(), (strategy or {}).get("fallback_allocation") or {}]:
        for symbol in weights if isinstance(weights, dict) else []:
            if symbol not in symbols:
                symbols.append(str(symbol))
    # Stored JSON objects keep no key order on PostgreSQL (jsonb): name the symbols sorted, so a
    # run reads the same whichever database holds it.
    return sorted(symbols)


def run_description(backtest: Backtest) -> RunDescription:
    """The name, symbols, parameters and period a run was made with, read from its saved
    configuration (v1 config, or the Backfolio request for portfolio runs)."""
    config = backtest.config or {}
    if backtest.source == Backtest.Source.V2:
        settings_ = config.get("config") or {}
        symbols = _portfolio_symbols(config.get("strategy") or {})
        name = config.get("name") or "Portfolio"
        parameters = (
            f"rebalance {settings_['rebalance_frequency']}"
            if settings_.get("rebalance_frequency")
            else ""
        )
    else:
        symbols = list(
            config.get("symbols") or ([config["symbol"]] if config.get("symbol") else [])
        )
        name = backtest.strategy.name if backtest.strategy_id else "Portfolio"
        plugin = config.get("signal_plugin_key")
        parameters = readable_parameters(config.get("signal_plugin_params"))
        if plugin:
            parameters = f"{plugin}({parameters})" if parameters else str(plugin)
        settings_ = config
    start, end = settings_.get("start_date"), settings_.get("end_date")
    period = f"{start} → {end}" if start and end else ""
    return RunDescription(
        name=str(name), symbols=", ".join(symbols), parameters=parameters, period=period
    )


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
        values = [diff["values"][str(backtest.pk)] for backtest in backtests]
        best_value = diff["values"].get(diff["best_id"]) if diff["best_id"] else None
        # A tie has no best run: marking one of equal values would claim a difference.
        tied = best_value is not None and sum(value == best_value for value in values) > 1
        cells = [
            (
                metric_display(key, value),
                not tied and diff["best_id"] == str(backtest.pk),
            )
            for backtest, value in zip(backtests, values, strict=True)
        ]
        rows.append(
            CompareRow(
                key=key, label=metric_label(key), cells=cells, direction=metric_direction(key)
            )
        )
    return rows


def metric_label(flat_key: str) -> str:
    """A flat v1 metric key as a reader names it: ``perf_sharpe_ratio`` → ``Sharpe ratio``."""
    for fields in V1_STRUCTURE.values():
        for field, key in fields.items():
            if key == flat_key:
                return _label(field)
    return _label(flat_key)


def config_differences(backtests: Sequence[Backtest]) -> list[tuple[str, list[str]]]:
    """The configuration settings (costs, capital, engine and every config field, flattened)
    on which the runs differ, each as its readable name and one shown value per run."""
    flat = []
    for backtest in backtests:
        settings_ = {
            "engine": backtest.engine,
            "initial capital": backtest.initial_capital,
            "commission": backtest.commission,
            "slippage": backtest.slippage,
        }
        settings_.update(_flat_settings(backtest.config or {}))
        flat.append(settings_)
    names = list(dict.fromkeys(name for settings_ in flat for name in settings_))
    rows = []
    for name in names:
        shown = [_parameter_text(settings_.get(name, "—")) for settings_ in flat]
        if len(set(shown)) > 1:
            rows.append((name, shown))
    return rows


def _flat_settings(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{str(key).replace('_', ' ')}"
        if isinstance(value, dict) and value:
            flat.update(_flat_settings(value, prefix=f"{name} › "))
        else:
            flat[name] = value if not isinstance(value, dict) else "—"
    return flat


def compare_chart_data(backtests: Sequence[Backtest]) -> dict[str, Any]:
    """Each run's equity rebased to 100 on the period all of them cover, and its drawdown
    there (from that common start), downsampled for display."""
    curves = {}
    for backtest in backtests:
        equity = backtest_equity(backtest)
        if equity is not None and not equity.empty:
            curves[backtest] = equity
    common = charts.common_period(list(curves.values()))
    series = []
    for backtest, equity in curves.items():
        rebased = charts.rebased(equity, *common) if common else None
        if rebased is None:
            continue
        series.append(
            {
                "id": str(backtest.id),
                "label": backtest_label(backtest),
                **charts.display_series(rebased),
                "drawdown": charts.display_series(charts.drawdown_series(rebased, 100.0)),
            }
        )
    return {
        "common_start": common[0].strftime("%Y-%m-%d") if common else None,
        "common_end": common[1].strftime("%Y-%m-%d") if common else None,
        "series": series,
    }


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
        entries = leaderboard.sweep_leaderboard(sweep)["leaderboard"]
    labels = dict(Backtest.Status.choices)
    return [
        {
            **entry,
            # Only finished runs have a place; a pending or failed one is not "ranked last".
            "rank": entry.get("rank") if entry.get("status") == Backtest.Status.COMPLETED else None,
            "status_label": labels.get(entry.get("status"), entry.get("status")),
            "parameters": readable_parameters(entry.get("overrides")) or "—",
            "score_display": metric_display(sweep.rank_metric, entry.get("score")),
        }
        for entry in entries
    ]


def sweep_status(sweep: Sweep) -> dict[str, Any]:
    task = sweep_task(sweep)
    leaderboard = sweep_leaderboard(sweep)
    total = task.total if task is not None else len(sweep.param_grid or [])
    done = task.done if task is not None else 0
    finished = task is not None and task.status in (Task.Status.SUCCESS, Task.Status.FAILURE)
    status = task.status if task is not None else Task.Status.PENDING
    return {
        "id": str(sweep.id),
        "status": status,
        "status_label": Task.Status(status).label,
        "done": done,
        "total": total,
        "finished": finished,
        "rank_metric": sweep.rank_metric,
        "leaderboard": leaderboard,
        "heatmap": charts.sweep_heatmap(leaderboard),
    }


# --- research sweeps --------------------------------------------------------------------------

RESEARCH_LEADERBOARD_ROWS = 25


def research_sweep_page(sweep) -> dict[str, Any]:
    """The research sweep's leaderboard (best first; only finished entries ranked), its
    parameter names for the heatmap, and the overfitting block in plain words."""
    from backtests.research.selectors import flat_parameters, research_sweep_leaderboard

    board = research_sweep_leaderboard(sweep=sweep, limit=RESEARCH_LEADERBOARD_ROWS)
    rows = [
        {
            **entry,
            "rank": entry["rank"] if entry["status"] == "completed" else None,
            "parameters": readable_parameters(entry["overrides"]) or "—",
            "score_display": metric_display(sweep.rank_metric, entry["score"]),
        }
        for entry in board["entries"]
    ]
    plans = [
        flat_parameters(overrides)
        for overrides in sweep.entries.values_list("overrides", flat=True)
    ]
    names = list(dict.fromkeys(name for plan in plans for name in plan))
    varying = [name for name in names if len({repr(plan.get(name)) for plan in plans}) > 1]
    finished = sweep.entries.filter(status="completed").count()
    return {
        "leaderboard": rows,
        "count": board["count"],
        # How many of the best finished entries the page offers to compare (2 to 10).
        "compare_choices": list(range(2, min(finished, 10) + 1)),
        "compare_default": min(finished, COMPARE_TOP),
        "parameters": varying or names,
        "rank_metric_label": metric_label(sweep.rank_metric),
        "overfitting": overfitting_sentences(sweep.overfitting, n_trials=sweep.total),
    }


def overfitting_sentences(block: dict[str, Any] | None, *, n_trials: int) -> dict[str, str]:
    """One plain sentence per statistic of the §13.2 overfitting block, for this sweep."""
    if not block:
        return {}
    sentences = {}
    pbo = block.get("pbo")
    if pbo and pbo.get("value") is not None:
        value = pbo["value"]
        verdict = (
            "the best in-sample choice usually holds up out of sample"
            if value < 0.2
            else "the choice of the best configuration is close to a coin toss"
            if value < 0.5
            else "the best in-sample configuration is more often than not below the median "
            "out of sample: the sweep is likely overfitted"
        )
        sentences["pbo"] = (
            f"In {value:.0%} of the {pbo['combinations']:,} ways of splitting the history in two, "
            f"the configuration that was best in one half ranked below the median in the other: "
            f"{verdict}."
        )
    dsr = block.get("dsr")
    if dsr is not None:
        sentences["dsr"] = (
            f"After allowing for the {block.get('n_trials', n_trials):,} configurations tried, "
            f"the chance that the best one's Sharpe ratio is above zero is {dsr:.0%}"
            + (" — convincing." if dsr >= 0.95 else " — not convincing on its own.")
        )
    spa = block.get("spa") or {}
    if spa.get("pvalue_consistent") is not None:
        p_value = spa["pvalue_consistent"]
        sentences["spa"] = (
            f"Hansen's test gives p = {p_value:.3f} that no configuration beats "
            f"{spa.get('benchmark') or 'the benchmark'}: "
            + (
                "at least one does, beyond data snooping."
                if p_value < 0.05
                else "the best one's edge over it can be explained by luck across the grid."
            )
        )
    return sentences


def research_sweep_chart_data(sweep, x_name: str | None, y_name: str | None) -> dict[str, Any]:
    """The heatmap over two parameters, the λ histogram, and the in-sample vs out-of-sample
    scatter of the PBO's own points: for each CSCV combination, the best in-sample
    configuration's Sharpe in and out of sample (``charts.cscv_scatter``), computed once per
    returns matrix and then read from the cache."""
    from backtests.research.ranking import higher_is_better
    from backtests.research.returns_files import assemble_returns, chunk_uris
    from backtests.research.selectors import flat_parameters

    entries = [
        {"parameters": flat_parameters(entry.overrides), "score": entry.score}
        for entry in sweep.entries.only("overrides", "score")
    ]
    heatmap = None
    if x_name and y_name and x_name != y_name:
        heatmap = charts.parameter_heatmap(
            entries, x_name, y_name, higher_is_better=higher_is_better(sweep.rank_metric)
        )
    pbo = (sweep.overfitting or {}).get("pbo")
    scatter = None
    if pbo:
        stamp = sweep.completed_at.isoformat() if sweep.completed_at else ""
        key = f"pages:cscv-points:{CHART_DATA_FORMAT}:{sweep.pk}:{stamp}"
        scatter = cache.get(key)
        if scatter is None:
            try:  # the chunks' files side by side: what returns.parquet holds
                matrix = assemble_returns(chunk_uris(sweep))[2]
            except artifacts.ArtifactMissing:
                matrix = None
            if matrix is not None:
                bars_per_year = float(
                    (sweep.base_config or {}).get("bars_per_year") or TRADING_DAYS_PER_YEAR
                )
                scatter = charts.cscv_scatter(matrix, sweep.partitions, bars_per_year)
                cache.set(key, scatter, CHART_CACHE_SECONDS)
    return {
        "status": sweep.status,
        "done": sweep.done,
        "total": sweep.total,
        "rank_metric": metric_label(sweep.rank_metric),
        "heatmap": heatmap,
        "logit_histogram": pbo.get("logit_histogram") if pbo else None,
        "degradation": pbo.get("performance_degradation") if pbo else None,
        "scatter": scatter,
    }


# --- walk-forward -----------------------------------------------------------------------------


def walk_forward_page(walk_forward) -> dict[str, Any]:
    """Each fold's windows, choice in words, in-sample score and out-of-sample return, and the
    walk-forward efficiency in a sentence."""
    from backtests.research.selectors import flat_parameters

    combinations = walk_forward.combinations or []
    folds = []
    for fold in walk_forward.folds.order_by("index"):
        chosen = combinations[fold.chosen_index] if fold.chosen_index is not None else None
        # The folds store the core's metrics; the page shows v1 names and units.
        outcome = v1_row_metrics(fold.out_of_sample_metrics)
        folds.append(
            {
                "index": fold.index,
                "in_sample": f"{fold.in_sample_start} → {fold.in_sample_end}",
                "out_of_sample": f"{fold.out_of_sample_start} → {fold.out_of_sample_end}",
                "status": fold.get_status_display(),
                "chosen": readable_parameters(chosen) if chosen else "—",
                "in_sample_score": metric_display(walk_forward.rank_metric, fold.in_sample_score),
                "in_sample_cagr": metric_display(
                    "perf_cagr", v1_row_metrics(fold.in_sample_metrics).get("perf_cagr")
                ),
                "out_of_sample_return": metric_display("total_return", outcome.get("total_return")),
                "out_of_sample_cagr": metric_display("perf_cagr", outcome.get("perf_cagr")),
            }
        )
    result = walk_forward.result or {}
    efficiency = result.get("walk_forward_efficiency")
    if efficiency is None:
        sentence = (
            "Walk-forward efficiency is unknown until the analysis completes, or when an "
            "in-sample return is missing or averages zero."
        )
    else:
        sentence = (
            f"Walk-forward efficiency {efficiency:.2f}: out of sample the strategy earned "
            f"{efficiency:.0%} of the annual return its in-sample choices promised"
            + (
                " — the choices carry over well."
                if efficiency >= 0.5
                else " — much of the in-sample result did not survive."
            )
        )
    names = [
        name
        for name in dict.fromkeys(
            name for combination in combinations for name in flat_parameters(combination)
        )
    ]
    return {
        "folds": folds,
        "efficiency": efficiency,
        "efficiency_sentence": sentence,
        "choice_changes": result.get("choice_changes"),
        "parameter_names": names,
        "rank_metric_label": metric_label(walk_forward.rank_metric),
    }


def walk_forward_chart_data(walk_forward) -> dict[str, Any]:
    """The stitched out-of-sample equity (downsampled for display), fold boundaries, the
    in-sample promise of each fold, and the chosen parameters at each fold's start."""
    from backtests.research.selectors import flat_parameters

    result = walk_forward.result or {}
    points = result.get("equity") or []
    equity = pd.Series(
        [point["equity"] for point in points],
        index=pd.DatetimeIndex([point["date"] for point in points]),
        dtype="float64",
    )
    folds = list(walk_forward.folds.order_by("index"))
    combinations = walk_forward.combinations or []
    chosen = {}
    for fold in folds:
        if fold.chosen_index is None:
            continue
        for name, value in flat_parameters(combinations[fold.chosen_index]).items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                chosen.setdefault(name, {"dates": [], "values": []})
                chosen[name]["dates"].append(fold.out_of_sample_start.isoformat())
                chosen[name]["values"].append(value)
    return {
        "status": walk_forward.status,
        "equity": charts.display_series(equity) if len(equity) else None,
        "boundaries": [fold.out_of_sample_start.isoformat() for fold in folds],
        "in_sample": walk_forward_in_sample(walk_forward, folds, equity) if len(equity) else None,
        "chosen": chosen,
    }


def walk_forward_in_sample(walk_forward, folds, equity: pd.Series) -> dict[str, list]:
    """Each fold's chosen configuration run again on its in-sample window (the run its choice
    was ranked on: same configuration, window and capital), drawn leading into its
    out-of-sample window (``charts.in_sample_segments``); computed once per analysis and then
    read from the cache."""
    chosen = [(fold.index, fold.chosen_index) for fold in folds if fold.chosen_index is not None]
    digest = hashlib.sha256(repr(chosen).encode()).hexdigest()[:16]
    key = f"pages:wf-in-sample:{CHART_DATA_FORMAT}:{walk_forward.pk}:{walk_forward.status}:{digest}"
    curves = cache.get(key)
    if curves is None:
        curves = {
            fold.index: _fold_in_sample_equity(walk_forward, fold)
            for fold in folds
            if fold.chosen_index is not None
        }
        cache.set(key, curves, CHART_CACHE_SECONDS)
    return charts.in_sample_segments(
        equity,
        [
            {"start": fold.out_of_sample_start.isoformat(), "in_sample": curves.get(fold.index)}
            for fold in folds
        ],
    )


def _fold_in_sample_equity(walk_forward, fold) -> pd.Series | None:
    from backtests.pipeline import RunError, run_backtest
    from backtests.research.walk_forward.core import window_spec
    from backtests.research.walk_forward.jobs import combination_spec

    try:
        spec = combination_spec(walk_forward, walk_forward.combinations[fold.chosen_index])
        return run_backtest(window_spec(spec, fold.in_sample_start, fold.in_sample_end)).equity
    except (RunError, ValueError, KeyError, IndexError, TypeError):
        logger.warning("In-sample run of fold %s of %s cannot be made", fold.index, walk_forward.pk)
        return None


# --- sweeps index -----------------------------------------------------------------------------

SWEEPS_LISTED = 50
COMPARE_TOP = 5


def sweeps_index() -> dict[str, Any]:
    """The latest v1 sweeps, research sweeps and walk-forwards, newest first."""
    from backtests.research.models import ResearchSweep
    from backtests.research.walk_forward.models import WalkForward

    return {
        "sweeps": Sweep.objects.select_related("strategy", "task", "owner").order_by("-created_at")[
            :SWEEPS_LISTED
        ],
        "research_sweeps": ResearchSweep.objects.select_related("strategy", "owner").order_by(
            "-created_at"
        )[:SWEEPS_LISTED],
        "walk_forwards": WalkForward.objects.select_related("strategy", "owner").order_by(
            "-created_at"
        )[:SWEEPS_LISTED],
    }


def sweep_top_ids(leaderboard: list[dict[str, Any]], count: int = COMPARE_TOP) -> list[str]:
    """The best ``count`` finished runs of a sweep's leaderboard (ranked entries only)."""
    return [entry["backtest_id"] for entry in leaderboard if entry.get("rank")][:count]


# --- Backfolio portfolio runs -----------------------------------------------------------------


def portfolio_analytics(backtest: Backtest) -> dict[str, Any] | None:
    """An allocation run's analytics blocks as it saved them (a Backfolio run in its result; a
    v1 allocation run in its analysis, ``pipeline.allocation_report``; both computed by
    ``metrics.analytics``), with the held group over time as segments (``{"start", "end",
    "group"}``: a 20-year daily log is a few hundred switches, not 5,000 points) and the
    benchmark comparison as one flat block naming its benchmark. None for a run without saved
    analytics, or when they cannot be read."""
    if not backtest.report_uri:
        return None
    try:
        result = orjson.loads(artifacts.read_bytes(backtest.report_uri))
    except (artifacts.ArtifactMissing, orjson.JSONDecodeError):
        logger.warning("Saved analytics of run %s cannot be read", backtest.id)
        return None
    segments: list[dict[str, str]] = []
    for day, group in (result.get("allocation_log") or {}).items():
        if segments and segments[-1]["group"] == group:
            segments[-1]["end"] = day
        else:
            segments.append({"start": day, "end": day, "group": group})
    rolling = result.get("rolling_metrics") or {}
    comparison = {}
    for name, block in (result.get("benchmark_comparison") or {}).items():
        comparison = {"benchmark": name, **(block or {})}
        break
    return {
        "allocation": segments,
        "rolling": {
            "dates": list(rolling),
            **{
                name: [values.get(name) for values in rolling.values()]
                for name in ("rolling_sharpe", "rolling_sortino", "rolling_volatility")
            },
        },
        "correlation": result.get("correlation_matrix") or {},
        "risk_contribution": result.get("risk_contribution") or {},
        "benchmark_comparison": comparison,
        "transaction_analysis": result.get("transaction_analysis") or {},
        "drawdown_periods": (result.get("drawdown_analysis") or {}).get("periods") or [],
        "allocation_summary": result.get("allocation_summary") or [],
    }


def is_allocation_run(backtest: Backtest) -> bool:
    """Whether the run held allocation groups: a Backfolio run, or a v1 run of an allocation
    strategy (as it was when the run was made)."""
    if backtest.source == Backtest.Source.V2:
        return True
    snapshot = backtest.strategy_snapshot or {}
    return snapshot.get("kind") == Strategy.Kind.ALLOCATION

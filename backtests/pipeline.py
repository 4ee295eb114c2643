"""One backtest run, from a validated ``RunSpec`` to equity, trades and metrics (pure: no Django).

``run_backtest`` executes a ``RunSpec`` (``backtests.run_config.parse_run_config`` makes one): it
loads the prices with the warm-up history the definition needs, compiles the definition, runs the
engine on bars t_1..t_n and computes the SPEC §5 metrics from exactly the equity curve the engine
returned.

A signal strategy with several ``symbols`` runs the same rules on each symbol with an equal share
of the capital; the portfolio's equity is the sum of the parts.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from importlib import metadata
from typing import Any

import numpy as np
import pandas as pd

from backfolio.deadline import check_deadline
from backtests.engines import (
    EngineInput,
    EngineLimitationError,
    get_engine,
    registry,
)
from backtests.engines.base import directed_signals
from backtests.run_config import ALLOCATION, SIGNAL, RunError, RunSpec
from marketdata.store import MarketDataError, PriceStore, get_store
from metrics.calculations import (
    METRICS_SPEC_VERSION,
    cash_flow_metrics,
    compute_metrics,
    metrics_by_column,
    time_weighted_equity,
)
from metrics.jsonsafe import clean_number
from strategies.language import (
    SignalCache,
    SignalMasks,
    SignalPlan,
    compile_allocation_strategy,
    compile_signal_masks,
    compile_signal_strategy,
    warmup_bars,
)
from strategies.language.compiler import (
    cashflow_schedule,
)

ProgressCallback = Callable[[float], None]


@dataclass(frozen=True)
class RunResult:
    """What one run produced. ``metrics`` is ``compute_metrics``' output (SPEC §5 names and
    signs; the contracts' presenters turn it into their keys), plus ``FLOW_METRIC_KEYS`` for a
    run with cash flows."""

    equity: pd.Series
    positions: pd.DataFrame
    trades: pd.DataFrame
    orders: pd.DataFrame
    metrics: dict[str, Any]
    fingerprint: str
    data_hash: str
    start: pd.Timestamp
    end: pd.Timestamp
    completeness: dict[str, float] = field(default_factory=dict)
    # An allocation run's own: the group held on each bar, the closes of the symbols it holds
    # on the run's bars, and the cash flows that happened (None without flows); what
    # ``allocation_report`` reads. None for a signal run.
    groups: pd.Series | None = None
    close: pd.DataFrame | None = None
    cash_flows: np.ndarray | None = None


# --- running ---------------------------------------------------------------------------------


def run_backtest(
    spec: RunSpec,
    *,
    progress: ProgressCallback | None = None,
    store: PriceStore | None = None,
) -> RunResult:
    """Run one validated backtest. Raises ``RunError`` (data, compilation or engine failure)."""
    store = store or get_store()
    report = progress or (lambda fraction: None)
    engine = get_engine(spec.engine)
    try:
        prices = store.load(
            list(spec.data_symbols),
            spec.start,
            spec.end,
            adjustment=spec.price_adjustment,
            timeframe=spec.timeframe,
            warmup_bars=warmup_bars(spec.definition, signal_delay=spec.signal_delay),
        )
    except MarketDataError as error:
        raise RunError(str(error)) from error
    report(0.1)
    in_run = (prices.close.index >= prices.start) & (prices.close.index <= prices.end)
    run_close = prices.close.loc[in_run]

    groups = None
    try:
        if spec.kind == ALLOCATION:
            result, groups = _run_allocation(spec, engine, prices, run_close, report)
            results = [result]
        else:
            results = _run_signal(spec, engine, prices, run_close, report)
    except (ValueError, MarketDataError) as error:
        raise RunError(str(error)) from error

    report(0.95)
    check_deadline()
    run = _finish_run(spec, prices, results)
    if groups is not None:
        held = [symbol for symbol in run.positions.columns if symbol in run_close.columns]
        run = replace(run, groups=groups, close=run_close[held], cash_flows=results[0].cash_flows)
    report(1.0)
    return run


ALLOCATION_ROLLING_WINDOW = 63  # bars, as the Backfolio contract's rolling_metrics


def allocation_report(
    run: RunResult,
    *,
    initial_capital: float,
    bars_per_year: float,
    benchmark: str | None = None,
    benchmark_close: pd.Series | None = None,
) -> dict[str, Any]:
    """An allocation run's analytics, in the blocks (and with the definitions) a Backfolio run
    saves them (``metrics.analytics``): the held group per bar (``allocation_log``) and per
    group (``allocation_summary``), rolling Sharpe/Sortino/volatility, the correlation of the
    held assets' returns, each asset's risk contribution at the average held weights, the
    drawdown periods, the transactions, and the comparison with ``benchmark`` (its closes) when
    given. With cash flows every return is time-weighted, as the run's metrics are."""
    from metrics import analytics
    from metrics.calculations import returns_from_equity, time_weighted_returns

    if run.groups is None or run.close is None:
        raise ValueError("allocation_report needs an allocation run")
    equity = run.equity
    index = equity.index
    if run.cash_flows is None:
        returns = returns_from_equity(equity, initial_capital)
        performance = equity
    else:
        returns = time_weighted_returns(equity, initial_capital, run.cash_flows)
        performance = time_weighted_equity(equity, initial_capital, run.cash_flows)
    risky = [symbol for symbol in run.close.columns if str(symbol).upper() != "CASH"]
    close = run.close[risky].to_numpy(dtype=float)
    asset_returns = np.full_like(close, np.nan)
    asset_returns[1:] = close[1:] / close[:-1] - 1.0
    asset_returns = pd.DataFrame(asset_returns, index=index, columns=risky)
    # A withdrawal can empty the portfolio: nothing is held on a bar worth 0.
    worth = equity.to_numpy(dtype=float)
    worth = np.where(worth > 0, worth, np.nan)
    held_weights = pd.DataFrame(
        run.positions.reindex(columns=risky).fillna(0.0).to_numpy(dtype=float)
        * close
        / worth[:, None],
        index=index,
        columns=risky,
    )
    groups = run.groups.reindex(index).astype(str)
    dates = np.datetime_as_string(index.to_numpy(dtype="datetime64[D]"), unit="D").tolist()
    comparison: dict[str, Any] = {}
    if benchmark and benchmark_close is not None:
        comparison = analytics.benchmark_comparison(
            returns,
            analytics.benchmark_returns_from_prices(benchmark_close, index),
            benchmark,
            bars_per_year=bars_per_year,
        )
    return {
        "allocation_log": dict(zip(dates, groups.tolist(), strict=True)),
        "allocation_summary": analytics.allocation_summary(groups, returns),
        "rolling_metrics": analytics.rolling_metrics(
            returns, window=ALLOCATION_ROLLING_WINDOW, bars_per_year=bars_per_year
        ),
        "correlation_matrix": analytics.correlation_matrix(asset_returns),
        "risk_contribution": analytics.risk_contribution(held_weights, asset_returns),
        "drawdown_analysis": analytics.drawdown_analysis(performance, initial_capital),
        "transaction_analysis": analytics.transaction_analysis(run.orders, equity, initial_capital),
        "benchmark_comparison": comparison,
    }


def run_backtest_batch(
    specs: Sequence[RunSpec], *, store: PriceStore | None = None
) -> list[RunResult | RunError]:
    """Run several validated backtests; one result (or the ``RunError`` it failed with) each.

    Runs that differ only in their definition (a sweep over plugin parameters) on an engine with
    a batch path (``run_signal_batch``) share one vectorised engine call, one column per run,
    each with its own capital; everything after the engine — results, metrics, fingerprint — is
    exactly what ``run_backtest`` does for one run, so the numbers are the same. Anything else
    runs one by one through ``run_backtest``.
    """
    return _run_batch(specs, store or get_store(), equity_only=False)


def run_equity_batch(
    specs: Sequence[RunSpec], *, store: PriceStore | None = None
) -> list[pd.Series | RunError]:
    """The equity curves of several validated backtests (each exactly the ``equity`` that
    ``run_backtest`` returns for its spec), or the ``RunError`` a run failed with.

    For studies that rank runs by what their equity says (Sharpe, CAGR, drawdown…): runs that
    can share a vectorised engine call (``run_signal_batch_equity``) skip building trades,
    orders and metrics; anything else runs through ``run_backtest``.
    """
    return [
        outcome.series(column) if isinstance(outcome, EquityColumns) else outcome
        for outcome, column in run_equity_columns(specs, store=store)
    ]


@dataclass(frozen=True)
class EquityColumns:
    """The equity curves of runs simulated together: ``values`` is bars × runs on ``dates``."""

    dates: pd.DatetimeIndex
    values: np.ndarray

    def series(self, column: int) -> pd.Series:
        return pd.Series(self.values[:, column], index=self.dates, name="equity")


def run_equity_columns(
    specs: Sequence[RunSpec], *, store: PriceStore | None = None
) -> list[tuple[EquityColumns | pd.Series | RunError, int]]:
    """``run_equity_batch`` without a Series per run: for each spec, ``(columns, column)`` when
    it ran in a vectorised call (its curve is ``columns.values[:, column]``), else its equity
    Series or ``RunError`` and -1. A study of thousands of runs reads them as matrices."""
    return _run_batch(specs, store or get_store(), equity_only=True)


def _run_batch(specs: Sequence[RunSpec], store: PriceStore, *, equity_only: bool) -> list:
    def run_alone(spec: RunSpec):
        try:
            run = run_backtest(spec, store=store)
        except RunError as error:
            return (error, -1) if equity_only else error
        return (run.equity, -1) if equity_only else run

    return _in_shared_calls(
        specs,
        capability="run_signal_batch_equity" if equity_only else "run_signal_batch",
        smallest_group=2,
        run_group=lambda batch: _run_signal_batch(batch, store, equity_only=equity_only),
        run_alone=run_alone,
    )


def _in_shared_calls(
    specs: Sequence[RunSpec],
    *,
    capability: str,
    smallest_group: int,
    run_group: Callable[[list[RunSpec]], list],
    run_alone: Callable[[RunSpec], Any],
) -> list:
    """Each spec's outcome, in order. Single-symbol signal runs that differ only in their
    definition, on an engine with ``capability``, go to ``run_group`` together (groups of at
    least ``smallest_group``); the rest, and any group whose shared call the engine refuses
    (``EngineLimitationError``), go to ``run_alone`` one at a time."""
    outcomes: list[Any] = [None] * len(specs)
    groups: dict[tuple, list[int]] = {}
    for position, spec in enumerate(specs):
        engine = get_engine(spec.engine)
        if spec.kind == SIGNAL and len(spec.symbols) == 1 and hasattr(engine, capability):
            key = tuple(getattr(spec, name) for name in _BATCH_SHARED_FIELDS)
            groups.setdefault(key, []).append(position)
    for positions in groups.values():
        if len(positions) < smallest_group:
            continue
        try:
            results = run_group([specs[position] for position in positions])
        except EngineLimitationError:
            continue  # these run one by one below
        for position, result in zip(positions, results, strict=True):
            outcomes[position] = result
    for position, spec in enumerate(specs):
        if outcomes[position] is None:
            outcomes[position] = run_alone(spec)
    return outcomes


# What runs that share one vectorised engine call have in common: everything but what drives
# their signals.
_BATCH_SHARED_FIELDS = tuple(
    field.name for field in fields(RunSpec) if field.name not in ("definition", "config", "driver")
)
# (definition, data symbols, warm-up) by the definition's identity and what else they depend on:
# the runs of a study are run again on other windows (walk-forward folds) with the same
# definitions. The definition is kept, so its id cannot be reused while it is here.
_DATA_NEEDS: dict[tuple, tuple] = {}
_DATA_NEEDS_SIZE = 8192


def _data_needs(spec: RunSpec) -> tuple[tuple[str, ...], int]:
    """The symbols ``spec`` reads and the warm-up bars it loads before its start."""
    key = (id(spec.definition), spec.kind, spec.symbols, spec.signal_delay)
    known = _DATA_NEEDS.get(key)
    if known is not None and known[0] is spec.definition:
        return known[1], known[2]
    symbols = spec.data_symbols
    warmup = warmup_bars(spec.definition, signal_delay=spec.signal_delay)
    if len(_DATA_NEEDS) >= _DATA_NEEDS_SIZE:
        _DATA_NEEDS.clear()
    _DATA_NEEDS[key] = (spec.definition, symbols, warmup)
    return symbols, warmup


class _SharedPrices:
    """The prices, run bars and signal cache that the runs of a batch with the same symbols and
    warm-up read (loaded once)."""

    def __init__(self, store: PriceStore) -> None:
        self.store = store
        self.loaded: dict[tuple, tuple] = {}
        self._closes: dict[tuple[int, str], pd.DataFrame] = {}

    def of(self, spec: RunSpec) -> tuple[Any, SignalCache]:
        symbols, warmup = _data_needs(spec)
        key = (symbols, warmup)
        if key not in self.loaded:
            prices = self.store.load(
                list(symbols),
                spec.start,
                spec.end,
                adjustment=spec.price_adjustment,
                timeframe=spec.timeframe,
                warmup_bars=warmup,
            )
            self.loaded[key] = (prices, SignalCache(prices))
        return self.loaded[key]

    def run_close(self, prices, symbol: str) -> pd.DataFrame:
        """The traded symbol's closes on the run's bars (no warm-up), once per prices."""
        key = (id(prices), symbol)  # prices loaded here stay in ``loaded``: ids stay theirs
        if key not in self._closes:
            self._closes[key] = prices.close.iloc[_run_rows(prices)][[symbol]]
        return self._closes[key]


def _run_rows(prices) -> slice:
    """The rows of ``prices`` from its start to its end (the run's bars; the index ascends)."""
    index = prices.close.index
    return slice(
        int(index.searchsorted(prices.start, side="left")),
        int(index.searchsorted(prices.end, side="right")),
    )


@contextlib.contextmanager
def _shared_engine_call():
    """An engine's refusal of one call shared by several runs (a ``ValueError``) is an
    ``EngineLimitationError``: the callers then run them one at a time."""
    try:
        yield
    except EngineLimitationError:
        raise
    except ValueError as error:
        raise EngineLimitationError(str(error)) from error


def _run_signal_batch(specs: list[RunSpec], store: PriceStore, *, equity_only: bool = False):
    """Compile each run on its own prices (warm-up depends on the definition), then one engine
    call for those that compiled; raises ``EngineLimitationError`` when they cannot share it."""
    engine = get_engine(specs[0].engine)
    if equity_only and hasattr(engine, "run_signal_matrix_equity"):
        return _run_signal_matrix(engine, specs, store)
    outcomes: list[Any] = [None] * len(specs)
    runs = []
    shared = _SharedPrices(store)
    for position, spec in enumerate(specs):
        try:
            prices, cache = shared.of(spec)
            symbol = spec.symbols[0]
            run_close = shared.run_close(prices, symbol)
            plan = compile_signal_strategy(
                spec.definition,
                prices,
                symbol,
                direction=spec.direction,
                signal_delay=spec.signal_delay,
                cache=cache,
            )
        except (ValueError, MarketDataError) as error:
            outcomes[position] = RunError(str(error))
            continue
        runs.append((position, spec, prices, _signal_input(spec, run_close, plan, None)))
    inputs = [run[3] for run in runs]
    with _shared_engine_call():
        if equity_only:
            equity = engine.run_signal_batch_equity(inputs) if runs else None
        else:
            results = engine.run_signal_batch(inputs) if runs else []
    if equity_only:
        for column, (position, _spec, _prices, data) in enumerate(runs):
            series = pd.Series(equity[:, column], index=data.close.index, name="equity")
            outcomes[position] = (series, -1)
        for position, outcome in enumerate(outcomes):
            if isinstance(outcome, RunError):
                outcomes[position] = (outcome, -1)
        return outcomes
    for (position, spec, prices, _data), result in zip(runs, results, strict=True):
        outcomes[position] = _finish_run(spec, prices, [result])
    return outcomes


def _compile_signal_matrix(specs: list[RunSpec], store: PriceStore):
    """Each definition compiled to bool arrays on its own prices (no frames, no engine input per
    run), and one bars × runs matrix per rule: ``(failed, compiled, shared, close, signals)``
    with ``failed`` the ``RunError`` of each position that did not compile and ``compiled`` the
    ``(position, masks)`` of those that did (``signals`` is None when none did). Raises
    ``EngineLimitationError`` when the runs trade on different bars or closes."""
    failed: dict[int, RunError] = {}
    shared = _SharedPrices(store)
    compiled = []
    for position, spec in enumerate(specs):
        try:
            prices, cache = shared.of(spec)
            masks = compile_signal_masks(
                spec.definition,
                prices,
                spec.symbols[0],
                direction=spec.direction,
                signal_delay=spec.signal_delay,
                cache=cache,
            )
        except (ValueError, MarketDataError) as error:
            failed[position] = RunError(str(error))
            continue
        if spec.close_at_end:
            masks = _masks_flat_at_end(masks)
        compiled.append((position, masks))
    if not compiled:
        return failed, compiled, shared, None, None
    symbol = specs[compiled[0][0]].symbols[0]
    loaded = [prices for prices, _cache in shared.loaded.values()]
    close = shared.run_close(loaded[0], symbol)
    dates, values = close.index, close.to_numpy()
    for prices in loaded[1:]:
        in_run = _run_rows(prices)
        if not (
            prices.close.index[in_run].equals(dates)
            and np.array_equal(
                prices.close[symbol].to_numpy()[in_run], values[:, 0], equal_nan=True
            )
        ):
            raise EngineLimitationError("these runs differ in more than their signals.")

    def matrix(rule: str) -> np.ndarray:
        return np.column_stack([getattr(masks, rule) for _position, masks in compiled])

    signals = directed_signals(
        specs[compiled[0][0]].direction,
        matrix("entries"),
        matrix("exits"),
        matrix("short_entries"),
        matrix("short_exits"),
    )
    return failed, compiled, shared, close, signals


def _run_signal_matrix(engine, specs: list[RunSpec], store: PriceStore) -> list:
    """The equity-only batch as matrices (``_compile_signal_matrix``), one engine call. The
    same signals, settings and simulation as one run each, so the same equity curves."""
    failed, compiled, _shared, close, signals = _compile_signal_matrix(specs, store)
    outcomes: list[Any] = [None] * len(specs)
    for position, error in failed.items():
        outcomes[position] = (error, -1)
    if not compiled:
        return outcomes
    first = specs[compiled[0][0]]
    with _shared_engine_call():
        equity = engine.run_signal_matrix_equity(_signal_settings(first, close, None), signals)
    columns = EquityColumns(close.index, equity)
    for column, (position, _masks) in enumerate(compiled):
        outcomes[position] = (columns, column)
    return outcomes


@dataclass(frozen=True)
class StudyRun:
    """What a study keeps of one run: its equity curve (column ``column`` of ``equity``), its
    ``compute_metrics`` metrics and its fingerprint, each exactly what ``run_backtest`` gives
    for its spec."""

    equity: EquityColumns
    column: int
    metrics: dict[str, Any]
    fingerprint: str


def run_study(spec: RunSpec, *, store: PriceStore | None = None) -> StudyRun | RunError:
    """``run_study_batch`` of one run: its equity, metrics and fingerprint through the matrix
    path when its engine has one (no trades, orders or positions frames), else ``run_backtest``;
    the same numbers either way."""
    return _run_study_batch([spec], store or get_store(), smallest_group=1)[0]


def run_study_batch(
    specs: Sequence[RunSpec], *, store: PriceStore | None = None
) -> list[StudyRun | RunError]:
    """``run_backtest_batch``'s equity, metrics and fingerprint of each run (or the
    ``RunError`` it failed with), without its trades, orders and positions frames.

    Runs that differ only in their definition, on an engine with a matrix path
    (``run_signal_matrix``), are compiled once per distinct price window and simulated in one
    call; their metrics are computed for all columns at once (``metrics_by_column``) from the
    equity matrix and the engine's order records, with the same numbers as one run each.
    Anything else runs through ``run_backtest``.
    """
    return _run_study_batch(specs, store or get_store(), smallest_group=2)


def _run_study_batch(
    specs: Sequence[RunSpec], store: PriceStore, *, smallest_group: int
) -> list[StudyRun | RunError]:
    def run_alone(spec: RunSpec) -> StudyRun | RunError:
        try:
            run = run_backtest(spec, store=store)
        except RunError as error:
            return error
        equity = EquityColumns(run.equity.index, run.equity.to_numpy(dtype=float)[:, None])
        return StudyRun(equity, 0, run.metrics, run.fingerprint)

    return _in_shared_calls(
        specs,
        capability="run_signal_matrix",
        smallest_group=smallest_group,
        run_group=lambda batch: _run_study_matrix(get_engine(batch[0].engine), batch, store),
        run_alone=run_alone,
    )


def _run_study_matrix(engine, specs: list[RunSpec], store: PriceStore) -> list:
    failed, compiled, shared, close, signals = _compile_signal_matrix(specs, store)
    outcomes: list[Any] = [None] * len(specs)
    for position, error in failed.items():
        outcomes[position] = error
    if not compiled:
        return outcomes
    first = specs[compiled[0][0]]
    with _shared_engine_call():
        run = engine.run_signal_matrix(_signal_settings(first, close, None), signals)
    check_deadline()
    equity = EquityColumns(close.index, run.equity)
    trades = run.trade_columns()
    held = run.bars_held()
    read = [column for column in range(len(compiled)) if trades.pnl[column] is not None]
    metrics: dict[int, dict[str, Any]] = {}
    if read:
        computed = metrics_by_column(
            run.equity[:, read],
            close.index,
            initial_capital=first.initial_capital,
            trade_pnl=[trades.pnl[column] for column in read],
            traded_notional=trades.traded_notional[read],
            bars_held=held[read],
            bars_per_year=first.bars_per_year,
            risk_free_rate=first.risk_free_rate,
        )
        metrics = dict(zip(read, computed, strict=True))
    for column, (position, _masks) in enumerate(compiled):
        spec = specs[position]
        prices, _cache = shared.of(spec)
        if column in metrics:
            outcomes[position] = StudyRun(
                equity,
                column,
                metrics[column],
                run_fingerprint(spec, prices.data_hash, prices.start, prices.end),
            )
            continue
        try:  # orders that are not whole round trips: the trades table, as one run builds it
            result = _finish_run(spec, prices, [run.result(column)])
        except RunError as error:
            outcomes[position] = error
            continue
        outcomes[position] = StudyRun(equity, column, result.metrics, result.fingerprint)
    return outcomes


def _finish_run(spec: RunSpec, prices, results) -> RunResult:
    """Combine the engine's results (one per traded symbol) and compute the metrics.

    The v1 contract has no warnings: a run in which the broker refused an order fails, naming
    each refused order's date, symbol and reason (its numbers are not the rules' numbers)."""
    refused = [order for result in results for order in result.refused_orders]
    if refused:
        raise RunError("; ".join(order.describe() for order in refused) + ".")
    equity = results[0].equity.copy()
    for result in results[1:]:
        equity = equity + result.equity
    equity.name = "equity"
    positions = pd.concat([result.positions for result in results], axis=1)
    trades = _concat_sorted([result.trades for result in results], ["entry_date", "symbol"])
    orders = _concat_sorted([result.orders for result in results], ["date", "symbol"])
    flows = results[0].cash_flows
    # With cash flows every return-based metric is time-weighted (SPEC §8.1); final_value is E_n.
    performance = (
        equity if flows is None else time_weighted_equity(equity, spec.initial_capital, flows)
    )
    metrics = compute_metrics(
        performance,
        initial_capital=spec.initial_capital,
        trades=trades,
        positions=positions,
        orders=orders,
        bars_per_year=spec.bars_per_year,
        risk_free_rate=spec.risk_free_rate,
    )
    if flows is not None:
        metrics["final_value"] = clean_number(float(equity.iloc[-1]))
        metrics.update(
            cash_flow_metrics(equity.index, spec.initial_capital, flows, float(equity.iloc[-1]))
        )
    return RunResult(
        equity=equity,
        positions=positions,
        trades=trades,
        orders=orders,
        metrics=metrics,
        fingerprint=run_fingerprint(spec, prices.data_hash, prices.start, prices.end),
        data_hash=prices.data_hash,
        start=prices.start,
        end=prices.end,
        completeness=dict(prices.completeness),
    )


def _engine_progress(report: ProgressCallback, low: float, high: float) -> ProgressCallback:
    return lambda fraction: report(low + (high - low) * fraction)


def _run_signal(spec: RunSpec, engine, prices, run_close: pd.DataFrame, report):
    capital = spec.initial_capital / len(spec.symbols)
    results = []
    step = 0.8 / len(spec.symbols)
    for position, symbol in enumerate(spec.symbols):
        check_deadline()
        plan = compile_signal_strategy(
            spec.definition,
            prices,
            symbol,
            direction=spec.direction,
            signal_delay=spec.signal_delay,
        )
        low = 0.1 + step * position
        progress = _engine_progress(report, low, low + step)
        results.append(
            engine.run(_signal_input(spec, run_close[[symbol]], plan, progress, capital=capital))
        )
    return results


def _signal_input(spec: RunSpec, close, plan, progress, *, capital=None) -> EngineInput:
    if spec.close_at_end:
        plan = _flat_at_end(plan)
    return replace(
        _signal_settings(spec, close, progress, capital=capital),
        entries=plan.entries,
        exits=plan.exits,
        short_entries=plan.short_entries,
        short_exits=plan.short_exits,
    )


def _signal_settings(spec: RunSpec, close, progress, *, capital=None) -> EngineInput:
    """The engine input of a signal run without its signals."""
    return EngineInput(
        close=close,
        initial_capital=spec.initial_capital if capital is None else capital,
        commission=spec.commission,
        slippage=spec.slippage,
        kind=SIGNAL,
        direction=spec.direction,
        size_type=spec.size_type,
        size=spec.size,
        stop_loss=spec.stop_loss,
        take_profit=spec.take_profit,
        trailing_stop=spec.trailing_stop,
        max_holding_bars=spec.max_holding_bars,
        progress=progress,
    )


def _flat_at_end(plan: SignalPlan) -> SignalPlan:
    """The plan with every position closed on its last bar: exits set, entries cleared (an entry
    and an exit on one bar would be ambiguous)."""

    def on_last_bar(frame: pd.DataFrame | None, value: bool) -> pd.DataFrame | None:
        if frame is None or frame.empty:
            return frame
        frame = frame.copy()
        frame.iloc[-1] = value
        return frame

    return SignalPlan(
        entries=on_last_bar(plan.entries, False),
        exits=on_last_bar(plan.exits, True),
        short_entries=on_last_bar(plan.short_entries, False),
        short_exits=on_last_bar(plan.short_exits, True),
    )


def _masks_flat_at_end(masks: SignalMasks) -> SignalMasks:
    """``_flat_at_end`` for compiled arrays."""

    def on_last_bar(values: np.ndarray, value: bool) -> np.ndarray:
        if len(values) == 0:
            return values
        values = values.copy()
        values[-1] = value
        return values

    return SignalMasks(
        entries=on_last_bar(masks.entries, False),
        exits=on_last_bar(masks.exits, True),
        short_entries=on_last_bar(masks.short_entries, False),
        short_exits=on_last_bar(masks.short_exits, True),
    )


def _run_allocation(spec: RunSpec, engine, prices, run_close: pd.DataFrame, report):
    plan = compile_allocation_strategy(
        spec.definition,
        prices,
        rebalance=spec.rebalance_frequency,
        evaluation=spec.evaluation_frequency,
        signal_delay=spec.signal_delay,
    )
    weights = plan.target_weights
    flows = None
    if spec.cashflow_amount is not None:
        flows = np.where(
            cashflow_schedule(weights.index, spec.cashflow_frequency), spec.cashflow_amount, 0.0
        )
        # A flow bar trades into the current target weights: the last ones the plan traded to.
        weights = weights.copy()
        weights[flows != 0] = weights.ffill().to_numpy()[flows != 0]
    if spec.close_at_end and not weights.empty:
        weights = weights.copy()
        weights.iloc[-1] = 0.0
    result = engine.run(
        EngineInput(
            close=run_close[list(weights.columns)],
            initial_capital=spec.initial_capital,
            commission=spec.commission,
            slippage=spec.slippage,
            kind=ALLOCATION,
            target_weights=weights,
            cash_flows=flows,
            progress=_engine_progress(report, 0.1, 0.9),
        )
    )
    return result, plan.groups


def _concat_sorted(frames: list[pd.DataFrame], by: list[str]) -> pd.DataFrame:
    if len(frames) == 1:
        return frames[0]
    combined = pd.concat(frames, ignore_index=True)
    return combined.sort_values(by, kind="stable").reset_index(drop=True)


# --- fingerprint -----------------------------------------------------------------------------

_CORE_DISTRIBUTIONS = ("numpy", "pandas", "numba", "TA-Lib")


def library_versions(engine: str) -> dict[str, str]:
    """Versions of the libraries whose code decides a run's numbers (a copy: callers may keep
    it). Read once per process: the code a process runs does not change under it."""
    return dict(_library_versions(engine))


@functools.cache
def _library_versions(engine: str) -> dict[str, str]:
    versions = {}
    for name in (registry.distribution(engine), *_CORE_DISTRIBUTIONS):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def run_fingerprint(spec: RunSpec, data_hash: str, start: pd.Timestamp, end: pd.Timestamp) -> str:
    """sha256 over what decides a run's numbers (SPEC §6): same fingerprint, same numbers."""
    document = {
        "config": spec.config,
        "kind": spec.kind,
        "definition": spec.definition,
        "engine": spec.engine,
        "initial_capital": spec.initial_capital,
        "commission": spec.commission,
        "slippage": spec.slippage,
        "symbols": list(spec.data_symbols),
        "range": [pd.Timestamp(start).date().isoformat(), pd.Timestamp(end).date().isoformat()],
        "data_hash": data_hash,
        "libraries": library_versions(spec.engine),
        "metrics_spec_version": METRICS_SPEC_VERSION,
    }
    if spec.close_at_end:
        document["close_at_end"] = True
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()

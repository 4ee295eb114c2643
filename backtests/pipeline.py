"""One backtest run, from a run configuration to equity, trades and metrics (pure: no Django).

``parse_run_config`` checks a v1 ``config`` (SPEC §3) against the strategy it runs and returns a
``RunSpec`` with every default filled in, or the list of problems (each located by the config key
it is about). ``run_backtest`` executes a ``RunSpec``: it loads the prices with the warm-up history
the definition needs, compiles the definition, runs the engine on bars t_1..t_n and computes the
SPEC §5 metrics from exactly the equity curve the engine returned.

What drives a run, first match wins: ``config.signal`` › ``config.signal_plugin_key`` › the
strategy's ``definition`` › buy-and-hold (signal strategies only; an allocation strategy must have
an allocation definition).

A signal strategy with several ``symbols`` runs the same rules on each symbol with an equal share
of the capital; the portfolio's equity is the sum of the parts.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import date
from importlib import metadata
from typing import Any

import numpy as np
import pandas as pd

from backfolio.deadline import check_deadline
from backfolio.limits import MAX_CASHFLOW_AMOUNT, MAX_SYMBOL_BARS
from backfolio.limits import MAX_SYMBOLS_PER_RUN as MAX_SYMBOLS
from backtests.engines import (
    EngineInput,
    EngineLimitationError,
    available_engines,
    get_engine,
    registry,
)
from backtests.engines.base import DIRECTIONS, SIZE_TYPES, directed_signals
from marketdata.resample import TIMEFRAMES
from marketdata.store import ADJUSTMENTS as PRICE_ADJUSTMENTS
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
    REBALANCE_FREQUENCIES,
    Problem,
    SignalCache,
    SignalMasks,
    SignalPlan,
    build_plugin,
    compile_allocation_strategy,
    compile_signal_masks,
    compile_signal_strategy,
    required_symbols,
    symbol_format_problem,
    validate_definition,
    validate_plugin,
    warmup_bars,
    work_problems,
)
from strategies.language.compiler import (
    CASHFLOW_FREQUENCIES,
    EVALUATION_FREQUENCIES,
    MAX_ALLOCATION_SIGNAL_DELAY,
    cashflow_schedule,
)
from strategies.language.work import loaded_bar_count

SIGNAL = "signal"
ALLOCATION = "allocation"

BARS_PER_YEAR = {"1d": 252, "1wk": 52, "1mo": 12}

COMMON_KEYS = (
    "symbol",
    "symbols",
    "start_date",
    "end_date",
    "timeframe",
    "bars_per_year",
    "risk_free_rate",
    "signal",
    "price_adjustment",
)
SIGNAL_ONLY_KEYS = (
    "size_type",
    "size",
    "direction",
    "signal_plugin_key",
    "signal_plugin_params",
    "stop_loss",
    "take_profit",
    "trailing_stop",
    "max_holding_bars",
    "signal_delay",
)
# signal_delay is both kinds' (an allocation's rules act that many bars after their evaluation,
# SPEC §8.1); it is listed with each kind so that the accepted keys read as before.
ALLOCATION_ONLY_KEYS = (
    "rebalance_frequency",
    "evaluation_frequency",
    "signal_delay",
    "cashflow_amount",
    "cashflow_frequency",
)

MAX_SHARES = 1e9
MAX_HOLDING_BARS = 100_000
MAX_SIGNAL_DELAY = 252
MAX_BARS_PER_YEAR = 366 * 24 * 60
MAX_TAKE_PROFIT = 100.0

ProgressCallback = Callable[[float], None]


def accepted_keys(kind: str) -> tuple[str, ...]:
    """The config keys a strategy of ``kind`` accepts."""
    extra = ALLOCATION_ONLY_KEYS if kind == ALLOCATION else SIGNAL_ONLY_KEYS
    return (*COMMON_KEYS, *extra)


@dataclass(frozen=True)
class RunSpec:
    """Everything one run needs, validated, with every default filled in.

    ``config`` is the canonical configuration (the user's keys plus every default) that the
    fingerprint hashes; ``definition`` is what drives the run after precedence (None for a
    buy-and-hold signal run) and ``driver`` says where it came from: ``signal``,
    ``signal_plugin``, ``strategy`` or ``buy_and_hold``.
    """

    kind: str
    engine: str
    initial_capital: float
    commission: float
    slippage: float
    symbols: tuple[str, ...]
    start: date
    end: date
    timeframe: str
    bars_per_year: float
    risk_free_rate: float
    price_adjustment: str
    definition: Mapping[str, Any] | None
    driver: str
    config: Mapping[str, Any]
    size_type: str = "percent"
    size: float = 1.0
    direction: str = "long"
    stop_loss: float | None = None
    take_profit: float | None = None
    trailing_stop: float | None = None
    max_holding_bars: int | None = None
    signal_delay: int = 0
    rebalance_frequency: str = "monthly"
    evaluation_frequency: str = "daily"
    cashflow_amount: float | None = None
    cashflow_frequency: str | None = None
    # Sell everything at the last bar's close, with its costs (a walk-forward's out-of-sample
    # window ends flat, so the next window starts from cash); v1 runs keep their positions.
    close_at_end: bool = False

    @property
    def data_symbols(self) -> tuple[str, ...]:
        """Every symbol whose prices the run reads: traded ones, then those the signals read."""
        if self.kind == ALLOCATION:
            return tuple(required_symbols(self.definition))
        needed: list[str] = list(self.symbols)
        for symbol in self.symbols:
            needed.extend(required_symbols(self.definition, symbol))
        return tuple(dict.fromkeys(needed))


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


class RunError(ValueError):
    """A run that cannot complete (data, compilation or engine); the message says why."""


# --- configuration ---------------------------------------------------------------------------


def validate_run_settings(
    *, engine: Any, initial_capital: Any, commission: Any, slippage: Any
) -> list[Problem]:
    """Problems with the settings that sit next to ``config`` (path = the setting's name)."""
    problems: list[Problem] = []
    if engine not in available_engines():
        known = ", ".join(available_engines()) or "none"
        problems.append(
            Problem("engine", f"Unknown engine {engine!r}; available engines: {known}.")
        )
    if not _is_number(initial_capital) or not initial_capital > 0:
        problems.append(Problem("initial_capital", "Must be a number greater than 0."))
    elif initial_capital > 1e15:
        problems.append(Problem("initial_capital", "Must be at most 1e15."))
    for name, value in (("commission", commission), ("slippage", slippage)):
        if not _is_number(value) or not 0 <= value <= 0.1:
            problems.append(Problem(name, "Must be a number between 0 and 0.1."))
    return problems


def parse_run_config(
    config: Any,
    *,
    strategy_kind: str,
    strategy_definition: Mapping[str, Any] | None,
    strategy_timeframe: str | None,
    engine: str,
    initial_capital: float,
    commission: float,
    slippage: float,
    store: PriceStore | None = None,
) -> tuple[RunSpec | None, list[Problem]]:
    """Validate a run configuration (SPEC §3) and resolve what drives the run.

    Problems carry the config key as their path (``start_date``, ``signal.entry.left.window``,
    ``signal_plugin_params.fast``); a problem with the strategy's own definition has the path
    ``definition``. ``engine``, ``initial_capital``, ``commission`` and ``slippage`` are taken as
    given (check them with ``validate_run_settings``). Dates are checked against the market data's
    coverage through ``store`` (the process-wide store by default).
    """
    if not isinstance(config, Mapping):
        return None, [Problem("", "Must be a JSON object.")]
    problems: list[Problem] = []
    kind = strategy_kind
    known = accepted_keys(kind)
    other_kind_keys = ALLOCATION_ONLY_KEYS if kind == SIGNAL else SIGNAL_ONLY_KEYS
    for key in config:
        if key in known:
            continue
        if key in other_kind_keys:
            problems.append(Problem(str(key), f"Not accepted for a {kind} strategy."))
        else:
            problems.append(
                Problem(str(key), f"Unknown configuration key (accepted: {', '.join(known)}).")
            )

    symbols = _parse_symbols(config, kind, problems)
    start, end = _parse_dates(config, problems)
    timeframe = config.get("timeframe", strategy_timeframe or "1d")
    if timeframe not in TIMEFRAMES:
        problems.append(Problem("timeframe", f"Must be one of: {', '.join(TIMEFRAMES)}."))
        timeframe = "1d"
    bars_per_year = _number(
        config,
        "bars_per_year",
        BARS_PER_YEAR[timeframe],
        problems,
        low=0,
        high=MAX_BARS_PER_YEAR,
        low_inclusive=False,
    )
    risk_free_rate = _number(config, "risk_free_rate", 0.0, problems, low=-1, high=1)
    price_adjustment = _choice(
        config, "price_adjustment", "total_return", PRICE_ADJUSTMENTS, problems
    )

    signal_settings: dict[str, Any] = {}
    cashflows: dict[str, Any] = {}
    rebalance_frequency = "monthly"
    evaluation_frequency = "daily"
    if kind == SIGNAL:
        signal_settings = _parse_signal_settings(config, problems)
    else:
        rebalance_frequency = _choice(
            config, "rebalance_frequency", "monthly", REBALANCE_FREQUENCIES, problems
        )
        evaluation_frequency = _choice(
            config, "evaluation_frequency", "daily", EVALUATION_FREQUENCIES, problems
        )
        signal_settings["signal_delay"] = _number(
            config,
            "signal_delay",
            0,
            problems,
            low=0,
            high=MAX_ALLOCATION_SIGNAL_DELAY,
            integer=True,
        )
        cashflows = _parse_cashflows(config, problems)

    definition, driver = _resolve_definition(config, kind, strategy_definition, problems)

    if not problems:
        data_symbols = list(symbols)
        for symbol in symbols or [None]:
            data_symbols.extend(required_symbols(definition, symbol))
        data_symbols = list(dict.fromkeys(s for s in data_symbols if s))
        problems.extend(_coverage_problems(data_symbols, symbols, start, end, driver, store))
    if not problems:
        problems.extend(
            _work_problems(
                config,
                kind=kind,
                definition=definition,
                driver=driver,
                symbols=symbols,
                data_symbols=data_symbols,
                period=(start, end, timeframe),
                signal_delay=signal_settings.get("signal_delay", 0),
                store=store,
            )
        )

    if problems:
        return None, problems

    canonical: dict[str, Any] = {
        "start_date": start.isoformat(),
        "end_date": end.isoformat(),
        "timeframe": timeframe,
        "bars_per_year": bars_per_year,
        "risk_free_rate": risk_free_rate,
        "price_adjustment": price_adjustment,
    }
    if kind == SIGNAL:
        canonical["symbols"] = list(symbols)
        canonical.update(signal_settings)
        for key in ("signal_plugin_key", "signal_plugin_params"):
            if key in config:
                canonical[key] = config[key]
    else:
        canonical["rebalance_frequency"] = rebalance_frequency
        # Set only when given otherwise than the default, so that earlier runs keep their
        # fingerprints.
        if evaluation_frequency != "daily":
            canonical["evaluation_frequency"] = evaluation_frequency
        if signal_settings["signal_delay"]:
            canonical["signal_delay"] = signal_settings["signal_delay"]
        canonical.update({key: value for key, value in cashflows.items() if value is not None})
    if "signal" in config:
        canonical["signal"] = config["signal"]

    spec = RunSpec(
        kind=kind,
        engine=engine,
        initial_capital=float(initial_capital),
        commission=float(commission),
        slippage=float(slippage),
        symbols=tuple(symbols),
        start=start,
        end=end,
        timeframe=timeframe,
        bars_per_year=float(bars_per_year),
        risk_free_rate=float(risk_free_rate),
        price_adjustment=price_adjustment,
        definition=definition,
        driver=driver,
        config=canonical,
        rebalance_frequency=rebalance_frequency,
        evaluation_frequency=evaluation_frequency,
        **(cashflows if kind == ALLOCATION else {}),
        **signal_settings,
    )
    return spec, []


def _under(prefix: str, path: str) -> str:
    if not path:
        return prefix
    return f"{prefix}{path}" if path.startswith("[") else f"{prefix}.{path}"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _number(
    config: Mapping[str, Any],
    key: str,
    default: float | None,
    problems: list[Problem],
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    integer: bool = False,
) -> Any:
    if key not in config or (config[key] is None and default is None):
        return default
    value = config[key]
    kind = "an integer" if integer else "a number"
    if not _is_number(value) or (integer and value != int(value)):
        problems.append(Problem(key, f"Must be {kind}."))
        return default
    if low is not None and (value < low or (value == low and not low_inclusive)):
        relation = "at least" if low_inclusive else "greater than"
        problems.append(Problem(key, f"Must be {relation} {low:g}."))
        return default
    if high is not None and value > high:
        problems.append(Problem(key, f"Must be at most {high:g}."))
        return default
    return int(value) if integer else float(value)


def _parse_cashflows(config: Mapping[str, Any], problems: list[Problem]) -> dict[str, Any]:
    """``cashflow_amount`` (a finite number, not 0: positive contributes, negative withdraws)
    and ``cashflow_frequency``, both or neither (SPEC §8.1)."""
    amount = _number(
        config,
        "cashflow_amount",
        None,
        problems,
        low=-MAX_CASHFLOW_AMOUNT,
        high=MAX_CASHFLOW_AMOUNT,
    )
    if amount == 0:
        problems.append(
            Problem(
                "cashflow_amount",
                "Must not be 0 (positive: a contribution, negative: a withdrawal).",
            )
        )
        amount = None
    frequency = None
    if config.get("cashflow_frequency") is not None:
        frequency = _choice(config, "cashflow_frequency", None, CASHFLOW_FREQUENCIES, problems)
    given = {key: config.get(key) is not None for key in ("cashflow_amount", "cashflow_frequency")}
    for key, other in (
        ("cashflow_amount", "cashflow_frequency"),
        ("cashflow_frequency", "cashflow_amount"),
    ):
        if given[key] and not given[other]:
            problems.append(Problem(key, f"Needs {other} (give both or neither)."))
    return {"cashflow_amount": amount, "cashflow_frequency": frequency}


def _choice(
    config: Mapping[str, Any], key: str, default: str, choices: tuple[str, ...], problems: list
) -> str:
    value = config.get(key, default)
    if value not in choices:
        problems.append(Problem(key, f"Must be one of: {', '.join(choices)}."))
        return default
    return value


def _parse_symbols(config: Mapping[str, Any], kind: str, problems: list[Problem]) -> list[str]:
    has_one, has_many = "symbol" in config, "symbols" in config
    if kind == ALLOCATION:
        for key in ("symbol", "symbols"):
            if key in config:
                problems.append(
                    Problem(
                        key,
                        "An allocation strategy trades the symbols named in its definition; "
                        "leave symbol/symbols out.",
                    )
                )
        return []
    if has_one and has_many:
        problems.append(Problem("symbols", "Give either symbol or symbols, not both."))
        return []
    if not has_one and not has_many:
        problems.append(Problem("symbol", "This field is required (or give symbols)."))
        return []
    if has_one:
        raw = [("symbol", config["symbol"])]
    else:
        value = config["symbols"]
        if not isinstance(value, list) or not value:
            problems.append(Problem("symbols", "Must be a non-empty list of symbols."))
            return []
        if len(value) > MAX_SYMBOLS:
            problems.append(Problem("symbols", f"At most {MAX_SYMBOLS} symbols."))
            return []
        raw = [(f"symbols[{index}]", item) for index, item in enumerate(value)]
    symbols: list[str] = []
    for path, item in raw:
        message = symbol_format_problem(item)
        if message:
            problems.append(Problem(path, message[0].upper() + message[1:] + "."))
            continue
        symbol = item.upper()
        if symbol in symbols:
            problems.append(Problem(path, f"Symbol {symbol} is listed twice."))
            continue
        symbols.append(symbol)
    return symbols


def _parse_dates(
    config: Mapping[str, Any], problems: list[Problem]
) -> tuple[date | None, date | None]:
    parsed: dict[str, date | None] = {}
    for key in ("start_date", "end_date"):
        value = config.get(key)
        parsed[key] = None
        if key not in config or value is None:
            problems.append(Problem(key, "This field is required."))
            continue
        if not isinstance(value, str):
            problems.append(Problem(key, "Must be a date string YYYY-MM-DD."))
            continue
        try:
            parsed[key] = date.fromisoformat(value)
        except ValueError:
            problems.append(Problem(key, f"Invalid date {value!r}: expected YYYY-MM-DD."))
    start, end = parsed["start_date"], parsed["end_date"]
    if start and end and start >= end:
        problems.append(Problem("end_date", f"Must be after start_date ({start.isoformat()})."))
    return start, end


def _parse_signal_settings(config: Mapping[str, Any], problems: list[Problem]) -> dict[str, Any]:
    size_type = _choice(config, "size_type", "percent", SIZE_TYPES, problems)
    size_high = MAX_SHARES if size_type == "shares" else 1.0
    settings: dict[str, Any] = {
        "size_type": size_type,
        "size": _number(config, "size", 1.0, problems, low=0, high=size_high, low_inclusive=False),
        "direction": _choice(config, "direction", "long", DIRECTIONS, problems),
        "stop_loss": _number(config, "stop_loss", None, problems, low=0, low_inclusive=False),
        "take_profit": _number(
            config, "take_profit", None, problems, low=0, high=MAX_TAKE_PROFIT, low_inclusive=False
        ),
        "trailing_stop": _number(
            config, "trailing_stop", None, problems, low=0, low_inclusive=False
        ),
        "max_holding_bars": _number(
            config, "max_holding_bars", None, problems, low=1, high=MAX_HOLDING_BARS, integer=True
        ),
        "signal_delay": _number(
            config, "signal_delay", 0, problems, low=0, high=MAX_SIGNAL_DELAY, integer=True
        ),
    }
    for key in ("stop_loss", "trailing_stop"):
        if config.get(key) is not None and settings[key] is not None and settings[key] >= 1:
            problems.append(Problem(key, "Must be below 1 (a 100% loss)."))
    return settings


def _resolve_definition(
    config: Mapping[str, Any],
    kind: str,
    strategy_definition: Mapping[str, Any] | None,
    problems: list[Problem],
) -> tuple[Mapping[str, Any] | None, str]:
    if "signal_plugin_params" in config and "signal_plugin_key" not in config:
        problems.append(Problem("signal_plugin_params", "Needs signal_plugin_key."))
    if "signal" in config:
        definition = config["signal"]
        problems.extend(
            Problem(_under("signal", problem.path), problem.message)
            for problem in validate_definition(kind, definition)
        )
        if kind == ALLOCATION and definition is None:
            problems.append(Problem("signal", "Must be an allocation strategy definition."))
        return definition, "signal"
    if kind == SIGNAL and "signal_plugin_key" in config:
        key, params = config["signal_plugin_key"], config.get("signal_plugin_params")
        plugin_problems = validate_plugin(key, params)
        problems.extend(plugin_problems)
        if plugin_problems:
            return None, "signal_plugin"
        return build_plugin(key, params), "signal_plugin"
    if strategy_definition is not None:
        problems.extend(
            Problem(_under("definition", problem.path), problem.message)
            for problem in validate_definition(kind, strategy_definition)
        )
        return strategy_definition, "strategy"
    if kind == ALLOCATION:
        problems.append(
            Problem(
                "signal",
                "The strategy has no allocation definition: give one here or on the strategy.",
            )
        )
        return None, "strategy"
    return None, "buy_and_hold"


def _coverage_problems(
    data_symbols: list[str],
    traded: list[str],
    start: date,
    end: date,
    driver: str,
    store: PriceStore | None,
) -> list[Problem]:
    store = store or get_store()
    problems = []
    for error in store.coverage_problems(data_symbols, start, end):
        symbol = getattr(error, "symbol", None)
        if symbol in traded:
            path = "symbol" if len(traded) == 1 else f"symbols[{traded.index(symbol)}]"
        elif symbol is None:
            path = "start_date"
        else:
            path = "signal" if driver == "signal" else "definition"
        problems.append(Problem(path, str(error)))
    return problems


def _work_problems(
    config: Mapping[str, Any],
    *,
    kind: str,
    definition: Mapping[str, Any] | None,
    driver: str,
    symbols: list[str],
    data_symbols: list[str],
    period: tuple[date, date, str],
    signal_delay: int,
    store: PriceStore | None,
) -> list[Problem]:
    """The bounds of ``backfolio.limits`` that depend on the data: symbols × bars, distinct
    signals, each indicator's window against its symbol's history, and the indicator work."""
    store = store or get_store()
    start, end, timeframe = period
    histories = store.history_bars(data_symbols, end, timeframe=timeframe)
    loaded_bars = loaded_bar_count(
        store.bar_count(start, end, timeframe=timeframe),
        warmup_bars(definition, signal_delay=signal_delay),
        histories.values(),
    )
    problems = []
    symbol_bars = len(data_symbols) * loaded_bars
    if symbol_bars > MAX_SYMBOL_BARS:
        problems.append(
            Problem(
                "symbols" if "symbols" in config else "start_date",
                f"Too much data: {len(data_symbols)} symbols × {loaded_bars:,} bars = "
                f"{symbol_bars:,} symbol-bars (at most {MAX_SYMBOL_BARS:,} per run); "
                "shorten the date range or use fewer symbols.",
            )
        )
    prefix = {"signal": "signal", "signal_plugin": "signal_plugin_params"}.get(driver, "definition")
    problems.extend(
        Problem(_under(prefix, problem.path), problem.message)
        for problem in work_problems(
            definition,
            run_symbols=symbols if kind == SIGNAL else None,
            loaded_bars=loaded_bars,
            history_bars=lambda symbol: histories.get(symbol, 0),
        )
    )
    return problems


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

    try:
        if spec.kind == ALLOCATION:
            results = [_run_allocation(spec, engine, prices, run_close, report)]
        else:
            results = _run_signal(spec, engine, prices, run_close, report)
    except (ValueError, MarketDataError) as error:
        raise RunError(str(error)) from error

    report(0.95)
    check_deadline()
    run = _finish_run(spec, prices, results)
    report(1.0)
    return run


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
    outcomes: list[Any] = [None] * len(specs)
    groups: dict[RunSpec, list[int]] = {}
    method = "run_signal_batch_equity" if equity_only else "run_signal_batch"
    for position, spec in enumerate(specs):
        engine = get_engine(spec.engine)
        if spec.kind == SIGNAL and len(spec.symbols) == 1 and hasattr(engine, method):
            key = tuple(getattr(spec, name) for name in _BATCH_SHARED_FIELDS)
            groups.setdefault(key, []).append(position)
    for positions in groups.values():
        if len(positions) < 2:
            continue
        batch = [specs[position] for position in positions]
        try:
            results = _run_signal_batch(batch, store, equity_only=equity_only)
        except EngineLimitationError:
            continue  # these run one by one below
        for position, result in zip(positions, results, strict=True):
            outcomes[position] = result
    for position, spec in enumerate(specs):
        if outcomes[position] is None:
            try:
                run = run_backtest(spec, store=store)
                outcomes[position] = (run.equity, -1) if equity_only else run
            except RunError as error:
                outcomes[position] = (error, -1) if equity_only else error
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
            in_run = (prices.close.index >= prices.start) & (prices.close.index <= prices.end)
            self._closes[key] = prices.close.loc[in_run, [symbol]]
        return self._closes[key]


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
    try:
        if equity_only:
            equity = engine.run_signal_batch_equity(inputs) if runs else None
        else:
            results = engine.run_signal_batch(inputs) if runs else []
    except EngineLimitationError:
        raise
    except ValueError as error:
        raise EngineLimitationError(str(error)) from error
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
        in_run = (prices.close.index >= prices.start) & (prices.close.index <= prices.end)
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
    try:
        equity = engine.run_signal_matrix_equity(_signal_settings(first, close, None), signals)
    except EngineLimitationError:
        raise
    except ValueError as error:
        raise EngineLimitationError(str(error)) from error
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
    store = store or get_store()
    outcomes: list[Any] = [None] * len(specs)
    groups: dict[tuple, list[int]] = {}
    for position, spec in enumerate(specs):
        engine = get_engine(spec.engine)
        if spec.kind == SIGNAL and len(spec.symbols) == 1 and hasattr(engine, "run_signal_matrix"):
            key = tuple(getattr(spec, name) for name in _BATCH_SHARED_FIELDS)
            groups.setdefault(key, []).append(position)
    for positions in groups.values():
        if len(positions) < 2:
            continue
        batch = [specs[position] for position in positions]
        try:
            results = _run_study_matrix(get_engine(batch[0].engine), batch, store)
        except EngineLimitationError:
            continue  # these run one by one below
        for position, result in zip(positions, results, strict=True):
            outcomes[position] = result
    for position, spec in enumerate(specs):
        if outcomes[position] is None:
            try:
                run = run_backtest(spec, store=store)
            except RunError as error:
                outcomes[position] = error
                continue
            equity = EquityColumns(run.equity.index, run.equity.to_numpy(dtype=float)[:, None])
            outcomes[position] = StudyRun(equity, 0, run.metrics, run.fingerprint)
    return outcomes


def _run_study_matrix(engine, specs: list[RunSpec], store: PriceStore) -> list:
    failed, compiled, shared, close, signals = _compile_signal_matrix(specs, store)
    outcomes: list[Any] = [None] * len(specs)
    for position, error in failed.items():
        outcomes[position] = error
    if not compiled:
        return outcomes
    first = specs[compiled[0][0]]
    try:
        run = engine.run_signal_matrix(_signal_settings(first, close, None), signals)
    except EngineLimitationError:
        raise
    except ValueError as error:
        raise EngineLimitationError(str(error)) from error
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
    return engine.run(
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

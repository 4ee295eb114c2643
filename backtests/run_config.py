"""A v1 run configuration, checked against the strategy it runs (pure: no Django).

``parse_run_config`` checks a v1 ``config`` (SPEC §3) against the strategy it runs and returns a
``RunSpec`` with every default filled in, or the list of problems (each located by the config key
it is about); ``validate_run_settings`` checks the settings beside it (engine, capital, costs);
``stored_run_spec`` parses a configuration stored with a run, sweep or walk-forward, which
raises ``RunError`` when it no longer validates. ``backtests.pipeline`` runs a ``RunSpec``.

What drives a run, first match wins: ``config.signal`` › ``config.signal_plugin_key`` › the
strategy's ``definition`` › buy-and-hold (signal strategies only; an allocation strategy must have
an allocation definition).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from backfolio.limits import MAX_CASHFLOW_AMOUNT, MAX_SYMBOL_BARS
from backfolio.limits import MAX_SYMBOLS_PER_RUN as MAX_SYMBOLS
from backtests.engines import (
    available_engines,
)
from backtests.engines.base import DIRECTIONS, SIZE_TYPES
from marketdata.resample import TIMEFRAMES
from marketdata.store import ADJUSTMENTS as PRICE_ADJUSTMENTS
from marketdata.store import BatchLookups, PriceStore, get_store
from metrics.calculations import TRADING_DAYS_PER_YEAR
from strategies.language import (
    REBALANCE_FREQUENCIES,
    Problem,
    build_plugin,
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
)
from strategies.language.work import loaded_bar_count

SIGNAL = "signal"
ALLOCATION = "allocation"

BARS_PER_YEAR = {"1d": TRADING_DAYS_PER_YEAR, "1wk": 52, "1mo": 12}

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


class RunError(ValueError):
    """A run that cannot complete (data, compilation or engine); the message says why."""


def invalid_configuration(problems: Sequence[Problem]) -> str:
    """The reason a run fails when its stored configuration no longer validates (the market
    data changed since it was created): every problem, in one sentence."""
    return "Invalid configuration: " + "; ".join(str(problem) for problem in problems)


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
    store: PriceStore | BatchLookups | None = None,
) -> tuple[RunSpec | None, list[Problem]]:
    """Validate a run configuration (SPEC §3) and resolve what drives the run.

    Problems carry the config key as their path (``start_date``, ``signal.entry.left.window``,
    ``signal_plugin_params.fast``); a problem with the strategy's own definition has the path
    ``definition``. ``engine``, ``initial_capital``, ``commission`` and ``slippage`` are taken as
    given (check them with ``validate_run_settings``). Dates are checked against the market data's
    coverage through ``store`` (the process-wide store by default; a ``BatchLookups`` when many
    configurations are validated together).
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


def stored_run_spec(
    config: Any,
    *,
    snapshot: Mapping[str, Any],
    engine: str,
    initial_capital: float,
    commission: float,
    slippage: float,
    store: PriceStore | BatchLookups | None = None,
) -> RunSpec:
    """The ``RunSpec`` of a configuration stored with what it runs: the strategy ``snapshot``
    (``kind``, ``definition``, ``timeframe``) and the engine, capital and costs beside it. It
    was validated when stored; ``RunError`` (``invalid_configuration``) when it no longer is
    (the market data changed since)."""
    spec, problems = parse_run_config(
        config,
        strategy_kind=snapshot["kind"],
        strategy_definition=snapshot["definition"],
        strategy_timeframe=snapshot["timeframe"],
        engine=engine,
        initial_capital=initial_capital,
        commission=commission,
        slippage=slippage,
        store=store,
    )
    if problems:
        raise RunError(invalid_configuration(problems))
    return spec


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
    store: PriceStore | BatchLookups | None,
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
    store: PriceStore | BatchLookups | None,
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

"""The Backfolio portfolio-backtest request (contract v2.0): parse and validate it in one pass.

``parse_portfolio_request`` turns the posted JSON into a frozen ``PortfolioRequest`` or raises
``InvalidPortfolioRequest`` carrying *every* problem found, each as one human-readable message in
the contract's wording ("Missing required field: allocations", "Allocation 'growth' weights sum to
1.05, not 1.0"). Nothing here touches market data except ``data_problems``, which asks the price
store whether each symbol covers the requested range, so that a request with a bad weight and a
missing symbol reports both at once.

Decisions the contract leaves open (SPEC §8 settles the rest):

- Top-level keys: ``strategy`` and ``config`` (required), ``name`` and ``description`` (the
  examples carry them, and the usage line says to post an example as it is).
- Config keys: the contract's, plus ``engine`` (``vectorbt`` default, or ``backtrader``),
  ``benchmark`` (default ``SPY``) and ``price_adjustment`` (``total_return`` default, or
  ``split_only``). Any other key is rejected naming the key: a typo such as ``stop_los`` must not
  silently run a backtest without its stop. ``rebalancing_frequency`` (the v1.0 name) gets a
  message pointing at ``rebalance_frequency``.
- ``null`` for an optional key means its default.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from backfolio.limits import (
    DESCRIPTION_MAX_LENGTH,
    MAX_ALLOCATION_GROUPS,
    MAX_CASHFLOW_AMOUNT,
    MAX_SWITCHING_RULES,
    MAX_SYMBOL_BARS,
    NAME_MAX_LENGTH,
)
from backfolio.limits import MAX_SYMBOLS_PER_RUN as MAX_SYMBOLS
from backtests.engines.registry import DEFAULT_ENGINE, engines_default_first
from marketdata.base import MarketDataError
from marketdata.store import ADJUSTMENTS as PRICE_ADJUSTMENTS
from marketdata.synthetic import parse_symbol
from strategies.language.compiler import (
    CASHFLOW_FREQUENCIES,
    EVALUATION_FREQUENCIES,
    MAX_ALLOCATION_SIGNAL_DELAY,
    REBALANCE_FREQUENCIES,
)
from strategies.language.definitions import required_symbols, validate_definition, warmup_bars
from strategies.language.work import loaded_bar_count, work_problems

TOP_LEVEL_FIELDS = ("strategy", "config", "name", "description")
ENGINES = engines_default_first()  # what ``config.engine`` may name
DEFAULT_INITIAL_CAPITAL = 10_000.0
DEFAULT_REBALANCE_FREQUENCY = "monthly"
DEFAULT_COMMISSION = 0.0035
MAX_COMMISSION = 0.1
DEFAULT_BENCHMARK = "SPY"
DEFAULT_PRICE_ADJUSTMENT = "total_return"
DEFAULT_EVALUATION_FREQUENCY = "daily"
DEFAULT_SIGNAL_DELAY = 0
DEFAULT_MAX_POSITION_SIZE = 0.25
DEFAULT_MIN_POSITION_SIZE = 0.05
# Volatility targeting measures the allocation's realised volatility over this many bars; the
# prices are loaded with that much history before the start so that it is known on the first bar.
TARGET_VOLATILITY_WINDOW = 63
# Limits that keep one request's work and response bounded (each refusal is a 400 naming it).

CONFIG_FIELDS = (
    "start_date",
    "end_date",
    "initial_capital",
    "rebalance_frequency",
    "base_commission",
    "enable_risk_management",
    "stop_loss",
    "take_profit",
    "trailing_stop",
    "max_drawdown_limit",
    "volatility_exit_threshold",
    "target_volatility",
    "max_position_size",
    "min_position_size",
    "engine",
    "benchmark",
    "price_adjustment",
    "evaluation_frequency",
    "signal_delay",
    "cashflow_amount",
    "cashflow_frequency",
)
RENAMED_CONFIG_FIELDS = {"rebalancing_frequency": "rebalance_frequency"}
# Exit rules act only with risk management on; position limits only with risk management on or a
# volatility target (SPEC §8). Given otherwise, they are kept but ignored, with a warning each.
RISK_EXIT_FIELDS = (
    "stop_loss",
    "take_profit",
    "trailing_stop",
    "max_drawdown_limit",
    "volatility_exit_threshold",
)
POSITION_LIMIT_FIELDS = ("max_position_size", "min_position_size")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class InvalidPortfolioRequest(ValueError):
    """A request that cannot run; ``messages`` lists every problem, in the order found."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = list(messages)


@dataclass(frozen=True)
class RiskSettings:
    """Risk management and position sizing (SPEC §8). Fractions throughout."""

    enabled: bool = False
    stop_loss: float | None = None
    take_profit: float | None = None
    trailing_stop: float | None = None
    max_drawdown_limit: float | None = None
    volatility_exit_threshold: float | None = None
    target_volatility: float | None = None
    max_position_size: float = DEFAULT_MAX_POSITION_SIZE
    min_position_size: float = DEFAULT_MIN_POSITION_SIZE

    @property
    def exits_active(self) -> bool:
        """Whether any exit rule can move the portfolio to CASH."""
        return self.enabled and any(
            value is not None
            for value in (
                self.stop_loss,
                self.take_profit,
                self.trailing_stop,
                self.max_drawdown_limit,
                self.volatility_exit_threshold,
            )
        )

    @property
    def sizing_active(self) -> bool:
        """Position limits and volatility targeting apply with risk management or a target."""
        return self.enabled or self.target_volatility is not None

    @property
    def active(self) -> bool:
        return self.exits_active or self.sizing_active


@dataclass(frozen=True)
class PortfolioRequest:
    """A validated request. ``strategy`` is a private deep copy of the posted definition."""

    strategy: dict[str, Any]
    start_date: dt.date
    end_date: dt.date
    initial_capital: float
    rebalance_frequency: str
    base_commission: float
    engine: str
    benchmark: str
    price_adjustment: str
    risk: RiskSettings
    evaluation_frequency: str = DEFAULT_EVALUATION_FREQUENCY
    signal_delay: int = DEFAULT_SIGNAL_DELAY
    cashflow_amount: float | None = None
    cashflow_frequency: str | None = None
    name: str = ""
    description: str = ""
    ignored_fields: tuple[str, ...] = ()

    @property
    def symbols(self) -> list[str]:
        """Every symbol the run reads: the groups' symbols (CASH included), then signal symbols."""
        return required_symbols(self.strategy)

    @property
    def traded_symbols(self) -> list[str]:
        return list(
            dict.fromkeys(s for weights in self.strategy["allocations"].values() for s in weights)
        )

    @property
    def warmup_bars(self) -> int:
        needed = warmup_bars(self.strategy)
        if self.risk.target_volatility is not None:
            needed = max(needed, TARGET_VOLATILITY_WINDOW + 1)
        return needed

    def ignored_field_warnings(self) -> list[str]:
        """One warning per config field that was given but has no effect on this run."""
        warnings = []
        for key in self.ignored_fields:
            if key in RISK_EXIT_FIELDS:
                reason = "exit rules apply only when enable_risk_management is true"
            else:
                reason = (
                    "position limits apply only when enable_risk_management is true "
                    "or target_volatility is set"
                )
            warnings.append(f"{key} is ignored: {reason}")
        return warnings

    def canonical_config(self) -> dict[str, Any]:
        """The config with every default filled in, as saved with the run. The options beyond
        v2.0 (SPEC §8.1) appear only when set, so that a v2.0 request keeps its fingerprint."""
        config = {
            "start_date": self.start_date.isoformat(),
            "end_date": self.end_date.isoformat(),
            "initial_capital": self.initial_capital,
            "rebalance_frequency": self.rebalance_frequency,
            "base_commission": self.base_commission,
            "enable_risk_management": self.risk.enabled,
            "stop_loss": self.risk.stop_loss,
            "take_profit": self.risk.take_profit,
            "trailing_stop": self.risk.trailing_stop,
            "max_drawdown_limit": self.risk.max_drawdown_limit,
            "volatility_exit_threshold": self.risk.volatility_exit_threshold,
            "target_volatility": self.risk.target_volatility,
            "max_position_size": self.risk.max_position_size,
            "min_position_size": self.risk.min_position_size,
            "engine": self.engine,
            "benchmark": self.benchmark,
            "price_adjustment": self.price_adjustment,
        }
        if self.evaluation_frequency != DEFAULT_EVALUATION_FREQUENCY:
            config["evaluation_frequency"] = self.evaluation_frequency
        if self.signal_delay != DEFAULT_SIGNAL_DELAY:
            config["signal_delay"] = self.signal_delay
        if self.cashflow_amount is not None:
            config["cashflow_amount"] = self.cashflow_amount
            config["cashflow_frequency"] = self.cashflow_frequency
        return config


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


class _ConfigReader:
    """Reads config fields one by one, collecting a message for each bad one."""

    def __init__(self, config: Mapping[str, Any], problems: list[str]) -> None:
        self.config = config
        self.problems = problems

    def present(self, key: str) -> bool:
        return self.config.get(key) is not None

    def date(self, key: str) -> dt.date | None:
        if key not in self.config:
            self.problems.append(f"Missing required field: {key}")
            return None
        value = self.config[key]
        if not isinstance(value, str) or not _ISO_DATE.match(value):
            self.problems.append(
                f"Invalid date format for {key}: {_shown(value)} (must be YYYY-MM-DD)"
            )
            return None
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            self.problems.append(f"Invalid date for {key}: '{value}' is not a calendar date")
            return None

    def number(
        self,
        key: str,
        default: float | None,
        *,
        low: float | None = None,
        high: float | None = None,
        low_inclusive: bool = True,
        high_inclusive: bool = True,
        meaning: str = "",
    ) -> float | None:
        value = self.config.get(key)
        if value is None:
            return default
        if not _is_number(value):
            self.problems.append(f"{key} must be a number, not {_type_name(value)}")
            return default
        too_low = low is not None and (value < low if low_inclusive else value <= low)
        too_high = high is not None and (value > high if high_inclusive else value >= high)
        if too_low or too_high:
            self.problems.append(f"{key} must be {meaning}, got {value:g}")
            return default
        return float(value)

    def integer(self, key: str, default: int, *, low: int, high: int) -> int:
        value = self.config.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.problems.append(f"{key} must be an integer, not {_type_name(value)}")
            return default
        if not low <= value <= high:
            self.problems.append(f"{key} must be an integer from {low} to {high}, got {value}")
            return default
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.config.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.problems.append(f"{key} must be true or false, not {_type_name(value)}")
            return default
        return value

    def choice(self, key: str, default: str, choices: tuple[str, ...], label: str) -> str:
        value = self.config.get(key)
        if value is None:
            return default
        if not isinstance(value, str) or value not in choices:
            self.problems.append(
                f"Invalid {label} {_shown(value)} (must be one of: {', '.join(choices)})"
            )
            return default
        return value


def _shown(value: Any) -> str:
    return f"'{value}'" if isinstance(value, str) else _type_name(value)


def parse_portfolio_request(payload: Any) -> PortfolioRequest:
    """Validate a posted request; raise ``InvalidPortfolioRequest`` listing every problem."""
    if not isinstance(payload, Mapping):
        raise InvalidPortfolioRequest(
            [f"Invalid request: the body must be a JSON object, not {_type_name(payload)}"]
        )
    problems: list[str] = []
    for key in payload:
        if key not in TOP_LEVEL_FIELDS:
            problems.append(f"Unknown field: {key} (known: {', '.join(TOP_LEVEL_FIELDS)})")
    for key, longest in (("name", NAME_MAX_LENGTH), ("description", DESCRIPTION_MAX_LENGTH)):
        if payload.get(key) is not None and not isinstance(payload[key], str):
            problems.append(f"{key} must be a string, not {_type_name(payload[key])}")
        elif isinstance(payload.get(key), str) and len(payload[key]) > longest:
            problems.append(
                f"{key} is too long: {len(payload[key])} characters (at most {longest})"
            )

    strategy = payload.get("strategy")
    if "strategy" not in payload:
        problems.append("Missing required field: strategy")
    elif not isinstance(strategy, Mapping):
        problems.append("Invalid strategy format")
        problems.append(f"strategy must be an object, not {_type_name(strategy)}")
    else:
        for problem in validate_definition("allocation", strategy):
            problems.append(str(problem) if problem.standalone else f"strategy.{problem}")
        problems.extend(_size_problems(strategy))

    config = payload.get("config")
    if "config" not in payload:
        problems.append("Missing required field: config")
        config = None
    elif not isinstance(config, Mapping):
        problems.append(f"config must be an object, not {_type_name(config)}")
        config = None

    parsed = _parse_config(config, problems) if config is not None else None
    if problems:
        raise InvalidPortfolioRequest(problems)
    assert parsed is not None and isinstance(strategy, Mapping)
    return PortfolioRequest(
        strategy=copy.deepcopy(dict(strategy)),
        name=payload.get("name") or "",
        description=payload.get("description") or "",
        **parsed,
    )


def _size_problems(strategy: Mapping[str, Any]) -> list[str]:
    problems = []
    allocations = strategy.get("allocations")
    if isinstance(allocations, Mapping):
        if len(allocations) > MAX_ALLOCATION_GROUPS:
            problems.append(
                f"Too many allocation groups: {len(allocations)} (at most {MAX_ALLOCATION_GROUPS})"
            )
        symbols = {
            symbol
            for group in allocations.values()
            if isinstance(group, Mapping)
            for symbol in group
        }
        if len(symbols) > MAX_SYMBOLS:
            problems.append(f"Too many symbols: {len(symbols)} (at most {MAX_SYMBOLS})")
    rules = strategy.get("switching_logic")
    if isinstance(rules, list) and len(rules) > MAX_SWITCHING_RULES:
        problems.append(f"Too many switching rules: {len(rules)} (at most {MAX_SWITCHING_RULES})")
    return problems


def _parse_config(config: Mapping[str, Any], problems: list[str]) -> dict[str, Any] | None:
    for key in config:
        if key in RENAMED_CONFIG_FIELDS:
            problems.append(
                f"Unknown config field: {key} (renamed to {RENAMED_CONFIG_FIELDS[key]} in v2.0)"
            )
        elif key not in CONFIG_FIELDS:
            problems.append(f"Unknown config field: {key}")
    before = len(problems)
    read = _ConfigReader(config, problems)

    start = read.date("start_date")
    end = read.date("end_date")
    if start is not None and end is not None and start >= end:
        problems.append(
            f"start_date must be before end_date (got {start.isoformat()} and {end.isoformat()})"
        )
    capital = read.number(
        "initial_capital",
        DEFAULT_INITIAL_CAPITAL,
        low=0,
        low_inclusive=False,
        meaning="greater than 0",
    )
    frequency = read.choice(
        "rebalance_frequency",
        DEFAULT_REBALANCE_FREQUENCY,
        REBALANCE_FREQUENCIES,
        "rebalance frequency",
    )
    commission = read.number(
        "base_commission",
        DEFAULT_COMMISSION,
        low=0,
        high=MAX_COMMISSION,
        meaning=f"between 0 and {MAX_COMMISSION:g}",
    )
    engine = read.choice("engine", DEFAULT_ENGINE, ENGINES, "engine")
    price_adjustment = read.choice(
        "price_adjustment", DEFAULT_PRICE_ADJUSTMENT, PRICE_ADJUSTMENTS, "price_adjustment"
    )
    benchmark = _benchmark(config.get("benchmark"), problems)
    evaluation = read.choice(
        "evaluation_frequency",
        DEFAULT_EVALUATION_FREQUENCY,
        EVALUATION_FREQUENCIES,
        "evaluation frequency",
    )
    delay = read.integer(
        "signal_delay", DEFAULT_SIGNAL_DELAY, low=0, high=MAX_ALLOCATION_SIGNAL_DELAY
    )
    cashflow_amount = _cashflow_amount(config.get("cashflow_amount"), problems)
    cashflow_frequency = read.choice(
        "cashflow_frequency", None, CASHFLOW_FREQUENCIES, "cashflow frequency"
    )
    if read.present("cashflow_amount") != read.present("cashflow_frequency"):
        given, missing = (
            ("cashflow_amount", "cashflow_frequency")
            if read.present("cashflow_amount")
            else ("cashflow_frequency", "cashflow_amount")
        )
        problems.append(f"{given} needs {missing} (give both or neither)")

    fraction = {
        "low": 0,
        "high": 1,
        "low_inclusive": False,
        "high_inclusive": False,
        "meaning": "a fraction between 0 and 1 (exclusive)",
    }
    positive = {"low": 0, "low_inclusive": False, "meaning": "greater than 0"}
    max_position = read.number(
        "max_position_size",
        DEFAULT_MAX_POSITION_SIZE,
        low=0,
        high=1,
        low_inclusive=False,
        meaning="a fraction greater than 0 and at most 1",
    )
    min_position = read.number(
        "min_position_size",
        DEFAULT_MIN_POSITION_SIZE,
        low=0,
        high=1,
        meaning="a fraction between 0 and 1",
    )
    if (
        read.present("max_position_size") or read.present("min_position_size")
    ) and min_position > max_position:
        problems.append(
            f"min_position_size ({min_position:g}) must not exceed max_position_size "
            f"({max_position:g})"
        )
    risk = RiskSettings(
        enabled=read.boolean("enable_risk_management", False),
        stop_loss=read.number("stop_loss", None, **fraction),
        take_profit=read.number("take_profit", None, **positive),
        trailing_stop=read.number("trailing_stop", None, **fraction),
        max_drawdown_limit=read.number("max_drawdown_limit", None, **fraction),
        volatility_exit_threshold=read.number("volatility_exit_threshold", None, **positive),
        target_volatility=read.number("target_volatility", None, **positive),
        max_position_size=max_position,
        min_position_size=min_position,
    )
    if len(problems) > before:
        return None
    ignored = [key for key in RISK_EXIT_FIELDS if not risk.enabled and read.present(key)]
    if not risk.sizing_active:
        ignored.extend(key for key in POSITION_LIMIT_FIELDS if read.present(key))
    return {
        "start_date": start,
        "end_date": end,
        "initial_capital": capital,
        "rebalance_frequency": frequency,
        "base_commission": commission,
        "engine": engine,
        "benchmark": benchmark,
        "price_adjustment": price_adjustment,
        "risk": risk,
        "evaluation_frequency": evaluation,
        "signal_delay": delay,
        "cashflow_amount": cashflow_amount,
        "cashflow_frequency": cashflow_frequency,
        "ignored_fields": tuple(ignored),
    }


def _cashflow_amount(value: Any, problems: list[str]) -> float | None:
    """A contribution (positive) or withdrawal (negative) per period; finite and not 0."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        problems.append(f"cashflow_amount must be a number, not {_type_name(value)}")
        return None
    if not math.isfinite(value):
        problems.append(f"cashflow_amount must be a finite number, got {value}")
        return None
    if value == 0:
        problems.append(
            "cashflow_amount must not be 0 (positive: a contribution, negative: a withdrawal)"
        )
        return None
    if abs(value) > MAX_CASHFLOW_AMOUNT:
        problems.append(
            f"cashflow_amount must be between {-MAX_CASHFLOW_AMOUNT:g} and "
            f"{MAX_CASHFLOW_AMOUNT:g}, got {value:g}"
        )
        return None
    return float(value)


def _benchmark(value: Any, problems: list[str]) -> str:
    if value is None:
        return DEFAULT_BENCHMARK
    if not isinstance(value, str):
        problems.append(f"benchmark must be a symbol string, not {_type_name(value)}")
        return DEFAULT_BENCHMARK
    try:
        spec = parse_symbol(value)
    except MarketDataError as error:
        problems.append(f"Invalid benchmark: {error.message}")
        return DEFAULT_BENCHMARK
    if spec.is_cash:
        problems.append("Invalid benchmark: CASH has no returns to compare against")
    return value


# --- market data ------------------------------------------------------------------------------


def data_problems(store: Any, symbols: list[str], start: dt.date, end: dt.date) -> list[str]:
    """The store's message for every symbol that does not cover the range (CASH needs no
    data), without loading prices, so that every missing symbol is named at once."""
    if not symbols:
        return []
    return [error.message for error in store.coverage_problems(symbols, start, end)]


def work_limit_problems(store: Any, request: PortfolioRequest) -> list[str]:
    """The bounds of ``backfolio.limits`` that depend on the data (symbols × bars, distinct
    signals, each indicator's window against its symbol's history, indicator work), checked
    before anything is loaded."""
    data_symbols = [symbol for symbol in request.symbols if not parse_symbol(symbol).is_cash]
    histories = store.history_bars(request.symbols, request.end_date)
    loaded_bars = loaded_bar_count(
        store.bar_count(request.start_date, request.end_date),
        request.warmup_bars,
        [histories[symbol] for symbol in data_symbols],
    )
    problems = []
    symbol_bars = len(data_symbols) * loaded_bars
    if symbol_bars > MAX_SYMBOL_BARS:
        problems.append(
            f"Too much data: {len(data_symbols)} symbols × {loaded_bars:,} bars = "
            f"{symbol_bars:,} symbol-bars (at most {MAX_SYMBOL_BARS:,} per run); shorten the "
            "date range or use fewer symbols"
        )
    for problem in work_problems(
        request.strategy,
        run_symbols=None,
        loaded_bars=loaded_bars,
        history_bars=lambda symbol: histories.get(symbol, 0),
    ):
        problems.append(str(problem) if problem.standalone else f"strategy.{problem}")
    return problems


def symbols_in_payload(payload: Any) -> list[str]:
    """Best-effort list of the symbols a (possibly invalid) request names, for data checks."""
    if not isinstance(payload, Mapping):
        return []
    strategy = payload.get("strategy")
    if not isinstance(strategy, Mapping):
        return []
    symbols: list[str] = []
    allocations = strategy.get("allocations")
    if isinstance(allocations, Mapping):
        for weights in allocations.values():
            if isinstance(weights, Mapping):
                symbols.extend(str(symbol) for symbol in weights)
    # An invalid condition tree may not yield its symbols; validation reports its problems.
    with contextlib.suppress(KeyError, TypeError, ValueError, AttributeError):
        symbols.extend(required_symbols(strategy))
    well_formed = []
    for symbol in dict.fromkeys(symbols):
        try:
            parse_symbol(symbol)
        except MarketDataError:
            continue
        well_formed.append(symbol)
    return well_formed


def dates_in_payload(payload: Any) -> tuple[dt.date, dt.date] | None:
    """The request's dates when both are valid and ordered, else None."""
    config = payload.get("config") if isinstance(payload, Mapping) else None
    if not isinstance(config, Mapping):
        return None
    scratch: list[str] = []
    reader = _ConfigReader(config, scratch)
    start, end = reader.date("start_date"), reader.date("end_date")
    if scratch or start is None or end is None or start >= end:
        return None
    return start, end

"""Backtests across the whole strategy language, run on both engines and compared (SPEC §6).

A case is a plain JSON document, so a counterexample the search finds is saved as it is and
replayed by a regular test:

- ``{"kind": "signal", "config": <v1 run config>, "commission", "slippage", "initial_capital"}``:
  a built-in plugin with random parameters or a random rule tree, long/short/both, any sizing,
  stops, time exits and signal delay, through the v1 pipeline (``parse_run_config`` →
  ``run_backtest``).
- ``{"kind": "allocation", "request": <Backfolio request>}``: 1–4 groups of 1–4 symbols
  (leveraged ``SYM?L=x`` and ``CASH`` among them), switching rules, every rebalance frequency,
  risk management and volatility targeting on and off, evaluation frequency, signal delay and
  periodic contributions or withdrawals (SPEC §8.1), with or without risk exits, through the
  Backfolio runner.

Both engines must give the same equity curve (``EQUITY_TOLERANCE`` relative; near a wipe-out,
relative to the capital) and the same trades, or both refuse with the same problem.

Two documented engine limitations are excluded, precisely:

- vectorbt cannot reverse a position sized as a fraction of equity below 1 (percent sizing below 1
  with direction ``both``); it refuses such a run with ``EngineLimitationError`` while backtrader
  runs it, and the harness checks exactly that.
- Ruin: once a short's loss leaves equity ≤ 0 at a bar's close, covering costs more than the cash.
  vectorbt then refuses every buy, the cover included (the short stays open); backtrader covers
  and refuses later openings for Margin. Measured: DBC, 1e6 shares short on 10,000 from
  2007-08-24, the curves part on the ruin bar 2007-08-27 (−23,672.68 vs −23,677.42, 2e-4
  relative) and differ after it. The harness compares both runs strictly before the first bar on
  which vectorbt's equity is ≤ 0 (and backtrader's refusals must all fall on or after it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import strategies as st

from backtests.engines import EngineLimitationError, get_engine
from backtests.pipeline import RunError, run_backtest
from backtests.portfolio.requests import (
    InvalidPortfolioRequest,
    data_problems,
    parse_portfolio_request,
)
from backtests.portfolio.runner import run_portfolio
from backtests.run_config import parse_run_config
from marketdata.store import MarketDataError, get_store
from strategies.language.plugins import PLUGINS

ENGINES = ("vectorbt", "backtrader")
EQUITY_TOLERANCE = 1e-9
REGRESSIONS_PATH = Path(__file__).with_name("parity_regressions.json")

# Bundled symbols with their first full year (the harness's dates start after it).
SYMBOLS = ("SPY", "QQQ", "IWM", "EFA", "EEM", "AGG", "TLT", "IEF", "SHY", "GLD", "VNQ", "DBC")
FIRST_DAY = date(2007, 1, 2)
LAST_DAY = date(2024, 11, 29)
LIMITATION = "vectorbt cannot reverse a position sized as a fraction of equity below 1"

costs = st.one_of(
    st.just(0.0),
    st.sampled_from([0.0001, 0.001, 0.0035, 0.01]),
    st.floats(0.0, 0.02, allow_nan=False, allow_subnormal=False),
)


@st.composite
def date_ranges(draw, max_days: int) -> tuple[str, str]:
    span = (LAST_DAY - FIRST_DAY).days
    length = draw(st.integers(1, min(max_days, span)))
    start = FIRST_DAY + timedelta(days=draw(st.integers(0, span - length)))
    return start.isoformat(), (start + timedelta(days=length)).isoformat()


def windows(low: int = 2, high: int = 120):
    return st.integers(low, high)


def price_signal(symbol: str | None):
    located = {} if symbol is None else {"symbol": symbol}
    return st.one_of(
        st.just({"type": "Close", **located}),
        windows(1).map(lambda n: {"type": "SMA", "window": n, **located}),
        windows(1).map(lambda n: {"type": "EMA", "window": n, **located}),
    )


def leaf_conditions(symbol: str | None, symbols: tuple[str, ...]):
    """Comparisons of like with like, so that conditions change truth value over a run."""
    located = {} if symbol is None else {"symbol": symbol}
    comparison = st.sampled_from([">", "<", ">=", "<="])
    prices = st.builds(
        lambda left, op, right: {"left": left, "comparison": op, "right": right},
        price_signal(symbol),
        comparison,
        price_signal(symbol),
    )
    oscillators = st.builds(
        lambda window, op, level: {
            "left": {"type": "RSI", "window": window, **located},
            "comparison": op,
            "right": {"type": "constant", "value": level},
        },
        windows(2, 30),
        comparison,
        st.integers(15, 85),
    )
    other = st.sampled_from(symbols)
    returns = st.builds(
        lambda window, op, right: {
            "left": {"type": "Momentum", "window": window, **located},
            "comparison": op,
            "right": right,
        },
        windows(1, 252),
        comparison,
        st.one_of(
            st.integers(-10, 10).map(lambda pct: {"type": "constant", "value": pct / 100}),
            st.builds(
                lambda other_symbol, window: {
                    "type": "Momentum",
                    "symbol": other_symbol,
                    "window": window,
                },
                other,
                windows(1, 252),
            ),
        ),
    )
    volatility = st.builds(
        lambda window, op, level: {
            "left": {"type": "Volatility", "window": window, **located},
            "comparison": op,
            "right": {"type": "constant", "value": level / 100},
        },
        windows(2, 63),
        comparison,
        st.integers(5, 40),
    )
    return st.one_of(prices, oscillators, returns, volatility)


def conditions(symbol: str | None, symbols: tuple[str, ...]):
    return st.recursive(
        leaf_conditions(symbol, symbols),
        lambda children: st.builds(
            lambda op, items: {"op": op, "conditions": items},
            st.sampled_from(["and", "or"]),
            st.lists(children, min_size=1, max_size=3),
        ),
        max_leaves=4,
    )


@st.composite
def plugin_drivers(draw) -> dict[str, Any]:
    key = draw(st.sampled_from(sorted(PLUGINS)))
    params = {}
    for name, spec in PLUGINS[key].params.items():
        if not draw(st.booleans()):
            continue
        low = spec.min if spec.min is not None else -1.0
        if spec.type == "int":
            params[name] = draw(st.integers(int(low), int(min(spec.max or 300, 300))))
        else:
            params[name] = round(draw(st.floats(low, min(spec.max or 10.0, 100.0))), 4)
    # Ordered parameters (fast < slow, lower < upper) are drawn in order.
    for low_name, high_name in (("fast", "slow"), ("lower", "upper")):
        if low_name in params and high_name in params and params[low_name] >= params[high_name]:
            params[low_name], params[high_name] = params[high_name], params[low_name]
            if params[low_name] == params[high_name]:
                del params[low_name]
    return {"signal_plugin_key": key, "signal_plugin_params": params}


@st.composite
def rule_drivers(draw) -> dict[str, Any]:
    rules = {"entry": draw(conditions(None, SYMBOLS))}
    if draw(st.booleans()):
        rules["exit"] = draw(conditions(None, SYMBOLS))
    if draw(st.booleans()):
        rules["short_entry"] = draw(conditions(None, SYMBOLS))
        if draw(st.booleans()):
            rules["short_exit"] = draw(conditions(None, SYMBOLS))
    return {"signal": rules}


def optional(strategy):
    return st.one_of(st.none(), strategy)


@st.composite
def signal_cases(draw, max_days: int = 3 * 365) -> dict[str, Any]:
    start, end = draw(date_ranges(max_days))
    config: dict[str, Any] = {"symbol": draw(st.sampled_from(SYMBOLS)), "start_date": start}
    config["end_date"] = end
    config.update(draw(st.one_of(plugin_drivers(), rule_drivers(), st.just({}))))
    config["direction"] = draw(st.sampled_from(["long", "short", "both"]))
    size_type = draw(st.sampled_from(["percent", "shares", "signal_weight"]))
    config["size_type"] = size_type
    if size_type == "shares":
        config["size"] = draw(st.sampled_from([1.0, 10.0, 100.0, 1e6]))
    else:
        config["size"] = draw(st.sampled_from([1.0, 1.0, 0.5, 0.25, 0.999]))
    for name, strategy in (
        ("stop_loss", st.floats(0.005, 0.3)),
        ("take_profit", st.floats(0.005, 0.5)),
        ("trailing_stop", st.floats(0.005, 0.3)),
        ("max_holding_bars", st.integers(1, 60)),
    ):
        value = draw(optional(strategy))
        if value is not None:
            config[name] = round(value, 4) if isinstance(value, float) else value
    config["signal_delay"] = draw(st.sampled_from([0, 0, 1, 2, 5]))
    return {
        "kind": "signal",
        "config": config,
        "commission": draw(costs),
        "slippage": draw(costs),
        "initial_capital": draw(st.sampled_from([1_000.0, 10_000.0, 100_000.0, 12_345.67])),
    }


def plain_symbols():
    return st.sampled_from(SYMBOLS)


def held_symbols():
    leveraged = st.builds(
        lambda symbol, leverage: f"{symbol}?L={leverage:g}",
        st.sampled_from(("SPY", "QQQ", "TLT", "GLD")),
        st.sampled_from([0.5, 2, 3, 10]),
    )
    return st.one_of(plain_symbols(), plain_symbols(), leveraged, st.just("CASH"))


@st.composite
def groups(draw) -> dict[str, float]:
    symbols = draw(st.lists(held_symbols(), min_size=1, max_size=4, unique=True))
    raw = [draw(st.integers(1, 20)) for _ in symbols]
    total = sum(raw)
    weights = [round(value / total, 6) for value in raw]
    weights[-1] = round(1.0 - sum(weights[:-1]), 6)
    return dict(zip(symbols, weights, strict=True))


@st.composite
def allocation_cases(draw, max_days: int = 2 * 365) -> dict[str, Any]:
    n_groups = draw(st.integers(1, 4))
    names = [f"g{index}" for index in range(n_groups)]
    allocations = {name: draw(groups()) for name in names}
    rules = [
        {
            "condition": draw(conditions(draw(plain_symbols()), SYMBOLS)),
            "target_allocation": draw(st.sampled_from(names)),
        }
        for _ in range(draw(st.integers(0 if n_groups == 1 else 1, 3)))
    ]
    start, end = draw(date_ranges(max_days))
    config: dict[str, Any] = {
        "start_date": start,
        "end_date": end,
        "initial_capital": draw(st.sampled_from([1_000, 10_000, 100_000])),
        "rebalance_frequency": draw(
            st.sampled_from(["daily", "weekly", "monthly", "quarterly", "yearly"])
        ),
        "base_commission": draw(costs),
    }
    if draw(st.booleans()):
        config["enable_risk_management"] = True
        for name, strategy in (
            ("stop_loss", st.floats(0.02, 0.3)),
            ("take_profit", st.floats(0.02, 0.5)),
            ("trailing_stop", st.floats(0.02, 0.3)),
            ("max_drawdown_limit", st.floats(0.02, 0.4)),
            ("volatility_exit_threshold", st.floats(0.1, 0.8)),
            ("max_position_size", st.floats(0.3, 1.0)),
        ):
            value = draw(optional(strategy))
            if value is not None:
                config[name] = round(value, 4)
    if draw(st.booleans()):
        config["target_volatility"] = round(draw(st.floats(0.03, 0.3)), 4)
    if draw(st.booleans()):
        config["evaluation_frequency"] = draw(
            st.sampled_from(["daily", "weekly", "monthly", "quarterly"])
        )
    if draw(st.booleans()):
        config["signal_delay"] = draw(st.integers(0, 2))
    if draw(st.booleans()):
        # Contributions and withdrawals up to a third of the capital: some empty the portfolio.
        fraction = draw(st.sampled_from([-0.3, -0.05, -0.01, 0.01, 0.1, 0.5]))
        config["cashflow_amount"] = round(fraction * config["initial_capital"], 2)
        config["cashflow_frequency"] = draw(
            st.sampled_from(["weekly", "monthly", "quarterly", "semi-annually", "annually"])
        )
    return {
        "kind": "allocation",
        "request": {
            "strategy": {
                "allocations": allocations,
                "fallback_allocation": draw(st.sampled_from(names)),
                "switching_logic": rules,
            },
            "config": config,
        },
    }


def _tactical_case(allocations, fallback, rules, **config) -> dict[str, Any]:
    return {
        "kind": "allocation",
        "request": {
            "strategy": {
                "allocations": allocations,
                "fallback_allocation": fallback,
                "switching_logic": rules,
            },
            "config": config,
        },
    }


_MOMENTUM_RULE = {
    "condition": {
        "left": {"type": "Momentum", "symbol": "SPY", "window": 126},
        "comparison": ">",
        "right": {"type": "Momentum", "symbol": "EFA", "window": 126},
    },
    "target_allocation": "us",
}

# Cases the CI set always runs, whatever the generator draws (``@example``): the options of SPEC
# §8.1 — evaluation frequency, signal delay, contributions and withdrawals — each with risk exits,
# so that every CI run proves both engines agree on them.
EXPLICIT_CASES: tuple[dict[str, Any], ...] = (
    _tactical_case(
        {"us": {"SPY": 0.7, "CASH": 0.3}, "intl": {"EFA": 0.6, "AGG": 0.4}},
        "intl",
        [_MOMENTUM_RULE],
        start_date="2018-01-01",
        end_date="2020-12-31",
        base_commission=0.0035,
        evaluation_frequency="monthly",
        signal_delay=1,
        cashflow_amount=750.0,
        cashflow_frequency="monthly",
        enable_risk_management=True,
        stop_loss=0.08,
        trailing_stop=0.06,
        max_position_size=1.0,
    ),
    _tactical_case(
        {"us": {"SPY?L=3": 0.5, "TLT": 0.5}, "intl": {"EFA": 1.0}},
        "us",
        [_MOMENTUM_RULE],
        start_date="2019-06-01",
        end_date="2021-06-30",
        initial_capital=100_000,
        base_commission=0.001,
        rebalance_frequency="daily",
        evaluation_frequency="weekly",
        signal_delay=2,
        cashflow_amount=-30_000.0,
        cashflow_frequency="quarterly",
        enable_risk_management=True,
        max_drawdown_limit=0.15,
        volatility_exit_threshold=0.45,
        max_position_size=1.0,
    ),
    _tactical_case(
        {"us": {"QQQ": 0.4, "GLD": 0.3, "IEF": 0.3}, "intl": {"EEM": 0.5, "SHY": 0.5}},
        "intl",
        [_MOMENTUM_RULE],
        start_date="2015-01-01",
        end_date="2017-12-31",
        base_commission=0.002,
        rebalance_frequency="weekly",
        evaluation_frequency="quarterly",
        cashflow_amount=-120.0,
        cashflow_frequency="semi-annually",
        enable_risk_management=True,
        take_profit=0.12,
        max_position_size=0.35,
        target_volatility=0.1,
    ),
    _tactical_case(
        {"us": {"SPY": 1.0}, "intl": {"EFA": 0.5, "CASH": 0.5}},
        "intl",
        [_MOMENTUM_RULE],
        start_date="2011-03-01",
        end_date="2012-12-31",
        rebalance_frequency="yearly",
        evaluation_frequency="daily",
        signal_delay=2,
        cashflow_amount=2_000.0,
        cashflow_frequency="annually",
    ),
)


def cases(max_days: int | None = None):
    signal = signal_cases() if max_days is None else signal_cases(max_days)
    allocation = allocation_cases() if max_days is None else allocation_cases(max_days)
    return st.one_of(signal, allocation)


# --- running a case on one engine ------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """A run's equity and trades, or the problem it was refused with."""

    equity: pd.Series | None = None
    trades: pd.DataFrame | None = None
    problem: str | None = None
    limitation: bool = False


def run_case(case: dict[str, Any], engine: str) -> Outcome:
    if case["kind"] == "signal":
        return _run_signal_case(case, engine)
    return _run_allocation_case(case, engine)


def _run_signal_case(case: dict[str, Any], engine: str) -> Outcome:
    spec, problems = parse_run_config(
        case["config"],
        strategy_kind="signal",
        strategy_definition=None,
        strategy_timeframe=None,
        engine=engine,
        initial_capital=case["initial_capital"],
        commission=case["commission"],
        slippage=case["slippage"],
    )
    if problems:
        return Outcome(problem="; ".join(str(problem) for problem in problems))
    try:
        result = run_backtest(spec)
    except RunError as error:
        limitation = isinstance(error.__cause__, EngineLimitationError)
        return Outcome(problem=str(error), limitation=limitation)
    return Outcome(equity=result.equity, trades=result.trades)


def _run_allocation_case(case: dict[str, Any], engine: str) -> Outcome:
    store = get_store()
    document = {**case["request"], "config": {**case["request"]["config"], "engine": engine}}
    try:
        request = parse_portfolio_request(document)
        problems = data_problems(store, request.symbols, request.start_date, request.end_date)
        if problems:
            raise InvalidPortfolioRequest(problems)
        prices = store.load(
            request.symbols,
            request.start_date,
            request.end_date,
            adjustment=request.price_adjustment,
            warmup_bars=request.warmup_bars,
        )
        run = run_portfolio(request, prices, engine=get_engine(engine))
    except InvalidPortfolioRequest as invalid:
        return Outcome(problem="; ".join(invalid.messages))
    except (MarketDataError, ValueError) as error:
        return Outcome(problem=str(error), limitation=isinstance(error, EngineLimitationError))
    return Outcome(equity=run.equity, trades=run.trades)


# --- comparing --------------------------------------------------------------------------------


def initial_capital(case: dict[str, Any]) -> float:
    if case["kind"] == "signal":
        return float(case["initial_capital"])
    return float(case["request"]["config"].get("initial_capital", 10_000))


def is_documented_limitation(case: dict[str, Any]) -> bool:
    if case["kind"] != "signal":
        return False
    config = case["config"]
    return (
        config.get("size_type", "percent") != "shares"
        and config.get("direction", "long") == "both"
        and config.get("size", 1.0) != 1.0
    )


def assert_parity(case: dict[str, Any]) -> tuple[Outcome, Outcome]:
    """Both engines agree on ``case`` (module docstring); returns both outcomes."""
    vectorbt, backtrader = (run_case(case, engine) for engine in ENGINES)
    if is_documented_limitation(case):
        assert vectorbt.limitation and LIMITATION in vectorbt.problem, vectorbt
        return vectorbt, backtrader
    ruin = ruin_date(vectorbt)
    if ruin is not None and backtrader.problem is not None:
        # The refusals the ruin brings: the message names the first refused order's date first.
        assert "refused by the broker" in backtrader.problem, backtrader.problem
        assert backtrader.problem[:10] >= ruin.date().isoformat(), (ruin, backtrader.problem)
        return vectorbt, backtrader
    assert vectorbt.problem == backtrader.problem, (vectorbt.problem, backtrader.problem)
    if vectorbt.problem is not None:
        return vectorbt, backtrader
    ours, theirs = vectorbt.equity, backtrader.equity
    assert ours.index.equals(theirs.index)
    capital = initial_capital(case)
    if ruin is not None:
        before = ours.index < ruin
        ours, theirs = ours[before], theirs[before]
        vectorbt_trades, backtrader_trades = vectorbt.trades, backtrader.trades
        np.testing.assert_allclose(
            theirs.to_numpy(),
            ours.to_numpy(),
            rtol=EQUITY_TOLERANCE,
            atol=EQUITY_TOLERANCE * capital,
        )
        assert_same_trades(
            vectorbt_trades[vectorbt_trades["exit_date"] < ruin].reset_index(drop=True),
            backtrader_trades[backtrader_trades["exit_date"] < ruin].reset_index(drop=True),
            capital,
        )
        return vectorbt, backtrader
    np.testing.assert_allclose(
        theirs.to_numpy(),
        ours.to_numpy(),
        rtol=EQUITY_TOLERANCE,
        atol=EQUITY_TOLERANCE * capital,
        err_msg=f"equity parts on {first_difference(ours, theirs, capital)}",
    )
    assert_same_trades(vectorbt.trades, backtrader.trades, capital)
    return vectorbt, backtrader


def ruin_date(outcome: Outcome) -> pd.Timestamp | None:
    """The first bar whose close leaves vectorbt's equity at or below 0 (None: never)."""
    if outcome.equity is None:
        return None
    ruined = outcome.equity.to_numpy() <= 0
    return outcome.equity.index[np.argmax(ruined)] if ruined.any() else None


def first_difference(ours: pd.Series, theirs: pd.Series, capital: float):
    gap = np.abs(theirs.to_numpy() - ours.to_numpy())
    bound = EQUITY_TOLERANCE * np.maximum(np.abs(ours.to_numpy()), capital)
    parted = np.flatnonzero(gap > bound)
    return ours.index[parted[0]].date().isoformat() if len(parted) else None


def assert_same_trades(ours: pd.DataFrame, theirs: pd.DataFrame, capital: float) -> None:
    assert len(ours) == len(theirs), (len(ours), len(theirs))
    for column in ("symbol", "side", "entry_date", "exit_date", "exit_reason"):
        assert ours[column].tolist() == theirs[column].tolist(), column
    for column in ("size", "entry_price", "exit_price"):
        np.testing.assert_allclose(
            theirs[column], ours[column], rtol=EQUITY_TOLERANCE, atol=1e-12, err_msg=column
        )
    for column in ("pnl", "fees"):
        np.testing.assert_allclose(
            theirs[column],
            ours[column],
            rtol=EQUITY_TOLERANCE,
            atol=EQUITY_TOLERANCE * capital,
            err_msg=column,
        )


def regression_cases() -> list[dict[str, Any]]:
    if not REGRESSIONS_PATH.exists():
        return []
    return json.loads(REGRESSIONS_PATH.read_text())


def save_regression(case: dict[str, Any]) -> None:
    saved = regression_cases()
    if case not in saved:
        saved.append(case)
        REGRESSIONS_PATH.write_text(json.dumps(saved, indent=1, sort_keys=True) + "\n")

"""Compile a strategy definition against loaded prices into what an engine executes.

Timing (SPEC §4.2): indicators read data up to and including the bar being decided and fills
happen at that bar's close, plus ``signal_delay`` bars for signal strategies. Everything is
computed on the prices' full index (warm-up history included), shifted by the delay, and only
then cut to the run's bars t_1..t_n (``prices.start`` to ``prices.end``): a signal raised on the
last warm-up bar with a delay of 1 acts on t_1, as the delay rule says; a delayed signal raised
near the end falls off it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from strategies.language.conditions import condition_values, evaluate_condition
from strategies.language.definitions import validate_definition
from strategies.language.signals import PriceFrameLike, SignalCache

DIRECTIONS = ("long", "short", "both")
REBALANCE_FREQUENCIES = ("daily", "weekly", "monthly", "quarterly", "yearly")
EVALUATION_FREQUENCIES = ("daily", "weekly", "monthly", "quarterly")
CASHFLOW_FREQUENCIES = ("weekly", "monthly", "quarterly", "semi-annually", "annually")
MAX_ALLOCATION_SIGNAL_DELAY = 2


@dataclass(frozen=True)
class SignalPlan:
    """Bool frames on bars t_1..t_n with one column, the traded symbol; delay already applied.
    The engines act on an entry only when flat, so a condition that stays true is one entry."""

    entries: pd.DataFrame
    exits: pd.DataFrame
    short_entries: pd.DataFrame
    short_exits: pd.DataFrame


@dataclass(frozen=True)
class AllocationPlan:
    """What an allocation strategy holds on bars t_1..t_n.

    - ``groups``: the group held on each bar: the first rule whose condition is true, else the
      fallback, as decided at the latest evaluation (every bar for ``daily``; the run's first bar
      and the last trading day of each period otherwise) at least ``signal_delay`` bars before;
      with no delay a rule decided on bar t acts at bar t's close.
    - ``target_weights``: one column per symbol of any group (first-seen order); a row summing
      to 1 on every bar where the portfolio trades (``rebalance_mask | switch_mask``), NaN rows
      elsewhere.
    - ``rebalance_mask``: the scheduled rebalances: the first bar (the initial allocation) and
      the first trading day of every period after it.
    - ``switch_mask``: bars whose group differs from the previous bar's (never the first bar).
    """

    groups: pd.Series
    target_weights: pd.DataFrame
    rebalance_mask: pd.Series
    switch_mask: pd.Series


def _raise_if_invalid(kind: str, definition: Any) -> None:
    problems = validate_definition(kind, definition)
    if problems:
        raise ValueError(
            f"invalid {kind} strategy definition: " + "; ".join(str(p) for p in problems)
        )


def _check_signal_settings(direction: str, signal_delay: int) -> None:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, not {direction!r}")
    if isinstance(signal_delay, bool) or not isinstance(signal_delay, int) or signal_delay < 0:
        raise ValueError(f"signal_delay must be a non-negative integer, not {signal_delay!r}")


def _run_window(prices: PriceFrameLike) -> tuple[pd.DatetimeIndex, np.ndarray]:
    index = prices.close.index
    end = getattr(prices, "end", None)
    in_run = index >= prices.start
    if end is not None:
        in_run &= index <= end
    return index, np.asarray(in_run)


def _delayed(values: np.ndarray, delay: int) -> np.ndarray:
    if delay == 0:
        return values
    shifted = np.zeros_like(values)
    if delay < len(values):
        shifted[delay:] = values[: len(values) - delay]
    return shifted


@dataclass(frozen=True)
class SignalMasks:
    """A ``SignalPlan``'s four rules as bool arrays on bars t_1..t_n (no frames): what a batch
    of compiles on the same prices stacks into one matrix per rule."""

    entries: np.ndarray
    exits: np.ndarray
    short_entries: np.ndarray
    short_exits: np.ndarray


def compile_signal_strategy(
    definition: Mapping[str, Any] | None,
    prices: PriceFrameLike,
    symbol: str,
    *,
    direction: str = "long",
    signal_delay: int = 0,
    cache: SignalCache | None = None,
) -> SignalPlan:
    """Entry/exit frames for one symbol.

    ``cache`` (a ``SignalCache`` of these same ``prices``) may be shared by several compiles, so
    that the combinations of a sweep compute each distinct signal once.

    Which rule drives which frame:

    - ``long``: entries = ``entry``, exits = ``exit``; the short frames are all False.
    - ``short``: the long frames are all False; short frames as below.
    - ``both``: long frames as for ``long``, short frames as below.
    - Short frames: ``short_entry``/``short_exit`` when the definition gives either (a missing
      one never fires); otherwise the long rules mirrored — short when ``exit`` says leave the
      long, cover when ``entry`` says enter it — so a crossover run with ``both`` is
      stop-and-reverse.
    - A missing rule never fires. ``definition=None`` is buy-and-hold: a single entry on the
      first bar (``short``: a single short entry), never an exit; it is delayed like any
      signal.

    Raises ValueError for an invalid definition, direction or delay (validate user input first).
    """
    _check_signal_settings(direction, signal_delay)
    _raise_if_invalid("signal", definition)
    if cache is not None and cache.prices is not prices:
        raise ValueError("a shared SignalCache must belong to the prices being compiled")
    masks = compile_signal_masks(
        definition,
        prices,
        symbol,
        direction=direction,
        signal_delay=signal_delay,
        cache=cache if cache is not None else SignalCache(prices),
    )
    index, in_run = _run_window(prices)
    run_index = index[in_run]
    columns = pd.Index([symbol])

    def frame(values: np.ndarray) -> pd.DataFrame:
        # From a 2-D array: the same frame as from a dict, built several times faster.
        return pd.DataFrame(values.reshape(-1, 1), index=run_index, columns=columns)

    return SignalPlan(
        entries=frame(masks.entries),
        exits=frame(masks.exits),
        short_entries=frame(masks.short_entries),
        short_exits=frame(masks.short_exits),
    )


def compile_signal_masks(
    definition: Mapping[str, Any] | None,
    prices: PriceFrameLike,
    symbol: str,
    *,
    direction: str,
    signal_delay: int,
    cache: SignalCache,
) -> SignalMasks:
    """``compile_signal_strategy``'s rules as arrays, for a definition already validated (a
    run's): the same values, without validating again or building frames, so that a batch of
    definitions on the same prices and ``cache`` compiles each in microseconds."""
    _check_signal_settings(direction, signal_delay)
    if cache.prices is not prices:
        raise ValueError("a shared SignalCache must belong to the prices being compiled")
    index, in_run = cache.derived("run_window", lambda: _run_window(prices))
    never = np.zeros(len(index), dtype=bool)

    rules: dict[str, np.ndarray] = {}
    if definition is None:
        first_bar = never.copy()
        first_bar[np.argmax(in_run)] = in_run.any()
        rules["short_entry" if direction == "short" else "entry"] = first_bar
    else:
        for rule, condition in definition.items():
            rules[rule] = condition_values(condition, prices, symbol, cache=cache)
        if "short_entry" not in definition and "short_exit" not in definition:
            rules["short_entry"] = rules.get("exit", never)
            rules["short_exit"] = rules.get("entry", never)

    trades_long = direction in ("long", "both")
    trades_short = direction in ("short", "both")

    def mask(rule: str, enabled: bool) -> np.ndarray:
        values = rules.get(rule, never) if enabled else never
        return _delayed(values, signal_delay)[in_run].astype(bool, copy=False)

    return SignalMasks(
        entries=mask("entry", trades_long),
        exits=mask("exit", trades_long),
        short_entries=mask("short_entry", trades_short),
        short_exits=mask("short_exit", trades_short),
    )


def _period_keys(index: pd.DatetimeIndex, rebalance: str) -> np.ndarray:
    if rebalance == "daily":
        return np.arange(len(index))
    if rebalance == "weekly":
        days = index.to_numpy().astype("datetime64[D]").astype(np.int64)
        # 1970-01-01 was a Thursday: shifting by 3 days makes every key change on a Monday,
        # i.e. one key per ISO week.
        return (days + 3) // 7
    years = index.year.to_numpy().astype(np.int64)
    months = index.month.to_numpy().astype(np.int64)
    if rebalance == "monthly":
        return years * 12 + months
    if rebalance == "quarterly":
        return years * 4 + (months - 1) // 3
    if rebalance == "semi-annually":
        return years * 2 + (months - 1) // 6
    return years


def rebalance_schedule(index: pd.DatetimeIndex, rebalance: str) -> np.ndarray:
    """True on the first bar and on each bar that starts a new period (first trading day of the
    ISO week, month, quarter, year; every bar for ``daily``)."""
    if rebalance not in REBALANCE_FREQUENCIES:
        raise ValueError(
            f"rebalance must be one of {', '.join(REBALANCE_FREQUENCIES)}, not {rebalance!r}"
        )
    keys = _period_keys(index, rebalance)
    scheduled = np.ones(len(index), dtype=bool)
    scheduled[1:] = keys[1:] != keys[:-1]
    return scheduled


def cashflow_schedule(index: pd.DatetimeIndex, frequency: str) -> np.ndarray:
    """True on the first trading day of each ISO week, month, quarter, half-year or year after
    the first bar (a flow never lands on the first bar: the initial capital is its flow)."""
    if frequency not in CASHFLOW_FREQUENCIES:
        raise ValueError(
            f"frequency must be one of {', '.join(CASHFLOW_FREQUENCIES)}, not {frequency!r}"
        )
    keys = _period_keys(index, "yearly" if frequency == "annually" else frequency)
    flows = np.zeros(len(index), dtype=bool)
    flows[1:] = keys[1:] != keys[:-1]
    return flows


def evaluation_schedule(index: pd.DatetimeIndex, evaluation: str, first_run_bar: int) -> np.ndarray:
    """True on the bars where switching rules are evaluated: every bar for ``daily``; otherwise
    the first bar of the index, the run's first bar and the last trading day of each ISO week,
    month or quarter (a period's last bar is the one before the next period's first)."""
    if evaluation not in EVALUATION_FREQUENCIES:
        raise ValueError(
            f"evaluation must be one of {', '.join(EVALUATION_FREQUENCIES)}, not {evaluation!r}"
        )
    if evaluation == "daily":
        return np.ones(len(index), dtype=bool)
    keys = _period_keys(index, evaluation)
    evaluated = np.zeros(len(index), dtype=bool)
    evaluated[:-1] = keys[:-1] != keys[1:]
    # The index ends with the run's last bar, whose period may go on: it is not a period end.
    if len(index):
        evaluated[0] = True
        evaluated[first_run_bar] = True
    return evaluated


def held_group_codes(
    decided: np.ndarray, evaluated: np.ndarray, signal_delay: int, fallback: int
) -> np.ndarray:
    """The group held on each bar: the decision of the latest evaluation bar at or before
    ``bar − signal_delay`` (the fallback before the first bar that has one)."""
    positions = np.arange(len(decided))
    latest = np.maximum.accumulate(np.where(evaluated, positions, -1))
    source = positions - signal_delay
    held = np.full(len(decided), fallback, dtype=np.int64)
    valid = source >= 0
    chosen = latest[np.where(valid, source, 0)]
    valid &= chosen >= 0
    held[valid] = decided[chosen[valid]]
    return held


def compile_allocation_strategy(
    definition: Mapping[str, Any],
    prices: PriceFrameLike,
    *,
    rebalance: str = "monthly",
    evaluation: str = "daily",
    signal_delay: int = 0,
) -> AllocationPlan:
    """Selected group and target weights per bar (see AllocationPlan).

    Rules are evaluated and delayed on the prices' full index (warm-up included) and only then
    cut to the run's bars, as signal strategies are: a decision at the last warm-up period end
    holds on the first bars, and a delayed decision near the end falls off the run.

    Raises ValueError for an invalid definition, frequency or delay.
    """
    _raise_if_invalid("allocation", definition)
    if (
        isinstance(signal_delay, bool)
        or not isinstance(signal_delay, int)
        or not 0 <= signal_delay <= MAX_ALLOCATION_SIGNAL_DELAY
    ):
        raise ValueError(
            f"signal_delay must be an integer from 0 to {MAX_ALLOCATION_SIGNAL_DELAY}, "
            f"not {signal_delay!r}"
        )
    index, in_run = _run_window(prices)
    run_index = index[in_run]
    scheduled = rebalance_schedule(run_index, rebalance)
    first_run_bar = int(np.argmax(in_run)) if in_run.any() else 0
    evaluated = evaluation_schedule(index, evaluation, first_run_bar)

    allocations: Mapping[str, Mapping[str, float]] = definition["allocations"]
    group_names = list(allocations)
    symbols = list(dict.fromkeys(symbol for weights in allocations.values() for symbol in weights))
    group_weights = np.zeros((len(group_names), len(symbols)))
    for row, group in enumerate(group_names):
        for symbol, weight in allocations[group].items():
            group_weights[row, symbols.index(symbol)] = weight

    cache = SignalCache(prices)
    rule_masks = [
        evaluate_condition(rule["condition"], prices, cache=cache).to_numpy()
        for rule in definition["switching_logic"]
    ]
    rule_groups = [
        group_names.index(rule["target_allocation"]) for rule in definition["switching_logic"]
    ]
    fallback = group_names.index(definition["fallback_allocation"])
    # np.select takes the first true condition, which is the rule order the contract means.
    if rule_masks:
        decided = np.select(rule_masks, rule_groups, default=fallback)
    else:
        decided = np.full(len(index), fallback)
    if evaluation == "daily" and signal_delay == 0:
        group_codes = decided[in_run]
    else:
        group_codes = held_group_codes(decided, evaluated, signal_delay, fallback)[in_run]

    switched = np.zeros(len(run_index), dtype=bool)
    switched[1:] = group_codes[1:] != group_codes[:-1]
    trades = scheduled | switched
    weights = group_weights[group_codes]
    weights[~trades] = np.nan

    return AllocationPlan(
        groups=pd.Series(np.asarray(group_names, dtype=object)[group_codes], index=run_index),
        target_weights=pd.DataFrame(weights, index=run_index, columns=symbols),
        rebalance_mask=pd.Series(scheduled, index=run_index),
        switch_mask=pd.Series(switched, index=run_index),
    )

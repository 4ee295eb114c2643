"""The engine boundary: one input, one output, whichever library runs the backtest.

Both adapters implement exactly the same trading rules (documented on ``EngineInput``) so that a
backtest gives the same equity curve and the same trades on either engine (SPEC §6).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from backfolio.deadline import check_deadline
from strategies.language.compiler import DIRECTIONS

SIGNAL_KIND = "signal"
ALLOCATION_KIND = "allocation"
SIZE_TYPES = ("percent", "shares", "signal_weight")

EXIT_REASONS = (
    "opposite_signal",
    "stop_loss",
    "take_profit",
    "trailing_stop",
    "time_exit",
    "end_of_data",
    "rebalance",
)

TRADE_COLUMNS = (
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
ORDER_COLUMNS = ("date", "symbol", "side", "size", "price", "fees")


# vectorbt snaps any price within its absolute tolerance (1e-12) of 0 to 0 and then refuses to
# value a position at it; both engines refuse such prices alike, with the reason.
MIN_TRADABLE_PRICE = 1e-12


class EngineError(ValueError):
    """A backtest the engine was asked to run is malformed (the message says what is wrong)."""


class EngineLimitationError(EngineError):
    """A valid backtest that this particular engine cannot run faithfully."""


@dataclass(frozen=True)
class EngineInput:
    """Everything an engine needs, already compiled: no indicators are computed by engines.

    Trading rules shared by every engine:

    * One bar per row of ``close``; every fill happens at that bar's close, moved against the
      trader by ``slippage`` (buy at close·(1+s), sell at close·(1−s)). Commission is
      ``commission`` × |size × fill price|, paid in cash. Shares are fractional.
    * Signal kind (exactly one column). Flat: a long entry opens a long position, else a short
      entry opens a short one (both on the same bar: nothing happens). Long: a short entry
      reverses (close and open on the same bar, one fill price), else an exit closes. Short: the
      mirror image. ``direction="short"`` without short signals trades ``entries``/``exits`` as
      the short side. Stops and time exits come before signals and use the bar's close:
      stop_loss (close ≤ entry·(1−sl) long, ≥ entry·(1+sl) short), trailing_stop (vs the best
      close since entry, starting at the entry fill price), take_profit, then time_exit (held
      ``max_holding_bars`` bars), then signals. The entry price for stops is the fill price.
      Stops are not checked on the entry bar, and a bar with a stop exit does nothing else.
    * Sizing when opening: ``percent``/``signal_weight`` spend ``size`` × cash including costs:
      shares = size·cash / (1+commission) / fill_price (shorts: the same with the sell fill
      price); ``shares``: that many shares, fewer if cash cannot pay for them.
    * Allocation kind: on a bar whose ``target_weights`` row is not all NaN, V = cash + Σ
      shares·close before trading; each symbol with a weight targets w·V/close shares; orders
      run in ascending order of (w·V − shares·close) (sells first, ties in column order); a buy
      larger than the cash left is cut to what cash pays for, commission included. A cost within
      1e-9 (relative) of the cash counts as paid (vectorbt's tolerance), so the buy that spends
      all the cash at zero cost fills whole whatever the float rounding of the cash. A NaN weight
      in a traded row holds that symbol.
    * Cash flows (allocation kind, ``cash_flows``: one amount per bar, 0 on most; never on the
      first bar): on a bar with a flow F the row of ``target_weights`` must be complete. The
      bar trades to w·V′ where V′ is the value the portfolio keeps after the flow and this
      bar's own costs (commission and slippage on each trade, ``flow_trade``), so the cash
      ends at (1 − Σw)·V′ and no buy is cut. A withdrawal the
      portfolio cannot pay (V′ ≤ 0) sells everything and withdraws all the cash left; later
      withdrawals are then skipped (``EngineResult.cash_flows`` holds what actually flowed).
    * E_t = cash + Σ shares·close_t after bar t's fills (and flow). A position still open at
      the end is a trade with exit_reason ``end_of_data`` at the last close, without exit costs.
    """

    close: pd.DataFrame
    initial_capital: float
    commission: float
    slippage: float
    kind: str
    entries: pd.DataFrame | None = None
    exits: pd.DataFrame | None = None
    short_entries: pd.DataFrame | None = None
    short_exits: pd.DataFrame | None = None
    direction: str = "long"
    size_type: str = "percent"
    size: float = 1.0
    stop_loss: float | None = None
    take_profit: float | None = None
    trailing_stop: float | None = None
    max_holding_bars: int | None = None
    target_weights: pd.DataFrame | None = None
    cash_flows: np.ndarray | None = None
    progress: Callable[[float], None] | None = None


@dataclass(frozen=True)
class RefusedOrder:
    """An order the engine's broker would not fill: the run's numbers lack it."""

    date: pd.Timestamp
    symbol: str
    side: str
    size: float
    reason: str

    def describe(self) -> str:
        return (
            f"{self.date.date().isoformat()}: the {self.side} order of {self.size:.6g} "
            f"{self.symbol} was refused by the broker: {self.reason}"
        )


@dataclass(frozen=True)
class EngineResult:
    equity: pd.Series
    positions: pd.DataFrame
    trades: pd.DataFrame
    orders: pd.DataFrame
    # Orders the broker refused. The trading rules size every order so that it fills, so any
    # entry here means this run is not the one the rules describe; callers must surface it.
    refused_orders: tuple[RefusedOrder, ...] = ()
    # The flows that actually happened, one per bar (None without flows): a withdrawal larger
    # than the portfolio is cut to what it holds, and the ones after it are skipped.
    cash_flows: np.ndarray | None = None


@dataclass(frozen=True)
class FlowTrade:
    """How a bar with a cash flow trades (see ``EngineInput``)."""

    target_value: float  # V′: the portfolio value the target weights apply to
    flow: float  # what actually flows (negative: withdrawn)
    emptied: bool  # a withdrawal the portfolio could not pay: everything sold, all cash out


def flow_trade(
    cash: float,
    holdings: np.ndarray,
    weights: np.ndarray,
    flow: float,
    commission: float,
    slippage: float = 0.0,
) -> FlowTrade:
    """Solve V′ + Σ k·|w·V′ − h| = cash + Σh + F (``holdings`` h: value of each position at the
    close; k the cost of trading one unit of value at the close: (1 + s)(1 + c) − 1 to buy,
    1 − (1 − s)(1 − c) to sell), so that after the trades the value at the close is V′. The
    left side is convex and increasing in V′, so Newton's method from V′ = cash + Σh + F (at or
    above the root) steps down onto it exactly: it is piecewise linear, and each step lands on
    the root of one linear piece."""
    total = cash + float(holdings.sum()) + flow
    buy_cost = (1.0 + slippage) * (1.0 + commission) - 1.0
    sell_cost = 1.0 - (1.0 - slippage) * (1.0 - commission)

    def costs(value: float) -> tuple[float, float]:
        trades = weights * value - holdings
        rates = np.where(trades > 0, buy_cost, sell_cost)
        return float(np.sum(rates * np.abs(trades))), float(
            np.sum(rates * weights * np.sign(trades))
        )

    def excess(value: float) -> float:
        return value + costs(value)[0] - total

    if flow < 0 and excess(0.0) >= 0:
        left = cash + float(np.sum(holdings * ((1.0 - slippage) * (1.0 - commission))))
        return FlowTrade(0.0, -max(left, 0.0), True)
    value = total
    for _ in range(2 * len(weights) + 8):
        step = excess(value) / (1.0 + costs(value)[1])
        value -= step
        if abs(step) <= 1e-15 * max(abs(value), 1.0):
            break
    return FlowTrade(value, flow, False)


class Engine(Protocol):
    """An adapter. Capabilities are attributes the registry answers questions from (callers
    never compare engine names): ``distribution``, the installed library whose version decides
    the numbers (part of a run's fingerprint); ``quick``, whether a run takes milliseconds
    rather than seconds (a request may then wait for several re-runs); a ``run_signal_batch``
    method when it runs many signal inputs as one vectorised call."""

    name: str
    distribution: str
    quick: bool

    def run(self, data: EngineInput) -> EngineResult: ...


@dataclass(frozen=True)
class SignalArrays:
    """Signals as numpy arrays (one column, or a bars × runs matrix for a batch), already
    resolved for the run's direction."""

    long_entries: np.ndarray
    long_exits: np.ndarray
    short_entries: np.ndarray
    short_exits: np.ndarray


def validate_input(data: EngineInput) -> None:
    """Raise EngineError for anything neither engine could run; shared so both reject alike."""
    close = data.close
    if not isinstance(close, pd.DataFrame) or close.shape[1] == 0 or close.shape[0] == 0:
        raise EngineError("close must be a non-empty DataFrame with one column per symbol.")
    if not isinstance(close.index, pd.DatetimeIndex) or not close.index.is_monotonic_increasing:
        raise EngineError("close must have an ascending DatetimeIndex.")
    values = close.to_numpy(dtype=float)
    if not np.isfinite(values).all() or (values <= 0).any():
        bad = close.columns[~(np.isfinite(values) & (values > 0)).all(axis=0)]
        raise EngineError(
            f"close has missing or non-positive prices for {', '.join(map(str, bad))}."
        )
    tiny = (values <= MIN_TRADABLE_PRICE).any(axis=0)
    if tiny.any():
        names = ", ".join(map(str, close.columns[tiny]))
        first = close.index[(values <= MIN_TRADABLE_PRICE).any(axis=1)][0].date().isoformat()
        raise EngineLimitationError(
            f"close has prices at or below {MIN_TRADABLE_PRICE:g} for {names} (from {first}), "
            "which the engines cannot trade (vectorbt counts such a price as 0): a leveraged "
            "series that lost nearly everything reaches them."
        )
    if not np.isfinite(data.initial_capital) or data.initial_capital <= 0:
        raise EngineError("initial_capital must be greater than 0.")
    for name in ("commission", "slippage"):
        value = getattr(data, name)
        if not np.isfinite(value) or value < 0 or value >= 1:
            raise EngineError(f"{name} must be a fraction in [0, 1).")
    if data.kind == SIGNAL_KIND:
        _validate_signal_input(data)
    elif data.kind == ALLOCATION_KIND:
        weights = data.target_weights
        if weights is None:
            raise EngineError("Allocation backtests need target_weights.")
        if weights.shape != close.shape or not weights.index.equals(close.index):
            raise EngineError("target_weights must have the same index and shape as close.")
        if list(weights.columns) != list(close.columns):
            raise EngineError("target_weights must have the same columns as close.")
        finite = weights.to_numpy(dtype=float)
        if np.isinf(finite).any():
            raise EngineError("target_weights must be finite or NaN.")
        flows = data.cash_flows
        if flows is not None:
            flows = np.asarray(flows, dtype=float)
            if flows.shape != (len(close),) or not np.isfinite(flows).all():
                raise EngineError("cash_flows must hold one finite amount per bar.")
            if len(flows) and flows[0] != 0:
                raise EngineError("cash_flows cannot flow on the first bar.")
            if np.isnan(finite[flows != 0]).any():
                raise EngineError("a bar with a cash flow needs a complete target_weights row.")
    elif data.cash_flows is not None:
        raise EngineError("cash_flows apply to allocation backtests only.")
    if data.kind not in (SIGNAL_KIND, ALLOCATION_KIND):
        raise EngineError(f"Unknown kind {data.kind!r}: expected 'signal' or 'allocation'.")


def _validate_signal_input(data: EngineInput) -> None:
    if data.close.shape[1] != 1:
        raise EngineLimitationError(
            "Signal backtests trade exactly one symbol; use an allocation strategy to trade "
            f"several ({data.close.shape[1]} columns given)."
        )
    if data.direction not in DIRECTIONS:
        raise EngineError(f"direction must be one of {', '.join(DIRECTIONS)}.")
    if data.size_type not in SIZE_TYPES:
        raise EngineError(f"size_type must be one of {', '.join(SIZE_TYPES)}.")
    if not np.isfinite(data.size) or data.size <= 0:
        raise EngineError("size must be greater than 0.")
    if data.size_type != "shares" and data.size > 1:
        raise EngineLimitationError(
            "A percent size above 1 would need leverage, which the engines do not model."
        )
    for name in ("stop_loss", "take_profit", "trailing_stop"):
        value = getattr(data, name)
        if value is not None and (not np.isfinite(value) or value <= 0):
            raise EngineError(f"{name} must be a positive fraction of the entry price.")
    if data.stop_loss is not None and data.stop_loss >= 1:
        raise EngineError("stop_loss must be below 1 (a 100% loss).")
    if data.trailing_stop is not None and data.trailing_stop >= 1:
        raise EngineError("trailing_stop must be below 1.")
    if data.max_holding_bars is not None and int(data.max_holding_bars) < 1:
        raise EngineError("max_holding_bars must be a positive integer.")
    for name in ("entries", "exits", "short_entries", "short_exits"):
        frame = getattr(data, name)
        if frame is not None and (
            frame.shape != data.close.shape or not frame.index.equals(data.close.index)
        ):
            raise EngineError(f"{name} must have the same index and shape as close.")


def signal_arrays(data: EngineInput) -> SignalArrays:
    """Turn the optional signal frames into four boolean arrays, honouring ``direction``."""
    n_bars = len(data.close)

    def as_array(frame: pd.DataFrame | None) -> np.ndarray:
        if frame is None:
            return np.zeros(n_bars, dtype=np.bool_)
        # A fresh writable C array: pandas may hand out read-only views, and numba compiles a
        # separate (slow, uncached) specialisation for each array flavour.
        column = frame.to_numpy()[:, 0]
        if column.dtype != np.bool_:  # object or float columns may hold NaN: not a signal
            column = pd.Series(column).fillna(False).to_numpy(dtype=np.bool_)
        return np.array(column, dtype=np.bool_, copy=True)

    return directed_signals(
        data.direction,
        as_array(data.entries),
        as_array(data.exits),
        as_array(data.short_entries),
        as_array(data.short_exits),
        short_given=data.short_entries is not None,
    )


def directed_signals(
    direction: str,
    long_entries: np.ndarray,
    long_exits: np.ndarray,
    short_entries: np.ndarray,
    short_exits: np.ndarray,
    *,
    short_given: bool = True,
) -> SignalArrays:
    """The signals a run in ``direction`` trades: one column each, or a bars × runs matrix each
    for runs that share their settings (a batch)."""
    no_signal = np.zeros(long_entries.shape, dtype=np.bool_)
    if direction == "long":
        return SignalArrays(long_entries, long_exits, no_signal, no_signal.copy())
    if direction == "short":
        if not short_given:
            # A one-sided definition (entry/exit) run short trades the same rules on the short side.
            short_entries, short_exits = long_entries, long_exits
        return SignalArrays(no_signal, no_signal.copy(), short_entries, short_exits)
    return SignalArrays(long_entries, long_exits, short_entries, short_exits)


def allocation_weights(data: EngineInput) -> np.ndarray:
    return data.target_weights.to_numpy(dtype=float)


def report_progress(data: EngineInput, fraction: float) -> None:
    """Report how far the run is, and stop it there if it is past its time limit."""
    check_deadline()
    if data.progress is not None:
        data.progress(min(max(float(fraction), 0.0), 1.0))


@dataclass
class Fill:
    """One executed order, as an engine reports it, before the common frames are built."""

    bar: int
    column: int
    size: float  # signed: positive buys, negative sells
    price: float
    fees: float
    exit_reason: str | None = None  # why a fill that reduces a position happened


def build_result(
    data: EngineInput, equity: np.ndarray, positions: np.ndarray, fills: list[Fill]
) -> EngineResult:
    """Common output frames from an engine's per-bar equity, positions and fills."""
    index = data.close.index
    symbols = [str(column) for column in data.close.columns]
    equity_series = pd.Series(np.asarray(equity, dtype=float), index=index, name="equity")
    positions_frame = pd.DataFrame(
        np.asarray(positions, dtype=float), index=index, columns=data.close.columns
    )
    orders = pd.DataFrame(
        {
            "date": index[np.array([fill.bar for fill in fills], dtype=np.intp)],
            "symbol": pd.Series([symbols[fill.column] for fill in fills], dtype=object),
            "side": pd.Series(["buy" if fill.size > 0 else "sell" for fill in fills], dtype=object),
            "size": np.array([abs(fill.size) for fill in fills], dtype=float),
            "price": np.array([fill.price for fill in fills], dtype=float),
            "fees": np.array([fill.fees for fill in fills], dtype=float),
        },
        columns=list(ORDER_COLUMNS),
    )
    trades = _trades_from_fills(data, fills, symbols)
    return EngineResult(equity_series, positions_frame, trades, orders)


def _trades_from_fills(data: EngineInput, fills: list[Fill], symbols: list[str]) -> pd.DataFrame:
    """A trade runs from a flat position back to flat (or to the end of the data).

    Entry and exit prices are size-weighted averages of the fills that grew and shrank the
    position; pnl is net of all fees; return_pct is pnl / entry notional, as a fraction.
    """
    index = data.close.index
    closes = data.close.to_numpy(dtype=float)
    open_lots: dict[int, dict] = {}
    rows: list[dict] = []

    def close_lot(column: int, lot: dict, bar: int, reason: str) -> None:
        direction = 1.0 if lot["side"] == "long" else -1.0
        entry_price = lot["entry_value"] / lot["entry_size"]
        exit_price = lot["exit_value"] / lot["exit_size"]
        fees = lot["entry_fees"] + lot["exit_fees"]
        pnl = direction * (lot["exit_value"] - lot["entry_value"]) - fees
        rows.append(
            {
                "symbol": symbols[column],
                "side": lot["side"],
                "entry_date": index[lot["entry_bar"]],
                "exit_date": index[bar],
                "entry_price": entry_price,
                "exit_price": exit_price,
                "size": lot["entry_size"],
                "pnl": pnl,
                "return_pct": pnl / lot["entry_value"],
                "exit_reason": reason,
                "fees": fees,
                "entry_bar": lot["entry_bar"],
            }
        )

    for fill in fills:
        remaining = fill.size
        fee_per_share = fill.fees / abs(fill.size)
        lot = open_lots.get(fill.column)
        if lot is not None and lot["position"] * remaining < 0:
            reducing = min(abs(remaining), abs(lot["position"]))
            lot["exit_size"] += reducing
            lot["exit_value"] += reducing * fill.price
            lot["exit_fees"] += reducing * fee_per_share
            lot["position"] += np.sign(remaining) * reducing
            remaining -= np.sign(remaining) * reducing
            if abs(lot["position"]) <= 1e-9 * lot["entry_size"]:  # np.isclose(·, 0), rtol 0
                close_lot(fill.column, lot, fill.bar, fill.exit_reason or "rebalance")
                del open_lots[fill.column]
                lot = None
            if abs(remaining) <= 1e-12 * abs(fill.size):
                continue
        if lot is None:
            lot = {
                "side": "long" if remaining > 0 else "short",
                "entry_bar": fill.bar,
                "position": 0.0,
                "entry_size": 0.0,
                "entry_value": 0.0,
                "entry_fees": 0.0,
                "exit_size": 0.0,
                "exit_value": 0.0,
                "exit_fees": 0.0,
            }
            open_lots[fill.column] = lot
        lot["position"] += remaining
        lot["entry_size"] += abs(remaining)
        lot["entry_value"] += abs(remaining) * fill.price
        lot["entry_fees"] += abs(remaining) * fee_per_share

    last_bar = len(index) - 1
    for column, lot in sorted(open_lots.items()):
        still_open = abs(lot["position"])
        lot["exit_size"] += still_open
        lot["exit_value"] += still_open * closes[last_bar, column]
        close_lot(column, lot, last_bar, "end_of_data")

    # Ordered by entry date, then symbol: a stable sort, as DataFrame.sort_values(kind="stable").
    stamps = index.asi8
    rows.sort(key=lambda row: (stamps[row["entry_bar"]], row["symbol"]))
    columns: dict[str, object] = {}
    for column in TRADE_COLUMNS:
        values = [row[column] for row in rows]
        if column in ("entry_date", "exit_date"):
            columns[column] = pd.DatetimeIndex(values, dtype=index.dtype)
        elif column in ("symbol", "side", "exit_reason"):
            # Explicitly object: pandas would infer its string dtype from plain arrays.
            columns[column] = pd.Series(values, dtype=object)
        else:
            columns[column] = np.array(values, dtype=float)
    return pd.DataFrame(columns, copy=False)


@dataclass(frozen=True)
class StopSlot:
    """The stop loss and trailing stop as vectorbt's single stop-loss slot holds them.

    ``stop`` is a fraction of the slot's reference price (NaN: no stop); ``trailing`` makes that
    reference the best close since entry instead of the entry price. ``combined`` marks the one
    case one fraction cannot express: a fixed stop loss tighter than the trailing stop, so either
    can bind depending on the path; the level is then max(entry·(1−sl), peak·(1−ts)) per bar.
    """

    stop: float
    trailing: bool
    combined: bool


def stop_slot(stop_loss: float | None, trailing_stop: float | None) -> StopSlot:
    if trailing_stop is None:
        return StopSlot(np.nan if stop_loss is None else float(stop_loss), False, False)
    if stop_loss is None or trailing_stop <= stop_loss:
        # peak ≥ entry and 1−ts ≥ 1−sl, so the trailing level is never below the fixed one
        # (float rounding is monotonic, so this holds bit for bit): the trailing stop alone binds.
        return StopSlot(float(trailing_stop), True, False)
    return StopSlot(float(stop_loss), True, True)


def stop_exit_reason(
    *,
    long: bool,
    entry_price: float,
    reference_price: float,
    close: float,
    stop_loss: float | None,
    trailing_stop: float | None,
    take_profit: float | None,
) -> str | None:
    """Which stop, if any, closes a position at this close (stop_loss › trailing › take_profit).

    ``reference_price`` is the best close since entry (starting at the entry fill price). The
    float operations mirror vectorbt's stop arithmetic exactly (``stop_slot``: a single stop is
    reference·(1∓stop), the combined one goes through the fraction the adjust callback returns)
    so that both engines agree on boundary cases.
    """
    slot = stop_slot(stop_loss, trailing_stop)
    if not np.isnan(slot.stop):
        if long:
            if slot.combined:
                level = max(
                    entry_price * (1.0 - stop_loss), reference_price * (1.0 - trailing_stop)
                )
                trigger = reference_price * (1.0 - (1.0 - level / reference_price))
            else:
                anchor = reference_price if slot.trailing else entry_price
                trigger = anchor * (1.0 - slot.stop)
            hit = close <= trigger
        else:
            if slot.combined:
                level = min(
                    entry_price * (1.0 + stop_loss), reference_price * (1.0 + trailing_stop)
                )
                trigger = reference_price * (1.0 + (level / reference_price - 1.0))
            else:
                anchor = reference_price if slot.trailing else entry_price
                trigger = anchor * (1.0 + slot.stop)
            hit = trigger <= close
        if hit:
            if stop_loss is not None:
                fixed_level = entry_price * (1.0 - stop_loss if long else 1.0 + stop_loss)
                if (close <= fixed_level) if long else (fixed_level <= close):
                    return "stop_loss"
            return "trailing_stop" if trailing_stop is not None else "stop_loss"
    if take_profit is not None:
        if long and entry_price * (1.0 + take_profit) <= close:
            return "take_profit"
        if not long and close <= entry_price * (1.0 - take_profit):
            return "take_profit"
    return None

"""vectorbt adapter: ``Portfolio.from_signals`` for signal strategies, ``from_orders`` for
allocations.

Two ways to run a signal strategy, with the same trading rules and the same numbers:

* **Plain arguments** (the usual case): signal arrays, sizing, costs and stops go to
  ``from_signals`` as arrays and flags, and vectorbt-rust's kernels simulate them. Nothing is
  compiled, so the first backtest of a process is as fast as the thousandth.
* **Numba callbacks** (``signal_callback_reasons`` names when): a per-bar ``signal_func_nb`` /
  ``adjust_sl_func_nb`` decides on the path so far. vectorbt's simulator that takes callbacks runs
  only on numba and cannot be cached on disk, so each process compiles it once (10–40 s; see
  ``warmup.warm_signal_callbacks``).

Allocations always run ``from_orders`` on the Rust kernels. vectorbt is imported on first use
because importing it takes seconds.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from backtests.engines.base import (
    ALLOCATION_KIND,
    EngineError,
    EngineInput,
    EngineLimitationError,
    EngineResult,
    Fill,
    SignalArrays,
    allocation_weights,
    build_result,
    flow_trade,
    report_progress,
    signal_arrays,
    stop_exit_reason,
    stop_slot,
    validate_input,
)
from backtests.engines.registry import register

logger = logging.getLogger(__name__)

_EXIT_CODE_REASONS = {1: "time_exit", 2: "opposite_signal"}
KERNELS = ("rust", "numba")


def signal_callback_reasons(data: EngineInput, signals: SignalArrays | None = None) -> list[str]:
    """Why this signal run needs the per-bar numba callbacks; empty when plain arguments do.

    Each reason is a rule whose outcome on a bar depends on the path so far, which arrays fixed
    before the run cannot encode:

    * a time exit: the bar it fires on counts from the entry, which depends on earlier exits;
    * a fixed stop loss tighter than the trailing stop: either level can bind, bar by bar, and
      vectorbt has one stop-loss slot (a trailing stop at most as wide as the stop loss always
      binds first, so that pair runs without callbacks);
    * an entry and an exit on the same bar for the same side: flat, the bar opens a position;
      in the position, it closes it. vectorbt resolves such a conflict the same way whatever
      the position, so the arrays alone cannot say which.
    """
    reasons = []
    if data.max_holding_bars:
        reasons.append("time exit (max_holding_bars)")
    if stop_slot(data.stop_loss, data.trailing_stop).combined:
        reasons.append("stop loss tighter than the trailing stop")
    signals = signals if signals is not None else signal_arrays(data)
    if (signals.long_entries & signals.long_exits).any() or (
        signals.short_entries & signals.short_exits
    ).any():
        reasons.append("an entry and an exit on the same bar")
    return reasons


class VectorbtEngine:
    """``kernel`` is vectorbt's engine for everything without callbacks ("rust", or "numba" to
    compare); ``always_use_callbacks`` forces the callback path (to check both paths agree)."""

    name = "vectorbt"
    distribution = "vectorbt"
    quick = True  # a 20-year daily run on the Rust kernels takes ~25 ms

    def __init__(self, *, kernel: str = "rust", always_use_callbacks: bool = False) -> None:
        if kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {', '.join(KERNELS)}.")
        self.kernel = kernel
        self.always_use_callbacks = always_use_callbacks

    def run(self, data: EngineInput) -> EngineResult:
        validate_input(data)
        report_progress(data, 0.0)
        if data.kind == ALLOCATION_KIND:
            result = self._run_allocation(data)
        else:
            result = self._run_signals(data)
        report_progress(data, 1.0)
        return result

    def _vectorbt_engine(self) -> str:
        if self.kernel == "rust":
            from vectorbt._engine import is_rust_available

            if not is_rust_available():
                logger.warning("vectorbt-rust is not installed: vectorbt falls back to numba")
                return "numba"
        return self.kernel

    def _signal_arguments(self, data: EngineInput) -> dict:
        """``from_signals`` arguments for everything but the signals (shared by one run and a
        batch, so both simulate the same rules)."""
        from vectorbt.portfolio.enums import (
            OppositeEntryMode,
            SizeType,
            StopEntryPrice,
            StopExitPrice,
        )

        percent_sizing = data.size_type in ("percent", "signal_weight")
        if percent_sizing and data.direction == "both" and data.size != 1.0:
            raise EngineLimitationError(
                "vectorbt cannot reverse a position sized as a fraction of equity below 1 "
                "(size_type percent with direction 'both'); use size 1, one direction, or the "
                "backtrader engine."
            )
        if percent_sizing and data.size == 1.0:
            # An infinite amount is vectorbt's way to say "all cash", and unlike Percent it also
            # works when reversing a position.
            size, size_type = np.inf, SizeType.Amount
        elif percent_sizing:
            size, size_type = float(data.size), SizeType.Percent
        else:
            size, size_type = float(data.size), SizeType.Amount

        slot = stop_slot(data.stop_loss, data.trailing_stop)
        take_profit = np.nan if data.take_profit is None else float(data.take_profit)
        return dict(
            size=size,
            size_type=size_type,
            fees=float(data.commission),
            slippage=float(data.slippage),
            init_cash=float(data.initial_capital),
            upon_opposite_entry=OppositeEntryMode.Reverse,
            sl_stop=slot.stop,
            sl_trail=slot.trailing,
            tp_stop=take_profit,
            stop_entry_price=StopEntryPrice.FillPrice,
            stop_exit_price=StopExitPrice.Close,
            use_stops=not (np.isnan(slot.stop) and np.isnan(take_profit)),
            freq="D",
            engine=self._vectorbt_engine(),
        )

    def _run_signals(self, data: EngineInput) -> EngineResult:
        import vectorbt as vbt
        from vectorbt.portfolio.enums import DirectionConflictMode

        signals = signal_arrays(data)
        n_bars = len(data.close)
        common = self._signal_arguments(data)
        if self.always_use_callbacks or signal_callback_reasons(data, signals):
            portfolio, exit_codes = self._simulate_with_callbacks(vbt, data, signals, common)
        else:
            column = (n_bars, 1)
            portfolio = vbt.Portfolio.from_signals(
                data.close,
                entries=signals.long_entries.reshape(column),
                exits=signals.long_exits.reshape(column),
                short_entries=signals.short_entries.reshape(column),
                short_exits=signals.short_exits.reshape(column),
                # Long entry and short entry together: flat, nothing; in a position, the entry
                # against it (a reversal), exactly as decide_signals_nb.
                upon_dir_conflict=DirectionConflictMode.Opposite,
                **common,
            )
            exit_codes = None
        records = portfolio.order_records
        fills = self._signal_fills(data, records, exit_codes)
        equity, positions = portfolio_arrays(
            data.close.to_numpy(dtype=float), records, float(data.initial_capital),
            grouped=False, engine=common["engine"],
        )  # fmt: skip
        return build_result(data, equity.reshape(n_bars), positions, fills)

    def run_signal_batch(self, inputs: Sequence[EngineInput]) -> list[EngineResult]:
        """Several signal runs that differ only in their signals, as one vectorbt call.

        Each input becomes one column of ``from_signals`` with its own capital (no cash
        sharing), so every column is the run ``run(input)`` would make: the same kernel, the
        same arguments, the same order records. Raises ``EngineLimitationError`` when the inputs
        cannot share one call (different prices or settings, or a run that needs the callback
        path); the caller then runs them one by one.
        """
        if not inputs:
            return []
        records, equity, positions = self._simulate_batch(inputs)
        results = []
        for column, data in enumerate(inputs):
            fills = self._signal_fills(data, records[records["col"] == column], None)
            results.append(
                build_result(data, equity[:, column], positions[:, column : column + 1], fills)
            )
        return results

    def run_signal_batch_equity(self, inputs: Sequence[EngineInput]) -> np.ndarray:
        """The equity curves alone (bars × runs) of what ``run_signal_batch`` runs: the same
        simulation and the same arrays, without building each run's trades and orders (a study
        that ranks runs by their equity needs nothing else). Raises ``EngineLimitationError``
        as ``run_signal_batch`` does."""
        if not inputs:
            return np.empty((0, 0))
        _records, equity, _positions = self._simulate_batch(inputs)
        return equity

    def run_signal_matrix_equity(self, data: EngineInput, signals: SignalArrays) -> np.ndarray:
        """The equity curves (bars × runs) of runs that share ``data``'s prices and settings and
        differ only in their signals, given as one bars × runs matrix per rule (already resolved
        for the direction; ``data``'s own signals are ignored): what ``run_signal_batch_equity``
        gives for one input per column, without an input per run. Raises
        ``EngineLimitationError`` as ``run_signal_batch`` does."""
        return self.run_signal_matrix(data, signals).equity

    def run_signal_matrix(self, data: EngineInput, signals: SignalArrays) -> SignalMatrixRun:
        """What ``run_signal_matrix_equity`` simulates, with the order records and the shares
        held kept, so that each column's trades and orders can be read (``SignalMatrixRun``).
        Raises ``EngineLimitationError`` as ``run_signal_batch`` does."""
        validate_input(replace(data, entries=None, exits=None, short_entries=None,
                               short_exits=None))  # fmt: skip
        if data.kind == ALLOCATION_KIND:
            raise EngineLimitationError("these runs differ in more than their signals.")
        if signals.long_entries.ndim != 2 or signals.long_entries.shape[0] != len(data.close):
            raise EngineError("each signal matrix needs one row per bar of close.")
        records, equity, positions = self._simulate_signal_matrix(data, signals)
        return SignalMatrixRun(self, data, records, equity, positions)

    def _simulate_batch(self, inputs: Sequence[EngineInput]):
        first = inputs[0]
        for data in inputs:
            validate_input(data)
            if data.kind == ALLOCATION_KIND or not _same_run_settings(first, data):
                raise EngineLimitationError("these runs differ in more than their signals.")
        signals = [signal_arrays(data) for data in inputs]

        def stacked(field: str) -> np.ndarray:
            return np.column_stack([getattr(arrays, field) for arrays in signals])

        return self._simulate_signal_matrix(
            first,
            SignalArrays(
                stacked("long_entries"),
                stacked("long_exits"),
                stacked("short_entries"),
                stacked("short_exits"),
            ),
        )

    def _simulate_signal_matrix(self, first: EngineInput, signals: SignalArrays):
        """One ``from_signals`` call, a column per run, every run with ``first``'s prices,
        capital and settings: order records, equity and shares held (bars × runs)."""
        import vectorbt as vbt
        from vectorbt.portfolio.enums import DirectionConflictMode

        if self.always_use_callbacks:
            raise EngineLimitationError("the callback path runs one backtest at a time.")
        # Whether any column needs the callbacks: the reasons hold for a matrix as for a column.
        if signal_callback_reasons(first, signals):
            raise EngineLimitationError("a run in the batch needs the per-bar callbacks.")
        common = self._signal_arguments(first)
        n_runs = signals.long_entries.shape[1]
        close = first.close.iloc[:, 0].to_numpy(dtype=float)
        closes = np.repeat(close[:, None], n_runs, axis=1)
        portfolio = vbt.Portfolio.from_signals(
            pd.DataFrame(
                closes, index=first.close.index, columns=pd.RangeIndex(n_runs), copy=False
            ),
            entries=signals.long_entries,
            exits=signals.long_exits,
            short_entries=signals.short_entries,
            short_exits=signals.short_exits,
            upon_dir_conflict=DirectionConflictMode.Opposite,
            cash_sharing=False,
            **common,
        )
        records = portfolio.order_records
        equity, positions = portfolio_arrays(
            closes, records, float(first.initial_capital), grouped=False, engine=common["engine"]
        )
        return records, equity, positions

    @staticmethod
    def _simulate_with_callbacks(vbt, data: EngineInput, signals: SignalArrays, common: dict):
        from vectorbt.portfolio.enums import Direction

        import backtests.engines._vectorbt_kernels as kernels

        n_bars = len(data.close)
        exit_codes = np.zeros(n_bars, dtype=np.int8)
        state = np.full(1, -1, dtype=np.int64)
        slot = stop_slot(data.stop_loss, data.trailing_stop)
        # combined_stop_nb leaves the slot alone unless both stops are given and both can bind.
        stop_loss = float(data.stop_loss) if slot.combined else np.nan
        trailing_stop = float(data.trailing_stop) if slot.combined else np.nan
        portfolio = vbt.Portfolio.from_signals(
            data.close,
            signal_func_nb=kernels.decide_signals_nb,
            signal_args=(
                signals.long_entries,
                signals.long_exits,
                signals.short_entries,
                signals.short_exits,
                int(data.max_holding_bars or 0),
                state,
                exit_codes,
            ),
            direction=Direction.Both,
            adjust_sl_func_nb=kernels.combined_stop_nb,
            adjust_sl_args=(stop_loss, trailing_stop),
            **common,
        )
        return portfolio, exit_codes

    @staticmethod
    def _signal_fills(
        data: EngineInput, records: np.ndarray, exit_codes: np.ndarray | None
    ) -> list[Fill]:
        """Fills with exit reasons: the callback path records time and signal exits itself;
        anything else closing a position is a stop, recovered from the prices. Without callbacks
        a stop fires exactly when its condition holds, and every other exit is a signal."""
        closes = data.close.iloc[:, 0].to_numpy(dtype=float)
        fills: list[Fill] = []
        position = 0.0
        entry_bar, entry_price = -1, np.nan
        for record in records:
            bar = int(record["idx"])
            signed_size = float(record["size"]) * (1.0 if record["side"] == 0 else -1.0)
            price, fees = float(record["price"]), float(record["fees"])
            new_position = position + signed_size
            if position != 0 and np.sign(signed_size) != np.sign(position):
                long = position > 0
                if exit_codes is not None:
                    reason = _EXIT_CODE_REASONS.get(int(exit_codes[bar]))
                    if reason is None:
                        reason = _stop_reason(data, closes, long, entry_bar, entry_price, bar)
                        if reason is None:
                            raise RuntimeError(
                                f"vectorbt closed a position on bar {bar} for no known reason."
                            )
                else:
                    stop = _stop_reason(data, closes, long, entry_bar, entry_price, bar)
                    reason = stop or "opposite_signal"
                closing = abs(position)
                flipped = abs(new_position) > 1e-9 * closing and np.sign(new_position) != np.sign(
                    position
                )
                if flipped:
                    share = closing / abs(signed_size)
                    fills.append(
                        Fill(bar, 0, np.sign(signed_size) * closing, price, fees * share, reason)
                    )
                    fills.append(Fill(bar, 0, new_position, price, fees * (1.0 - share)))
                    entry_bar, entry_price = bar, price
                else:
                    fills.append(Fill(bar, 0, signed_size, price, fees, reason))
            else:
                fills.append(Fill(bar, 0, signed_size, price, fees))
                entry_bar, entry_price = bar, price
            position = new_position
        return fills

    def _run_allocation(self, data: EngineInput) -> EngineResult:
        from vectorbt.portfolio.enums import SizeType

        if data.cash_flows is not None:
            return self._run_allocation_with_flows(data)
        weights = allocation_weights(data)
        traded_rows = ~np.isnan(weights).all(axis=1)
        # A NaN weight in a traded row holds the symbol: an order of 0 shares keeps vectorbt's
        # sell-before-buy sort well defined (a NaN sort key would pin its neighbours in place).
        holds = np.isnan(weights) & traded_rows[:, None]
        sizes = np.where(holds, 0.0, weights)
        size_types = np.where(holds, SizeType.Amount, SizeType.TargetPercent)
        engine = self._vectorbt_engine()
        close = data.close.to_numpy(dtype=float)
        records = simulate_allocation(
            close,
            sizes,
            size_types,
            fees=float(data.commission),
            slippage=float(data.slippage),
            init_cash=float(data.initial_capital),
            engine=engine,
        )
        signed_sizes = records["size"] * np.where(records["side"] == 0, 1.0, -1.0)
        fills = [
            Fill(bar, column, size, price, fees)
            for bar, column, size, price, fees in zip(
                records["idx"].tolist(),
                records["col"].tolist(),
                signed_sizes.tolist(),
                records["price"].tolist(),
                records["fees"].tolist(),
                strict=True,
            )
        ]
        equity, positions = portfolio_arrays(
            close, records, float(data.initial_capital), grouped=True, engine=engine
        )
        return build_result(data, equity.reshape(-1), positions, fills)

    def _run_allocation_with_flows(self, data: EngineInput) -> EngineResult:
        """vectorbt cannot add or remove cash during a simulation, so the run is simulated in
        pieces: the bars between flows, and each flow bar on its own. A piece after the first
        starts from the book the previous one left: its cash plus the positions' value is the
        initial cash, and a first extra row buys the positions back at the piece's first close
        without commission or slippage (its orders are not part of the run). A flow bar's piece
        adds a contribution to that initial cash, trades to w·V′ (``flow_trade``) with
        TargetValue orders, and takes a withdrawal out of the cash it ends with."""
        from vectorbt.portfolio.enums import SizeType

        engine = self._vectorbt_engine()
        close = data.close.to_numpy(dtype=float)
        weights = allocation_weights(data)
        flows = np.asarray(data.cash_flows, dtype=float)
        commission = float(data.commission)
        n_bars, n_columns = close.shape
        equity = np.empty(n_bars)
        positions = np.empty((n_bars, n_columns))
        actual = np.zeros(n_bars)
        fills: list[Fill] = []
        shares = np.zeros(n_columns)
        cash = float(data.initial_capital)
        withdrawals_stopped = False

        def simulate(first: int, sizes, size_types, extra_cash: float) -> tuple[float, np.ndarray]:
            """Run bars first … first+len(sizes)−1 from the current book; returns the cash and
            shares after the last one, and fills in equity, positions and fills."""
            rows = len(sizes)
            restore = bool(np.any(shares != 0))
            piece_close = close[first : first + rows]
            fees = np.full((rows, n_columns), commission)
            slippage = np.full((rows, n_columns), float(data.slippage))
            init_cash = cash + extra_cash
            if restore:
                piece_close = np.vstack([close[first], piece_close])
                sizes = np.vstack([shares, sizes])
                size_types = np.vstack([np.full(n_columns, SizeType.Amount), size_types])
                fees = np.vstack([np.zeros(n_columns), fees])
                slippage = np.vstack([np.zeros(n_columns), slippage])
                init_cash += float(np.sum(shares * close[first]))
            records = simulate_allocation(
                piece_close,
                sizes,
                size_types,
                fees=fees,
                slippage=slippage,
                init_cash=init_cash,
                engine=engine,
            )
            values, assets = portfolio_arrays(
                piece_close, records, init_cash, grouped=True, engine=engine
            )
            offset = 1 if restore else 0
            values, assets = values.reshape(-1)[offset:], assets[offset:]
            equity[first : first + rows] = values
            positions[first : first + rows] = assets
            signs = np.where(records["side"] == 0, 1.0, -1.0)
            for record, sign in zip(records, signs, strict=True):
                if int(record["idx"]) < offset:
                    continue
                fills.append(
                    Fill(
                        first + int(record["idx"]) - offset,
                        int(record["col"]),
                        float(record["size"]) * sign,
                        float(record["price"]),
                        float(record["fees"]),
                    )
                )
            last_shares = assets[-1].copy()
            return float(values[-1] - np.sum(last_shares * close[first + rows - 1])), last_shares

        traded_rows = ~np.isnan(weights).all(axis=1)
        holds = np.isnan(weights) & traded_rows[:, None]
        all_sizes = np.where(holds, 0.0, weights)
        all_types = np.where(holds, SizeType.Amount, SizeType.TargetPercent)
        start = 0
        for bar in [*np.flatnonzero(flows != 0).tolist(), n_bars]:
            if bar > start:
                cash, shares = simulate(start, all_sizes[start:bar], all_types[start:bar], 0.0)
            if bar == n_bars:
                break
            flow = float(flows[bar])
            if flow < 0 and withdrawals_stopped:
                flow = 0.0
            if flow == 0:
                row = slice(bar, bar + 1)
                cash, shares = simulate(bar, all_sizes[row], all_types[row], 0.0)
            else:
                trade = flow_trade(
                    cash, shares * close[bar], weights[bar], flow, commission, data.slippage
                )
                withdrawals_stopped |= trade.emptied
                actual[bar] = trade.flow
                contribution = max(trade.flow, 0.0)
                cash, shares = simulate(
                    bar,
                    (weights[bar] * trade.target_value)[None, :],
                    np.full((1, n_columns), SizeType.TargetValue),
                    contribution,
                )
                withdrawn = contribution - trade.flow  # 0 for a contribution
                cash -= withdrawn
                equity[bar] -= withdrawn
            start = bar + 1
        result = build_result(data, equity, positions, fills)
        return replace(result, cash_flows=actual)


def simulate_allocation(
    close: np.ndarray,
    sizes: np.ndarray,
    size_types: np.ndarray,
    *,
    fees: float | np.ndarray,
    slippage: float | np.ndarray,
    init_cash: float,
    engine: str,
) -> np.ndarray:
    """vectorbt's order records for ``Portfolio.from_orders(close, size=sizes,
    size_type=size_types, direction="both", fees, slippage, init_cash, cash_sharing=True,
    group_by=True, call_seq="auto")`` with every other setting at vectorbt's defaults.

    The same simulation call ``from_orders`` makes, with the arguments it would broadcast,
    without building the Portfolio object and its pandas wrapper around it.
    """
    import vectorbt as vbt
    from vectorbt.portfolio import dispatch
    from vectorbt.portfolio.enums import CallSeqType, Direction

    defaults = vbt.settings["portfolio"]
    shape = close.shape
    group_lens = np.array([shape[1]], dtype=np.int64)
    call_seq = dispatch.build_call_seq(
        shape, group_lens, call_seq_type=CallSeqType.Default, engine=engine
    )
    arguments = (
        np.ascontiguousarray(sizes, dtype=float),
        np.inf,  # price: the close
        np.ascontiguousarray(size_types, dtype=np.int64),
        Direction.Both,
        np.asarray(fees, dtype=float),
        defaults["fixed_fees"],
        np.asarray(slippage, dtype=float),
        defaults["min_size"],
        defaults["max_size"],
        defaults["size_granularity"],
        defaults["reject_prob"],
        defaults["lock_cash"],
        defaults["allow_partial"],
        defaults["raise_reject"],
        False,  # log
        defaults["val_price"],
        np.require(close, dtype=float, requirements="CW"),
    )
    order_records, _logs = dispatch.simulate_from_orders(
        shape,
        group_lens,
        np.array([init_cash], dtype=float),
        call_seq,
        *map(np.asarray, arguments),
        auto_call_seq=True,
        ffill_val_price=defaults["ffill_val_price"],
        update_value=defaults["update_value"],
        max_orders=shape[0] * shape[1],
        max_logs=1,
        init_temp_records=defaults["init_temp_records"],
        flex_2d=True,
        engine=engine,
    )
    return order_records


@dataclass(frozen=True)
class TradeColumns:
    """Each column's closed-trade pnl (in trade order; NaN for a trade valued at a missing
    close) and Σ|size·price| over its orders, or None for a column whose trades must be read
    the long way (``SignalMatrixRun.result``)."""

    pnl: list[np.ndarray | None]
    traded_notional: np.ndarray


@dataclass(frozen=True)
class SignalMatrixRun:
    """Runs simulated together by ``VectorbtEngine.run_signal_matrix``: column ``c`` of
    ``equity`` and ``positions`` (shares held, bars × runs) and the records whose ``col`` is
    ``c`` are exactly what ``run`` simulates for that run alone."""

    engine: VectorbtEngine
    data: EngineInput
    records: np.ndarray
    equity: np.ndarray
    positions: np.ndarray

    @property
    def n_runs(self) -> int:
        return self.equity.shape[1]

    def result(self, column: int) -> EngineResult:
        """Column ``column`` as the ``EngineResult`` that ``run_signal_batch`` gives for it."""
        records = self.records[self.records["col"] == column]
        fills = self.engine._signal_fills(self.data, records, None)
        return build_result(
            self.data, self.equity[:, column], self.positions[:, column : column + 1], fills
        )

    def bars_held(self) -> np.ndarray:
        """Bars on which each run held a position (``bars_in_market``)."""
        held = (self.positions != 0) & ~np.isnan(self.positions)
        return held.sum(axis=0)

    def trade_columns(self) -> TradeColumns:
        """Every column's trade pnl and traded notional straight from the order records, for
        the columns whose orders are whole round trips: each order opens a position from flat
        and the next one closes all of it (the usual case: sizing from cash, exits and stops
        that close). The arithmetic is ``build_result``'s, operation for operation, so each
        pnl is the one its trades table holds; a column with any other order (a reversal, a
        partial close) is None, for ``result`` to build."""
        records = self.records
        n_runs = self.n_runs
        columns = records["col"].astype(np.int64)
        if len(columns) and (np.diff(columns) < 0).any():
            order = np.argsort(columns, kind="stable")
            records, columns = records[order], columns[order]
        counts = np.bincount(columns, minlength=n_runs)
        starts = np.concatenate(([0], np.cumsum(counts)))
        size = records["size"].astype(float)
        price = records["price"].astype(float)
        fees = records["fees"].astype(float)
        side = records["side"]
        rank = np.arange(len(records)) - starts[columns]
        opening = rank % 2 == 0
        closing = ~opening
        # A closing order must close exactly what the order before it opened.
        closes_all = np.ones(len(records), dtype=bool)
        after = np.flatnonzero(closing)
        closes_all[after] = (side[after] != side[after - 1]) & (size[after] == size[after - 1])
        whole = np.bincount(columns[~closes_all], minlength=n_runs) == 0
        whole &= (size > 0).all() if len(size) else True

        opened = np.flatnonzero(opening)
        direction = np.where(side[opened] == 0, 1.0, -1.0)
        amount = size[opened]
        # Entry: the lot starts at 0.0 and adds the fill (size·price, size·(fees/size)).
        entry_value = 0.0 + amount * price[opened]
        entry_fees = 0.0 + amount * (fees[opened] / amount)
        # Exit: the next order of the column, or the last close for a position still open.
        has_exit = np.zeros(len(opened), dtype=bool)
        if len(opened):
            following = opened + 1
            has_exit = following < len(records)
            has_exit[has_exit] = columns[following[has_exit]] == columns[opened[has_exit]]
        last_close = float(self.data.close.iloc[-1, 0])
        exit_price = np.full(len(opened), last_close)
        exit_fees = np.zeros(len(opened))
        exits = opened[has_exit] + 1
        exit_price[has_exit] = price[exits]
        exit_fees[has_exit] = 0.0 + amount[has_exit] * (fees[exits] / size[exits])
        exit_value = 0.0 + amount * exit_price
        pnl = direction * (exit_value - entry_value) - (entry_fees + exit_fees)

        trade_starts = np.concatenate(([0], np.cumsum(np.bincount(columns[opened],
                                                                   minlength=n_runs))))  # fmt: skip
        notional = np.abs(size * price)
        traded = np.zeros(n_runs)
        per_column: list[np.ndarray | None] = []
        for column in range(n_runs):
            if not whole[column]:
                per_column.append(None)
                traded[column] = np.nan
                continue
            per_column.append(pnl[trade_starts[column] : trade_starts[column + 1]])
            traded[column] = float(np.nansum(notional[starts[column] : starts[column + 1]]))
        return TradeColumns(per_column, traded)


def portfolio_arrays(
    close: np.ndarray, records: np.ndarray, init_cash: float, *, grouped: bool, engine: str
) -> tuple[np.ndarray, np.ndarray]:
    """Equity (one column per run, or one for the cash-sharing group) and shares held per column,
    straight from the order records.

    The same kernels, in the same order, as ``Portfolio.value()`` and ``Portfolio.assets()`` (with
    vectorbt's default ``fillna_close``), without the wrapper's cached frames around each step,
    which cost several times the simulation itself.
    """
    from vectorbt.portfolio import dispatch
    from vectorbt.portfolio.enums import Direction
    from vectorbt.records import dispatch as records_dispatch

    shape = close.shape
    col_map = records_dispatch.col_map(records["col"], shape[1], engine=engine)
    assets = dispatch.assets(
        dispatch.asset_flow(shape, records, col_map, Direction.Both, engine=engine), engine=engine
    )
    cash_flow = dispatch.cash_flow(shape, records, col_map, False, engine=engine)
    if np.isnan(close).any():
        close = pd.DataFrame(close).ffill().bfill().to_numpy(dtype=float)
    filled = np.where(assets == 0, 0.0, close)  # a NaN price with nothing held is worth nothing
    asset_value = dispatch.asset_value(filled, assets, engine=engine)
    if grouped:
        group_lens = np.array([shape[1]], dtype=np.int64)
        cash = dispatch.cash_grouped(
            shape,
            dispatch.cash_flow_grouped(cash_flow, group_lens, engine=engine),
            group_lens,
            np.array([init_cash], dtype=float),
            engine=engine,
        )
        asset_value = dispatch.asset_value_grouped(asset_value, group_lens, engine=engine)
    else:
        cash = dispatch.cash(cash_flow, np.full(shape[1], init_cash, dtype=float), engine=engine)
    return dispatch.value(cash, asset_value, engine=engine), assets


def _same_run_settings(a: EngineInput, b: EngineInput) -> bool:
    """Whether two signal runs share prices and every setting (only their signals may differ)."""
    same_close = a.close is b.close or (
        a.close.index.equals(b.close.index)
        and list(a.close.columns) == list(b.close.columns)
        and np.array_equal(a.close.to_numpy(), b.close.to_numpy(), equal_nan=True)
    )
    settings = (
        "initial_capital", "commission", "slippage", "direction", "size_type", "size",
        "stop_loss", "take_profit", "trailing_stop", "max_holding_bars",
    )  # fmt: skip
    return (
        same_close
        and a.close.shape[1] == 1
        and all(getattr(a, name) == getattr(b, name) for name in settings)
    )


def _stop_reason(
    data: EngineInput,
    closes: np.ndarray,
    long: bool,
    entry_bar: int,
    entry_price: float,
    bar: int,
) -> str | None:
    """Which stop's condition holds on this bar (vectorbt's order records do not say)."""
    reference = entry_price
    if data.trailing_stop is not None and bar > entry_bar + 1:
        window = closes[entry_bar + 1 : bar]
        reference = max(entry_price, window.max()) if long else min(entry_price, window.min())
    return stop_exit_reason(
        long=long,
        entry_price=entry_price,
        reference_price=reference,
        close=closes[bar],
        stop_loss=data.stop_loss,
        trailing_stop=data.trailing_stop,
        take_profit=data.take_profit,
    )


register(VectorbtEngine())

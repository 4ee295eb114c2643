"""vectorbt adapter: ``Portfolio.from_signals`` for signal strategies, ``from_orders`` for
allocations. vectorbt is imported on first use because importing it takes seconds."""

from __future__ import annotations

import numpy as np

from backtests.engines.base import (
    ALLOCATION_KIND,
    EngineInput,
    EngineLimitationError,
    EngineResult,
    Fill,
    allocation_weights,
    build_result,
    report_progress,
    signal_arrays,
    stop_exit_reason,
    validate_input,
)
from backtests.engines.registry import register

_EXIT_CODE_REASONS = {1: "time_exit", 2: "opposite_signal"}


class VectorbtEngine:
    name = "vectorbt"

    def run(self, data: EngineInput) -> EngineResult:
        validate_input(data)
        report_progress(data, 0.0)
        if data.kind == ALLOCATION_KIND:
            result = self._run_allocation(data)
        else:
            result = self._run_signals(data)
        report_progress(data, 1.0)
        return result

    def _run_signals(self, data: EngineInput) -> EngineResult:
        import vectorbt as vbt
        from vectorbt.portfolio.enums import (
            Direction,
            OppositeEntryMode,
            SizeType,
            StopEntryPrice,
            StopExitPrice,
        )

        from backtests.engines import _vectorbt_kernels as kernels

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

        signals = signal_arrays(data)
        n_bars = len(data.close)
        exit_codes = np.zeros(n_bars, dtype=np.int8)
        state = np.full(1, -1, dtype=np.int64)
        stop_loss = np.nan if data.stop_loss is None else float(data.stop_loss)
        trailing_stop = np.nan if data.trailing_stop is None else float(data.trailing_stop)
        take_profit = np.nan if data.take_profit is None else float(data.take_profit)
        first_stop = stop_loss if not np.isnan(stop_loss) else trailing_stop
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
            size=size,
            size_type=size_type,
            direction=Direction.Both,
            fees=float(data.commission),
            slippage=float(data.slippage),
            init_cash=float(data.initial_capital),
            upon_opposite_entry=OppositeEntryMode.Reverse,
            sl_stop=first_stop,
            sl_trail=not np.isnan(trailing_stop),
            tp_stop=take_profit,
            stop_entry_price=StopEntryPrice.FillPrice,
            stop_exit_price=StopExitPrice.Close,
            adjust_sl_func_nb=kernels.combined_stop_nb,
            adjust_sl_args=(stop_loss, trailing_stop),
            use_stops=not (np.isnan(first_stop) and np.isnan(take_profit)),
            freq="D",
        )
        fills = self._signal_fills(data, portfolio.orders.values, exit_codes)
        equity = portfolio.value().to_numpy(dtype=float).reshape(n_bars)
        positions = portfolio.assets().to_numpy(dtype=float).reshape(n_bars, 1)
        return build_result(data, equity, positions, fills)

    @staticmethod
    def _signal_fills(data: EngineInput, records: np.ndarray, exit_codes: np.ndarray) -> list:
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
                reason = _EXIT_CODE_REASONS.get(int(exit_codes[bar]))
                if reason is None:
                    reason = _stop_reason(data, closes, position > 0, entry_bar, entry_price, bar)
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
        import vectorbt as vbt
        from vectorbt.portfolio.enums import Direction, SizeType

        weights = allocation_weights(data)
        traded_rows = ~np.isnan(weights).all(axis=1)
        # A NaN weight in a traded row holds the symbol: an order of 0 shares keeps vectorbt's
        # sell-before-buy sort well defined (a NaN sort key would pin its neighbours in place).
        holds = np.isnan(weights) & traded_rows[:, None]
        sizes = np.where(holds, 0.0, weights)
        size_types = np.where(holds, SizeType.Amount, SizeType.TargetPercent)
        portfolio = vbt.Portfolio.from_orders(
            data.close,
            size=sizes,
            size_type=size_types,
            direction=Direction.Both,
            fees=float(data.commission),
            slippage=float(data.slippage),
            init_cash=float(data.initial_capital),
            cash_sharing=True,
            group_by=True,
            call_seq="auto",
            freq="D",
        )
        fills = [
            Fill(
                int(record["idx"]),
                int(record["col"]),
                float(record["size"]) * (1.0 if record["side"] == 0 else -1.0),
                float(record["price"]),
                float(record["fees"]),
            )
            for record in portfolio.orders.values
        ]
        equity = portfolio.value().to_numpy(dtype=float).reshape(-1)
        positions = portfolio.assets().to_numpy(dtype=float)
        return build_result(data, equity, positions, fills)


def _stop_reason(
    data: EngineInput,
    closes: np.ndarray,
    long: bool,
    entry_bar: int,
    entry_price: float,
    bar: int,
) -> str:
    """Recover which stop vectorbt fired (its order records do not say)."""
    reference = entry_price
    if data.trailing_stop is not None and bar > entry_bar + 1:
        window = closes[entry_bar + 1 : bar]
        reference = max(entry_price, window.max()) if long else min(entry_price, window.min())
    reason = stop_exit_reason(
        long=long,
        entry_price=entry_price,
        reference_price=reference,
        close=closes[bar],
        stop_loss=data.stop_loss,
        trailing_stop=data.trailing_stop,
        take_profit=data.take_profit,
    )
    if reason is None:
        raise RuntimeError(f"vectorbt closed a position on bar {bar} for no known reason.")
    return reason


register(VectorbtEngine())

"""Backtrader adapter: one Cerebro per run, cheat-on-close fills, one pandas feed per symbol.

Backtrader executes an order placed in ``next()`` of bar t at the start of the next cycle, at
bar t's close (cheat-on-close). So the feed gets one extra bar after the last real one, E_t is
read at the start of cycle t+1 (cash + shares·close_t, after bar t's fills), and nothing is
ordered on the extra bar. backtrader is imported on first use.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd

from backfolio.deadline import check_deadline
from backtests.engines.base import (
    ALLOCATION_KIND,
    EngineInput,
    EngineResult,
    Fill,
    RefusedOrder,
    allocation_weights,
    build_result,
    flow_trade,
    report_progress,
    signal_arrays,
    stop_exit_reason,
    validate_input,
)
from backtests.engines.registry import register

# vectorbt's tolerance for "the cash is enough" and "the size is zero" (vectorbt.utils.math_).
_REL_TOL, _ABS_TOL = 1e-9, 1e-12
# Why backtrader's broker refused an order, by the status it notifies.
_REFUSAL_REASONS = {
    "Margin": "not enough cash (Margin)",
    "Rejected": "rejected by the broker (Rejected)",
    "Canceled": "cancelled before it filled (Canceled)",
    "Expired": "expired before it filled (Expired)",
}


def _is_close(a: float, b: float) -> bool:
    return abs(a - b) <= max(_REL_TOL * max(abs(a), abs(b)), _ABS_TOL)


def _affordable_buy(size: float, price: float, commission: float, cash: float) -> float:
    """Shares bought when asking for ``size``: all of them, or what the cash pays for."""
    if cash <= 0:
        return 0.0
    required = size * price
    total = required + required * commission
    if total <= cash or _is_close(total, cash):
        return size
    return cash / (1.0 + commission) / price


class BacktraderEngine:
    """``cash_tolerance``: how far, relative to its cost, a buy may overdraw the cash by float
    rounding and still fill. The default is vectorbt's (a cost within 1e-9 of the cash is
    affordable): without it, a buy sized to spend exactly all the cash, which every zero-cost
    rebalance ends with, is refused for Margin whenever backtrader's own summation of the cash
    rounds a hair below the cost. 0 is backtrader's strict rule."""

    name = "backtrader"
    distribution = "backtrader"
    quick = False  # an event loop in Python: seconds for a 20-year daily run

    def __init__(self, *, cash_tolerance: float = _REL_TOL) -> None:
        if not math.isfinite(cash_tolerance) or cash_tolerance < 0:
            raise ValueError("cash_tolerance must be a finite fraction ≥ 0.")
        self.cash_tolerance = cash_tolerance

    def run(self, data: EngineInput) -> EngineResult:
        import backtrader as bt

        validate_input(data)
        report_progress(data, 0.0)
        n_bars = len(data.close)
        cerebro = bt.Cerebro(stdstats=False, preload=True, runonce=False, optreturn=False)
        cerebro.broker = _tolerant_broker_class(bt)(
            cash_tolerance=self.cash_tolerance, commission_rate=float(data.commission)
        )
        cerebro.broker.setcash(float(data.initial_capital))
        cerebro.broker.set_coc(True)
        cerebro.broker.set_checksubmit(False)
        if data.slippage > 0:
            # slip_match + slip_out: the slipped price may leave the bar's range (close·(1+s)
            # above the high); backtrader would otherwise clamp it to the next bar's high/low.
            cerebro.broker.set_slippage_perc(
                float(data.slippage),
                slip_open=True,
                slip_limit=True,
                slip_match=True,
                slip_out=True,
            )
        cerebro.broker.addcommissioninfo(
            bt.CommInfoBase(
                commission=float(data.commission),
                commtype=bt.CommInfoBase.COMM_PERC,
                percabs=True,
                stocklike=True,
            )
        )
        extra_day = data.close.index[-1] + pd.Timedelta(days=1)
        for column in data.close.columns:
            prices = data.close[column].astype(float)
            prices = pd.concat([prices, pd.Series([prices.iloc[-1]], index=[extra_day])])
            frame = pd.DataFrame(
                {"open": prices, "high": prices, "low": prices, "close": prices, "volume": 0.0}
            )
            frame.index = pd.DatetimeIndex(frame.index).as_unit("ns")
            cerebro.adddata(
                bt.feeds.PandasData(dataname=frame, openinterest=None), name=str(column)
            )
        recorder = _Recorder(data)
        strategy = (
            _allocation_strategy(bt) if data.kind == ALLOCATION_KIND else _signal_strategy(bt)
        )
        cerebro.addstrategy(strategy, recorder=recorder)
        cerebro.run()
        if recorder.recorded_bars != n_bars:
            raise RuntimeError("backtrader did not report every bar.")
        report_progress(data, 1.0)
        result = build_result(data, recorder.equity, recorder.positions, recorder.fills)
        return replace(
            result,
            refused_orders=tuple(recorder.refused),
            cash_flows=recorder.flows if data.cash_flows is not None else None,
        )


def _tolerant_broker_class(bt):
    class TolerantCashBroker(bt.brokers.BackBroker):
        """backtrader's broker, with vectorbt's float tolerance on "the cash pays for this buy".

        backtrader nullifies a buy when cash − cost − commission < 0, computed in its own float
        order. While a buy executes, the cash is raised by the tolerance (relative to the buy's
        cost) and lowered again after: a buy within the tolerance fills and leaves the tiny
        overdraft vectorbt would leave; one beyond it is still refused (and reported).
        """

        params = (("cash_tolerance", _REL_TOL), ("commission_rate", 0.0))

        def _execute(self, order, ago=None, price=None, cash=None, position=None, dtcoc=None):
            if ago is None or price is None or not order.isbuy() or self.p.cash_tolerance == 0:
                return super()._execute(order, ago, price, cash, position, dtcoc)
            cost = abs(order.executed.remsize) * price * (1.0 + self.p.commission_rate)
            allowance = max(self.p.cash_tolerance * cost, _ABS_TOL)
            self.cash += allowance
            try:
                return super()._execute(order, ago, price, cash, position, dtcoc)
            finally:
                self.cash -= allowance

    return TolerantCashBroker


class _Recorder:
    """What the strategy observes, in plain arrays (the strategy class is built lazily)."""

    def __init__(self, data: EngineInput) -> None:
        self.data = data
        self.closes = data.close.to_numpy(dtype=float)
        n_bars, n_columns = self.closes.shape
        self.equity = np.zeros(n_bars)
        self.positions = np.zeros((n_bars, n_columns))
        self.fills: list[Fill] = []
        self.refused: list[RefusedOrder] = []
        self.flows = np.zeros(n_bars)
        self.recorded_bars = 0
        self.progress_step = max(n_bars // 10, 1)


def _base_strategy(bt):
    class RecordingStrategy(bt.Strategy):
        params = (("recorder", None),)

        def __init__(self) -> None:
            self.recorder: _Recorder = self.p.recorder
            self.order_info: dict[int, tuple[int, int, str | None]] = {}
            self.last_fill_price: dict[int, float] = {}

        def notify_order(self, order) -> None:
            status = order.getstatusname()
            if status in _REFUSAL_REASONS:
                bar, column, _reason = self.order_info.pop(order.ref)
                self.recorder.refused.append(
                    RefusedOrder(
                        date=self.recorder.data.close.index[bar],
                        symbol=str(self.recorder.data.close.columns[column]),
                        side="buy" if order.isbuy() else "sell",
                        size=abs(float(order.created.size)),
                        reason=_REFUSAL_REASONS[status],
                    )
                )
                return
            if order.status != order.Completed:
                return
            bar, column, reason = self.order_info.pop(order.ref)
            executed = order.executed
            self.recorder.fills.append(
                Fill(
                    bar,
                    column,
                    float(executed.size),
                    float(executed.price),
                    float(executed.comm),
                    reason,
                )
            )
            self.last_fill_price[column] = float(executed.price)

        def submit(self, bar: int, column: int, size: float, reason: str | None = None) -> None:
            if abs(size) <= _ABS_TOL:
                return
            data = self.datas[column]
            order = self.buy(data=data, size=size) if size > 0 else self.sell(data=data, size=-size)
            self.order_info[order.ref] = (bar, column, reason)

        def next(self) -> None:
            recorder = self.recorder
            bar = len(self) - 1
            if bar > 0:
                # Bar t−1's orders were filled at its close at the start of this cycle.
                previous = bar - 1
                shares = np.array([self.getposition(d).size for d in self.datas], dtype=float)
                recorder.positions[previous] = shares
                recorder.equity[previous] = self.broker.getcash() + float(
                    shares @ recorder.closes[previous]
                )
                recorder.recorded_bars = bar
            if bar >= len(recorder.closes):
                return
            check_deadline()  # Backtrader's bar loop is Python: stop it at the run's limit
            if bar % recorder.progress_step == 0:
                report_progress(recorder.data, 0.05 + 0.9 * bar / len(recorder.closes))
            self.decide(bar)

    return RecordingStrategy


def _signal_strategy(bt):
    class SignalStrategy(_base_strategy(bt)):
        def __init__(self) -> None:
            super().__init__()
            data = self.recorder.data
            self.signals = signal_arrays(data)
            self.entry_bar = -1
            self.reference_price = math.nan
            self.percent_sizing = data.size_type in ("percent", "signal_weight")

        def decide(self, bar: int) -> None:
            data = self.recorder.data
            close = float(self.recorder.closes[bar, 0])
            position = float(self.getposition(self.datas[0]).size)
            if position == 0:
                self.entry_bar = -1
            else:
                long = position > 0
                entry_price = self.last_fill_price[0]
                if self.entry_bar_changed:
                    self.reference_price = entry_price
                    self.entry_bar_changed = False
                reason = stop_exit_reason(
                    long=long,
                    entry_price=entry_price,
                    reference_price=self.reference_price,
                    close=close,
                    stop_loss=data.stop_loss,
                    trailing_stop=data.trailing_stop,
                    take_profit=data.take_profit,
                )
                if reason is None and data.trailing_stop is not None:
                    if long:
                        self.reference_price = max(self.reference_price, close)
                    else:
                        self.reference_price = min(self.reference_price, close)
                if reason is not None:
                    self.submit(bar, 0, -position, reason)
                    return
                if data.max_holding_bars and bar - self.entry_bar >= data.max_holding_bars:
                    self.submit(bar, 0, -position, "time_exit")
                    return
            signals = self.signals
            if position > 0:
                if signals.short_entries[bar]:
                    self.reverse(bar, position, close)
                elif signals.long_exits[bar]:
                    self.submit(bar, 0, -position, "opposite_signal")
            elif position < 0:
                if signals.long_entries[bar]:
                    self.reverse(bar, position, close)
                elif signals.short_exits[bar]:
                    self.submit(bar, 0, -position, "opposite_signal")
            elif signals.long_entries[bar] and signals.short_entries[bar]:
                return
            elif signals.long_entries[bar]:
                self.open(bar, True, close, self.broker.getcash())
            elif signals.short_entries[bar]:
                self.open(bar, False, close, self.broker.getcash())

        entry_bar_changed = False

        def reverse(self, bar: int, position: float, close: float) -> None:
            data = self.recorder.data
            self.submit(bar, 0, -position, "opposite_signal")
            cash = self.broker.getcash()
            if position > 0:
                cash_after = cash + position * (close * (1.0 - data.slippage)) * (
                    1.0 - data.commission
                )
            else:
                price = close * (1.0 + data.slippage)
                cash_after = cash - (-position) * price * (1.0 + data.commission)
            self.open(bar, position < 0, close, cash_after)

        def open(self, bar: int, long: bool, close: float, cash: float) -> None:
            data = self.recorder.data
            commission = data.commission
            if long:
                price = close * (1.0 + data.slippage)
                if self.percent_sizing:
                    if cash <= 0:
                        return
                    size = data.size * cash / (1.0 + commission) / price
                else:
                    size = _affordable_buy(float(data.size), price, commission, cash)
            else:
                price = close * (1.0 - data.slippage)
                if self.percent_sizing:
                    size = data.size * (cash / (price * (1.0 + commission)))
                else:
                    size = float(data.size)
                size = -size
            if size == 0:
                return
            self.submit(bar, 0, size)
            self.entry_bar = bar
            self.entry_bar_changed = True

    return SignalStrategy


def _allocation_strategy(bt):
    class AllocationStrategy(_base_strategy(bt)):
        def __init__(self) -> None:
            super().__init__()
            data = self.recorder.data
            self.weights = allocation_weights(data)
            self.flows = None if data.cash_flows is None else np.asarray(data.cash_flows, float)
            self.withdrawals_stopped = False

        def decide(self, bar: int) -> None:
            weights = self.weights[bar]
            if np.isnan(weights).all():
                return
            data = self.recorder.data
            closes = self.recorder.closes[bar]
            shares = np.array([self.getposition(d).size for d in self.datas], dtype=float)
            cash = self.broker.getcash()
            value = cash + float(np.sum(np.where(shares != 0, shares * closes, 0.0)))
            flow = 0.0 if self.flows is None else float(self.flows[bar])
            if flow < 0 and self.withdrawals_stopped:
                flow = 0.0
            if flow != 0:
                trade = flow_trade(
                    cash, shares * closes, weights, flow, data.commission, data.slippage
                )
                self.withdrawals_stopped |= trade.emptied
                self.recorder.flows[bar] = trade.flow
                # The broker's cash changes now, before this bar's orders fill at its close
                # (BackBroker.add_cash would apply it only after them).
                self.broker.cash += trade.flow
                cash += trade.flow
                value = trade.target_value
            traded = np.flatnonzero(~np.isnan(weights))
            # vectorbt's call_seq="auto": ascending approximate order value, sells first.
            order_values = weights[traded] * value - shares[traded] * closes[traded]
            for column in traded[np.argsort(order_values, kind="stable")]:
                target = weights[column] * value / closes[column]
                delta = target - shares[column]
                if abs(delta) <= _ABS_TOL:
                    continue
                if delta > 0:
                    price = closes[column] * (1.0 + data.slippage)
                    delta = _affordable_buy(delta, price, data.commission, cash)
                    cash -= delta * price * (1.0 + data.commission)
                else:
                    price = closes[column] * (1.0 - data.slippage)
                    cash += -delta * price * (1.0 - data.commission)
                self.submit(bar, int(column), delta)

    return AllocationStrategy


register(BacktraderEngine())

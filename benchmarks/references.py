"""What an analyst would run instead: the `bt` library, raw Backtrader, raw vectorbt.

Each reference runs the same backtest as the service's request it is compared with, in-process.
"""

import backtrader
import bt
import numpy as np
import pandas as pd

from marketdata.store import get_store


def adjusted_closes(symbols, start, end) -> pd.DataFrame:
    return get_store().load(symbols, start, end).close.loc[lambda f: f.index >= f.index[0]]


def bt_allocation(weights: dict[str, float], start: str, end: str, commission: float) -> float:
    """A monthly-rebalanced fixed-weight portfolio in `bt`; returns the final value."""
    prices = get_store().load(list(weights), start, end)
    close = prices.close.loc[prices.start :]
    strategy = bt.Strategy(
        "allocation",
        [
            bt.algos.RunMonthly(run_on_first_date=True),
            bt.algos.WeighSpecified(**weights),
            bt.algos.Rebalance(),
        ],
    )
    test = bt.Backtest(
        strategy,
        close,
        initial_capital=10_000.0,
        integer_positions=False,
        commissions=lambda quantity, price: abs(quantity) * price * commission,
        progress_bar=False,
    )
    result = bt.run(test)
    return float(result.prices.iloc[-1, 0]) / 100.0 * 10_000.0


class _SmaCross(backtrader.Strategy):
    params = (("fast", 50), ("slow", 200))

    def __init__(self):
        fast = backtrader.ind.SMA(self.data.close, period=self.p.fast)
        slow = backtrader.ind.SMA(self.data.close, period=self.p.slow)
        self.cross = backtrader.ind.CrossOver(fast, slow)

    def next(self):
        if not self.position and self.cross > 0:
            self.order_target_percent(target=0.99)
        elif self.position and self.cross < 0:
            self.close()


def backtrader_sma_cross(symbol: str, start: str, end: str, fast: int, slow: int) -> float:
    """The textbook Backtrader SMA crossover on daily bars; returns the final value."""
    prices = get_store().load([symbol], start, end, warmup_bars=slow)
    frame = pd.DataFrame(
        {
            "open": prices.open[symbol],
            "high": prices.high[symbol],
            "low": prices.low[symbol],
            "close": prices.close[symbol],
            "volume": prices.volume[symbol].fillna(0),
        }
    )
    cerebro = backtrader.Cerebro(stdstats=False)
    cerebro.adddata(backtrader.feeds.PandasData(dataname=frame))
    cerebro.addstrategy(_SmaCross, fast=fast, slow=slow)
    cerebro.broker.setcash(100_000.0)
    cerebro.broker.setcommission(commission=0.001)
    cerebro.broker.set_coc(True)
    cerebro.run()
    return cerebro.broker.getvalue()


def vectorbt_sma_cross(symbol: str, start: str, end: str, fast: int, slow: int) -> float:
    """The textbook vectorbt SMA crossover; returns the final value."""
    import vectorbt as vbt

    prices = get_store().load([symbol], start, end, warmup_bars=slow)
    close = prices.close[symbol]
    fast_ma = vbt.MA.run(close, fast)
    slow_ma = vbt.MA.run(close, slow)
    entries = fast_ma.ma_crossed_above(slow_ma)
    exits = fast_ma.ma_crossed_below(slow_ma)
    portfolio = vbt.Portfolio.from_signals(
        close, entries, exits, fees=0.001, slippage=0.0005, init_cash=100_000.0, freq="1D"
    )
    return float(np.asarray(portfolio.final_value()))


def vectorbt_walk_forward(
    symbol: str,
    folds,
    pairs: list[tuple[int, int]],
    *,
    cost: float,
    capital: float,
) -> float:
    """What an analyst would write in raw vectorbt for a walk-forward of an SMA crossover: the
    moving averages of every (fast, slow) pair once over the whole span (warmed on the bars
    before it), then per fold one ``Portfolio.from_signals`` over the in-sample window with a
    column per pair, the best Sharpe ratio (first on ties), and that pair on the out-of-sample
    window from the previous window's final value, sold on its last bar. Returns the final
    value.

    The same folds (``schedule_folds``), the same 400 configurations, the same costs and capital,
    in sample and out of sample, and the same choices (its final value equals the service's to
    the cent); what it leaves out is the service's output: the chosen run's full in-sample
    metrics, every out-of-sample run's metrics and the stitched curve's metrics and PSR."""
    import vectorbt as vbt

    slowest = max(slow for _fast, slow in pairs)
    prices = get_store().load([symbol], folds[0].in_sample_start, folds[-1].out_of_sample_end,
                              warmup_bars=slowest)  # fmt: skip
    close = prices.close[symbol]
    fast = vbt.MA.run(close, [fast for fast, _slow in pairs]).ma.to_numpy()
    slow = vbt.MA.run(close, [slow for _fast, slow in pairs]).ma.to_numpy()
    entries, exits = fast > slow, fast < slow
    dates = close.index
    value = capital
    for fold in folds:
        window = (dates >= pd.Timestamp(fold.in_sample_start)) & (
            dates <= pd.Timestamp(fold.in_sample_end)
        )
        in_sample = vbt.Portfolio.from_signals(
            close[window], entries[window], exits[window], fees=cost, slippage=cost,
            init_cash=capital, freq="1D",
        )  # fmt: skip
        best = int(np.nanargmax(in_sample.sharpe_ratio().to_numpy()))
        window = (dates >= pd.Timestamp(fold.out_of_sample_start)) & (
            dates <= pd.Timestamp(fold.out_of_sample_end)
        )
        oos_entries = entries[window, best].copy()
        oos_exits = exits[window, best].copy()
        oos_entries[-1], oos_exits[-1] = False, True
        out_of_sample = vbt.Portfolio.from_signals(
            close[window], oos_entries, oos_exits, fees=cost, slippage=cost, init_cash=value,
            freq="1D",
        )  # fmt: skip
        value = float(out_of_sample.final_value())
    return value


def vectorbt_sma_grid(
    symbol: str, start: str, end: str, pairs: list[tuple[int, int]], costs: float
) -> np.ndarray:
    """The textbook vectorbt way to run an SMA-crossover grid: one ``MA.run`` per side over every
    window, crossings, and one ``Portfolio.from_signals`` with a column per (fast, slow) pair;
    returns each column's per-bar returns (what a study of the grid needs)."""
    import vectorbt as vbt

    slowest = max(slow for _fast, slow in pairs)
    prices = get_store().load([symbol], start, end, warmup_bars=slowest)
    close = prices.close[symbol]
    fast_ma = vbt.MA.run(close, [fast for fast, _slow in pairs], short_name="fast")
    slow_ma = vbt.MA.run(close, [slow for _fast, slow in pairs], short_name="slow")
    entries = fast_ma.ma_crossed_above(slow_ma)
    exits = fast_ma.ma_crossed_below(slow_ma)
    portfolio = vbt.Portfolio.from_signals(
        close, entries, exits, fees=costs, slippage=costs, init_cash=100_000.0, freq="1D"
    )
    return np.asarray(portfolio.returns())

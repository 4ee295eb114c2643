"""Completed runs for the UI tests: real artifacts in storage and metrics computed from them."""

from __future__ import annotations

import numpy as np
import pandas as pd
from django.utils import timezone

from backtests import artifacts
from backtests.models import Backtest
from metrics.calculations import compute_metrics
from metrics.jsonsafe import json_safe
from tests.factories import BacktestFactory


def equity_curve(
    *, seed: int = 1, start: str = "2020-01-02", bars: int = 260, capital: float = 100_000.0
) -> pd.Series:
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range(start, periods=bars)
    returns = rng.normal(0.0004, 0.01, size=bars)
    return pd.Series(capital * np.cumprod(1 + returns), index=dates, name="equity")


def trades_table(equity: pd.Series, *, count: int = 30) -> pd.DataFrame:
    dates = equity.index
    rows = []
    for number in range(count):
        entry, exit_ = dates[number * 8], dates[number * 8 + 5]
        entry_price, exit_price = 100.0 + number, 100.0 + number + (-1) ** number * 2.5
        size = 10.0 + number
        rows.append(
            {
                "symbol": "SPY",
                "side": "long",
                "entry_date": entry,
                "exit_date": exit_,
                "entry_price": entry_price,
                "exit_price": exit_price,
                "size": size,
                "pnl": (exit_price - entry_price) * size,
                "return_pct": exit_price / entry_price - 1,
                "exit_reason": "opposite_signal",
                "fees": 0.5,
            }
        )
    return pd.DataFrame(rows)


def completed_backtest(*, seed: int = 1, trades: int = 30, **fields) -> Backtest:
    """A completed backtest whose equity curve, trades and metrics agree with each other."""
    backtest = BacktestFactory(**fields)
    equity = equity_curve(seed=seed, capital=backtest.initial_capital)
    table = trades_table(equity, count=trades)
    folder = artifacts.run_folder(backtest.id, 1)
    backtest.equity_curve_uri = artifacts.save_bytes(
        f"{folder}/equity.parquet", artifacts.equity_to_parquet(equity)
    )
    backtest.trades_uri = artifacts.save_bytes(
        f"{folder}/trades.parquet", artifacts.trades_to_parquet(table)
    )
    backtest.metrics = json_safe(
        compute_metrics(equity, initial_capital=backtest.initial_capital, trades=table)
    )
    backtest.status = Backtest.Status.COMPLETED
    backtest.progress = 100
    backtest.run_count = 1
    backtest.fingerprint = f"{seed:064x}"
    backtest.started_at = backtest.completed_at = timezone.now()
    backtest.save()
    return backtest

"""Compile vectorbt's numba code before the first real backtest.

vectorbt's signal simulator takes numba functions as arguments, which numba cannot cache on
disk, so every new process compiles it once (about 10–20 s); the order simulator is cached
under ``NUMBA_CACHE_DIR``. Call ``warm_engines()`` when a worker or web process starts.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

DEFAULT_NUMBA_CACHE_DIR = Path(__file__).resolve().parents[2] / "var" / "numba-cache"


def warm_engines() -> float:
    """Run both strategy kinds on 50 synthetic bars; returns the seconds it took."""
    os.environ.setdefault("NUMBA_CACHE_DIR", str(DEFAULT_NUMBA_CACHE_DIR))
    started = time.perf_counter()
    from backtests.engines.base import EngineInput
    from backtests.engines.vectorbt_engine import VectorbtEngine

    index = pd.bdate_range("2020-01-01", periods=50)
    prices = 100.0 * np.cumprod(1.0 + np.sin(np.arange(50.0)) / 50.0)
    close = pd.DataFrame({"A": prices}, index=index)
    rising = close.diff() > 0
    engine = VectorbtEngine()
    for percent_size in (1.0, 0.5):
        engine.run(
            EngineInput(
                close=close,
                initial_capital=10_000.0,
                commission=0.001,
                slippage=0.001,
                kind="signal",
                entries=rising,
                exits=~rising,
                size=percent_size,
                stop_loss=0.02,
                trailing_stop=0.03,
                take_profit=0.05,
                max_holding_bars=5,
            )
        )
    two_assets = pd.DataFrame({"A": prices, "B": prices[::-1].copy()}, index=index)
    weights = pd.DataFrame(np.nan, index=index, columns=["A", "B"])
    weights.iloc[::10] = [0.6, 0.4]
    engine.run(
        EngineInput(
            close=two_assets,
            initial_capital=10_000.0,
            commission=0.001,
            slippage=0.0,
            kind="allocation",
            target_weights=weights,
        )
    )
    return time.perf_counter() - started

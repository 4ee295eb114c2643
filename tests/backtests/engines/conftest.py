import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault(
    "NUMBA_CACHE_DIR", str(Path(__file__).resolve().parents[3] / "var/numba-cache")
)


def load_adjusted_closes(symbols, start, end) -> pd.DataFrame:
    """Dividend-adjusted closes from the bundled data, on the dates every symbol traded."""
    from marketdata.sources import BundledSource

    source = BundledSource()
    columns = {}
    for symbol in symbols:
        columns[symbol] = source.load(symbol)["adj_close"].astype(float)
    closes = pd.DataFrame(columns).dropna()
    return closes.loc[start:end]


@pytest.fixture(scope="session")
def spy_close() -> pd.DataFrame:
    return load_adjusted_closes(["SPY"], "2010-01-01", "2024-12-31")


@pytest.fixture(scope="session")
def warm_vectorbt():
    """Import vectorbt and load the no-compile paths (the callback path compiles on first use)."""
    from backtests.engines.warmup import warm_engines

    warm_engines()


def synthetic_close(n_bars: int = 60, seed: int = 7, columns=("AAA",)) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    returns = rng.normal(0.0005, 0.02, size=(n_bars, len(columns)))
    prices = 100.0 * np.cumprod(1.0 + returns, axis=0)
    index = pd.bdate_range("2020-01-01", periods=n_bars)
    return pd.DataFrame(prices, index=index, columns=list(columns))

"""Real equity curves built from the bundled daily prices, for golden tests of the metrics."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
BUNDLED = REPO / "marketdata" / "data"
# The delivered CSVs, beside the repository (a fallback only: the Parquet copy is bundled).
SHARED_CSV = Path(__file__).resolve().parents[3] / "shared" / "data" / "prices"

INITIAL_CAPITAL = 10_000.0


def load_adj_close(symbol: str) -> pd.Series:
    """Dividend-adjusted closes from the bundled Parquet file (or the shared CSV it came from)."""
    parquet = BUNDLED / f"{symbol}.parquet"
    if parquet.exists():
        frame = pd.read_parquet(parquet)
    else:
        csv = SHARED_CSV / f"{symbol}.csv"
        if not csv.exists():
            pytest.skip(f"no bundled data for {symbol}")
        frame = pd.read_csv(csv)
    if "date" in frame.columns:
        frame = frame.set_index("date")
    frame.index = pd.to_datetime(frame.index)
    return frame["adj_close"].astype(float).sort_index()


@pytest.fixture(scope="session")
def spy_prices() -> pd.Series:
    return load_adj_close("SPY").loc["2005-01-01":"2024-12-31"]


@pytest.fixture(scope="session")
def spy_agg_prices() -> pd.DataFrame:
    prices = pd.concat({"SPY": load_adj_close("SPY"), "AGG": load_adj_close("AGG")}, axis=1)
    return prices.loc["2005-01-01":"2024-12-31"].dropna()


@pytest.fixture(scope="session")
def buy_and_hold_spy(spy_prices) -> pd.Series:
    """SPY bought at the first bar's close with C = 10,000 and no costs: E_1 = C."""
    return (INITIAL_CAPITAL * spy_prices / spy_prices.iloc[0]).rename("equity")


@pytest.fixture(scope="session")
def sixty_forty_daily(spy_agg_prices) -> pd.Series:
    """60/40 SPY/AGG rebalanced to target at every close, no costs."""
    asset_returns = spy_agg_prices.pct_change().fillna(0.0)
    portfolio_returns = 0.6 * asset_returns["SPY"] + 0.4 * asset_returns["AGG"]
    return (INITIAL_CAPITAL * (1.0 + portfolio_returns).cumprod()).rename("equity")

"""Equity and holdings read from vectorbt's order records are exactly Portfolio.value()/assets()."""

import numpy as np
import pandas as pd
import pytest

from backtests.engines.vectorbt_engine import portfolio_arrays


@pytest.fixture
def close():
    rng = np.random.default_rng(7)
    index = pd.bdate_range("2020-01-01", periods=300)
    prices = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (300, 3)), axis=0))
    prices[:5, 2] = np.nan  # a symbol that starts late
    return pd.DataFrame(prices, index=index, columns=["A", "B", "C"])


def test_grouped_allocation_matches_the_portfolio_wrapper(close):
    import vectorbt as vbt

    weights = np.full(close.shape, np.nan)
    weights[::21] = [0.5, 0.3, 0.2]
    weights[:5, 2] = 0.0
    portfolio = vbt.Portfolio.from_orders(
        close, size=weights, size_type="targetpercent", direction="both", fees=0.001,
        init_cash=10_000.0, cash_sharing=True, group_by=True, call_seq="auto", engine="rust",
    )  # fmt: skip
    equity, assets = portfolio_arrays(
        close.to_numpy(), portfolio.order_records, 10_000.0, grouped=True, engine="rust"
    )
    np.testing.assert_array_equal(equity.reshape(-1), portfolio.value().to_numpy())
    np.testing.assert_array_equal(assets, portfolio.assets().to_numpy())


def test_one_column_per_run_matches_the_portfolio_wrapper(close):
    import vectorbt as vbt

    price = close[["A", "A"]].set_axis([0, 1], axis=1)
    entries = np.zeros(price.shape, dtype=bool)
    exits = np.zeros(price.shape, dtype=bool)
    entries[10::40, 0], exits[30::40, 0] = True, True
    entries[5::25, 1], exits[15::25, 1] = True, True
    portfolio = vbt.Portfolio.from_signals(
        price, entries=entries, exits=exits, size=np.inf, fees=0.001, slippage=0.0005,
        init_cash=5_000.0, cash_sharing=False, engine="rust",
    )  # fmt: skip
    equity, assets = portfolio_arrays(
        price.to_numpy(), portfolio.order_records, 5_000.0, grouped=False, engine="rust"
    )
    np.testing.assert_array_equal(equity, portfolio.value().to_numpy())
    np.testing.assert_array_equal(assets, portfolio.assets().to_numpy())


@pytest.mark.parametrize("engine", ["rust"])
def test_allocation_simulation_is_from_orders_without_the_wrapper(close, engine):
    import vectorbt as vbt

    from backtests.engines.vectorbt_engine import simulate_allocation

    sizes = np.zeros(close.shape)
    size_types = np.full(close.shape, 0)
    sizes[::21], size_types[::21] = [0.5, 0.3, 0.2], 5  # TargetPercent
    sizes[:5, 2], size_types[:5, 2] = 0.0, 0
    sizes[105, 1], size_types[105, 1] = 0.0, 0  # a hold inside a rebalance row
    expected = vbt.Portfolio.from_orders(
        close, size=sizes, size_type=size_types, direction="both", fees=0.002, slippage=0.001,
        init_cash=10_000.0, cash_sharing=True, group_by=True, call_seq="auto", engine=engine,
    ).order_records  # fmt: skip
    records = simulate_allocation(
        close.to_numpy(), sizes, size_types, fees=0.002, slippage=0.001, init_cash=10_000.0,
        engine=engine,
    )  # fmt: skip
    assert len(records) > 20
    np.testing.assert_array_equal(records, expected)

"""The portfolio runner's array shortcuts give exactly what the pandas expressions give."""

import numpy as np
import pandas as pd

from backtests.portfolio.runner import _asset_returns


def test_asset_returns_are_pct_change_on_the_run_rows():
    rng = np.random.default_rng(1)
    values = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (300, 3)), axis=0))
    values[:20, 1] = np.nan  # a symbol that starts inside the warm-up
    close = pd.DataFrame(
        values, index=pd.bdate_range("2020-01-01", periods=300), columns=["A", "B", "C"]
    )
    run_index = close.index[50:]
    expected = close[["A", "B"]].pct_change(fill_method=None).loc[run_index]
    pd.testing.assert_frame_equal(
        _asset_returns(close, ["A", "B"], run_index), expected, check_exact=True
    )

"""Indicators against independent pandas/numpy computations on real SPY data."""

import math

import numpy as np
import pandas as pd
import pytest
import talib

from strategies.language import SignalCache, compute_signal, known_signal_types, validate_signal
from strategies.language.signals import normalize_signal
from tests.strategies.conftest import build_prices


@pytest.fixture(scope="module")
def close(spy_prices) -> pd.Series:
    return spy_prices.close["SPY"]


def signal(spy_prices, **spec) -> pd.Series:
    return compute_signal(spec, spy_prices, "SPY")


def assert_same(actual: pd.Series, expected: pd.Series, *, rtol=1e-9, atol=1e-9):
    assert actual.index.equals(expected.index)
    assert actual.dtype == np.float64
    np.testing.assert_array_equal(np.isnan(actual.to_numpy()), np.isnan(expected.to_numpy()))
    np.testing.assert_allclose(actual.to_numpy(), expected.to_numpy(), rtol=rtol, atol=atol)


def seeded_ema(values: pd.Series, window: int, alpha: float) -> pd.Series:
    """EMA seeded with the simple mean of the first ``window`` values, then recursive."""
    result = pd.Series(np.nan, index=values.index)
    seeded = values.copy()
    seeded.iloc[window - 1] = values.iloc[:window].mean()
    result.iloc[window - 1 :] = seeded.iloc[window - 1 :].ewm(alpha=alpha, adjust=False).mean()
    return result


def test_price_fields_and_alias(spy_prices, close):
    assert_same(signal(spy_prices, type="close"), close)
    assert_same(signal(spy_prices, type="PRICE"), close)
    assert_same(signal(spy_prices, type="High"), spy_prices.high["SPY"])
    assert_same(signal(spy_prices, type="volume"), spy_prices.volume["SPY"].astype(float))


def test_sma_is_the_rolling_mean(spy_prices, close):
    assert_same(signal(spy_prices, type="SMA", window=200), close.rolling(200).mean(), rtol=1e-10)


def test_ema_is_seeded_with_the_sma(spy_prices, close):
    expected = seeded_ema(close, 20, 2 / 21)
    assert_same(signal(spy_prices, type="ema", window=20), expected, rtol=1e-10)


def test_rsi_is_wilders(spy_prices, close):
    window = 14
    change = close.diff()
    gains, losses = change.clip(lower=0), (-change).clip(lower=0)
    # Wilder seeds both averages with the simple mean of the first `window` changes.
    average_gain = seeded_ema(gains.iloc[1:], window, 1 / window).reindex(close.index)
    average_loss = seeded_ema(losses.iloc[1:], window, 1 / window).reindex(close.index)
    expected = 100 - 100 / (1 + average_gain / average_loss)
    assert_same(signal(spy_prices, type="RSI"), expected, rtol=1e-8)
    assert signal(spy_prices, type="RSI").first_valid_index() == close.index[window]


def test_atr_is_wilders_true_range(spy_prices, close):
    high, low = spy_prices.high["SPY"], spy_prices.low["SPY"]
    previous = close.shift(1)
    true_range = pd.concat(
        [high - low, (high - previous).abs(), (low - previous).abs()], axis=1
    ).max(axis=1, skipna=False)
    expected = seeded_ema(true_range.iloc[1:], 14, 1 / 14).reindex(close.index)
    assert_same(signal(spy_prices, type="ATR", window=14), expected, rtol=1e-8)


def test_macd_lines(spy_prices, close):
    macd = signal(spy_prices, type="MACD", output="macd")
    signal_line = signal(spy_prices, type="MACD", output="signal")
    histogram = signal(spy_prices, type="MACD")
    assert_same(histogram, macd - signal_line, rtol=1e-12)
    assert macd.first_valid_index() == close.index[25 + 8]
    # TA-Lib starts both EMAs on the same bar; the seed's effect dies out after a few hundred bars.
    stand_alone = seeded_ema(close, 12, 2 / 13) - seeded_ema(close, 26, 2 / 27)
    np.testing.assert_allclose(macd.iloc[1000:], stand_alone.iloc[1000:], rtol=0, atol=1e-8)


def test_momentum_roc_and_rolling_return(spy_prices, close):
    expected = close / close.shift(126) - 1
    assert_same(signal(spy_prices, type="Momentum", window=126), expected, rtol=1e-12)
    assert_same(signal(spy_prices, type="RollingReturn", window=126), expected, rtol=1e-12)
    assert_same(signal(spy_prices, type="roc", window=126), 100 * expected, rtol=1e-12)


def test_volatility_is_annualised_sample_std_of_daily_returns(spy_prices, close):
    expected = close.pct_change().rolling(20).std(ddof=1) * math.sqrt(252)
    assert_same(signal(spy_prices, type="HV", window=20), expected, rtol=1e-8)
    assert signal(spy_prices, type="Volatility", window=20).first_valid_index() == close.index[20]


def test_bollinger_uses_population_std(spy_prices, close):
    middle = close.rolling(20).mean()
    deviation = close.rolling(20).std(ddof=0)
    upper, lower = middle + 2.5 * deviation, middle - 2.5 * deviation
    for output, expected in (("upper", upper), ("middle", middle), ("lower", lower)):
        actual = signal(spy_prices, type="BB", window=20, num_std=2.5, output=output)
        assert_same(actual, expected, rtol=1e-8)
    percent_b = signal(spy_prices, type="BollingerBands", window=20, num_std=2.5)
    assert_same(percent_b, (close - lower) / (upper - lower), rtol=1e-6, atol=1e-8)


def test_stochastic_is_smoothed_percent_k(spy_prices, close):
    lowest = spy_prices.low["SPY"].rolling(14).min()
    highest = spy_prices.high["SPY"].rolling(14).max()
    raw_k = 100 * (close - lowest) / (highest - lowest)
    expected = raw_k.rolling(3).mean()
    assert_same(signal(spy_prices, type="StochasticOscillator"), expected, rtol=1e-8)


def window_ratios(close: pd.Series, end: int, window: int, rf: float, periods: int):
    returns = close.iloc[end - window : end + 1].pct_change().dropna().to_numpy()
    assert len(returns) == window
    excess = returns - ((1 + rf) ** (1 / periods) - 1)
    sharpe = excess.mean() / excess.std(ddof=1) * math.sqrt(periods)
    downside = math.sqrt(np.mean(np.minimum(excess, 0) ** 2))
    sortino = excess.mean() * periods / (downside * math.sqrt(periods))
    return sharpe, sortino


@pytest.mark.parametrize("position", [252, 1000, 4000, -1])
def test_rolling_sharpe_and_sortino_follow_the_metric_definitions(spy_prices, close, position):
    spec = {"window": 252, "trading_days": 252, "risk_free_rate": 0.02}
    sharpe = signal(spy_prices, type="RollingSharpe", **spec)
    sortino = signal(spy_prices, type="RollingSortino", **spec)
    end = position % len(close)
    expected_sharpe, expected_sortino = window_ratios(close, end, 252, 0.02, 252)
    assert sharpe.iloc[end] == pytest.approx(expected_sharpe, rel=1e-8)
    assert sortino.iloc[end] == pytest.approx(expected_sortino, rel=1e-8)
    assert np.isnan(sharpe.iloc[251]) and not np.isnan(sharpe.iloc[252])


def test_drawdown_since_the_run_start_and_over_a_window(spy_prices, close):
    drawdown = signal(spy_prices, type="Drawdown")
    run = close.index >= spy_prices.start
    assert drawdown[~run].isna().all()
    expected = close[run] / close[run].cummax() - 1
    assert_same(drawdown[run], expected, rtol=1e-12)
    assert drawdown.min() == pytest.approx(expected.min()) and drawdown.max() == 0
    windowed = signal(spy_prices, type="Drawdown", window=63)
    assert_same(windowed, close / close.rolling(63).max() - 1, rtol=1e-12)


def test_highest_and_lowest_with_lag(spy_prices, close):
    assert_same(
        signal(spy_prices, type="Highest", window=20, lag=1), close.rolling(20).max().shift(1)
    )
    assert_same(
        signal(spy_prices, type="Lowest", window=5, field="low"),
        spy_prices.low["SPY"].rolling(5).min(),
    )


def test_constant_and_bare_number(spy_prices):
    constant = signal(spy_prices, type="Value", value=0.5)
    assert (constant == 0.5).all() and len(constant) == len(spy_prices.close)
    assert (compute_signal(3, spy_prices) == 3.0).all()


def test_talib_function_by_name(spy_prices, close):
    high, low = spy_prices.high["SPY"], spy_prices.low["SPY"]
    willr = signal(spy_prices, type="talib", function="willr", timeperiod=10)
    highest, lowest = high.rolling(10).max(), low.rolling(10).min()
    assert_same(willr, -100 * (highest - close) / (highest - lowest), rtol=1e-8)
    lower_band = signal(spy_prices, type="TALIB", function="BBANDS", output="lowerband")
    assert_same(lower_band, signal(spy_prices, type="BB", output="lower"), rtol=1e-12)
    obv = signal(spy_prices, type="talib", function="OBV")
    expected_obv = talib.OBV(close.to_numpy(), spy_prices.volume["SPY"].to_numpy(dtype=float))
    np.testing.assert_allclose(obv.to_numpy(), expected_obv)


def test_indicators_skip_bars_where_the_symbol_has_no_price():
    prices = build_prices(["SPY", "BND"], "2010-01-01", "2012-12-31", history_start="2007-01-01")
    bnd = prices.close["BND"]
    sma = compute_signal({"type": "SMA", "window": 10, "symbol": "BND"}, prices)
    first = bnd.first_valid_index()
    assert first > prices.close.index[0]  # BND starts trading in April 2007
    valid = bnd.dropna()
    assert_same(sma.loc[first:], valid.rolling(10).mean().reindex(sma.loc[first:].index))
    # A missing bar yields NaN there and does not poison what follows.
    holed = prices.close.copy()
    hole = holed.index[600]
    holed.loc[hole, "BND"] = np.nan
    with_hole = type(prices)(**{**prices.__dict__, "close": holed})
    sma_holed = compute_signal({"type": "SMA", "window": 10, "symbol": "BND"}, with_hole)
    assert np.isnan(sma_holed[hole])
    expected = holed["BND"].dropna().rolling(10).mean()
    after = holed.index[620:]
    np.testing.assert_allclose(sma_holed[after], expected[after], rtol=1e-10)


def test_cache_computes_a_spec_once_whatever_its_spelling(spy_prices):
    cache = SignalCache(spy_prices)
    first = compute_signal({"type": "rsi"}, spy_prices, "SPY", cache=cache)
    second = compute_signal(
        {"type": "RSI", "window": 14, "symbol": "SPY"}, spy_prices, None, cache=cache
    )
    assert first is second
    other = compute_signal({"type": "RSI", "window": 15}, spy_prices, "SPY", cache=cache)
    assert other is not first


def test_normalized_signal_fills_defaults():
    assert normalize_signal({"type": "macd"}, "SPY") == {
        "type": "MACD",
        "fast": 12,
        "slow": 26,
        "signal": 9,
        "output": "histogram",
        "symbol": "SPY",
    }
    assert normalize_signal({"type": "bb", "window": 20.0}, "QQQ")["window"] == 20


@pytest.mark.parametrize(
    ("spec", "problems"),
    [
        ({"type": "FOO"}, [("s.type", "unknown signal type 'FOO' (known: ")]),
        ({"window": 3}, [("s.type", "is required")]),
        ({"type": "SMA"}, [("s.window", "is required")]),
        ({"type": "SMA", "window": -3}, [("s.window", "must be a positive integer")]),
        ({"type": "SMA", "window": 2.5}, [("s.window", "must be a positive integer")]),
        ({"type": "SMA", "window": "20"}, [("s.window", "must be a positive integer")]),
        ({"type": "SMA", "window": True}, [("s.window", "must be a positive integer")]),
        ({"type": "RSI", "window": 1}, [("s.window", "must be at least 2")]),
        ({"type": "SMA", "window": 5, "windw": 6}, [("s.windw", "unknown parameter for SMA")]),
        ({"type": "MACD", "fast": 30}, [("s.fast", "must be less than slow (26)")]),
        ({"type": "MACD", "output": "line"}, [("s.output", "must be one of: histogram")]),
        ({"type": "BB", "num_std": 0}, [("s.num_std", "must be greater than 0")]),
        ({"type": "Drawdown", "window": None}, []),
        ({"type": "Highest", "window": 5, "lag": -1}, [("s.lag", "must be a non-negative")]),
        ({"type": "constant"}, [("s.value", "is required")]),
        ({"type": "constant", "value": 1, "symbol": "SPY"}, [("s.symbol", "unknown parameter")]),
        ({"type": "Close", "symbol": "QQQ?L=x"}, [("s.symbol", "Invalid leverage format")]),
        ({"type": "talib", "function": "NOPE"}, [("s.function", "unknown TA-Lib function")]),
        ({"type": "talib"}, [("s.function", "is required")]),
        (
            {"type": "talib", "function": "WILLR", "timeperiod": 2.5},
            [("s.timeperiod", "must be an integer")],
        ),
        ({"type": "talib", "function": "WILLR", "period": 5}, [("s.period", "unknown parameter")]),
        ({"type": "talib", "function": "WILLR", "output": "x"}, [("s.output", "must be one of")]),
        (
            {"type": "talib", "function": "WILLR", "timeperiod": 1},
            [("s.timeperiod", "TA-Lib WILLR refuses timeperiod = 1 (default 14)")],
        ),
        (
            {"type": "talib", "function": "BBANDS", "timeperiod": 5, "matype": 99, "nbdevup": 3},
            [("s.matype", "TA-Lib BBANDS refuses matype = 99 (default 0)")],
        ),
        ("SMA", [("s", "must be a signal object")]),
    ],
)
def test_signal_validation_messages(spec, problems):
    found = validate_signal(spec, "s", symbol_required=False)
    assert [(p.path, p.message[: len(m)]) for p, (_, m) in zip(found, problems, strict=False)] == [
        (path, message) for path, message in problems
    ]
    assert len(found) == len(problems)


def test_unknown_type_lists_every_known_type():
    (problem,) = validate_signal({"type": "FOO"}, "s", symbol_required=False)
    assert (
        problem.message == f"unknown signal type 'FOO' (known: {', '.join(known_signal_types())})"
    )
    assert "RollingSharpe" in problem.message and "talib" in problem.message


def test_symbol_is_required_only_without_a_default():
    assert validate_signal({"type": "SMA", "window": 5}, "s", symbol_required=False) == []
    (problem,) = validate_signal({"type": "SMA", "window": 5}, "s", symbol_required=True)
    assert problem.path == "s.symbol" and problem.message.startswith("is required")
    assert validate_signal({"type": "constant", "value": 0}, "s", symbol_required=True) == []


def test_invalid_spec_raises_when_computed(spy_prices):
    with pytest.raises(ValueError, match="window: is required"):
        compute_signal({"type": "SMA"}, spy_prices, "SPY")
    with pytest.raises(KeyError, match="QQQ"):
        compute_signal({"type": "SMA", "window": 5, "symbol": "QQQ"}, spy_prices)


def test_talib_functions_are_described_as_talibs_abstract_api_gives_them():
    from talib import abstract

    from strategies.language.signals import talib_functions

    described = {function["name"]: function for function in talib_functions()}
    assert set(described) == set(talib.get_functions())
    bbands = described["BBANDS"]
    assert (bbands["group"], bbands["display_name"]) == ("Overlap Studies", "Bollinger Bands")
    assert bbands["outputs"] == ["upperband", "middleband", "lowerband"]
    params = {param["name"]: param for param in bbands["params"]}
    assert list(params) == list(abstract.Function("BBANDS").parameters)
    assert (params["timeperiod"]["kind"], params["timeperiod"]["default"]) == ("int", 20)
    assert (params["nbdevup"]["kind"], params["nbdevup"]["default"]) == ("number", 2.0)
    assert params["nbdevup"]["help"] == "Deviation multiplier for upper band"
    assert params["matype"]["choices"][:2] == [
        [0, "Simple Moving Average"],
        [1, "Exponential Moving Average"],
    ]
    assert params["timeperiod"]["choices"] == []
    assert described["OBV"]["params"] == []

"""ChaikinMoneyFlow, Correlation and MarketRegime (SPEC §4.1) against computations written here
from their definitions, bar by bar with plain numpy, on the bundled data."""

import math

import numpy as np
import pandas as pd
import pytest

from marketdata.store import get_store
from strategies.language import (
    compute_signal,
    required_symbols,
    validate_definition,
    validate_signal,
    warmup_bars,
)
from strategies.language.signals import normalize_signal
from tests.strategies.conftest import build_prices


@pytest.fixture(scope="module")
def spy_tlt():
    """SPY and TLT (TLT starts in 2002, SPY in 1993), run 2010–2023."""
    return build_prices(["SPY", "TLT"], "2010-01-01", "2023-12-31")


def assert_matches(actual: pd.Series, expected: np.ndarray):
    assert actual.dtype == np.float64
    values = actual.to_numpy()
    np.testing.assert_array_equal(np.isnan(values), np.isnan(expected))
    np.testing.assert_allclose(values, expected, rtol=1e-9, atol=1e-12)


# --- Chaikin Money Flow ---------------------------------------------------------------------------


def chaikin_by_hand(high, low, close, volume, window: int) -> np.ndarray:
    result = np.full(len(close), np.nan)
    for end in range(window - 1, len(close)):
        flow = traded = 0.0
        for bar in range(end - window + 1, end + 1):
            spread = high[bar] - low[bar]
            multiplier = (
                0.0
                if spread == 0
                else ((close[bar] - low[bar]) - (high[bar] - close[bar])) / spread
            )
            flow += multiplier * volume[bar]
            traded += volume[bar]
        result[end] = flow / traded if traded > 0 else np.nan
    return result


@pytest.mark.parametrize(
    ("spec", "window"), [({"type": "CMF"}, 20), ({"type": "ChaikinMoneyFlow", "window": 5}, 5)]
)
def test_chaikin_money_flow_is_money_flow_volume_over_volume(spy_prices, spec, window):
    fields = [
        spy_prices.__getattribute__(name)["SPY"].to_numpy()
        for name in ("high", "low", "close", "volume")
    ]

    cmf = compute_signal(spec, spy_prices, "SPY")

    assert_matches(cmf, chaikin_by_hand(*fields, window))
    run = cmf.loc[spy_prices.start :]
    assert run.notna().all() and (run.abs() <= 1).all()


def test_chaikin_money_flow_of_a_bar_without_range_counts_zero_flow():
    index = pd.bdate_range("2024-01-01", periods=4)
    frame = lambda values: pd.DataFrame({"X": values}, index=index)  # noqa: E731
    prices = type("Frame", (), {})()
    prices.open = frame([10.0, 10.0, 10.0, 10.0])
    prices.high = frame([11.0, 10.0, 12.0, 10.0])
    prices.low = frame([9.0, 10.0, 10.0, 10.0])
    prices.close = frame([11.0, 10.0, 10.5, 10.0])
    prices.volume = frame([100.0, 300.0, 200.0, 0.0])
    prices.start = index[0]

    cmf = compute_signal({"type": "CMF", "window": 2, "symbol": "X"}, prices)

    # bar 0: +1 × 100; bar 1: no range → 0 × 300; bar 2: −0.5 × 200; bar 3: no volume at all
    np.testing.assert_allclose(cmf.to_numpy()[1:3], [100 / 400, -100 / 500])
    assert np.isnan(cmf.iloc[0])
    assert cmf.iloc[3] == pytest.approx(-100 / 200)


# --- Correlation --------------------------------------------------------------------------------


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    dx, dy = x - x.mean(), y - y.mean()
    denominator = math.sqrt((dx * dx).sum() * (dy * dy).sum())
    return float((dx * dy).sum() / denominator) if denominator > 0 else math.nan


def correlation_by_hand(first: pd.Series, second: pd.Series, window: int) -> np.ndarray:
    """Pearson correlation of the last ``window`` daily close-to-close returns, over the bars
    where both symbols have a close."""
    result = np.full(len(first), np.nan)
    both = np.flatnonzero(first.notna().to_numpy() & second.notna().to_numpy())
    a, b = first.to_numpy()[both], second.to_numpy()[both]
    returns_a, returns_b = a[1:] / a[:-1] - 1, b[1:] / b[:-1] - 1
    for position in range(window, len(both)):
        last = slice(position - window, position)
        result[both[position]] = pearson(returns_a[last], returns_b[last])
    return result


@pytest.mark.parametrize("window", [63, 10])
def test_correlation_is_the_pearson_correlation_of_daily_returns(spy_tlt, window):
    spec = {"type": "Correlation", "other": "TLT", "window": window}
    correlation = compute_signal(spec, spy_tlt, "SPY")

    expected = correlation_by_hand(spy_tlt.close["SPY"], spy_tlt.close["TLT"], window)
    assert_matches(correlation, expected)
    assert correlation.loc[: spy_tlt.close["TLT"].first_valid_index()].isna().all()
    run = correlation.loc[spy_tlt.start :]
    assert run.notna().all() and (run.abs() <= 1 + 1e-12).all()
    assert run.min() < -0.5 < 0.3 < run.max()  # stocks and bonds: mostly opposed, not always


def test_correlation_default_window_and_symbol_order(spy_tlt):
    default = compute_signal({"type": "Correlation", "other": "TLT"}, spy_tlt, "SPY")
    swapped = compute_signal({"type": "Correlation", "symbol": "TLT", "other": "SPY"}, spy_tlt)
    assert_matches(default, correlation_by_hand(spy_tlt.close["SPY"], spy_tlt.close["TLT"], 63))
    assert_matches(swapped, default.to_numpy())


def test_correlation_with_a_constant_series_is_undefined():
    prices = build_prices(["SPY", "CASH"], "2020-01-01", "2020-12-31", history_start="2019-06-01")
    correlation = compute_signal(
        {"type": "Correlation", "other": "CASH", "window": 20}, prices, "SPY"
    )
    assert correlation.isna().all()


# --- Market regime ------------------------------------------------------------------------------


def regime_by_hand(close: np.ndarray, window: int, vol_window: int, vol_lookback: int):
    """The regime per bar, and where it sits on a knife edge: close equal to its average, or the
    volatility equal to its median, to within float rounding (either reading is then right)."""
    bars = len(close)
    trend = np.full(bars, np.nan)
    for end in range(window - 1, bars):
        trend[end] = close[end - window + 1 : end + 1].mean()
    returns = np.full(bars, np.nan)
    returns[1:] = close[1:] / close[:-1] - 1
    volatility = np.full(bars, np.nan)
    for end in range(vol_window, bars):
        volatility[end] = np.std(returns[end - vol_window + 1 : end + 1], ddof=1) * math.sqrt(252)
    typical = np.full(bars, np.nan)
    for end in range(vol_window + vol_lookback - 1, bars):
        typical[end] = np.median(volatility[end - vol_lookback + 1 : end + 1])
    regime = np.full(bars, np.nan)
    edge = np.zeros(bars, dtype=bool)
    for bar in range(bars):
        if np.isnan(trend[bar]) or np.isnan(typical[bar]):
            continue
        bull, volatile = close[bar] > trend[bar], volatility[bar] > typical[bar]
        regime[bar] = {(True, False): 2, (True, True): 1, (False, False): -1, (False, True): -2}[
            (bull, volatile)
        ]
        edge[bar] = math.isclose(close[bar], trend[bar], rel_tol=1e-12) or math.isclose(
            volatility[bar], typical[bar], rel_tol=1e-12
        )
    return regime, edge


@pytest.mark.parametrize(
    "params",
    [{}, {"window": 50, "vol_window": 21, "vol_lookback": 126}],
)
def test_market_regime_is_trend_times_volatility_state(spy_prices, params):
    settings = {"window": 200, "vol_window": 63, "vol_lookback": 756, **params}

    regime = compute_signal({"type": "MarketRegime", **params}, spy_prices, "SPY")

    expected, edge = regime_by_hand(spy_prices.close["SPY"].to_numpy(), **settings)
    assert edge.sum() <= 2, "knife edges are rare"
    assert_matches(regime[~edge], expected[~edge])
    assert set(regime[edge]) <= {-2.0, -1.0, 1.0, 2.0}
    run = regime.loc[spy_prices.start :]
    assert run.notna().all()
    assert set(run.unique()) == {-2.0, -1.0, 1.0, 2.0}
    first = settings["vol_window"] + settings["vol_lookback"] - 1
    assert np.isnan(regime.iloc[first - 1]) and not np.isnan(regime.iloc[first])


# --- validation, symbols, warm-up -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "problems"),
    [
        ({"type": "Correlation"}, [("s.other", "is required")]),
        ({"type": "Correlation", "other": 5}, [("s.other", "Invalid symbol 5")]),
        ({"type": "Correlation", "other": "TLT?L=x"}, [("s.other", "Invalid leverage format")]),
        (
            {"type": "Correlation", "other": "TLT", "window": 1},
            [("s.window", "must be at least 2")],
        ),
        ({"type": "CMF", "window": 0}, [("s.window", "must be a positive integer")]),
        ({"type": "cmf", "lenght": 5}, [("s.lenght", "unknown parameter for ChaikinMoneyFlow")]),
        ({"type": "MarketRegime", "vol_window": 1}, [("s.vol_window", "must be at least 2")]),
        (
            {"type": "MarketRegime", "vol_lookback": 2.5},
            [("s.vol_lookback", "must be a positive integer")],
        ),
        ({"type": "Correlation", "other": "TLT"}, []),
        ({"type": "MarketRegime", "window": 100}, []),
    ],
)
def test_validation_names_the_parameter(spec, problems):
    found = validate_signal(spec, "s", symbol_required=False)
    assert [
        (problem.path, problem.message[: len(message)])
        for problem, (_, message) in zip(found, problems, strict=False)
    ] == problems
    assert len(found) == len(problems)


def test_problems_in_a_definition_carry_their_path():
    definition = {
        "allocations": {"risk": {"SPY": 1.0}, "safe": {"TLT": 1.0}},
        "fallback_allocation": "safe",
        "switching_logic": [
            {
                "condition": {
                    "op": "and",
                    "conditions": [
                        {
                            "left": {"type": "MarketRegime", "symbol": "SPY"},
                            "comparison": ">",
                            "right": 0,
                        },
                        {
                            "left": {"type": "Correlation", "symbol": "SPY"},
                            "comparison": "<",
                            "right": 0,
                        },
                    ],
                },
                "target_allocation": "risk",
            }
        ],
    }
    problems = validate_definition("allocation", definition)
    assert [(problem.path, problem.message) for problem in problems] == [
        ("switching_logic[0].condition.conditions[1].left.other", "is required")
    ]


def test_canonical_form_fills_the_defaults():
    assert normalize_signal({"type": "cmf"}, "SPY") == {
        "type": "ChaikinMoneyFlow",
        "window": 20,
        "symbol": "SPY",
    }
    assert normalize_signal({"type": "correlation", "other": "TLT"}, "SPY") == {
        "type": "Correlation",
        "other": "TLT",
        "window": 63,
        "symbol": "SPY",
    }
    assert normalize_signal({"type": "MarketRegime"}, "SPY") == {
        "type": "MarketRegime",
        "window": 200,
        "vol_window": 63,
        "vol_lookback": 756,
        "symbol": "SPY",
    }


def test_required_symbols_include_the_other_symbol():
    definition = {
        "entry": {
            "left": {"type": "Correlation", "other": "TLT", "window": 20},
            "comparison": "<",
            "right": {"type": "Correlation", "symbol": "QQQ", "other": "GLD"},
        }
    }
    assert required_symbols(definition, "SPY") == ["SPY", "TLT", "QQQ", "GLD"]


@pytest.mark.parametrize(
    ("signal", "bars"),
    [
        ({"type": "CMF"}, 20),
        ({"type": "CMF", "window": 5}, 5),
        ({"type": "Correlation", "other": "TLT"}, 64),
        ({"type": "MarketRegime"}, 819),
        ({"type": "MarketRegime", "window": 900}, 900),
    ],
)
def test_warmup_gives_a_value_on_the_first_bar(signal, bars):
    definition = {"entry": {"left": signal, "comparison": ">", "right": 0}}
    assert warmup_bars(definition) == bars
    assert warmup_bars(definition, signal_delay=1) == bars + 1


@pytest.mark.parametrize(
    "signal",
    [{"type": "CMF"}, {"type": "Correlation", "other": "TLT"}, {"type": "MarketRegime"}],
)
def test_the_warm_up_is_enough_for_a_value_on_the_first_bar(signal):
    definition = {"entry": {"left": signal, "comparison": ">", "right": -5}}
    prices = get_store().load(
        ["SPY", "TLT"],
        pd.Timestamp("2015-01-02").date(),
        pd.Timestamp("2015-12-31").date(),
        warmup_bars=warmup_bars(definition),
    )
    values = compute_signal(signal, prices, "SPY")
    first = values.index.get_loc(prices.start)
    assert not np.isnan(values.iloc[first]) and not np.isnan(values.iloc[first - 1])

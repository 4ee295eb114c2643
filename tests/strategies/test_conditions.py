"""Condition validation (every problem, with its path) and evaluation (NaN is false)."""

import numpy as np
import pandas as pd
import pytest

from strategies.language import Problem, compute_signal, evaluate_condition, validate_condition


def leaf(left, comparison, right):
    return {"left": left, "comparison": comparison, "right": right}


SMA_50 = {"type": "SMA", "window": 50}
CLOSE = {"type": "Close"}


def test_valid_conditions_have_no_problems():
    nested = {
        "op": "AND",
        "conditions": [
            leaf(CLOSE, ">", SMA_50),
            {"op": "or", "conditions": [leaf({"type": "RSI"}, "<", 30), leaf(CLOSE, "==", 1)]},
        ],
    }
    assert validate_condition(nested) == []


def test_every_problem_is_reported_with_its_path():
    doc = {
        "op": "and",
        "conditions": [
            leaf({"type": "SMA", "window": 0}, "=>", {"type": "constant"}),
            {"op": "xor", "conditions": []},
            {"op": "or", "conditions": [leaf({"type": "FOO"}, ">", 0), "text"]},
            {"left": CLOSE},
            {"when": 1},
        ],
    }
    problems = validate_condition(doc, "switching_logic[1].condition", symbol_required=False)
    base = "switching_logic[1].condition.conditions"
    assert [(p.path, p.message.split(" (")[0]) for p in problems] == [
        (f"{base}[0].comparison", "must be one of: > < >= <= =="),
        (f"{base}[0].left.window", "must be a positive integer"),
        (f"{base}[0].right.value", "is required"),
        (f"{base}[1].op", "must be one of: and, or"),
        (f"{base}[1].conditions", "must be a non-empty list of conditions"),
        (f"{base}[2].conditions[0].left.type", "unknown signal type 'FOO'"),
        (f"{base}[2].conditions[1]", "must be a condition object"),
        (f"{base}[3].comparison", "is required"),
        (f"{base}[3].right", "is required"),
        (
            f"{base}[4]",
            "must be a comparison {left, comparison, right} or a composite {op, conditions}",
        ),
    ]


def test_unknown_fields_and_missing_op():
    problems = validate_condition({"conditions": [leaf(1, ">", 0)], "mode": "x"})
    assert problems == [
        Problem("condition.mode", "unknown field in a composite condition"),
        Problem("condition.op", "is required"),
    ]
    assert validate_condition({**leaf(1, ">", 0), "note": "x"}) == [
        Problem("condition.note", "unknown field in a comparison")
    ]


def test_symbol_required_reaches_nested_signals():
    doc = {"op": "or", "conditions": [leaf(SMA_50, ">", 0)]}
    assert validate_condition(doc, "c", symbol_required=True) == [
        Problem(
            "c.conditions[0].left.symbol",
            "is required (allocation strategies name the symbol of every signal)",
        )
    ]


def test_comparisons_match_numpy(spy_prices):
    close = spy_prices.close["SPY"].to_numpy()
    sma = compute_signal(SMA_50, spy_prices, "SPY").to_numpy()
    for comparison, expected in (
        (">", close > sma),
        ("<", close < sma),
        (">=", close >= sma),
        ("<=", close <= sma),
    ):
        result = evaluate_condition(leaf(CLOSE, comparison, SMA_50), spy_prices, "SPY")
        assert result.dtype == bool
        np.testing.assert_array_equal(result.to_numpy(), expected)


def test_nan_on_either_side_is_false(spy_prices):
    sma = compute_signal(SMA_50, spy_prices, "SPY")
    warm_up = sma.isna()
    assert warm_up.sum() == 49
    for comparison in (">", "<", ">=", "<=", "=="):
        for doc in (leaf(CLOSE, comparison, SMA_50), leaf(SMA_50, comparison, CLOSE)):
            assert not evaluate_condition(doc, spy_prices, "SPY")[warm_up].any()
    # Even a comparison that is true for every number is false where a side is missing.
    always = leaf(SMA_50, ">=", {"type": "constant", "value": -1e300})
    result = evaluate_condition(always, spy_prices, "SPY")
    assert not result[warm_up].any() and result[~warm_up].all()


def test_and_or_nest_to_any_depth(spy_prices):
    close = spy_prices.close["SPY"]
    above = leaf(CLOSE, ">", SMA_50)
    rsi_low = leaf({"type": "RSI"}, "<", 40)
    rsi_high = leaf({"type": "RSI"}, ">", 60)
    doc = {
        "op": "Or",
        "conditions": [
            {"op": "AND", "conditions": [above, rsi_low]},
            {"op": "and", "conditions": [{"op": "or", "conditions": [rsi_high]}]},
        ],
    }
    sma = close.rolling(50).mean()
    rsi = compute_signal({"type": "RSI"}, spy_prices, "SPY")
    expected = ((close > sma) & (rsi < 40)) | (rsi > 60)
    result = evaluate_condition(doc, spy_prices, "SPY")
    np.testing.assert_array_equal(result.to_numpy(), expected.to_numpy())
    assert 0 < result.sum() < len(result)


def test_equality_and_constants(spy_prices):
    doc = leaf({"type": "constant", "value": 2}, "==", 2.0)
    assert evaluate_condition(doc, spy_prices).all()
    assert not evaluate_condition(leaf(1, ">", 2), spy_prices).any()


def test_signals_of_other_symbols(portfolio_prices):
    doc = leaf({"type": "Close", "symbol": "QQQ"}, ">", {"type": "Close", "symbol": "SPY"})
    result = evaluate_condition(doc, portfolio_prices)
    expected = portfolio_prices.close["QQQ"] > portfolio_prices.close["SPY"]
    pd.testing.assert_series_equal(result, expected, check_names=False)


@pytest.mark.parametrize("op", ["and", "AND", "Or"])
def test_op_is_case_insensitive(op):
    assert validate_condition({"op": op, "conditions": [leaf(1, ">", 0)]}) == []

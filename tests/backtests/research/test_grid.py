"""Grid expansion for research runs: cartesian products over dotted paths, limits, problems."""

import itertools

import pytest

from backtests.research.grid import (
    MAX_COMBINATIONS,
    GridProblems,
    apply_overrides,
    combination_count,
    expand,
)
from backtests.run_config import accepted_keys

KEYS = accepted_keys("signal")


def problems_of(grid=None, param_grid=None):
    with pytest.raises(GridProblems) as raised:
        expand(grid, param_grid, config_keys=KEYS)
    return raised.value.errors


def test_grid_is_the_cartesian_product_in_key_order():
    grid = {"signal_plugin_params.fast": [5, 10], "signal_plugin_params.slow": [50, 60, 70]}
    entries = expand(grid, None, config_keys=KEYS)
    expected = [
        {"signal_plugin_params": {"fast": fast, "slow": slow}}
        for fast, slow in itertools.product([5, 10], [50, 60, 70])
    ]
    assert entries == expected
    assert combination_count(grid) == 6


def test_top_level_paths_and_param_grid_pass_through():
    assert expand({"stop_loss": [0.1, None]}, None, config_keys=KEYS) == [
        {"stop_loss": 0.1},
        {"stop_loss": None},
    ]
    param_grid = [{"signal_plugin_params": {"fast": 5}}, {"stop_loss": 0.2}]
    assert expand(None, param_grid, config_keys=KEYS) == param_grid


def test_exactly_one_of_grid_and_param_grid():
    message = {"grid": ["Give exactly one of grid and param_grid."]}
    assert problems_of() == message
    assert problems_of({"stop_loss": [0.1]}, [{}]) == message


def test_bad_paths_and_values_are_named():
    errors = problems_of(
        {
            "signal_plugin_params.fast": 5,
            "nonsense.x": [1],
            "stop_loss.deep": [1],
            "size": [],
        }
    )
    grid = errors["grid"]
    assert grid["signal_plugin_params.fast"] == ["Must be a non-empty list of values."]
    assert grid["nonsense.x"] == [f"Not a configuration field (accepted: {', '.join(KEYS)})."]
    assert grid["stop_loss.deep"] == [
        "stop_loss is not a document; only signal, signal_plugin_params have sub-fields."
    ]
    assert grid["size"] == ["Must be a non-empty list of values."]


def test_overlapping_paths_are_refused():
    errors = problems_of({"signal_plugin_params": [{}], "signal_plugin_params.fast": [5]})
    assert errors == {"grid": {"signal_plugin_params": ["Overlaps another path of the grid."]}}


def test_too_many_combinations_says_how_many():
    grid = {
        "signal_plugin_params.fast": list(range(101)),
        "signal_plugin_params.slow": list(range(100)),
    }
    assert problems_of(grid) == {
        "grid": [f"10,100 combinations; at most {MAX_COMBINATIONS:,} are allowed."]
    }
    assert problems_of(None, [{}] * 10_001) == {
        "param_grid": ["10,001 combinations; at most 10,000 are allowed."]
    }


def test_param_grid_entries_must_be_objects():
    assert problems_of(None, [{}, 3]) == {"param_grid": {"1": ["Must be a JSON object."]}}
    assert problems_of(None, []) == {
        "param_grid": ["Must be a non-empty list of override objects."]
    }


def test_overrides_merge_into_documents_key_by_key():
    base = {"symbol": "SPY", "signal_plugin_params": {"fast": 10, "slow": 50}}
    merged = apply_overrides(base, {"signal_plugin_params": {"fast": 20}, "stop_loss": 0.1})
    assert merged == {
        "symbol": "SPY",
        "signal_plugin_params": {"fast": 20, "slow": 50},
        "stop_loss": 0.1,
    }
    assert base["signal_plugin_params"] == {"fast": 10, "slow": 50}


def test_evaluation_frequency_and_signal_delay_are_grid_paths_of_allocations():
    grid = {"evaluation_frequency": ["daily", "monthly"], "signal_delay": [0, 1, 2]}
    entries = expand(grid, None, config_keys=accepted_keys("allocation"))
    assert entries == [
        {"evaluation_frequency": frequency, "signal_delay": delay}
        for frequency, delay in itertools.product(["daily", "monthly"], [0, 1, 2])
    ]
    with pytest.raises(GridProblems) as raised:
        expand({"evaluation_frequency": ["monthly"]}, None, config_keys=KEYS)
    assert list(raised.value.errors["grid"]) == ["evaluation_frequency"]

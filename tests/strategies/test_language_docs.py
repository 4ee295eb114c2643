"""docs/STRATEGY_LANGUAGE.md stays true: its table lists every signal type and each of its
examples is a valid definition that runs."""

import json
import re
from pathlib import Path

import pytest

from backtests.pipeline import run_backtest
from backtests.run_config import parse_run_config
from strategies.language import known_signal_types, validate_definition

DOC = Path(__file__).resolve().parents[2] / "docs" / "STRATEGY_LANGUAGE.md"
TEXT = DOC.read_text()
EXAMPLES = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", TEXT, re.DOTALL)]


def kind_of(definition: dict) -> str:
    return "allocation" if "allocations" in definition else "signal"


def test_the_table_lists_every_signal_type():
    first_column = [line.split("|")[1] for line in TEXT.splitlines() if line.startswith("| `")]
    listed = {name for cell in first_column for name in re.findall(r"`(\w+)`", cell)}
    assert set(known_signal_types()) <= listed


def test_there_are_examples_of_both_kinds():
    assert {kind_of(example) for example in EXAMPLES} == {"signal", "allocation"}


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: kind_of(e))
def test_each_example_is_valid_and_runs(example):
    kind = kind_of(example)
    assert validate_definition(kind, example) == []
    config = {"start_date": "2018-01-01", "end_date": "2021-12-31"}
    if kind == "signal":
        config["symbol"] = "SPY"
    spec, problems = parse_run_config(
        config,
        strategy_kind=kind,
        strategy_definition=example,
        strategy_timeframe=None,
        engine="backtrader",
        initial_capital=100_000.0,
        commission=0.0005,
        slippage=0.0005,
    )
    assert problems == []
    result = run_backtest(spec)
    assert len(result.trades) > 0

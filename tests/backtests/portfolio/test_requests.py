"""Request validation of the portfolio-backtest contract: every problem, in the contract's words."""

import datetime as dt

import pytest

from backtests.portfolio.examples import USAGE, examples, examples_response
from backtests.portfolio.requests import (
    InvalidPortfolioRequest,
    data_problems,
    dates_in_payload,
    parse_portfolio_request,
    symbols_in_payload,
)
from marketdata.store import get_store


def request(**config_overrides):
    config = {"start_date": "2020-01-01", "end_date": "2021-12-31", **config_overrides}
    return {
        "strategy": {
            "allocations": {"growth": {"SPY": 0.6, "QQQ": 0.3, "CASH": 0.1}},
            "fallback_allocation": "growth",
            "switching_logic": [],
        },
        "config": config,
    }


def problems_of(payload) -> list[str]:
    with pytest.raises(InvalidPortfolioRequest) as caught:
        parse_portfolio_request(payload)
    return caught.value.messages


def test_defaults_are_filled_in():
    parsed = parse_portfolio_request(request())
    assert parsed.start_date == dt.date(2020, 1, 1)
    assert parsed.end_date == dt.date(2021, 12, 31)
    assert parsed.initial_capital == 10_000.0
    assert parsed.rebalance_frequency == "monthly"
    assert parsed.base_commission == 0.0035
    assert parsed.engine == "vectorbt"
    assert parsed.benchmark == "SPY"
    assert parsed.price_adjustment == "total_return"
    assert parsed.risk.enabled is False
    assert parsed.risk.max_position_size == 0.25
    assert parsed.risk.min_position_size == 0.05
    assert not parsed.risk.active
    assert parsed.symbols == ["SPY", "QQQ", "CASH"]
    assert parsed.traded_symbols == ["SPY", "QQQ", "CASH"]
    assert parsed.warmup_bars == 0


def test_the_parsed_strategy_is_a_private_copy():
    payload = request()
    parsed = parse_portfolio_request(payload)
    payload["strategy"]["allocations"]["growth"]["SPY"] = 0.9
    assert parsed.strategy["allocations"]["growth"]["SPY"] == 0.6


def test_weights_not_summing_to_one_use_the_contract_wording():
    payload = request()
    payload["strategy"]["allocations"]["growth"] = {"SPY": 0.75, "QQQ": 0.3}
    assert problems_of(payload) == ["Allocation 'growth' weights sum to 1.05, not 1.0"]


def test_weights_within_the_tolerance_are_accepted():
    payload = request()
    payload["strategy"]["allocations"]["growth"] = {"SPY": 0.6005, "QQQ": 0.4}
    assert parse_portfolio_request(payload).strategy["allocations"]["growth"]["SPY"] == 0.6005


def test_weight_outside_zero_one():
    payload = request()
    payload["strategy"]["allocations"]["growth"] = {"SPY": 1.5, "QQQ": -0.5}
    assert problems_of(payload) == [
        "Allocation 'growth' weight for SPY is 1.5, outside [0, 1]",
        "Allocation 'growth' weight for QQQ is -0.5, outside [0, 1]",
    ]


def test_missing_strategy_fields_are_all_named():
    payload = request()
    payload["strategy"] = {}
    assert problems_of(payload) == [
        "Missing required field: allocations",
        "Missing required field: fallback_allocation",
        "Missing required field: switching_logic",
    ]


def test_missing_top_level_fields():
    assert problems_of({}) == [
        "Missing required field: strategy",
        "Missing required field: config",
    ]


def test_unknown_fallback_and_target_groups():
    payload = request()
    payload["strategy"]["fallback_allocation"] = "bonds"
    payload["strategy"]["switching_logic"] = [
        {
            "condition": {
                "left": {"type": "Close", "symbol": "SPY"},
                "comparison": ">",
                "right": {"type": "SMA", "symbol": "SPY", "window": 50},
            },
            "target_allocation": "aggressive",
        }
    ]
    assert problems_of(payload) == [
        "Unknown fallback allocation 'bonds' (allocation groups: growth)",
        "Unknown target allocation 'aggressive' in switching_logic[0] (allocation groups: growth)",
    ]


def test_unknown_signal_type_and_bad_params():
    payload = request()
    payload["strategy"]["switching_logic"] = [
        {
            "condition": {
                "left": {"type": "Magic", "symbol": "SPY"},
                "comparison": ">",
                "right": {"type": "SMA", "symbol": "SPY", "window": -3},
            },
            "target_allocation": "growth",
        }
    ]
    messages = problems_of(payload)
    assert len(messages) == 2
    assert messages[0].startswith(
        "strategy.switching_logic[0].condition.left.type: unknown signal type 'Magic' (known: "
    )
    assert messages[1].startswith("strategy.switching_logic[0].condition.right.window: ")


def test_bad_leverage_format():
    payload = request()
    payload["strategy"]["allocations"]["growth"] = {"SPY?L=abc": 0.5, "QQQ?X=2": 0.5}
    assert problems_of(payload) == [
        "Allocation 'growth': Invalid leverage format in 'SPY?L=abc': "
        "L must be a number, got 'abc'",
        "Allocation 'growth': Invalid leverage format in 'QQQ?X=2': unknown key 'X' "
        "(allowed: L, E, SP)",
    ]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"start_date": "2020/01/01"},
            "Invalid date format for start_date: '2020/01/01' (must be YYYY-MM-DD)",
        ),
        (
            {"end_date": "2021-02-30"},
            "Invalid date for end_date: '2021-02-30' is not a calendar date",
        ),
        (
            {"start_date": 20200101},
            "Invalid date format for start_date: number (must be YYYY-MM-DD)",
        ),
        (
            {"start_date": "2022-01-01"},
            "start_date must be before end_date (got 2022-01-01 and 2021-12-31)",
        ),
        (
            {"rebalance_frequency": "hourly"},
            "Invalid rebalance frequency 'hourly' (must be one of: daily, weekly, monthly, "
            "quarterly, yearly)",
        ),
        ({"initial_capital": 0}, "initial_capital must be greater than 0, got 0"),
        ({"initial_capital": "10000"}, "initial_capital must be a number, not string"),
        ({"base_commission": 0.2}, "base_commission must be between 0 and 0.1, got 0.2"),
        (
            {"enable_risk_management": "yes"},
            "enable_risk_management must be true or false, not string",
        ),
        ({"stop_loss": 1.2}, "stop_loss must be a fraction between 0 and 1 (exclusive), got 1.2"),
        ({"target_volatility": -0.1}, "target_volatility must be greater than 0, got -0.1"),
        ({"engine": "zipline"}, "Invalid engine 'zipline' (must be one of: vectorbt, backtrader)"),
        (
            {"min_position_size": 0.5, "max_position_size": 0.3},
            "min_position_size (0.5) must not exceed max_position_size (0.3)",
        ),
        ({"benchmark": "CASH"}, "Invalid benchmark: CASH has no returns to compare against"),
        ({"stop_los": 0.1}, "Unknown config field: stop_los"),
        (
            {"rebalancing_frequency": "monthly"},
            "Unknown config field: rebalancing_frequency (renamed to rebalance_frequency in v2.0)",
        ),
    ],
)
def test_config_problems(config, message):
    assert problems_of(request(**config)) == [message]


def test_missing_dates():
    payload = request()
    payload["config"] = {}
    assert problems_of(payload) == [
        "Missing required field: start_date",
        "Missing required field: end_date",
    ]


def test_wrong_types_of_the_wrappers():
    assert problems_of({"strategy": [], "config": "x"}) == [
        "Invalid strategy format",
        "strategy must be an object, not array",
        "config must be an object, not string",
    ]
    assert problems_of([1, 2]) == ["Invalid request: the body must be a JSON object, not array"]


def test_every_problem_is_reported_at_once():
    payload = request(rebalance_frequency="sometimes", start_date="2020-13-01")
    payload["strategy"]["allocations"]["growth"]["SPY"] = 0.65
    del payload["strategy"]["switching_logic"]
    payload["extra"] = 1
    assert problems_of(payload) == [
        "Unknown field: extra (known: strategy, config, name, description)",
        "Missing required field: switching_logic",
        "Allocation 'growth' weights sum to 1.05, not 1.0",
        "Invalid date for start_date: '2020-13-01' is not a calendar date",
        "Invalid rebalance frequency 'sometimes' (must be one of: daily, weekly, monthly, "
        "quarterly, yearly)",
    ]


def test_name_and_description_of_the_examples_are_accepted():
    for example in examples().values():
        parsed = parse_portfolio_request(example)
        assert parsed.name == example["name"]


def test_examples_are_the_contracts_exactly():
    body = examples_response()
    assert (
        body["usage"]
        == USAGE
        == ("Copy any example and POST to /api/v1/backtest to run a backtest")
    )
    assert list(body["examples"]) == [
        "buy_and_hold_spy",
        "leveraged_growth",
        "conservative_portfolio",
        "defensive_strategy",
        "dual_momentum_month_end",
    ]
    assert body["examples"]["leveraged_growth"] == {
        "name": "Leveraged Growth Strategy",
        "description": "Using leveraged ETFs for growth",
        "strategy": {
            "allocations": {"growth": {"QQQ?L=3": 0.5, "SPY?L=2": 0.5}},
            "fallback_allocation": "growth",
            "switching_logic": [],
        },
        "config": {
            "start_date": "2020-01-01",
            "end_date": "2023-12-31",
            "initial_capital": 10000,
            "rebalance_frequency": "monthly",
        },
    }
    assert body["examples"]["defensive_strategy"]["strategy"]["allocations"] == {
        "defensive": {"BND": 0.7, "CASH": 0.3}
    }
    assert body["examples"]["conservative_portfolio"]["config"]["rebalance_frequency"] == (
        "quarterly"
    )


def test_warmup_covers_signals_and_volatility_targeting():
    payload = request(target_volatility=0.1)
    payload["strategy"]["switching_logic"] = [
        {
            "condition": {
                "left": {"type": "Close", "symbol": "IEF"},
                "comparison": ">",
                "right": {"type": "SMA", "symbol": "IEF", "window": 200},
            },
            "target_allocation": "growth",
        }
    ]
    parsed = parse_portfolio_request(payload)
    assert parsed.symbols == ["SPY", "QQQ", "CASH", "IEF"]
    assert parsed.warmup_bars == 200
    payload["strategy"]["switching_logic"] = []
    assert parse_portfolio_request(payload).warmup_bars == 64


def test_data_problems_name_every_missing_symbol_and_its_coverage():
    messages = data_problems(
        get_store(), ["SPY", "XYZ", "BND", "CASH"], dt.date(2005, 1, 1), dt.date(2006, 1, 1)
    )
    assert len(messages) == 2
    assert messages[0].startswith(
        "Symbol XYZ data not available for requested date range (no data for XYZ; "
    )
    assert messages[1] == (
        "Symbol BND data not available for requested date range 2005-01-01 to 2006-01-01 "
        "(BND has data from 2007-04-10 to 2024-12-06)"
    )


def test_symbols_and_dates_of_an_invalid_payload():
    payload = request()
    payload["strategy"]["allocations"]["growth"] = {"SPY": 0.7, "XYZ": 0.7, "BAD?L=x": 0.1}
    assert symbols_in_payload(payload) == ["SPY", "XYZ"]
    assert dates_in_payload(payload) == (dt.date(2020, 1, 1), dt.date(2021, 12, 31))
    assert dates_in_payload(request(start_date="2023-01-01")) is None


def test_evaluation_frequency_and_signal_delay_are_parsed():
    parsed = parse_portfolio_request(request(evaluation_frequency="monthly", signal_delay=2))
    assert (parsed.evaluation_frequency, parsed.signal_delay) == ("monthly", 2)
    assert parsed.canonical_config()["evaluation_frequency"] == "monthly"
    assert parsed.canonical_config()["signal_delay"] == 2
    plain = parse_portfolio_request(request(evaluation_frequency=None, signal_delay=None))
    assert (plain.evaluation_frequency, plain.signal_delay) == ("daily", 0)
    # A v2.0 request keeps its canonical config (and so its fingerprint).
    assert "evaluation_frequency" not in plain.canonical_config()
    assert "signal_delay" not in plain.canonical_config()


def test_bad_evaluation_frequency_and_delay_are_each_named():
    assert problems_of(request(evaluation_frequency="yearly", signal_delay=3)) == [
        "Invalid evaluation frequency 'yearly' (must be one of: daily, weekly, monthly, quarterly)",
        "signal_delay must be an integer from 0 to 2, got 3",
    ]
    assert problems_of(request(signal_delay=1.5)) == ["signal_delay must be an integer, not number"]
    assert problems_of(request(signal_delay=True)) == [
        "signal_delay must be an integer, not boolean"
    ]
    assert problems_of(request(signal_delay=-1)) == [
        "signal_delay must be an integer from 0 to 2, got -1"
    ]

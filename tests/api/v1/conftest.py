import pytest
from rest_framework.test import APIClient

from tests.factories import StrategyFactory

SHORT_CONFIG = {"symbol": "SPY", "start_date": "2019-01-01", "end_date": "2020-12-31"}


@pytest.fixture
def client() -> APIClient:
    return APIClient()


@pytest.fixture
def strategy(db):
    return StrategyFactory(name="Buy and hold SPY")


@pytest.fixture
def create_body(strategy):
    return {
        "strategy_id": str(strategy.id),
        "engine": "backtrader",
        "initial_capital": 100_000,
        "commission": 0.001,
        "slippage": 0.0005,
        "config": dict(SHORT_CONFIG),
    }

import factory

from backtests.models import Backtest
from metrics.presenters import core_from_v1
from strategies.models import Strategy


def stored_v1_metrics(flat: dict) -> dict:
    """A row's metric fields holding the v1 flat map ``flat`` (as a v1 PATCH stores it): the
    core metrics its contract keys name, and its other names apart."""
    core, extra = core_from_v1(flat)
    return {"metrics": core, "extra_metrics": extra}


class StrategyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Strategy

    name = factory.Sequence(lambda n: f"Strategy {n}")
    kind = Strategy.Kind.SIGNAL
    universe = factory.LazyFunction(lambda: ["SPY"])
    definition = None


class BacktestFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Backtest

    strategy = factory.SubFactory(StrategyFactory)
    engine = "vectorbt"
    initial_capital = 100_000.0
    commission = 0.001
    slippage = 0.0005
    config = factory.LazyFunction(
        lambda: {"symbol": "SPY", "start_date": "2019-01-01", "end_date": "2020-12-31"}
    )

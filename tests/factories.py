import factory

from backtests.models import Backtest
from strategies.models import Strategy


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

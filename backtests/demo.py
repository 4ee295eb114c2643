"""Demo content for the embedded default's first start: something to look at and build on.

Everything is written through the services, exactly as an analyst's requests would be: the
built-in strategies, the Backfolio examples as allocation strategies, and completed runs of
each kind (a v1 signal run, an allocation run, a Backfolio portfolio run and a small sweep), all
owned by one demo user who cannot log in.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction

from backtests import services
from backtests.models import Backtest, Task
from backtests.portfolio.examples import examples
from backtests.portfolio.services import portfolio_backtest_run
from strategies import services as strategy_services
from strategies.language import PLUGINS, build_plugin
from strategies.models import Strategy

DEMO_USERNAME = "demo"
STAFF_USERNAME = "admin"
SIGNAL_SYMBOL = "SPY"
SIGNAL_PERIOD = ("2015-01-02", "2020-12-31")
SWEEP_GRID = [
    {"signal_plugin_params": {"fast": fast, "slow": slow}}
    for fast in (10, 20)
    for slow in (50, 100)
]
STAFF_PASSWORD_BYTES = 12
# A worker that never comes (a Redis broker with no worker running) does not hold the start up.
SWEEP_TIMEOUT_SECONDS = 300


@dataclass(frozen=True)
class FirstStart:
    staff_password: str | None  # shown once, when the staff user is created
    demo_loaded: bool
    reason: str  # why the demo content was or was not loaded


def is_embedded_database() -> bool:
    return connection.vendor == "sqlite"


def is_empty() -> bool:
    """Nothing an analyst made: no strategy and no run."""
    return not Strategy.objects.exists() and not Backtest.objects.exists()


def first_start(*, log: Callable[[str], None] = lambda line: None) -> FirstStart:
    """What the first start does, idempotent: the staff user when there is no user at all (never
    under production settings), then the demo content when the database is SQLite and empty and
    ``BACKFOLIO_DEMO`` allows it. A second call changes nothing."""
    password = None
    if settings.BACKFOLIO_FIRST_START_STAFF_USER and is_embedded_database():
        password = _create_staff_user()
    if not settings.BACKFOLIO_DEMO:
        return FirstStart(password, False, "BACKFOLIO_DEMO is off.")
    if not is_embedded_database():
        return FirstStart(password, False, "The database is not the embedded SQLite.")
    if not is_empty():
        return FirstStart(password, False, "The database already holds strategies or runs.")
    load_demo(log=log)
    return FirstStart(password, True, "Demo content loaded.")


def _create_staff_user() -> str | None:
    user_model = get_user_model()
    with transaction.atomic():
        if user_model.objects.exists():
            return None
        password = secrets.token_urlsafe(STAFF_PASSWORD_BYTES)
        user_model.objects.create_superuser(username=STAFF_USERNAME, email="", password=password)
    return password


def load_demo(*, log: Callable[[str], None] = lambda line: None) -> None:
    owner, _created = get_user_model().objects.get_or_create(username=DEMO_USERNAME)
    if owner.has_usable_password():
        owner.set_unusable_password()
        owner.save(update_fields=["password"])

    built_in = {}
    for name, plugin in PLUGINS.items():
        built_in[name] = strategy_services.strategy_create(
            owner=owner,
            name=f"{name.replace('_', ' ').capitalize()} (built-in)",
            description=plugin.description,
            kind=Strategy.Kind.SIGNAL,
            universe=[SIGNAL_SYMBOL],
            definition=build_plugin(name),
        )
    log(f"{len(built_in)} built-in strategies")

    allocation = {}
    for key, example in examples().items():
        definition = example["strategy"]
        symbols = [symbol for group in definition["allocations"].values() for symbol in group]
        allocation[key] = strategy_services.strategy_create(
            owner=owner,
            name=example["name"],
            description=example["description"],
            kind=Strategy.Kind.ALLOCATION,
            universe=list(dict.fromkeys(symbols)),
            definition=definition,
        )
    log(f"{len(allocation)} Backfolio examples as allocation strategies")

    crossover = built_in["sma_crossover"]
    start, end = SIGNAL_PERIOD
    _run(crossover, {"symbol": SIGNAL_SYMBOL, "start_date": start, "end_date": end}, owner)
    log("a signal run: SMA crossover on SPY")

    balanced = examples()["conservative_portfolio"]
    _run(
        allocation["conservative_portfolio"],
        {
            "start_date": balanced["config"]["start_date"],
            "end_date": balanced["config"]["end_date"],
            "rebalance_frequency": balanced["config"]["rebalance_frequency"],
        },
        owner,
        initial_capital=float(balanced["config"]["initial_capital"]),
    )
    log("an allocation run: the 60/40 portfolio")

    portfolio_backtest_run(payload=examples()["leveraged_growth"], user=owner)
    log("a Backfolio portfolio run: leveraged growth")

    _sweep(
        crossover,
        owner,
        base_config={
            "symbol": SIGNAL_SYMBOL,
            "start_date": start,
            "end_date": end,
            "signal_plugin_key": "sma_crossover",
        },
    )
    log(f"a sweep of {len(SWEEP_GRID)} runs over the SMA crossover's windows")


def _sweep(strategy, owner, *, base_config) -> None:
    """A sweep through the service, run to the end before the server starts: with the embedded
    in-process broker the messages cannot leave this process, so it runs its own worker."""
    import dramatiq
    from dramatiq.brokers.stub import StubBroker

    broker = dramatiq.get_broker()
    worker = None
    if isinstance(broker, StubBroker):
        worker = dramatiq.Worker(broker, worker_threads=2)
        worker.start()
    try:
        task = services.sweep_create(
            strategy=strategy,
            engine="vectorbt",
            base_config=base_config,
            param_grid=SWEEP_GRID,
            rank_metric="perf_sharpe_ratio",
            commission=0.001,
            owner=owner,
        )
        deadline = time.monotonic() + SWEEP_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            task.refresh_from_db()
            if task.status in (Task.Status.SUCCESS, Task.Status.FAILURE):
                return
            time.sleep(0.05)
    finally:
        if worker is not None:
            worker.stop()


def _run(strategy, config, owner, *, initial_capital: float = 100_000.0) -> Backtest:
    backtest = services.backtest_create(
        strategy=strategy,
        engine="vectorbt",
        config=config,
        initial_capital=initial_capital,
        commission=0.001,
        slippage=0.0005,
        owner=owner,
        source=Backtest.Source.UI,
    )
    return services.backtest_execute(backtest=backtest)

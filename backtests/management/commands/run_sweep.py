"""``manage.py run_sweep``: a sweep of any size through the same service as the API.

The API caps a sweep at ``MAX_SWEEP_ENTRIES``; this command does not (``max_entries=None``). It
creates the sweep with ``services.sweep_create`` and waits for its task. With the embedded
in-process broker the messages cannot leave this process, so the command runs its own worker
threads against the same database; with Redis the service's ``rundramatiq`` workers run it.
The last line of output is a JSON summary (the benchmarks read it).
"""

import json
import os
import time
from pathlib import Path

import dramatiq
from django.core.management.base import BaseCommand, CommandError

from backfolio.common.errors import InvalidInput
from backtests import services
from backtests.engines.registry import DEFAULT_ENGINE
from backtests.models import Task
from strategies.models import Strategy


def _read_json(value: str, what: str):
    """A JSON document given inline or as a path to a file."""
    text = value
    if not value.lstrip().startswith(("{", "[")):
        try:
            text = Path(value).read_text()
        except OSError as error:
            raise CommandError(f"Cannot read {what} from {value}: {error}") from error
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise CommandError(f"{what} is not valid JSON: {error}") from error


class Command(BaseCommand):
    help = "Run a parameter sweep of any size and print its leaderboard summary as JSON."

    def add_arguments(self, parser):
        parser.add_argument("--strategy", required=True, help="Strategy id.")
        parser.add_argument("--engine", default=DEFAULT_ENGINE)
        parser.add_argument("--grid", required=True, help="param_grid: JSON file or inline.")
        parser.add_argument("--base-config", required=True, help="base_config: JSON or file.")
        parser.add_argument("--rank-metric", default="perf_sharpe_ratio")
        parser.add_argument("--initial-capital", type=float, default=100_000.0)
        parser.add_argument("--commission", type=float, default=0.0)
        parser.add_argument("--slippage", type=float, default=0.0)
        parser.add_argument("--worker-threads", type=int, default=2)
        parser.add_argument("--timeout", type=float, default=3600.0, help="Seconds to wait.")

    def handle(self, *args, **options):
        from dramatiq.brokers.stub import StubBroker

        from backfolio.workers import WARM_CALLBACKS_ENV, warm_engines

        strategy = Strategy.objects.filter(pk=options["strategy"]).first()
        if strategy is None:
            raise CommandError(f"No strategy {options['strategy']}.")
        grid = _read_json(options["grid"], "--grid")
        base_config = _read_json(options["base_config"], "--base-config")
        worker = None
        broker = dramatiq.get_broker()
        if isinstance(broker, StubBroker):
            # A worker boot would compile the numba callback path in the background (seconds
            # of CPU taken from the sweep); a sweep that needs it compiles it when it does.
            os.environ.setdefault(WARM_CALLBACKS_ENV, "skip")
            warm_engines(signal_callbacks="skip")
            worker = dramatiq.Worker(broker, worker_threads=options["worker_threads"])
            worker.start()
        try:
            started = time.perf_counter()
            try:
                task = services.sweep_create(
                    strategy=strategy,
                    engine=options["engine"],
                    base_config=base_config,
                    param_grid=grid,
                    rank_metric=options["rank_metric"],
                    initial_capital=options["initial_capital"],
                    commission=options["commission"],
                    slippage=options["slippage"],
                    max_entries=None,
                )
            except InvalidInput as error:
                raise CommandError(json.dumps(error.errors)) from error
            task = self._wait(task.pk, options["timeout"])
            elapsed = time.perf_counter() - started
        finally:
            if worker is not None:
                worker.stop()
        result = task.result or {}
        summary = {
            "task_id": str(task.pk),
            "sweep_id": str(task.sweep_id),
            "status": task.status,
            "done": task.done,
            "total": task.total,
            "completed": result.get("completed"),
            "failed": result.get("failed"),
            "best": (result.get("leaderboard") or [None])[0],
            "seconds": round(elapsed, 3),
        }
        self.stdout.write(json.dumps(summary))
        if task.status != Task.Status.SUCCESS:
            raise CommandError(f"The sweep ended {task.status}: {task.error}")

    @staticmethod
    def _wait(task_id, timeout: float) -> Task:
        deadline = time.monotonic() + timeout
        while True:
            task = Task.objects.get(pk=task_id)
            if task.status in (Task.Status.SUCCESS, Task.Status.FAILURE):
                return task
            if time.monotonic() > deadline:
                raise CommandError(f"The sweep did not finish in {timeout:.0f} s.")
            time.sleep(0.02)

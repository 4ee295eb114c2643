"""Writes of backtests, runs and sweeps. Every contract's API calls these.

Inputs are validated here (by the pure pipeline) before anything is written, so a bad request
creates nothing. Errors are domain errors — ``InvalidInput`` (field-keyed problems), ``Conflict``
— and each contract's exception handler turns them into its own shape.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.utils import timezone

from backfolio.common.errors import Conflict, InvalidInput
from backfolio.limits import MAX_SWEEP_ENTRIES
from backtests import artifacts
from backtests.engines.registry import DEFAULT_ENGINE as DEFAULT_ENGINE  # a v1 create default
from backtests.jobs import runner, sweeps
from backtests.models import Backtest, Sweep, Task
from backtests.run_config import RunSpec, parse_run_config, validate_run_settings
from metrics.presenters import V1_METRIC_HIGHER_IS_BETTER, core_from_v1
from strategies.models import Strategy

# The v1 contract's origin service's defaults (SPEC §2).
DEFAULT_INITIAL_CAPITAL = 100_000.0
DEFAULT_COMMISSION = 0.0005
DEFAULT_SLIPPAGE = 0.0005
RANK_METRICS = tuple(sorted(V1_METRIC_HIGHER_IS_BETTER))
PATCHABLE_FIELDS = ("status", "metrics", "trades_uri", "equity_curve_uri")
ARTIFACT_URI_FIELDS = ("trades_uri", "equity_curve_uri")
# A v1 correction writes a flat map of names to numbers (or null), as the contract shows them.
# Runs have about thirty; the bounds keep a hand-written correction from bloating every list.
MAX_METRICS = 200
MAX_METRIC_NAME_LENGTH = 100
# A failed run stores its reason as ``metrics.error``, the one metric that is text.
ERROR_METRIC = "error"
MAX_ERROR_METRIC_LENGTH = 10_000


def _problems_by_path(problems) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for problem in problems:
        errors.setdefault(problem.path or "non_field_errors", []).append(problem.message)
    return errors


def backtest_validate(
    *,
    strategy: Strategy,
    engine: str,
    config: Any,
    initial_capital: float = DEFAULT_INITIAL_CAPITAL,
    commission: float = 0.0,
    slippage: float = 0.0,
    strategy_snapshot: Mapping[str, Any] | None = None,
) -> RunSpec:
    """The run a backtest with these inputs would execute, or ``InvalidInput`` with every
    problem: settings keyed by field, config problems under ``config`` keyed by config path.
    The strategy is ``strategy_snapshot`` when given (``Strategy.run_snapshot``), else as it is."""
    snapshot = strategy_snapshot or strategy.run_snapshot()
    errors: dict[str, Any] = _problems_by_path(
        validate_run_settings(
            engine=engine,
            initial_capital=initial_capital,
            commission=commission,
            slippage=slippage,
        )
    )
    spec, problems = parse_run_config(
        config,
        strategy_kind=snapshot["kind"],
        strategy_definition=snapshot["definition"],
        strategy_timeframe=snapshot["timeframe"],
        engine=engine,
        initial_capital=initial_capital,
        commission=commission,
        slippage=slippage,
    )
    if problems:
        errors["config"] = _problems_by_path(problems)
    if errors:
        raise InvalidInput(errors)
    return spec


def backtest_create(
    *,
    strategy: Strategy,
    engine: str,
    config: Mapping[str, Any],
    initial_capital: float = DEFAULT_INITIAL_CAPITAL,
    commission: float = 0.0,
    slippage: float = 0.0,
    owner=None,
    source: str = Backtest.Source.V1,
    user_ref: str = "",
    strategy_snapshot: Mapping[str, Any] | None = None,
    benchmark: str = "",
) -> Backtest:
    """Validate and create a ``pending`` backtest; raises ``InvalidInput`` naming every field.

    It runs ``strategy`` as it is now, or ``strategy_snapshot`` when given (a twin of an earlier
    run executes what that run executed). ``benchmark`` is the symbol its pages compare it with
    (empty: its own symbol); it must be a symbol the service has prices for."""
    errors: dict[str, Any] = {}
    try:
        backtest_validate(
            strategy=strategy,
            engine=engine,
            config=config,
            initial_capital=initial_capital,
            commission=commission,
            slippage=slippage,
            strategy_snapshot=strategy_snapshot,
        )
    except InvalidInput as invalid:
        errors.update(invalid.errors)
    if benchmark and (problem := _benchmark_problem(benchmark)):
        errors["benchmark"] = [problem]
    if errors:
        raise InvalidInput(errors)
    return Backtest.objects.create(
        strategy=strategy,
        strategy_snapshot=dict(strategy_snapshot) if strategy_snapshot else None,
        engine=engine,
        config=dict(config),
        initial_capital=float(initial_capital),
        commission=float(commission),
        slippage=float(slippage),
        owner=owner,
        source=source,
        user_ref=user_ref,
        benchmark=benchmark,
    )


def _benchmark_problem(symbol: str) -> str | None:
    from marketdata.selectors import symbol_list

    if symbol in {coverage.symbol for coverage in symbol_list()}:
        return None
    return f"Unknown symbol {symbol!r}: choose one the service has prices for."


def backtest_update(*, backtest: Backtest, data: Mapping[str, Any]) -> Backtest:
    """Administrative corrections (v1 PATCH): ``status``, ``metrics`` and the artifact URIs."""
    changed = [field for field in PATCHABLE_FIELDS if field in data]
    errors: dict[str, list[str]] = {}
    if "status" in data and data["status"] not in Backtest.Status.values:
        errors["status"] = [f"Must be one of: {', '.join(Backtest.Status.values)}."]
    if "metrics" in data and (problems := metrics_problems(data["metrics"])):
        errors["metrics"] = problems
    for field in ARTIFACT_URI_FIELDS:
        uri = data.get(field)
        if uri is not None and not artifacts.is_own_artifact(backtest.pk, uri):
            errors[field] = [
                "Must name an artifact of this backtest: a file under "
                f"{artifacts.storage_area(backtest.pk)}/."
            ]
    if errors:
        raise InvalidInput(errors)
    for field in changed:
        if field == "metrics":
            # The v1 map as the row keeps it: the core's metrics, and the caller's other names.
            backtest.metrics, backtest.extra_metrics = core_from_v1(data["metrics"])
        else:
            setattr(backtest, field, data[field])
    if "metrics" in changed:
        changed.append("extra_metrics")
    if changed:
        backtest.save(update_fields=[*changed, "updated_at"])
    return backtest


def metrics_problems(metrics: Any) -> list[str] | dict[str, list[str]]:
    """What is wrong with a metrics map to store (empty when nothing): a list of messages about
    the whole map, or messages keyed by the metric they concern."""
    if not isinstance(metrics, Mapping):
        return ["Must be a JSON object."]
    if len(metrics) > MAX_METRICS:
        return [f"At most {MAX_METRICS} metrics (got {len(metrics)})."]
    longest = max((len(name) for name in metrics), default=0)
    if longest > MAX_METRIC_NAME_LENGTH:
        return [
            f"Metric names are at most {MAX_METRIC_NAME_LENGTH} characters (got one of {longest})."
        ]
    problems: dict[str, list[str]] = {}
    for name, value in metrics.items():
        if name == ERROR_METRIC and isinstance(value, str):
            if len(value) > MAX_ERROR_METRIC_LENGTH:
                problems[name] = [f"At most {MAX_ERROR_METRIC_LENGTH} characters."]
        elif value is not None and not _is_finite_number(value):
            problems[name] = ["Must be a finite number or null."]
    return problems


def _is_finite_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        # Beyond 64 bits a database's JSON functions cannot hold it either.
        return -(2**63) <= value < 2**63
    return isinstance(value, float) and math.isfinite(value)


def backtest_delete(*, backtest: Backtest) -> None:
    """Delete the row; its artifacts stay in storage (the v1 contract says so)."""
    backtest.delete()


def backtest_execute(*, backtest: Backtest) -> Backtest:
    """Run ``backtest`` now, in this thread; returns it completed or failed (never raises for a
    failed run). Raises ``Conflict`` when it is already running."""
    run_number = runner.claim_run(backtest)
    if run_number is None:
        raise Conflict(f"Backtest {backtest.pk} is already running.")
    return runner.execute_run(backtest, run_number)


def backtest_execute_async(*, backtest: Backtest, owner=None) -> Task:
    """Queue a run of ``backtest`` on the workers and return its task (status ``PENDING``).

    The row goes back to ``pending`` at once; the message is sent when the transaction commits.
    Raises ``Conflict`` when the backtest is running or a run of it is already queued. A freshly
    created backtest is ``pending`` too, but nothing is queued for it: it may be executed.
    """
    from backtests.tasks import execute_backtest

    with transaction.atomic():
        _refuse_a_second_queued_run(backtest)
        now = timezone.now()
        Backtest.objects.filter(pk=backtest.pk).update(
            status=Backtest.Status.PENDING, progress=0, updated_at=now
        )
        backtest.status, backtest.progress, backtest.updated_at = Backtest.Status.PENDING, 0, now
        task = Task.objects.create(kind=Task.Kind.EXECUTE, backtest=backtest, owner=owner, total=1)
        message = (str(backtest.pk), str(task.pk))
        transaction.on_commit(lambda: execute_backtest.send(*message))
    return task


def backtest_rerun(*, backtest: Backtest, owner=None) -> tuple[Backtest, Task]:
    """A new run with exactly the inputs of ``backtest`` (its strategy as it was then, engine,
    configuration, capital and costs), queued on the workers, recorded with source ``ui``.
    Raises ``Conflict`` for a Backfolio portfolio run (it is run again through its own form)."""
    if backtest.strategy_id is None:
        raise Conflict(
            f"Backtest {backtest.pk} is a Backfolio portfolio run: start it again from the "
            "portfolio form."
        )
    with transaction.atomic():
        copy = Backtest.objects.create(
            strategy_id=backtest.strategy_id,
            strategy_snapshot=backtest.strategy_snapshot,
            engine=backtest.engine,
            config=dict(backtest.config),
            initial_capital=backtest.initial_capital,
            commission=backtest.commission,
            slippage=backtest.slippage,
            owner=owner,
            source=Backtest.Source.UI,
            benchmark=backtest.benchmark,
        )
        task = backtest_execute_async(backtest=copy, owner=owner)
    return copy, task


def backtest_retry(*, backtest: Backtest, owner=None) -> Task:
    """Queue a failed run of ``backtest`` again, on the same row. Raises ``Conflict`` unless it
    failed."""
    if backtest.status != Backtest.Status.FAILED:
        raise Conflict(
            f"Backtest {backtest.pk} is {backtest.status}: only a failed run can be retried."
        )
    return backtest_execute_async(backtest=backtest, owner=owner)


def _refuse_a_second_queued_run(backtest: Backtest) -> None:
    """Lock the row until the transaction ends and raise ``Conflict`` when it is running or a
    worker will run it without being asked again: an open execute task, or a sweep that has yet
    to run this entry. Holding the lock while looking makes two concurrent requests queue one
    run between them, not two."""
    current = (
        Backtest.objects.select_for_update()
        .filter(pk=backtest.pk)
        .values_list("status", "sweep_id")
        .first()
    )
    if current is None:
        raise Backtest.DoesNotExist(f"Backtest {backtest.pk} not found.")
    status, sweep_id = current
    if status == Backtest.Status.RUNNING:
        raise Conflict(f"Backtest {backtest.pk} is already running.")
    open_tasks = Task.objects.filter(status__in=runner.ACTIVE_TASK_STATUSES)
    queued = open_tasks.filter(kind=Task.Kind.EXECUTE, backtest_id=backtest.pk).exists() or (
        status == Backtest.Status.PENDING
        and sweep_id is not None
        and open_tasks.filter(kind=Task.Kind.SWEEP, sweep_id=sweep_id).exists()
    )
    if queued:
        raise Conflict(f"Backtest {backtest.pk} already has a run queued.")


def sweep_check_inputs(
    *,
    strategy: Strategy,
    engine: str,
    base_config: Any,
    param_grid: Any,
    rank_metric: Any,
    initial_capital: float = DEFAULT_INITIAL_CAPITAL,
    commission: float = 0.0,
    slippage: float = 0.0,
    max_entries: int | None = MAX_SWEEP_ENTRIES,
) -> dict[str, Any]:
    """Field-keyed problems with a sweep (``max_entries=None``: no size limit); every merged grid
    entry is validated, its problems keyed by the entry's index
    (``{"param_grid": {"3": {"stop_loss": ["…"]}}}``)."""
    errors: dict[str, Any] = _problems_by_path(
        validate_run_settings(
            engine=engine,
            initial_capital=initial_capital,
            commission=commission,
            slippage=slippage,
        )
    )
    if rank_metric not in RANK_METRICS:
        errors["rank_metric"] = [
            f"Unknown rank metric {rank_metric!r}; choose one of: {', '.join(RANK_METRICS)}."
        ]
    if not isinstance(base_config, Mapping):
        errors["base_config"] = ["Must be a JSON object."]
        base_config = {}
    limit = float("inf") if max_entries is None else max_entries
    if not isinstance(param_grid, list) or not 1 <= len(param_grid) <= limit:
        size = len(param_grid) if isinstance(param_grid, list) else "not a list"
        bounds = "at least 1" if max_entries is None else f"1 to {max_entries}"
        errors["param_grid"] = [f"Must be a list of {bounds} override objects (got {size})."]
        return errors
    if errors:
        return errors
    grid_errors: dict[str, Any] = {}
    for index, overrides in enumerate(param_grid):
        if not isinstance(overrides, Mapping):
            grid_errors[str(index)] = {"non_field_errors": ["Must be a JSON object."]}
            continue
        _spec, problems = parse_run_config(
            {**base_config, **overrides},
            strategy_kind=strategy.kind,
            strategy_definition=strategy.definition,
            strategy_timeframe=strategy.timeframe,
            engine=engine,
            initial_capital=initial_capital,
            commission=commission,
            slippage=slippage,
        )
        if problems:
            grid_errors[str(index)] = _problems_by_path(problems)
    if grid_errors:
        errors["param_grid"] = grid_errors
    return errors


def sweep_create(
    *,
    strategy: Strategy,
    engine: str,
    base_config: Mapping[str, Any],
    param_grid: list[Mapping[str, Any]],
    rank_metric: str,
    initial_capital: float = DEFAULT_INITIAL_CAPITAL,
    commission: float = 0.0,
    slippage: float = 0.0,
    owner=None,
    max_entries: int | None = MAX_SWEEP_ENTRIES,
) -> Task:
    """Validate every entry, create the sweep, one ``pending`` child backtest per entry and the
    sweep's task, and queue its messages when the transaction commits: one ``run_sweep_batch``
    when the entries differ only in plugin parameters on vectorbt (they share vectorised engine
    calls), else one ``run_sweep_entry`` per entry. ``max_entries=None`` lifts the API's limit
    (``manage.py run_sweep``)."""
    from backtests.tasks import run_sweep_batch, run_sweep_entry

    errors = sweep_check_inputs(
        strategy=strategy,
        engine=engine,
        base_config=base_config,
        param_grid=param_grid,
        rank_metric=rank_metric,
        initial_capital=initial_capital,
        commission=commission,
        slippage=slippage,
        max_entries=max_entries,
    )
    if errors:
        raise InvalidInput(errors)
    batched = sweeps.sweep_runs_as_batch(engine, strategy.kind, param_grid)
    snapshot = strategy.run_snapshot()  # bulk_create skips Backtest.save
    with transaction.atomic():
        sweep = Sweep.objects.create(
            strategy=strategy,
            engine=engine,
            base_config=dict(base_config),
            param_grid=[dict(entry) for entry in param_grid],
            rank_metric=rank_metric,
            owner=owner,
        )
        children = Backtest.objects.bulk_create(
            [
                Backtest(
                    strategy=strategy,
                    strategy_snapshot=snapshot,
                    engine=engine,
                    config={**base_config, **overrides},
                    initial_capital=float(initial_capital),
                    commission=float(commission),
                    slippage=float(slippage),
                    owner=owner,
                    source=Backtest.Source.SWEEP,
                    sweep=sweep,
                    sweep_index=index,
                )
                for index, overrides in enumerate(param_grid)
            ]
        )
        task = Task.objects.create(
            kind=Task.Kind.SWEEP, sweep=sweep, owner=owner, total=len(children)
        )
        messages = [(str(child.pk), str(task.pk)) for child in children]
        batch_message = (str(sweep.pk), str(task.pk))

        def dispatch() -> None:
            if batched:
                run_sweep_batch.send(*batch_message)
                return
            for message in messages:
                run_sweep_entry.send(*message)

        transaction.on_commit(dispatch)
    return task

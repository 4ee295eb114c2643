"""Writes of research sweeps (SPEC §13.2): create one, and make one of its entries a backtest.

Everything is validated before anything is written, so a bad request creates nothing; errors
are the v1 domain errors (``InvalidInput`` field-keyed, ``Conflict``) and the v1 handler renders
them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from django.db import transaction

from backtests import services as backtest_services
from backtests.models import Backtest, Task
from backtests.pipeline import SIGNAL, RunSpec, parse_run_config, validate_run_settings
from backtests.research import grid as grids
from backtests.research.models import ResearchSweep, ResearchSweepChunk, ResearchSweepEntry
from backtests.services import RANK_METRICS, Conflict, InvalidInput
from marketdata.store import MarketDataError, get_store
from strategies.models import Strategy

DEFAULT_PARTITIONS = 16
MIN_PARTITIONS, MAX_PARTITIONS = 4, 24
MIN_BARS_PER_PARTITION = 10
MAX_SPA_REPS = 10_000
MAX_SEED = 2**32 - 1
MAX_LISTED_SKIPPED = 20
# Entries per chunk message: vectorised chunks share one engine call (bigger is cheaper per
# entry, smaller spreads a sweep over more workers); one-at-a-time engines take a few each.
VECTORISED_CHUNK_SIZE = 120
SINGLE_RUN_CHUNK_SIZE = 8
VECTORISED_ENGINES = ("vectorbt",)


def _problems_by_path(problems) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for problem in problems:
        errors.setdefault(problem.path or "non_field_errors", []).append(problem.message)
    return errors


def chunk_size_for(engine: str, kind: str) -> int:
    if engine in VECTORISED_ENGINES and kind == SIGNAL:
        return VECTORISED_CHUNK_SIZE
    return SINGLE_RUN_CHUNK_SIZE


def _parse(strategy: Strategy, engine: str, config, capital, commission, slippage):
    return parse_run_config(
        config,
        strategy_kind=strategy.kind,
        strategy_definition=strategy.definition,
        strategy_timeframe=strategy.timeframe,
        engine=engine,
        initial_capital=capital,
        commission=commission,
        slippage=slippage,
    )


def _requested_combinations(
    strategy: Strategy, base_config: Mapping[str, Any], grid: Any, param_grid: Any
) -> tuple[str, list[dict] | None, dict[str, Any]]:
    """(field, the combinations as overrides, errors) of the grid or param_grid asked for."""
    if grid is not None and param_grid is not None:
        return "grid", None, {"grid": ["Give grid or param_grid, not both."]}
    if grid is None and param_grid is None:
        return "grid", None, {"grid": ["This field is required (or give param_grid)."]}
    if grid is not None:
        if not isinstance(grid, Mapping) or not grid:
            return "grid", None, {"grid": ["Must be a non-empty object of path → value list."]}
        problems = grids.grid_problems(grid, base_config, strategy.kind)
        if problems:
            return "grid", None, {"grid": problems}
        count = grids.combination_count(grid)
        if count > grids.MAX_COMBINATIONS:
            return "grid", None, {"grid": [_too_many(count)]}
        return "grid", list(grids.combinations(grid, base_config)), {}
    if not isinstance(param_grid, list) or not param_grid:
        return "param_grid", None, {"param_grid": ["Must be a non-empty list of override objects."]}
    if len(param_grid) > grids.MAX_COMBINATIONS:
        return "param_grid", None, {"param_grid": [_too_many(len(param_grid))]}
    return "param_grid", list(param_grid), {}


def _too_many(count: int) -> str:
    return f"{count:,} combinations; at most {grids.MAX_COMBINATIONS:,} are allowed."


def _benchmark_bars(benchmark: str, spec: RunSpec) -> tuple[int | None, list[str]]:
    """How many bars the benchmark has in the run's window, or why it cannot be used."""
    store = get_store()
    problems = store.coverage_problems([benchmark], spec.start, spec.end)
    if problems:
        return None, [str(problem) for problem in problems]
    try:
        prices = store.load(
            [benchmark],
            spec.start,
            spec.end,
            adjustment=spec.price_adjustment,
            timeframe=spec.timeframe,
        )
    except MarketDataError as error:
        return None, [str(error)]
    return len(prices.close), []


def research_sweep_create(
    *,
    strategy: Strategy,
    engine: str,
    base_config: Mapping[str, Any],
    rank_metric: str,
    grid: Mapping[str, Any] | None = None,
    param_grid: list | None = None,
    initial_capital: float = backtest_services.DEFAULT_INITIAL_CAPITAL,
    commission: float = 0.0,
    slippage: float = 0.0,
    benchmark: str | None = None,
    partitions: int = DEFAULT_PARTITIONS,
    spa_reps: int = 1000,
    seed: int = 0,
    owner=None,
) -> ResearchSweep:
    """Validate, expand and store a sweep with its chunks and task, and queue one message per
    chunk when the transaction commits. Invalid combinations are skipped and reported; only when
    none is valid is it ``InvalidInput``."""
    from backtests.research.tasks import run_research_chunk

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
            f"{rank_metric!r} has no direction to rank by; choose one of: "
            f"{', '.join(RANK_METRICS)}."
        ]
    if partitions % 2 or not MIN_PARTITIONS <= partitions <= MAX_PARTITIONS:
        errors["partitions"] = [
            f"Must be an even number from {MIN_PARTITIONS} to {MAX_PARTITIONS} (got {partitions})."
        ]
    field, combos, grid_errors = _requested_combinations(strategy, base_config, grid, param_grid)
    errors.update(grid_errors)
    if errors:
        raise InvalidInput(errors)

    plan: list[list] = []
    skipped: list[dict[str, Any]] = []
    n_skipped = 0
    first_spec: RunSpec | None = None
    for index, overrides in enumerate(combos):
        if not isinstance(overrides, Mapping):
            problems = {"non_field_errors": ["Must be a JSON object."]}
        else:
            spec, found = _parse(
                strategy, engine, {**base_config, **overrides}, initial_capital, commission,
                slippage,
            )  # fmt: skip
            problems = _problems_by_path(found)
            if not found:
                first_spec = first_spec or spec
                plan.append([index, dict(overrides)])
                continue
        n_skipped += 1
        if len(skipped) < MAX_LISTED_SKIPPED:
            skipped.append({"index": index, "overrides": overrides, "problems": problems})
    if not plan:
        shown = {str(item["index"]): item["problems"] for item in skipped}
        raise InvalidInput(
            {
                field: {
                    "non_field_errors": [
                        f"None of the {n_skipped:,} combinations is valid; the problems of the "
                        f"first {len(skipped)} follow, keyed by combination index."
                    ],
                    **shown,
                }
            }
        )

    benchmark_symbol = benchmark or (first_spec.symbols[0] if first_spec.symbols else None)
    if benchmark_symbol is None:
        raise InvalidInput(
            {"benchmark": ["Required when base_config names no symbol to buy and hold."]}
        )
    bars, benchmark_problems = _benchmark_bars(benchmark_symbol, first_spec)
    if benchmark_problems:
        raise InvalidInput({"benchmark": benchmark_problems})
    if partitions > bars // MIN_BARS_PER_PARTITION:
        raise InvalidInput(
            {
                "partitions": [
                    f"At most {bars // MIN_BARS_PER_PARTITION} for {bars} bars "
                    f"(at least {MIN_BARS_PER_PARTITION} bars per partition)."
                ]
            }
        )

    size = chunk_size_for(engine, strategy.kind)
    with transaction.atomic():
        task = Task.objects.create(kind=Task.Kind.RESEARCH_SWEEP, owner=owner, total=len(plan))
        sweep = ResearchSweep.objects.create(
            strategy=strategy,
            engine=engine,
            base_config=dict(base_config),
            grid=dict(grid) if grid is not None else None,
            entries_plan=plan,
            skipped=skipped,
            n_skipped=n_skipped,
            rank_metric=rank_metric,
            initial_capital=float(initial_capital),
            commission=float(commission),
            slippage=float(slippage),
            benchmark=benchmark_symbol,
            partitions=partitions,
            spa_reps=spa_reps,
            seed=seed,
            total=len(plan),
            task=task,
            owner=owner,
        )
        chunks = ResearchSweepChunk.objects.bulk_create(
            [
                ResearchSweepChunk(
                    sweep=sweep, number=number, first=first, size=min(size, len(plan) - first)
                )
                for number, first in enumerate(range(0, len(plan), size))
            ]
        )
        chunk_ids = [str(chunk.pk) for chunk in chunks]
        transaction.on_commit(lambda: [run_research_chunk.send(pk) for pk in chunk_ids])
    return sweep


def research_entry_backtest(*, sweep: ResearchSweep, number: int, owner=None) -> Backtest:
    """Run entry ``number`` of ``sweep`` as a full v1 backtest (artifacts, fingerprint) now.

    ``ResearchSweepEntry.DoesNotExist`` for a number that is not an entry; ``Conflict`` when
    the entry has not run yet or failed.
    """
    overrides = next((item[1] for item in sweep.entries_plan if item[0] == number), None)
    if overrides is None:
        raise ResearchSweepEntry.DoesNotExist(f"Sweep {sweep.pk} has no entry {number}.")
    entry = sweep.entries.filter(number=number).only("status", "error").first()
    if entry is None:
        raise Conflict(f"Entry {number} of sweep {sweep.pk} has not run yet.")
    if entry.status != ResearchSweepEntry.Status.COMPLETED:
        raise Conflict(f"Entry {number} of sweep {sweep.pk} failed: {entry.error}")
    backtest = backtest_services.backtest_create(
        strategy=sweep.strategy,
        engine=sweep.engine,
        config={**sweep.base_config, **overrides},
        initial_capital=sweep.initial_capital,
        commission=sweep.commission,
        slippage=sweep.slippage,
        owner=owner,
        source=Backtest.Source.SWEEP,
    )
    return backtest_services.backtest_execute(backtest=backtest)


def is_finite_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)

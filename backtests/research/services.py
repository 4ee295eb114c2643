"""Writes of research sweeps (SPEC §13.2): create one, and make one of its entries a backtest.

Everything is validated before anything is written, so a bad request creates nothing; errors
are the v1 domain errors (``InvalidInput`` field-keyed, ``Conflict``) and the v1 handler renders
them.
"""

from __future__ import annotations

import itertools
import math
import uuid
from collections.abc import Mapping
from typing import Any

from django.core.files.storage import default_storage
from django.db import transaction

from backfolio.common.errors import Conflict, InvalidInput
from backtests import artifacts
from backtests import services as backtest_services
from backtests.engines.registry import runs_signal_batches
from backtests.models import Backtest, Task
from backtests.research import grid as grids
from backtests.research import returns_files
from backtests.research.models import ResearchSweep, ResearchSweepChunk, ResearchSweepEntry
from backtests.run_config import (
    SIGNAL,
    RunSpec,
    accepted_keys,
    parse_run_config,
    validate_run_settings,
)
from backtests.services import RANK_METRICS
from marketdata.store import BatchLookups, MarketDataError, get_store
from metrics import research
from strategies.language.plugins import PLUGINS
from strategies.models import Strategy

PLUGIN_KEY, PLUGIN_PARAMS_KEY = "signal_plugin_key", "signal_plugin_params"
# Most entries per chunk message: vectorised chunks share one engine call (bigger is cheaper per
# entry, smaller spreads a sweep over more workers); one-at-a-time engines take a few each.
VECTORISED_CHUNK_SIZE = 120
SINGLE_RUN_CHUNK_SIZE = 8
# Chunks shrink towards the end of a sweep (guided self-scheduling): each takes 1/CHUNK_TAPER of
# the entries left, between the engine's size and half of it (a chunk has a fixed cost — its
# claim, engine call, statistics, file and transaction — of about 60 ms). Workers take chunks
# lowest number first, so the last ones to run are short and no worker waits long for another's.
CHUNK_TAPER = 8


def _problems_by_path(problems) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for problem in problems:
        errors.setdefault(problem.path or "non_field_errors", []).append(problem.message)
    return errors


def _sentence(error: Exception) -> str:
    text = str(error)
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def chunk_size_for(engine: str, kind: str) -> int:
    if runs_signal_batches(engine) and kind == SIGNAL:
        return VECTORISED_CHUNK_SIZE
    return SINGLE_RUN_CHUNK_SIZE


def chunk_sizes(n_entries: int, largest: int) -> list[int]:
    """The sizes of a sweep's chunks, in order: ⌈left / CHUNK_TAPER⌉ within
    [max(1, largest // 2), largest]; a last piece below that smallest size is shared with the
    chunk before it (two halves), so no chunk at the end is larger than the ones before."""
    smallest = max(1, largest // 2)
    sizes: list[int] = []
    left = n_entries
    while left > 0:
        size = min(left, largest, max(smallest, math.ceil(left / CHUNK_TAPER)))
        if 0 < left - size < smallest:
            size = math.ceil(left / 2)
        sizes.append(size)
        left -= size
    return sizes


def _parse(
    snapshot: Mapping[str, Any], engine: str, config, capital, commission, slippage, lookups
):
    return parse_run_config(
        config,
        strategy_kind=snapshot["kind"],
        strategy_definition=snapshot["definition"],
        strategy_timeframe=snapshot["timeframe"],
        engine=engine,
        initial_capital=capital,
        commission=commission,
        slippage=slippage,
        store=lookups,
    )


def _combinations(strategy: Strategy, base_config: Mapping[str, Any], grid, param_grid):
    """The combinations asked for, as overrides, and the field they came from; raises
    ``InvalidInput`` for a bad grid (a path that is not a config field, a value that is not a
    list, too many combinations)."""
    try:
        combos = grids.expand(grid, param_grid, config_keys=accepted_keys(strategy.kind))
    except grids.GridProblems as problems:
        raise InvalidInput(problems.errors) from None
    if grid is not None:
        unknown = _unknown_plugin_parameters(grid, base_config)
        if unknown:
            raise InvalidInput({"grid": unknown})
    return ("grid" if grid is not None else "param_grid"), combos


def _unknown_plugin_parameters(grid: Mapping[str, Any], base_config: Mapping[str, Any]) -> dict:
    """``signal_plugin_params.<name>`` paths naming no parameter of the plugin(s) in play."""
    keys = [base_config.get(PLUGIN_KEY), *(grid.get(PLUGIN_KEY) or [])]
    plugins = [
        PLUGINS[key] for key in dict.fromkeys(keys) if isinstance(key, str) and key in PLUGINS
    ]
    known = sorted({name for plugin in plugins for name in plugin.params})
    problems = {}
    for path in grid:
        head, _, name = path.partition(".")
        if head != PLUGIN_PARAMS_KEY or not name:
            continue
        if not plugins:
            problems[path] = ["Not a configuration field: no signal_plugin_key in base_config."]
        elif name not in known:
            names = ", ".join(plugin.name for plugin in plugins)
            problems[path] = [
                f"Not a configuration field: {name!r} is not a parameter of {names} "
                f"(parameters: {', '.join(known)})."
            ]
    return problems


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
    partitions: int = research.DEFAULT_PARTITIONS,
    spa_reps: int = research.DEFAULT_RESAMPLES,
    seed: int = research.DEFAULT_SEED,
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
    for name, value, check in (
        ("partitions", partitions, research.check_partitions),
        ("spa_reps", spa_reps, lambda value: research.check_resamples(value, "spa_reps")),
        ("seed", seed, research.check_seed),
    ):
        try:
            check(value)
        except ValueError as error:
            errors[name] = [_sentence(error)]
    if errors:
        raise InvalidInput(errors)
    field, combos = _combinations(strategy, base_config, grid, param_grid)
    snapshot = strategy.run_snapshot()

    plan: list[list] = []
    invalid: list[tuple[int, Mapping[str, Any], dict]] = []
    n_skipped = 0
    first_spec: RunSpec | None = None
    lookups = BatchLookups()  # every combination asks the data the same questions
    for index, overrides in enumerate(combos):
        spec, found = _parse(
            snapshot, engine, grids.apply_overrides(base_config, overrides), initial_capital,
            commission, slippage, lookups,
        )  # fmt: skip
        if not found:
            first_spec = first_spec or spec
            plan.append([index, overrides])
            continue
        n_skipped += 1
        if len(invalid) < grids.MAX_LISTED_PROBLEMS:
            invalid.append((index, overrides, _problems_by_path(found)))
    skipped = grids.describe_skipped(invalid)
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
    try:
        research.check_partitions(partitions, bars)
    except ValueError as error:
        raise InvalidInput({"partitions": [_sentence(error)]}) from None

    sizes = chunk_sizes(len(plan), chunk_size_for(engine, strategy.kind))
    with transaction.atomic():
        task = Task.objects.create(kind=Task.Kind.RESEARCH_SWEEP, owner=owner, total=len(plan))
        sweep = ResearchSweep.objects.create(
            strategy=strategy,
            strategy_snapshot=snapshot,
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
        firsts = itertools.accumulate(sizes, initial=0)
        chunks = ResearchSweepChunk.objects.bulk_create(
            [
                ResearchSweepChunk(sweep=sweep, number=number, first=first, size=size)
                for number, (first, size) in enumerate(zip(firsts, sizes, strict=False))
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
    # The entry's config was validated against this snapshot when the sweep was created; the
    # backtest keeps the same snapshot, so it runs exactly what the entry ran.
    backtest = Backtest.objects.create(
        strategy=sweep.strategy,
        strategy_snapshot=sweep.strategy_snapshot,
        engine=sweep.engine,
        config=grids.apply_overrides(sweep.base_config, overrides),
        initial_capital=sweep.initial_capital,
        commission=sweep.commission,
        slippage=sweep.slippage,
        owner=owner,
        source=Backtest.Source.SWEEP,
    )
    return backtest_services.backtest_execute(backtest=backtest)


def research_sweep_promote_top(*, sweep: ResearchSweep, count: int, owner=None) -> list[Backtest]:
    """The ``count`` best finished entries of ``sweep`` as full v1 backtests, best first (to
    compare them): an entry already made a backtest (a completed run of the same strategy with
    the entry's fingerprint) is that backtest, any other is made one now
    (``research_entry_backtest``). ``Conflict`` while fewer than two entries have finished."""
    from backtests.research.selectors import research_sweep_ranking, with_details

    _, rows = research_sweep_ranking(sweep=sweep)
    best = [row for row in rows if row["status"] == ResearchSweepEntry.Status.COMPLETED][:count]
    best = with_details(sweep, best)
    if len(best) < 2:
        raise Conflict(
            f"Research sweep {sweep.pk} has {len(best)} finished "
            f"entr{'y' if len(best) == 1 else 'ies'}: at least two are needed to compare."
        )
    backtests = []
    for row in best:
        existing = (
            Backtest.objects.filter(
                strategy=sweep.strategy,
                fingerprint=row["fingerprint"],
                status=Backtest.Status.COMPLETED,
            )
            .order_by("created_at")
            .first()
            if row["fingerprint"]
            else None
        )
        backtests.append(
            existing or research_entry_backtest(sweep=sweep, number=row["number"], owner=owner)
        )
    return backtests


def research_sweep_returns_parquet(*, sweep: ResearchSweep) -> bytes:
    """The finished sweep's returns matrix (``returns.parquet``); ``Conflict`` while the sweep
    runs, or when a file it is made of cannot be read."""
    try:
        return artifacts.read_bytes(research_sweep_returns_uri(sweep=sweep))
    except artifacts.ArtifactMissing as error:
        raise Conflict(f"The returns matrix of research sweep {sweep.pk}: {error}.") from error


def research_sweep_returns_uri(*, sweep: ResearchSweep) -> str:
    """The URI of the finished sweep's returns matrix, written from its chunks' files the first
    time it is asked for. ``Conflict`` while the sweep runs.

    Two first requests may both write it: each under a name of its own, and the one whose
    conditional UPDATE lands first is the sweep's; the other removes its copy."""
    from backtests.research.selectors import research_sweep_require_finished

    research_sweep_require_finished(sweep=sweep, what="returns matrix")
    if sweep.returns_uri:
        return sweep.returns_uri
    uri = returns_files.write_returns_matrix(
        f"{returns_files.sweep_folder(sweep.pk)}/returns-{uuid.uuid4().hex[:12]}.parquet",
        returns_files.chunk_returns(sweep),
    )
    if ResearchSweep.objects.filter(pk=sweep.pk, returns_uri__isnull=True).update(returns_uri=uri):
        sweep.returns_uri = uri
        return uri
    default_storage.delete(uri)
    sweep.returns_uri = ResearchSweep.objects.values_list("returns_uri", flat=True).get(pk=sweep.pk)
    return sweep.returns_uri

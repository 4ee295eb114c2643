"""Reads of backtests, tasks and results, always scoped to what the caller may see (SPEC §10).

A record the caller may not see does not exist for them: the selectors raise ``DoesNotExist``
exactly as for an unknown id (the v1 API answers 404 either way).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from django.db.models import QuerySet

from backfolio.common.errors import Conflict
from backfolio.common.ownership import visible_to
from backfolio.deadline import RunTimeLimitExceeded, run_time_limit
from backtests import artifacts
from backtests.engines import registry
from backtests.engines.parity import PARITY_TOLERANCE, equity_parity
from backtests.jobs import outcomes, reaper, runner
from backtests.models import Backtest, Task
from backtests.pipeline import RunError, run_backtest
from metrics.jsonsafe import json_safe
from metrics.presenters import V1_METRIC_HIGHER_IS_BETTER, v1_row_metrics
from strategies.language import allocation_symbols
from strategies.selectors import parse_uuid


def backtest_list(*, user) -> QuerySet[Backtest]:
    """Backtests the caller may see, oldest first (a list's FilterSet narrows them)."""
    return visible_to(Backtest.objects.all(), user).order_by("created_at")


def backtest_get(*, backtest_id, user) -> Backtest:
    """The backtest (with its strategy), or ``Backtest.DoesNotExist``."""
    key = parse_uuid(backtest_id)
    if key is not None:
        found = visible_to(Backtest.objects.select_related("strategy"), user).filter(pk=key).first()
        if found is not None:
            return found
    raise Backtest.DoesNotExist(f"Backtest {backtest_id} not found.")


def backtest_get_fresh(*, backtest_id, user) -> Backtest:
    """``backtest_get`` after letting the reaper fail a run whose worker died."""
    reaper.maybe_reap()
    return backtest_get(backtest_id=backtest_id, user=user)


def backtests_in_order(*, backtest_ids: Sequence, user) -> list[Backtest]:
    """The backtests in the order asked; ``Backtest.DoesNotExist`` lists every missing id."""
    keys = [parse_uuid(value) for value in backtest_ids]
    found = {
        backtest.pk: backtest
        for backtest in visible_to(Backtest.objects.all(), user).filter(
            pk__in=[key for key in keys if key is not None]
        )
    }
    missing = [
        str(value) for value, key in zip(backtest_ids, keys, strict=True) if key not in found
    ]
    if missing:
        raise Backtest.DoesNotExist(f"Backtests not found: {', '.join(missing)}.")
    return [found[key] for key in keys]


def task_get(*, task_id, user) -> Task:
    """The task row (after reaping stale runs), or ``Task.DoesNotExist``."""
    key = parse_uuid(task_id)
    if key is not None:
        reaper.maybe_reap()
        found = visible_to(Task.objects.all(), user).filter(pk=key).first()
        if found is not None:
            return found
    raise Task.DoesNotExist(f"Task {task_id} not found.")


# --- what a run covers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSpan:
    """The dates (``YYYY-MM-DD`` as requested) and the symbols of one run."""

    start_date: str | None
    end_date: str | None
    symbols: list[str]


def backtest_span(backtest: Backtest) -> RunSpan:
    """What a run covers, however it was made.

    A Backfolio run (``source`` ``v2``) keeps its request: dates in ``config.config``, symbols in
    the strategy's allocation groups. Every other run keeps a run configuration (SPEC §3): a
    signal strategy's symbols are ``symbols``/``symbol``; an allocation strategy's are the
    groups of what drives it (``config.signal``, else the strategy as the run was made with it),
    sorted: a stored JSON object keeps no key order on PostgreSQL (jsonb), so first-seen order
    cannot be read back the same on every database.
    """
    config = backtest.config if isinstance(backtest.config, Mapping) else {}
    if backtest.source == Backtest.Source.V2:
        request = config.get("config")
        request = request if isinstance(request, Mapping) else {}
        return RunSpan(
            start_date=_text(request.get("start_date")),
            end_date=_text(request.get("end_date")),
            symbols=sorted(allocation_symbols(config.get("strategy"))),
        )
    symbols = config.get("symbols")
    if isinstance(symbols, list) and symbols:
        held = [str(symbol) for symbol in symbols]
    elif config.get("symbol"):
        held = [str(config["symbol"])]
    else:
        definition = config.get("signal")
        if definition is None:
            definition = _strategy_definition(backtest)
        held = sorted(allocation_symbols(definition))
    return RunSpan(
        start_date=_text(config.get("start_date")),
        end_date=_text(config.get("end_date")),
        symbols=held,
    )


def _strategy_definition(backtest: Backtest) -> Any:
    """The definition the run was made with (its snapshot of the strategy), not the strategy's
    definition as it is now."""
    snapshot = backtest.strategy_snapshot
    if isinstance(snapshot, Mapping):
        return snapshot.get("definition")
    return backtest.strategy.definition if backtest.strategy_id is not None else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


# --- results -----------------------------------------------------------------------------------


def _completed_artifact(backtest: Backtest, uri: str | None, what: str) -> str:
    if backtest.status != Backtest.Status.COMPLETED:
        raise Conflict(
            f"Backtest {backtest.pk} is not completed (status: {backtest.status}); "
            f"its {what} is not available."
        )
    if not uri:
        raise Conflict(f"Backtest {backtest.pk} has no stored {what}.")
    return uri


def backtest_equity_parquet(*, backtest: Backtest) -> bytes:
    """The stored equity-curve Parquet file; ``Conflict`` when not completed or missing."""
    uri = _completed_artifact(backtest, backtest.equity_curve_uri, "equity curve")
    try:
        return artifacts.read_bytes(uri)
    except artifacts.ArtifactMissing as error:
        raise Conflict(f"Backtest {backtest.pk}: {error}.") from error


def backtest_trades_parquet(*, backtest: Backtest) -> bytes:
    uri = _completed_artifact(backtest, backtest.trades_uri, "trade list")
    try:
        return artifacts.read_bytes(uri)
    except artifacts.ArtifactMissing as error:
        raise Conflict(f"Backtest {backtest.pk}: {error}.") from error


def backtest_equity_curve(*, backtest: Backtest) -> pd.Series:
    """E_t per bar (DatetimeIndex), read from the run's artifact."""
    uri = _completed_artifact(backtest, backtest.equity_curve_uri, "equity curve")
    try:
        return artifacts.read_equity(uri)
    except artifacts.ArtifactMissing as error:
        raise Conflict(f"Backtest {backtest.pk}: {error}.") from error


def backtest_trades(*, backtest: Backtest) -> pd.DataFrame:
    """The closed trades (SPEC §2 columns plus ``fees``), read from the run's artifact."""
    uri = _completed_artifact(backtest, backtest.trades_uri, "trade list")
    try:
        return artifacts.read_trades(uri)
    except artifacts.ArtifactMissing as error:
        raise Conflict(f"Backtest {backtest.pk}: {error}.") from error


def equity_curve_records(equity: pd.Series) -> list[dict[str, Any]]:
    """``[{"date": "YYYY-MM-DD", "equity": float}]``, one per bar."""
    dates = pd.DatetimeIndex(equity.index).strftime("%Y-%m-%d")
    values = json_safe(equity.to_numpy(dtype=float))
    return [{"date": day, "equity": value} for day, value in zip(dates, values, strict=True)]


def trade_records(trades: pd.DataFrame) -> list[dict[str, Any]]:
    """Trades as JSON records: dates ``YYYY-MM-DD``, NaN as null."""
    return json_safe(trades)


# --- compare -----------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def backtest_compare(*, backtests: Sequence[Backtest]) -> dict[str, Any]:
    """Runs side by side (request order) and, per numeric flat metric, each run's value and
    the best run by the metric's direction. The best run never depends on the request's order:
    a tie goes to the earliest ``created_at``, then the smaller id. ``best_id`` is null for a
    metric without a direction or with no values."""
    runs = [
        {
            "id": str(backtest.pk),
            "strategy_id": str(backtest.strategy_id) if backtest.strategy_id else None,
            "engine": backtest.engine,
            "status": backtest.status,
            "metrics": v1_row_metrics(backtest.metrics, backtest.extra_metrics),
        }
        for backtest in backtests
    ]
    # The tie-break rule, as a sort key per run id: earliest created, then smallest id.
    seniority = {
        str(backtest.pk): (backtest.created_at, str(backtest.pk)) for backtest in backtests
    }
    keys: list[str] = []
    for run in runs:
        for key, value in run["metrics"].items():
            if _is_number(value) and key not in keys:
                keys.append(key)
    metric_diff = {}
    for key in keys:
        values = {
            run["id"]: run["metrics"][key] if _is_number(run["metrics"].get(key)) else None
            for run in runs
        }
        direction = V1_METRIC_HIGHER_IS_BETTER.get(key)
        candidates = [run_id for run_id, value in values.items() if value is not None]
        best_id = None
        if direction is not None and candidates:
            sign = -1.0 if direction else 1.0
            best_id = min(candidates, key=lambda run_id: (sign * values[run_id], seniority[run_id]))
        metric_diff[key] = {
            "values": values,
            "best_id": best_id,
            "higher_is_better": bool(direction),
        }
    return {"runs": runs, "metric_diff": metric_diff}


# --- parity ------------------------------------------------------------------------------------


def other_engine(engine: str) -> str:
    """The engine a parity check runs against: the first registered one that is not ``engine``."""
    other = registry.other_engine(engine)
    if other is None:
        raise Conflict(f"No engine other than {engine} is registered.")
    return other


def backtest_parity(*, backtest: Backtest) -> dict[str, Any]:
    """Run a completed backtest again on the other engine and compare it with the stored run
    (SPEC §6): the largest relative difference of equity, each run's trade count and the first
    date the curves part on (None when they agree within ``PARITY_TOLERANCE``).

    ``Conflict`` when the backtest is not completed, its artifacts are missing, or the other
    engine cannot run it (the reason is given).
    """
    if backtest.status != Backtest.Status.COMPLETED:
        raise Conflict(
            f"Backtest {backtest.pk} is not completed (status: {backtest.status}); "
            "a parity check needs a completed run."
        )
    reference_equity = backtest_equity_curve(backtest=backtest)
    reference_trades = backtest_trades(backtest=backtest)
    engine = other_engine(backtest.engine)
    try:
        equity, trades = _rerun(backtest, engine)
    except (RunError, ValueError, RunTimeLimitExceeded) as error:
        raise Conflict(f"The {engine} engine cannot run backtest {backtest.pk}: {error}") from error
    parity = equity_parity(reference_equity, equity)
    first = parity.first_difference
    return {
        "backtest_id": str(backtest.pk),
        "engine": backtest.engine,
        "other_engine": engine,
        "max_relative_difference": parity.max_relative_difference,
        "first_difference_date": first.date().isoformat() if first is not None else None,
        "agree": parity.agree,
        "tolerance": PARITY_TOLERANCE,
        "engine_trades": len(reference_trades),
        "other_engine_trades": len(trades),
    }


def _rerun(backtest: Backtest, engine: str) -> tuple[pd.Series, pd.DataFrame]:
    if backtest.source == Backtest.Source.V2:
        from backtests.portfolio.requests import parse_portfolio_request
        from backtests.portfolio.services import portfolio_run

        # The saved request, every default filled in; InvalidPortfolioRequest is a ValueError.
        saved = backtest.config
        request = parse_portfolio_request(
            {**saved, "config": {**saved["config"], "engine": engine}}
        )
        run = portfolio_run(request, engine=engine)
        return run.equity, run.trades
    spec = runner.run_spec(backtest, engine=engine)
    with run_time_limit(outcomes.run_time_limit_seconds()):
        result = run_backtest(spec)
    return result.equity, result.trades

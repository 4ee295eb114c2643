"""Reads of research sweeps, scoped to what the caller may see (SPEC §10): a sweep someone may
not see does not exist for them (404).

Entries store the core's metrics (``compute_metrics``' keys and units, as a run's row does); what
leaves here in v1 form is presented by ``v1_row_metrics``, and sorting by a v1 metric reads the
core metric it shows (``ranking.score_of``)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from typing import Any

from backfolio.common.errors import Conflict
from backfolio.common.ownership import visible_to
from backtests.jobs import reaper
from backtests.research.models import ResearchSweep, ResearchSweepEntry
from backtests.research.ranking import RANKABLE_METRICS, higher_is_better, order_key, score_of
from metrics.jsonsafe import json_safe
from metrics.presenters import v1_row_metrics
from strategies.selectors import parse_uuid

SORT_KEYS = ("rank", "number", *RANKABLE_METRICS)
FINISHED = (ResearchSweep.Status.COMPLETED, ResearchSweep.Status.FAILED)
PLAN_FIELDS = ("entries_plan", "strategy_snapshot")


def research_sweep_get(*, sweep_id, user) -> ResearchSweep:
    """The sweep (after reaping stale work), or ``ResearchSweep.DoesNotExist``."""
    key = parse_uuid(sweep_id)
    if key is not None:
        reaper.maybe_reap()
        found = (
            # The plan (every combination) and the snapshot are read only by the few requests
            # that need them: a 10,000-combination plan is most of the row.
            visible_to(ResearchSweep.objects.defer(*PLAN_FIELDS).select_related("strategy"), user)
            .filter(pk=key)
            .first()
        )
        if found is not None:
            return found
    raise ResearchSweep.DoesNotExist(f"Research sweep {sweep_id} not found.")


# What ranking reads of every entry; the rest is read for the entries shown (``with_details``):
# a page of a 10,000-entry leaderboard reads its own rows' metrics, not every row's.
RANKING_FIELDS = ("number", "status", "score")
DETAIL_FIELDS = ("overrides", "metrics", "fingerprint", "error")


def _entries(sweep: ResearchSweep, fields=RANKING_FIELDS + DETAIL_FIELDS) -> list[dict[str, Any]]:
    return list(sweep.entries.order_by("number").values(*fields))


def with_details(sweep: ResearchSweep, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` of ``research_sweep_ranking``, in their order, with every stored field."""
    details = {
        entry["number"]: entry
        for entry in sweep.entries.filter(number__in=[row["number"] for row in rows]).values(
            "number", *DETAIL_FIELDS
        )
    }
    return [{**details[row["number"]], **row} for row in rows]


def _ranked(sweep: ResearchSweep, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``entries`` with their ``rank`` by the sweep's rank metric, in rank order."""
    descending = higher_is_better(sweep.rank_metric)
    ordered = sorted(
        entries,
        key=lambda entry: order_key(
            entry["number"],
            entry["status"] == ResearchSweepEntry.Status.COMPLETED,
            entry["score"],
            descending=descending,
        ),
    )
    for rank, entry in enumerate(ordered, start=1):
        entry["rank"] = rank
    return ordered


def research_sweep_ranking(
    *, sweep: ResearchSweep, sort: str = "rank", order: str | None = None
) -> tuple[str, list[dict[str, Any]]]:
    """The entries that have run, sorted by ``sort`` (``rank``, ``number`` or any numeric v1
    metric) in ``order`` (default: best first for a metric with a direction, ascending for
    ``rank``/``number``, descending otherwise), entries without a value last; with the order
    used. Each entry has its ``number``, ``status``, ``score`` and ``rank`` (``with_details``
    adds the rest, as stored, for ``entry_view``)."""
    by_metric = sort not in ("rank", "number")
    ranked = _ranked(sweep, _entries(sweep, RANKING_FIELDS + (("metrics",) if by_metric else ())))
    if order is None:
        if not by_metric:
            order = "asc"
        else:
            order = "desc" if higher_is_better(sort) else "asc"
    descending = order == "desc"
    if sort == "rank":
        rows = ranked[::-1] if descending else ranked
    elif sort == "number":
        rows = sorted(ranked, key=lambda entry: entry["number"], reverse=descending)
    else:
        rows = sorted(
            ranked,
            key=lambda entry: order_key(
                entry["number"],
                entry["status"] == ResearchSweepEntry.Status.COMPLETED,
                score_of(entry["metrics"], sort),
                descending=descending,
            ),
        )
    return order, rows


def research_sweep_leaderboard(
    *, sweep: ResearchSweep, sort: str = "rank", order: str | None = None, skip: int = 0,
    limit: int = 100,
) -> dict[str, Any]:  # fmt: skip
    """One page of ``research_sweep_ranking``, with the count, the paging and the ordering."""
    order, rows = research_sweep_ranking(sweep=sweep, sort=sort, order=order)
    return {
        "count": len(rows),
        "skip": skip,
        "limit": limit,
        "sort": sort,
        "order": order,
        "entries": [entry_view(entry) for entry in with_details(sweep, rows[skip : skip + limit])],
    }


def entry_view(entry: dict[str, Any]) -> dict[str, Any]:
    """An entry as the API shows it: its v1 flat metrics only when completed, empty texts as
    null."""
    return {
        "number": entry["number"],
        "rank": entry["rank"],
        "overrides": entry["overrides"],
        "status": entry["status"],
        "score": entry["score"],
        "metrics": entry_v1_metrics(entry),
        "fingerprint": entry["fingerprint"] or None,
        "error": entry["error"] or None,
    }


def entry_v1_metrics(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A completed entry's metrics in the v1 contract's flat form (a failed one has none)."""
    if entry["status"] != ResearchSweepEntry.Status.COMPLETED:
        return {}
    return v1_row_metrics(entry["metrics"])


def research_sweep_require_finished(*, sweep: ResearchSweep, what: str) -> None:
    """``Conflict`` naming ``what`` while the sweep has not finished."""
    if sweep.status not in FINISHED:
        raise Conflict(
            f"Research sweep {sweep.pk} is {sweep.status} ({sweep.done}/{sweep.total} entries "
            f"done); its {what} is ready when it has finished."
        )


def research_sweep_results_csv(*, sweep: ResearchSweep) -> str:
    """One row per entry: number, rank, status, parameters (dotted paths), metrics, error."""
    research_sweep_require_finished(sweep=sweep, what="results table")
    entries = sorted(_ranked(sweep, _entries(sweep)), key=lambda entry: entry["number"])
    parameters = list(
        dict.fromkeys(path for entry in entries for path in flat_parameters(entry["overrides"]))
    )
    metrics = list(RANKABLE_METRICS)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["number", "rank", "status", *parameters, *metrics, "fingerprint", "error"])
    for entry in entries:
        flat = flat_parameters(entry["overrides"])
        values = entry_v1_metrics(entry)
        writer.writerow(
            [
                entry["number"],
                entry["rank"],
                entry["status"],
                *[_cell(flat.get(path)) for path in parameters],
                *[_cell(json_safe(values.get(key))) for key in metrics],
                entry["fingerprint"],
                entry["error"],
            ]
        )
    return buffer.getvalue()


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return json.dumps(value, sort_keys=True)
    return value


def flat_parameters(overrides: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Overrides as dotted paths to values (the parameter columns of ``results.csv``)."""
    flat: dict[str, Any] = {}
    for key, value in overrides.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flat_parameters(value, f"{path}."))
        else:
            flat[path] = value
    return flat

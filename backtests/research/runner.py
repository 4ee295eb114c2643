"""Running many configurations of one strategy at once (pure: no Django).

A research sweep, a walk-forward fold, or any other study runs a list of validated ``RunSpec``s
and keeps, for each, what the study needs — the SPEC §5 per-bar returns r_1..r_n, the core
metrics (``compute_metrics``' keys and units, as a run's row stores them) and the fingerprint —
not the trades and artifacts of a full run. The runs go through
``run_study_batch``: runs that differ only in their definition are compiled once per price
window and simulated in one vectorised engine call where the engine allows (vectorbt: one
column each), their metrics computed for every column at once; the others run one at a time
(Backtrader). Every number is exactly what ``run_backtest`` gives for the same spec, so any
entry can later become a full backtest with the same fingerprint and metrics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from backtests.pipeline import StudyRun, run_study_batch
from backtests.run_config import RunSpec
from marketdata.store import PriceStore


@dataclass(frozen=True)
class EntryOutcome:
    """One configuration's outcome: ``error`` is empty when it completed. ``metrics`` are the
    core's (a failed one: only ``error``), presented by each contract as a run's are."""

    returns: pd.Series | None
    metrics: dict[str, Any]
    fingerprint: str
    error: str = ""

    @property
    def completed(self) -> bool:
        return not self.error


def failed_outcome(message: str) -> EntryOutcome:
    return EntryOutcome(None, {"error": message}, "", message)


def run_entries(specs: Sequence[RunSpec], *, store: PriceStore | None = None) -> list[EntryOutcome]:
    """Run ``specs`` (vectorised where the engine allows); one outcome each, in order.

    A run that fails (data, compilation, engine) is an outcome with its ``error``; it never
    stops the others.
    """
    results = run_study_batch(list(specs), store=store)
    # r_1 = E_1/C − 1, then E_t/E_{t−1} − 1 (``returns_from_equity``), once per equity matrix.
    returns: dict[int, np.ndarray] = {}
    outcomes = []
    for spec, result in zip(specs, results, strict=True):
        if not isinstance(result, StudyRun):
            outcomes.append(failed_outcome(str(result) or type(result).__name__))
            continue
        key = id(result.equity)
        if key not in returns:
            values = result.equity.values
            previous = np.empty_like(values)
            previous[:1] = spec.initial_capital
            previous[1:] = values[:-1]
            with np.errstate(divide="ignore", invalid="ignore"):
                returns[key] = values / previous - 1.0
        series = pd.Series(returns[key][:, result.column], index=result.equity.dates, copy=False)
        outcomes.append(EntryOutcome(series, result.metrics, result.fingerprint))
    return outcomes


def returns_frame(outcomes: Sequence[EntryOutcome], names: Sequence[Any]) -> pd.DataFrame:
    """The completed outcomes' per-bar returns side by side: a date index (the union of their
    bars, ascending) and one float64 column per outcome, named by ``names``; a bar an entry did
    not trade on is NaN."""
    columns = {
        str(name): outcome.returns
        for name, outcome in zip(names, outcomes, strict=True)
        if outcome.returns is not None
    }
    if not columns:
        return pd.DataFrame(index=pd.DatetimeIndex([], name="date"), dtype="float64")
    series = list(columns.values())
    index = series[0].index
    if index.is_monotonic_increasing and all(
        item.index is index or item.index.equals(index) for item in series[1:]
    ):  # the usual case: every entry on the same bars, one matrix without aligning
        matrix = np.empty((len(index), len(series)), dtype="float64", order="F")
        for column, item in enumerate(series):
            matrix[:, column] = item.to_numpy(dtype="float64")
        frame = pd.DataFrame(matrix, index=index, columns=list(columns), copy=False)
    else:
        frame = pd.concat(columns, axis=1, sort=True).astype("float64")
    frame.index = pd.DatetimeIndex(frame.index, name="date")
    return frame


def common_bars(matrix: np.ndarray) -> np.ndarray:
    """Rows of a T×N returns matrix where every column has a value (a study's common bars)."""
    return ~np.isnan(matrix).any(axis=1)

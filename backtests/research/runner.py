"""Running many configurations of one strategy at once (pure: no Django).

A research sweep, a walk-forward fold, or any other study runs a list of validated ``RunSpec``s
and keeps, for each, what the study needs — the SPEC §5 per-bar returns r_1..r_n, the flat v1
metrics and the fingerprint — not the trades and artifacts of a full run. The runs go through
``run_backtest_batch``: runs that differ only in their definition share one vectorised engine
call where the engine allows (vectorbt: one column each), the others run one at a time
(Backtrader). Every number is exactly what ``run_backtest`` gives for the same spec, so any
entry can later become a full backtest with the same fingerprint and metrics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from backtests.pipeline import RunError, RunResult, RunSpec, run_backtest_batch
from marketdata.store import PriceStore
from metrics.calculations import returns_from_equity
from metrics.presenters import v1_flat


@dataclass(frozen=True)
class EntryOutcome:
    """One configuration's outcome: ``error`` is empty when it completed."""

    returns: pd.Series | None
    metrics: dict[str, Any]
    fingerprint: str
    error: str = ""

    @property
    def completed(self) -> bool:
        return not self.error


def failed_outcome(message: str) -> EntryOutcome:
    return EntryOutcome(None, {"error": message}, "", message)


def outcome_of(spec: RunSpec, result: RunResult | RunError) -> EntryOutcome:
    """What a study keeps of one run's result (or of the error it failed with)."""
    if isinstance(result, Exception):
        return failed_outcome(str(result) or type(result).__name__)
    returns = returns_from_equity(result.equity, spec.initial_capital).astype("float64")
    returns.name = None
    return EntryOutcome(returns, v1_flat(result.metrics), result.fingerprint)


def run_entries(specs: Sequence[RunSpec], *, store: PriceStore | None = None) -> list[EntryOutcome]:
    """Run ``specs`` (vectorised where the engine allows); one outcome each, in order.

    A run that fails (data, compilation, engine) is an outcome with its ``error``; it never
    stops the others.
    """
    results = run_backtest_batch(list(specs), store=store)
    return [outcome_of(spec, result) for spec, result in zip(specs, results, strict=True)]


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
    frame = pd.concat(columns, axis=1, sort=True).astype("float64")
    frame.index = pd.DatetimeIndex(frame.index, name="date")
    return frame


def common_bars(matrix: np.ndarray) -> np.ndarray:
    """Rows of a T×N returns matrix where every column has a value (a study's common bars)."""
    return ~np.isnan(matrix).any(axis=1)

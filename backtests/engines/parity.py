"""How far two runs of the same backtest are apart (SPEC §6: the engines agree).

Pure: equity curves in, the figures the parity check answers out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

# Two equity values agree when they differ by at most this much, relative to the larger one.
PARITY_TOLERANCE = 1e-9


@dataclass(frozen=True)
class EquityParity:
    max_relative_difference: float  # over the bars both curves have; 0.0 when identical
    first_difference: pd.Timestamp | None  # the first bar they part on; None when they agree

    @property
    def agree(self) -> bool:
        return self.first_difference is None


def equity_parity(
    reference: pd.Series, other: pd.Series, *, tolerance: float = PARITY_TOLERANCE
) -> EquityParity:
    """Compare two equity curves bar by bar.

    The relative difference on a bar is |b − a| / max(|a|, |b|) (0 when both are 0). A bar only
    one curve has is a difference too (the runs covered different bars).
    """
    index = reference.index.union(other.index)
    a = reference.reindex(index).to_numpy(dtype=float)
    b = other.reindex(index).to_numpy(dtype=float)
    shared = ~(np.isnan(a) | np.isnan(b))
    scale = np.maximum(np.abs(a), np.abs(b))
    gap = np.abs(b - a)
    relative = np.divide(gap, scale, out=np.zeros_like(gap), where=shared & (scale > 0))
    parted = ~shared | (relative > tolerance)
    first = index[np.argmax(parted)] if parted.any() else None
    largest = float(relative[shared].max()) if shared.any() else 0.0
    return EquityParity(largest, first)

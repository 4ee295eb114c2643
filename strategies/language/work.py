"""The work a strategy definition asks of a run, measured before anything runs (pure).

A request whose indicators are each valid can still ask for hours of computing: a hundred TA-Lib
CCI indicators with a 12,000-bar window on 98 years of daily bars. The number of comparisons is
checked with the definition itself (``validate_definition``); ``work_problems`` needs to know the
data — how many bars the run loads and how much history each symbol has — and checks the bounds
of ``backfolio.limits`` that depend on it: distinct signals per run, each indicator's window
against its symbol's history, and the indicator work (bars × window, summed).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from backfolio.limits import MAX_INDICATOR_WORK, MAX_SIGNALS_PER_RUN
from strategies.language.definitions import iter_comparisons
from strategies.language.problems import Problem, join_path
from strategies.language.signals import normalize_signal, signal_lookback


def loaded_bar_count(run_bars: int, warmup: int, histories: Iterable[int]) -> int:
    """Bars a run loads: its own, plus as much of the ``warmup`` as the longest of the symbols'
    ``histories`` (bars through the end date) has before the first bar."""
    history_before = max((history - run_bars for history in histories), default=0)
    return run_bars + min(warmup, max(history_before, 0))


def work_problems(
    definition: Any,
    *,
    run_symbols: Sequence[str] | None,
    loaded_bars: int,
    history_bars: Callable[[str], int],
) -> list[Problem]:
    """Problems with the work a valid ``definition`` asks of one run.

    ``run_symbols``: the symbols a signal strategy trades (a signal without a symbol is computed
    on each); None for an allocation strategy (every signal names its symbol). ``loaded_bars``:
    the bars the run loads (its own plus the warm-up history). ``history_bars(symbol)``: the bars
    ``symbol`` has through the run's end date.
    """
    problems: list[Problem] = []
    seen: set[str] = set()
    written: set[tuple[str, str | None]] = set()  # signals as written: rules repeat them
    work = 0
    for path, comparison in iter_comparisons(definition):
        for side in ("left", "right"):
            if side not in comparison:
                continue
            spec = comparison[side]
            for default_symbol in run_symbols or [None]:
                as_written = (json.dumps(spec, sort_keys=True), default_symbol)
                if as_written in written:
                    continue
                written.add(as_written)
                canonical = normalize_signal(spec, default_symbol)
                symbol = canonical.get("symbol")
                key = json.dumps(canonical, sort_keys=True)
                if symbol is None or key in seen:
                    continue
                seen.add(key)
                lookback = signal_lookback(canonical)
                available = history_bars(symbol)
                if lookback >= available:
                    problems.append(
                        Problem(
                            join_path(path, side),
                            f"the indicator needs {lookback + 1} bars of {symbol} but {symbol} "
                            f"has {available} bars up to the end date (an indicator's window "
                            "must be shorter than its data)",
                        )
                    )
                work += loaded_bars * max(lookback, 1)
    if len(seen) > MAX_SIGNALS_PER_RUN:
        problems.append(
            Problem(
                "",
                f"Too many signals: the run would compute {len(seen)} distinct signals "
                f"(at most {MAX_SIGNALS_PER_RUN} per run)",
                standalone=True,
            )
        )
    if work > MAX_INDICATOR_WORK:
        problems.append(
            Problem(
                "",
                f"Too much indicator work: {work:,} bar-windows (bars × window summed over the "
                f"signals; at most {MAX_INDICATOR_WORK:,} per run); use shorter windows, fewer "
                "indicators or a shorter date range",
                standalone=True,
            )
        )
    return problems

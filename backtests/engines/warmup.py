"""Load the engines' code before the first real backtest of a process.

Almost every run needs no compiling at all: vectorbt-rust's kernels run signal strategies
expressed as plain arrays and every allocation, and the warm-up of those paths is importing
vectorbt and running each once on a few synthetic bars (milliseconds after the import). Only
the runs named by ``vectorbt_engine.signal_callback_reasons`` (time exits, a stop loss tighter
than the trailing stop, an entry and an exit on the same bar) go through vectorbt's simulator
that takes numba callbacks, which numba cannot cache on disk: each process compiles it once
(10–40 s). ``warm_signal_callbacks`` does that ahead of time, now or in a background thread.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

DEFAULT_NUMBA_CACHE_DIR = Path(__file__).resolve().parents[2] / "var" / "numba-cache"
CALLBACK_MODES = ("now", "background", "skip")

logger = logging.getLogger(__name__)
_callbacks_lock = threading.Lock()
_callbacks_thread: threading.Thread | None = None
_callbacks_warm = False


def warm_engines(*, signal_callbacks: str = "skip") -> float:
    """Run the no-compile paths on synthetic bars; returns the seconds it took.

    ``signal_callbacks`` says what to do about the callback path: ``"skip"`` (compile it on first
    use), ``"now"`` (compile it before returning) or ``"background"`` (a daemon thread compiles
    it; never before a fork: threads do not survive one, and a lock held mid-compile would stay
    held in the child forever).
    """
    if signal_callbacks not in CALLBACK_MODES:
        raise ValueError(f"signal_callbacks must be one of {', '.join(CALLBACK_MODES)}.")
    os.environ.setdefault("NUMBA_CACHE_DIR", str(DEFAULT_NUMBA_CACHE_DIR))
    started = time.perf_counter()
    from backtests.engines.vectorbt_engine import VectorbtEngine

    engine = VectorbtEngine()
    for data in _fast_path_inputs():
        engine.run(data)
    from metrics.research import warm_kernels

    warm_kernels()  # the research sweeps' compiled CSCV loop, from numba's on-disk cache
    elapsed = time.perf_counter() - started
    if signal_callbacks == "now":
        warm_signal_callbacks()
    elif signal_callbacks == "background":
        warm_signal_callbacks_in_background()
    return elapsed


def warm_signal_callbacks() -> float:
    """Compile vectorbt's callback simulator in this process; returns the seconds it took."""
    global _callbacks_warm
    started = time.perf_counter()
    with _callbacks_lock:
        if not _callbacks_warm:
            from backtests.engines.vectorbt_engine import VectorbtEngine

            VectorbtEngine().run(_callback_input())
            _callbacks_warm = True
    return time.perf_counter() - started


def warm_signal_callbacks_in_background() -> threading.Thread:
    """Start (once) a daemon thread that compiles the callback path; returns it."""
    global _callbacks_thread
    with _callbacks_lock:
        if _callbacks_thread is None:
            _callbacks_thread = threading.Thread(
                target=_log_callback_warm_up, name="warm-signal-callbacks", daemon=True
            )
            _callbacks_thread.start()
            atexit.register(_wait_for_callback_warm_up, _callbacks_thread)
        return _callbacks_thread


# A daemon thread is stopped wherever it is when the interpreter finalises; stopped inside LLVM
# mid-compile, it takes the process down (an abort or a segfault) after its work is done. An
# exit waits for the compile to end, as long as a cold compile takes at most.
_EXIT_WAIT_SECONDS = 120


def _wait_for_callback_warm_up(thread: threading.Thread) -> None:
    thread.join(_EXIT_WAIT_SECONDS)


def _log_callback_warm_up() -> None:
    try:
        seconds = warm_signal_callbacks()
    except Exception:  # an optimisation: the first such run compiles it instead
        logger.exception("Compiling the signal callback path failed")
    else:
        logger.info("Signal callback path compiled in %.1f s", seconds)


def _synthetic_close(columns: tuple[str, ...]) -> pd.DataFrame:
    index = pd.bdate_range("2020-01-01", periods=50)
    prices = 100.0 * np.cumprod(1.0 + np.sin(np.arange(50.0)) / 50.0)
    values = {name: prices if k % 2 == 0 else prices[::-1].copy() for k, name in enumerate(columns)}
    return pd.DataFrame(values, index=index)


def _signal_input(**options):
    from backtests.engines.base import EngineInput

    close = _synthetic_close(("A",))
    rising = close.diff() > 0
    defaults = dict(
        close=close,
        initial_capital=10_000.0,
        commission=0.001,
        slippage=0.001,
        kind="signal",
        entries=rising,
        exits=~rising,
    )
    return EngineInput(**{**defaults, **options})


def _fast_path_inputs():
    from backtests.engines.base import EngineInput

    yield _signal_input(stop_loss=0.03, trailing_stop=0.02, take_profit=0.05)
    yield _signal_input(size=0.5, direction="short", stop_loss=0.02)
    close = _synthetic_close(("A", "B"))
    weights = pd.DataFrame(np.nan, index=close.index, columns=close.columns)
    weights.iloc[::10] = [0.6, 0.4]
    yield EngineInput(
        close=close,
        initial_capital=10_000.0,
        commission=0.001,
        slippage=0.0,
        kind="allocation",
        target_weights=weights,
    )


def _callback_input():
    return _signal_input(stop_loss=0.02, trailing_stop=0.03, take_profit=0.05, max_holding_bars=5)

"""Engines register by name; adding an engine is one new module that calls ``register``."""

from __future__ import annotations

from backtests.engines.base import Engine, EngineError

_ENGINES: dict[str, Engine] = {}

# The engine a run uses when its request names none (the v1 origin service's default).
DEFAULT_ENGINE = "vectorbt"


def register(engine: Engine) -> Engine:
    _ENGINES[engine.name] = engine
    return engine


def get_engine(name: str) -> Engine:
    try:
        return _ENGINES[name]
    except KeyError:
        known = ", ".join(available_engines()) or "none"
        raise EngineError(f"Unknown engine {name!r}; available engines: {known}.") from None


def available_engines() -> list[str]:
    return sorted(_ENGINES)


def runs_signal_batches(name: str) -> bool:
    """Whether the engine runs many signal inputs as one vectorised call (``run_signal_batch``);
    callers ask this instead of knowing which engines can."""
    return callable(getattr(_ENGINES.get(name), "run_signal_batch", None))

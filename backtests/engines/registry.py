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


def engines_default_first() -> tuple[str, ...]:
    """The registered engines, the default first, then the others by name (as choices are
    listed to a user)."""
    names = available_engines()
    return tuple(sorted(names, key=lambda name: (name != DEFAULT_ENGINE, name)))


def other_engine(name: str) -> str | None:
    """The engine a run is compared with (parity, a re-run on the other engine): the first
    registered engine that is not ``name``; None when there is none."""
    return next((other for other in available_engines() if other != name), None)


def distribution(name: str) -> str:
    """The installed library whose version decides ``name``'s numbers (``name`` itself for an
    engine that does not say)."""
    return getattr(_ENGINES.get(name), "distribution", name)


def runs_quickly(name: str) -> bool:
    """Whether a run on ``name`` takes milliseconds, so that a request may wait for several."""
    return bool(getattr(_ENGINES.get(name), "quick", False))


def runs_signal_batches(name: str) -> bool:
    """Whether the engine runs many signal inputs as one vectorised call (``run_signal_batch``);
    callers ask this instead of knowing which engines can."""
    return callable(getattr(_ENGINES.get(name), "run_signal_batch", None))

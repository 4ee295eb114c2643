"""Engines behind one interface; importing this package registers both adapters.

The adapters import their libraries lazily, so importing the registry stays fast.
"""

from backtests.engines import backtrader_engine, vectorbt_engine
from backtests.engines.base import (
    Engine,
    EngineError,
    EngineInput,
    EngineLimitationError,
    EngineResult,
    RefusedOrder,
)
from backtests.engines.registry import available_engines, get_engine, register

__all__ = [
    "Engine",
    "EngineError",
    "EngineInput",
    "EngineLimitationError",
    "EngineResult",
    "RefusedOrder",
    "available_engines",
    "backtrader_engine",
    "get_engine",
    "register",
    "vectorbt_engine",
]

"""The strategy language (SPEC §4): pure Python, numpy, pandas and TA-Lib — no Django.

Validate user documents (``validate_definition``, ``validate_condition``, ``validate_plugin``:
lists of ``Problem``), say what they need from market data (``required_symbols``,
``warmup_bars``), compute indicators (``compute_signal``), evaluate conditions
(``evaluate_condition``) and compile definitions into engine input (``compile_signal_strategy``,
``compile_allocation_strategy``). Built-in strategies live in ``PLUGINS``.
"""

from strategies.language.compiler import (
    DIRECTIONS,
    REBALANCE_FREQUENCIES,
    AllocationPlan,
    SignalMasks,
    SignalPlan,
    compile_allocation_strategy,
    compile_signal_masks,
    compile_signal_strategy,
    rebalance_schedule,
)
from strategies.language.conditions import (
    COMPARISONS,
    evaluate_condition,
    iter_signals,
    validate_condition,
)
from strategies.language.definitions import (
    STRATEGY_KINDS,
    WEIGHT_SUM_TOLERANCE,
    allocation_symbols,
    iter_conditions,
    required_symbols,
    validate_definition,
    warmup_bars,
)
from strategies.language.plugins import PLUGINS, ParamSpec, Plugin, build_plugin, validate_plugin
from strategies.language.problems import Problem
from strategies.language.signals import (
    SignalCache,
    compute_signal,
    known_signal_types,
    normalize_signal,
    validate_signal,
)
from strategies.language.symbols import symbol_format_problem
from strategies.language.work import work_problems

__all__ = [
    "COMPARISONS",
    "DIRECTIONS",
    "PLUGINS",
    "REBALANCE_FREQUENCIES",
    "STRATEGY_KINDS",
    "WEIGHT_SUM_TOLERANCE",
    "AllocationPlan",
    "ParamSpec",
    "Plugin",
    "Problem",
    "SignalCache",
    "SignalMasks",
    "SignalPlan",
    "allocation_symbols",
    "build_plugin",
    "compile_allocation_strategy",
    "compile_signal_masks",
    "compile_signal_strategy",
    "compute_signal",
    "evaluate_condition",
    "iter_conditions",
    "iter_signals",
    "known_signal_types",
    "normalize_signal",
    "rebalance_schedule",
    "required_symbols",
    "symbol_format_problem",
    "validate_condition",
    "validate_definition",
    "validate_plugin",
    "validate_signal",
    "warmup_bars",
    "work_problems",
]

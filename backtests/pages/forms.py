"""Forms an analyst fills in to start runs from a strategy's page (SPEC §11).

They turn typed fields into the v1 run configuration (SPEC §3) and parameter grids; the services
validate that configuration like any API request, and their problems come back onto the field
they name (``field_for_path``).
"""

from __future__ import annotations

import copy
import math
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms

from backtests.engines import available_engines
from backtests.engines.registry import DEFAULT_ENGINE
from backtests.portfolio import requests as portfolio_contract
from backtests.research.grid import DOCUMENT_FIELDS, expand
from backtests.research.grid import MAX_COMBINATIONS as RESEARCH_MAX_COMBINATIONS
from backtests.research.walk_forward.core import SCHEMES
from backtests.services import MAX_SWEEP_ENTRIES, RANK_METRICS
from strategies.language import PLUGINS, ParamSpec, required_symbols, validate_definition
from strategies.language.compiler import EVALUATION_FREQUENCIES, MAX_ALLOCATION_SIGNAL_DELAY
from strategies.models import Strategy

MAX_SWEEP_RUNS = MAX_SWEEP_ENTRIES
# A range written start:stop:step may list at most this many values (the grids' own limits
# refuse larger products anyway; this keeps one line from allocating millions of numbers).
MAX_RANGE_VALUES = 1_000
PLUGIN_FIELD_SEPARATOR = "__"
RULE_PATH_PREFIX = "signal."
PLUGIN_PATH_PREFIX = "signal_plugin_params."
DEFAULT_START = date(2015, 1, 2)
DEFAULT_END = date(2020, 12, 31)


def engine_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in available_engines()]


def _coverages() -> dict[str, Any]:
    from marketdata.selectors import symbol_list

    return {coverage.symbol: coverage for coverage in symbol_list()}


def symbol_choices() -> list[tuple[str, str]]:
    return [
        (symbol, f"{symbol} ({coverage.first_date} – {coverage.last_date})")
        for symbol, coverage in _coverages().items()
    ]


def plugin_choices(*, blank: str) -> list[tuple[str, str]]:
    return [("", blank), *((name, name) for name in sorted(PLUGINS))]


def rank_metric_choices() -> list[tuple[str, str]]:
    return [(key, key) for key in RANK_METRICS]


def plugin_field_name(plugin: str, param: str) -> str:
    return f"{plugin}{PLUGIN_FIELD_SEPARATOR}{param}"


def _param_help(plugin_name: str, name: str, spec: ParamSpec) -> str:
    bounds = []
    if spec.min is not None:
        bounds.append(f"at least {spec.min:g}")
    if spec.max is not None:
        bounds.append(f"at most {spec.max:g}")
    kind = "Whole number" if spec.type == "int" else "Number"
    text = f"{kind}, {' and '.join(bounds)}; default {spec.default:g}." if bounds else ""
    return " ".join(part for part in (spec.description, text) if part)


def _param_field(plugin_name: str, name: str, spec: ParamSpec) -> forms.Field:
    field_class = forms.IntegerField if spec.type == "int" else forms.FloatField
    field = field_class(
        required=False,
        label=f"{name}",
        initial=spec.normalise(spec.default),
        min_value=spec.min,
        max_value=spec.max,
        help_text=_param_help(plugin_name, name, spec),
    )
    # The page shows only the chosen signal's parameters.
    field.plugin = plugin_name
    return field


def data_coverage(strategy: Strategy, symbol: str | None = None) -> tuple[date, date] | None:
    """The dates every symbol the run reads has data for: the traded symbol (a signal strategy)
    or the allocation's groups, and the symbols its signals read; None when unknown."""
    coverages = _coverages()
    wanted = [symbol] if symbol else []
    # An invalid definition names no symbols here; the run's own validation reports it.
    if strategy.definition is not None and not validate_definition(
        strategy.kind, strategy.definition
    ):
        wanted.extend(required_symbols(strategy.definition, symbol))
    spans = []
    for name in dict.fromkeys(wanted):
        base = name.partition("?")[0]
        if base.upper() == "CASH":
            continue
        coverage = coverages.get(base)
        if coverage is None:
            return None
        spans.append((coverage.first_date, coverage.last_date))
    if not spans:
        return None
    return max(first for first, _ in spans), min(last for _, last in spans)


def _tactical_fields() -> dict[str, forms.Field]:
    """When an allocation strategy's rules are evaluated, and how many bars later it acts."""
    return {
        "evaluation_frequency": forms.ChoiceField(
            required=False,
            choices=[(name, name) for name in EVALUATION_FREQUENCIES],
            initial=portfolio_contract.DEFAULT_EVALUATION_FREQUENCY,
            help_text="How often the switching rules are evaluated.",
        ),
        "signal_delay": forms.IntegerField(
            required=False,
            min_value=0,
            max_value=MAX_ALLOCATION_SIGNAL_DELAY,
            initial=portfolio_contract.DEFAULT_SIGNAL_DELAY,
            help_text="Bars between a rule's decision and the trade.",
        ),
    }


def _cashflow_fields() -> dict[str, forms.Field]:
    """Money added to or taken from an allocation strategy's portfolio every period."""
    return {
        "cashflow_amount": forms.FloatField(
            required=False,
            help_text="Each period: positive adds money, negative withdraws it (needs a "
            "frequency).",
        ),
        "cashflow_frequency": forms.ChoiceField(
            required=False,
            choices=[
                ("", "no cash flows"),
                *((name, name) for name in portfolio_contract.CASHFLOW_FREQUENCIES),
            ],
            help_text="On the first trading day of each period after the start.",
        ),
    }


class RunSettingsForm(forms.Form):
    """What every run needs: engine, dates (within the data), capital and costs; a signal
    strategy also its symbol, an allocation strategy its rebalancing frequency."""

    engine = forms.ChoiceField()
    start_date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    end_date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    initial_capital = forms.FloatField(min_value=0.01, initial=100_000.0)
    commission = forms.FloatField(
        min_value=0, max_value=0.1, initial=0.001, help_text="Fraction of each trade's value."
    )
    slippage = forms.FloatField(
        min_value=0, max_value=0.1, initial=0.0005, help_text="Fraction of each fill's price."
    )

    def __init__(self, *args, strategy: Strategy, **kwargs):
        super().__init__(*args, **kwargs)
        self.strategy = strategy
        self.fields["engine"].choices = engine_choices()
        self.fields["engine"].initial = DEFAULT_ENGINE
        universe = list(strategy.universe or [])
        symbol = None
        if strategy.kind == Strategy.Kind.SIGNAL:
            symbol = universe[0] if universe else "SPY"
            self.fields["symbol"] = forms.ChoiceField(
                choices=symbol_choices(), initial=symbol, help_text="The instrument traded."
            )
            self.order_fields(["engine", "symbol"])
        else:
            from strategies.language import REBALANCE_FREQUENCIES

            self.fields["rebalance_frequency"] = forms.ChoiceField(
                choices=[(name, name) for name in REBALANCE_FREQUENCIES],
                initial="monthly",
                help_text="How often the held group's weights are restored.",
            )
            self.fields.update(_tactical_fields())
            self.fields.update(_cashflow_fields())
        self.coverage = data_coverage(strategy, symbol)
        start, end = DEFAULT_START, DEFAULT_END
        if self.coverage is not None:
            first, last = self.coverage
            start, end = max(start, first), min(end, last)
            if start >= end:
                start, end = first, last
            for name in ("start_date", "end_date"):
                widget = self.fields[name].widget
                widget.attrs.update({"min": first.isoformat(), "max": last.isoformat()})
                self.fields[name].help_text = f"The data covers {first} to {last}."
        self.fields["start_date"].initial = start
        self.fields["end_date"].initial = end

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("start_date"), cleaned.get("end_date")
        if start and end and start >= end:
            self.add_error("end_date", "The end date must be after the start date.")
        return cleaned

    def run_config(self) -> dict[str, Any]:
        data = self.cleaned_data
        config: dict[str, Any] = {}
        if "symbol" in self.fields:
            config["symbol"] = data["symbol"]
        config["start_date"] = data["start_date"].isoformat()
        config["end_date"] = data["end_date"].isoformat()
        if "rebalance_frequency" in self.fields:
            config["rebalance_frequency"] = data["rebalance_frequency"]
            # Only when not the default, so a run's fingerprint is the one it had before these
            # settings existed.
            evaluation = data["evaluation_frequency"]
            if evaluation and evaluation != portfolio_contract.DEFAULT_EVALUATION_FREQUENCY:
                config["evaluation_frequency"] = evaluation
            if data["signal_delay"]:
                config["signal_delay"] = data["signal_delay"]
            for name in ("cashflow_amount", "cashflow_frequency"):
                if data[name] not in (None, ""):
                    config[name] = data[name]
        return config

    def field_for_path(self, path: str) -> str | None:
        """The form field a service problem's path names (``config.start_date`` → start_date)."""
        for prefix in ("config.", "base_config."):
            if path.startswith(prefix):
                path = path[len(prefix) :]
        if path in ("symbols", "symbols.0"):
            path = "symbol"
        return path if path in self.fields else None


class BacktestStartForm(RunSettingsForm):
    """One run: the strategy's own definition, or one of the built-in signals with typed
    parameters (only the chosen signal's parameters are read)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        own = (
            "The traded symbol"
            if self.strategy.kind == Strategy.Kind.SIGNAL
            else f"{portfolio_contract.DEFAULT_BENCHMARK} (an allocation has no symbol of its own)"
        )
        self.fields["benchmark"] = forms.ChoiceField(
            required=False,
            choices=[("", own), *symbol_choices()],
            help_text="What the run's page holds it against (bought and held); it can be "
            "changed there at any time.",
        )
        if self.strategy.kind != Strategy.Kind.SIGNAL:
            return
        self.fields["signal_plugin_key"] = forms.ChoiceField(
            required=False,
            label="Built-in signal",
            choices=plugin_choices(blank="The strategy's own definition"),
            help_text="Leave empty to run the strategy's own definition (or buy and hold).",
        )
        chosen = self.data.get(self.add_prefix("signal_plugin_key")) if self.is_bound else None
        for plugin in PLUGINS.values():
            if self.is_bound and plugin.name != chosen:
                continue  # a signal not chosen is not read, so its fields are not checked
            for name, spec in plugin.params.items():
                self.fields[plugin_field_name(plugin.name, name)] = _param_field(
                    plugin.name, name, spec
                )

    def clean(self):
        cleaned = super().clean()
        plugin = cleaned.get("signal_plugin_key")
        if plugin:
            for relation_param, message in PLUGINS[plugin].relations(self.plugin_params()):
                self.add_error(plugin_field_name(plugin, relation_param), message)
        return cleaned

    @staticmethod
    def initial_from(backtest) -> dict[str, Any]:
        """The form's values for running ``backtest``'s settings again."""
        config = backtest.config or {}
        symbols = config.get("symbols") or ([config["symbol"]] if "symbol" in config else [])
        initial: dict[str, Any] = {
            "engine": backtest.engine,
            "initial_capital": backtest.initial_capital,
            "commission": backtest.commission,
            "slippage": backtest.slippage,
            "start_date": config.get("start_date"),
            "end_date": config.get("end_date"),
            "rebalance_frequency": config.get("rebalance_frequency", "monthly"),
            "benchmark": backtest.benchmark,
        }
        if symbols:
            initial["symbol"] = symbols[0]
        plugin = config.get("signal_plugin_key")
        if plugin in PLUGINS:
            initial["signal_plugin_key"] = plugin
            for name, value in (config.get("signal_plugin_params") or {}).items():
                initial[plugin_field_name(plugin, name)] = value
        return {key: value for key, value in initial.items() if value is not None}

    def plugin_params(self) -> dict[str, Any]:
        plugin = self.cleaned_data.get("signal_plugin_key")
        if not plugin:
            return {}
        params = {}
        for name, spec in PLUGINS[plugin].params.items():
            value = self.cleaned_data.get(plugin_field_name(plugin, name))
            params[name] = spec.normalise(spec.default if value is None else value)
        return params

    def run_config(self) -> dict[str, Any]:
        config = super().run_config()
        plugin = self.cleaned_data.get("signal_plugin_key")
        if plugin:
            config["signal_plugin_key"] = plugin
            if PLUGINS[plugin].params:
                config["signal_plugin_params"] = self.plugin_params()
        return config

    def field_for_path(self, path: str) -> str | None:
        plugin = (
            self.cleaned_data.get("signal_plugin_key") if hasattr(self, "cleaned_data") else None
        )
        bare = path.removeprefix("config.")
        if plugin and bare.startswith(PLUGIN_PATH_PREFIX):
            name = plugin_field_name(plugin, bare[len(PLUGIN_PATH_PREFIX) :])
            return name if name in self.fields else None
        return super().field_for_path(path)


# --- parameter grids ---------------------------------------------------------------------------


def _number(text: str) -> int | float:
    text = text.strip()
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return (
        int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value
    )


def _range_values(text: str) -> list[int | float]:
    """``start:stop:step`` inclusive of stop, computed in decimals so 0.1 steps land exactly."""
    parts = text.split(":")
    if len(parts) != 3:
        raise ValueError("write a range as start:stop:step")
    try:
        start, stop, step = (Decimal(part.strip()) for part in parts)
    except InvalidOperation:
        raise ValueError("a range's start, stop and step must be numbers") from None
    if not all(value.is_finite() for value in (start, stop, step)) or step <= 0:
        raise ValueError("a range's step must be a number greater than 0")
    if stop < start:
        raise ValueError("a range's stop must not be below its start")
    count = int((stop - start) / step) + 1
    if count > MAX_RANGE_VALUES:
        raise ValueError(f"the range has {count:,} values; at most {MAX_RANGE_VALUES:,}")
    integral = all("." not in part and "e" not in part.lower() for part in parts)
    values = [start + step * index for index in range(count)]
    return [int(value) if integral else float(value) for value in values]


def parse_values(text: str) -> list[int | float]:
    """``10, 20, 50`` (a list) or ``10:50:10`` (start:stop:step, stop included)."""
    if ":" in text:
        return _range_values(text)
    try:
        values = [_number(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError("values must be numbers separated by commas") from None
    if not values:
        raise ValueError("no values")
    if len(set(values)) != len(values):
        raise ValueError("a value appears twice")
    return values


def rule_parameters(definition: Any, path: str = "") -> list[tuple[str, Any]]:
    """The numbers of a definition a sweep may vary, as dotted paths with their current value
    (``entry.right.window``): indicator settings and thresholds, not allocation weights."""
    found: list[tuple[str, Any]] = []
    if isinstance(definition, dict):
        for key, value in definition.items():
            if key == "allocations":
                continue
            found.extend(rule_parameters(value, f"{path}.{key}" if path else str(key)))
    elif isinstance(definition, list):
        for index, value in enumerate(definition):
            found.extend(rule_parameters(value, f"{path}.{index}" if path else str(index)))
    elif isinstance(definition, int | float) and not isinstance(definition, bool) and path:
        found.append((path, definition))
    return found


def _set_path(document: Any, parts: list[str], value: Any) -> None:
    node = document
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    last = parts[-1]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


class GridFieldMixin(forms.Form):
    """A grid typed one line per parameter: ``name = values``. A name is a built-in signal's
    parameter (``fast``) or a number inside the strategy's own rules as a dotted path
    (``entry.right.window``); values are a list (``10, 20``) or a range (``10:50:10``)."""

    grid = forms.CharField(
        label="Parameters to vary",
        widget=forms.Textarea(
            attrs={"rows": 3, "placeholder": "fast = 5:20:5\nslow = 50, 100, 200"}
        ),
    )

    max_combinations = MAX_SWEEP_RUNS

    def setup_grid(self) -> None:
        # Sorted: a stored definition's key order is the database's (jsonb keeps none).
        self.rule_paths = dict(sorted(rule_parameters(self.strategy.definition)))
        signal = self.strategy.kind == Strategy.Kind.SIGNAL
        if signal:
            self.fields["signal_plugin_key"] = forms.ChoiceField(
                required=False,
                label="Built-in signal",
                choices=plugin_choices(blank="The strategy's own definition"),
                help_text="The parameters of the chosen signal are varied by name (fast, slow…).",
            )
        lines = [f"Every combination of the values is one run (at most {self.max_combinations:,})."]
        if signal:
            lines.append(
                "Built-in parameters: "
                + "; ".join(
                    f"{name}: {', '.join(plugin.params)}"
                    for name, plugin in sorted(PLUGINS.items())
                    if plugin.params
                )
                + "."
            )
        if self.rule_paths:
            lines.append(
                "This strategy's rule parameters: "
                + ", ".join(f"{path} (now {value:g})" for path, value in self.rule_paths.items())
                + "."
            )
        self.fields["grid"].help_text = " ".join(lines)
        self.fields["grid"].widget.attrs["data-combinations"] = "grid"
        self.order_fields([*(f for f in self.fields if f != "grid"), "grid"])

    def clean_grid(self) -> dict[str, list[int | float]]:
        axes: dict[str, list[int | float]] = {}
        for number, line in enumerate(self.cleaned_data["grid"].splitlines(), start=1):
            if not line.strip():
                continue
            name, separator, values = line.partition("=")
            name = name.strip()
            if not separator or not name:
                raise forms.ValidationError(f"Line {number}: write it as name = values.")
            if name in axes:
                raise forms.ValidationError(f"Line {number}: {name} appears twice.")
            try:
                axes[name] = parse_values(values)
            except ValueError as error:
                raise forms.ValidationError(f"Line {number} ({name}): {error}.") from None
        if not axes:
            raise forms.ValidationError("Give at least one parameter with its values.")
        combinations = math.prod(len(values) for values in axes.values())
        if combinations > self.max_combinations:
            raise forms.ValidationError(
                f"The grid has {combinations:,} combinations; at most "
                f"{self.max_combinations:,} are allowed."
            )
        return axes

    def clean(self):
        cleaned = super().clean()
        axes = cleaned.get("grid")
        if not axes:
            return cleaned
        plugin_name = cleaned.get("signal_plugin_key")
        plugin_params = PLUGINS[plugin_name].params if plugin_name else {}
        unknown = [
            name for name in axes if name not in plugin_params and name not in self.rule_paths
        ]
        if unknown:
            known = [*plugin_params, *self.rule_paths]
            subject = plugin_name or "The strategy"
            self.add_error(
                "grid",
                f"{subject} has no parameter {', '.join(unknown)} "
                f"(it has {', '.join(known) or 'none'}).",
            )
        elif plugin_name and any(name in self.rule_paths for name in axes):
            self.add_error(
                "grid",
                "A built-in signal replaces the strategy's rules: vary either its parameters or "
                "the rules' numbers, not both.",
            )
        return cleaned

    def config_paths(self) -> dict[str, list[int | float]]:
        """The grid as dotted configuration paths (what the research services take)."""
        plugin = self.cleaned_data.get("signal_plugin_key")
        return {
            (f"{PLUGIN_PATH_PREFIX}{name}" if plugin else f"{RULE_PATH_PREFIX}{name}"): values
            for name, values in self.cleaned_data["grid"].items()
        }

    def grid_base_config(self) -> dict[str, Any]:
        config = self.run_config()
        plugin = self.cleaned_data.get("signal_plugin_key")
        if plugin:
            config["signal_plugin_key"] = plugin
            config["signal_plugin_params"] = PLUGINS[plugin].defaults()
        else:
            config["signal"] = self.strategy.definition
        return config

    def research_grid(self) -> tuple[dict | None, list | None]:
        """``(grid, None)`` when every path reaches through objects only (the research grid
        merges objects key by key), else ``(None, param_grid)`` with whole documents."""
        paths = self.config_paths()
        if not any(part.isdigit() for path in paths for part in path.split(".")):
            return paths, None
        return None, self.param_grid()

    def param_grid(self) -> list[dict[str, Any]]:
        """One override object per combination, each top-level document whole (a v1 sweep
        replaces top-level keys)."""
        base = self.grid_base_config()
        paths = self.config_paths()
        combinations = expand(paths, None, config_keys=DOCUMENT_FIELDS)
        entries = []
        for overrides in combinations:
            entry: dict[str, Any] = {}
            for path in paths:
                head, *rest = path.split(".")
                document = entry.setdefault(head, copy.deepcopy(base[head]))
                value = overrides
                for part in path.split("."):
                    value = value[part]
                _set_path(document, rest, value)
            entries.append(entry)
        return entries


class SweepStartForm(GridFieldMixin, RunSettingsForm):
    """A v1 sweep: every combination is a full backtest, ranked by one metric."""

    rank_metric = forms.ChoiceField(initial="perf_sharpe_ratio")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["rank_metric"].choices = rank_metric_choices()
        self.setup_grid()

    def base_config(self) -> dict[str, Any]:
        config = self.grid_base_config()
        if "signal_plugin_key" in config:
            config.pop("signal_plugin_params")
        return config


class ResearchSweepStartForm(GridFieldMixin, RunSettingsForm):
    """A research sweep (SPEC §13.2): thousands of combinations, the returns matrix and the
    overfitting statistics, against a benchmark."""

    max_combinations = RESEARCH_MAX_COMBINATIONS

    rank_metric = forms.ChoiceField(initial="perf_sharpe_ratio")
    benchmark = forms.ChoiceField(
        required=False, help_text="Bought and held for the SPA test; empty: the traded symbol."
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["rank_metric"].choices = rank_metric_choices()
        self.fields["benchmark"].choices = [("", "The traded symbol"), *symbol_choices()]
        if self.strategy.kind != Strategy.Kind.SIGNAL:
            self.fields["benchmark"].required = True
            self.fields["benchmark"].initial = "SPY"
            self.fields["benchmark"].help_text = "Bought and held for the SPA test."
        self.setup_grid()


class WalkForwardStartForm(GridFieldMixin, RunSettingsForm):
    """A walk-forward (SPEC §13.3): choose the best combination in each in-sample window and
    run it on the following out-of-sample window."""

    max_combinations = RESEARCH_MAX_COMBINATIONS

    rank_metric = forms.ChoiceField(initial="perf_sharpe_ratio")
    scheme = forms.ChoiceField(choices=[(name, name) for name in SCHEMES])
    in_sample_months = forms.IntegerField(min_value=1, initial=24)
    out_of_sample_months = forms.IntegerField(min_value=1, initial=6)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["rank_metric"].choices = rank_metric_choices()
        self.setup_grid()


# --- Backfolio portfolio runs -------------------------------------------------------------------


def _fraction_field(help_text: str, **kwargs) -> forms.FloatField:
    return forms.FloatField(required=False, help_text=help_text, **kwargs)


class PortfolioRunForm(forms.Form):
    """An allocation strategy run as a Backfolio portfolio (contract v2.0): every config field of
    the contract, each optional one empty for its default; the contract's own validation decides
    (its messages land on the field they name)."""

    engine = forms.ChoiceField(choices=[(name, name) for name in portfolio_contract.ENGINES])
    start_date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    end_date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    initial_capital = forms.FloatField(initial=portfolio_contract.DEFAULT_INITIAL_CAPITAL)
    rebalance_frequency = forms.ChoiceField(initial=portfolio_contract.DEFAULT_REBALANCE_FREQUENCY)
    base_commission = forms.FloatField(
        initial=portfolio_contract.DEFAULT_COMMISSION, help_text="Fraction of each trade's value."
    )
    benchmark = forms.CharField(initial=portfolio_contract.DEFAULT_BENCHMARK, help_text="A symbol.")
    price_adjustment = forms.ChoiceField(
        choices=[(name, name) for name in portfolio_contract.PRICE_ADJUSTMENTS]
    )
    enable_risk_management = forms.BooleanField(
        required=False, help_text="The exit rules below act only when this is on."
    )
    stop_loss = _fraction_field("Exit a position this fraction below its entry (0–1).")
    take_profit = _fraction_field("Exit a position this fraction above its entry.")
    trailing_stop = _fraction_field("Exit this fraction below a position's peak (0–1).")
    max_drawdown_limit = _fraction_field("Go to cash past this drawdown of the portfolio (0–1).")
    volatility_exit_threshold = _fraction_field("Exit when annualised volatility passes this.")
    target_volatility = _fraction_field("Scale exposure towards this annualised volatility.")
    max_position_size = _fraction_field(
        "Largest weight of one position "
        f"(default {portfolio_contract.DEFAULT_MAX_POSITION_SIZE:g}).",
    )
    min_position_size = _fraction_field(
        f"Smallest weight kept (default {portfolio_contract.DEFAULT_MIN_POSITION_SIZE:g}).",
    )
    cashflow_amount = forms.FloatField(
        required=False,
        help_text="Each period: positive adds money, negative withdraws it (needs a frequency).",
    )
    cashflow_frequency = forms.ChoiceField(
        required=False,
        choices=[("", "no cash flows"), *((n, n) for n in portfolio_contract.CASHFLOW_FREQUENCIES)],
        help_text="On the first trading day of each period after the start.",
    )
    OPTIONAL = (
        "stop_loss",
        "take_profit",
        "trailing_stop",
        "max_drawdown_limit",
        "volatility_exit_threshold",
        "target_volatility",
        "max_position_size",
        "min_position_size",
        "cashflow_amount",
        "cashflow_frequency",
    )

    def __init__(self, *args, strategy: Strategy, **kwargs):
        super().__init__(*args, **kwargs)
        from strategies.language import REBALANCE_FREQUENCIES

        self.strategy = strategy
        self.fields["rebalance_frequency"].choices = [(n, n) for n in REBALANCE_FREQUENCIES]
        self.fields.update(_tactical_fields())
        coverage = data_coverage(strategy)
        start, end = DEFAULT_START, DEFAULT_END
        if coverage is not None:
            first, last = coverage
            start, end = max(start, first), min(end, last)
            for name in ("start_date", "end_date"):
                self.fields[name].widget.attrs.update(
                    {"min": first.isoformat(), "max": last.isoformat()}
                )
                self.fields[name].help_text = f"The data covers {first} to {last}."
        self.fields["start_date"].initial = start
        self.fields["end_date"].initial = end

    def payload(self) -> dict[str, Any]:
        """The contract's request body for this strategy and these settings."""
        data = self.cleaned_data
        config: dict[str, Any] = {
            "start_date": data["start_date"].isoformat(),
            "end_date": data["end_date"].isoformat(),
            "initial_capital": data["initial_capital"],
            "rebalance_frequency": data["rebalance_frequency"],
            "base_commission": data["base_commission"],
            "engine": data["engine"],
            "benchmark": data["benchmark"].strip(),
            "price_adjustment": data["price_adjustment"],
            "enable_risk_management": data["enable_risk_management"],
        }
        optional = (*self.OPTIONAL, "evaluation_frequency", "signal_delay")
        config.update({name: data[name] for name in optional if data[name] not in (None, "")})
        return {
            "name": self.strategy.name,
            "description": self.strategy.description,
            "strategy": self.strategy.definition,
            "config": config,
        }

    def add_contract_problems(self, messages: list[str]) -> None:
        """Each of the contract's messages on the field it starts with (``stop_loss must…``),
        any other above the form."""
        for message in messages:
            field = next(
                (
                    name
                    for name in sorted(self.fields, key=len, reverse=True)
                    if message.lower().startswith((name, f"invalid {name}"))
                ),
                None,
            )
            self.add_error(field, message)

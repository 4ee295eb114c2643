"""Forms an analyst fills in to start a backtest or a sweep from a strategy's page.

They turn the fields into the v1 run configuration (SPEC §3) and a parameter grid; the services
validate that configuration like any API request, and their errors come back onto the form.
"""

from __future__ import annotations

import itertools
from datetime import date
from typing import Any

from django import forms

from backtests.engines import available_engines
from backtests.services import MAX_SWEEP_ENTRIES, RANK_METRICS
from strategies.language import PLUGINS

MAX_SWEEP_RUNS = MAX_SWEEP_ENTRIES


def engine_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in available_engines()]


def symbol_choices() -> list[tuple[str, str]]:
    from marketdata.selectors import symbol_list

    return [
        (coverage.symbol, f"{coverage.symbol} ({coverage.first_date} – {coverage.last_date})")
        for coverage in symbol_list()
    ]


def plugin_choices(*, blank: str) -> list[tuple[str, str]]:
    return [("", blank), *((name, name) for name in sorted(PLUGINS))]


def rank_metric_choices() -> list[tuple[str, str]]:
    return [(key, key) for key in RANK_METRICS]


class OptionalJSONField(forms.JSONField):
    """Empty when there is no value (not the text ``null``)."""

    def prepare_value(self, value):
        return "" if value is None else super().prepare_value(value)


class RunSettingsForm(forms.Form):
    """What every run needs: engine, instrument, dates, capital and costs."""

    engine = forms.ChoiceField()
    symbol = forms.ChoiceField()
    start_date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    end_date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    initial_capital = forms.FloatField(min_value=0.01, initial=100_000.0)
    commission = forms.FloatField(min_value=0, max_value=0.1, initial=0.001)
    slippage = forms.FloatField(min_value=0, max_value=0.1, initial=0.0005)

    def __init__(self, *args, strategy=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["engine"].choices = engine_choices()
        self.fields["symbol"].choices = symbol_choices()
        self.fields["engine"].initial = "vectorbt"
        universe = list(getattr(strategy, "universe", None) or [])
        self.fields["symbol"].initial = universe[0] if universe else "SPY"
        self.fields["start_date"].initial = date(2015, 1, 2)
        self.fields["end_date"].initial = date(2020, 12, 31)

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("start_date"), cleaned.get("end_date")
        if start and end and start >= end:
            self.add_error("end_date", "The end date must be after the start date.")
        return cleaned

    def run_config(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "symbol": data["symbol"],
            "start_date": data["start_date"].isoformat(),
            "end_date": data["end_date"].isoformat(),
        }


class BacktestStartForm(RunSettingsForm):
    signal_plugin_key = forms.ChoiceField(
        required=False,
        label="Built-in signal",
        help_text="Leave empty to run the strategy's own definition (or buy and hold).",
    )
    signal_plugin_params = OptionalJSONField(
        required=False,
        label="Signal parameters (JSON)",
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": '{"fast": 20, "slow": 100}'}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["signal_plugin_key"].choices = plugin_choices(blank="The strategy's own")

    def clean_signal_plugin_params(self):
        params = self.cleaned_data.get("signal_plugin_params")
        if params in (None, ""):
            return None
        if not isinstance(params, dict):
            raise forms.ValidationError('Enter a JSON object such as {"window": 20}.')
        return params

    def run_config(self) -> dict[str, Any]:
        config = super().run_config()
        plugin = self.cleaned_data.get("signal_plugin_key")
        if plugin:
            config["signal_plugin_key"] = plugin
            if self.cleaned_data.get("signal_plugin_params"):
                config["signal_plugin_params"] = self.cleaned_data["signal_plugin_params"]
        return config


class SweepStartForm(RunSettingsForm):
    """A grid over one built-in signal's parameters: one line per parameter, its values
    separated by commas (``fast = 10, 20, 50``); every combination is one run."""

    signal_plugin_key = forms.ChoiceField(label="Built-in signal")
    grid = forms.CharField(
        label="Parameter grid",
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "fast = 10, 20\nslow = 50, 100"}),
        help_text="One parameter per line: name = value, value, … (at most 50 combinations).",
    )
    rank_metric = forms.ChoiceField(initial="perf_sharpe_ratio")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["signal_plugin_key"].choices = plugin_choices(blank="Choose a signal")
        self.fields["rank_metric"].choices = rank_metric_choices()

    def clean_grid(self) -> dict[str, list[float | int]]:
        axes: dict[str, list[float | int]] = {}
        for number, line in enumerate(self.cleaned_data["grid"].splitlines(), start=1):
            if not line.strip():
                continue
            name, separator, values = line.partition("=")
            name = name.strip()
            if not separator or not name:
                raise forms.ValidationError(f"Line {number}: write it as name = value, value.")
            try:
                numbers = [_number(text) for text in values.split(",") if text.strip()]
            except ValueError:
                raise forms.ValidationError(
                    f"Line {number}: the values of {name} must be numbers."
                ) from None
            if not numbers:
                raise forms.ValidationError(f"Line {number}: {name} has no values.")
            if name in axes:
                raise forms.ValidationError(f"Line {number}: {name} appears twice.")
            axes[name] = numbers
        if not axes:
            raise forms.ValidationError("Give at least one parameter with its values.")
        combinations = 1
        for values in axes.values():
            combinations *= len(values)
        if combinations > MAX_SWEEP_RUNS:
            raise forms.ValidationError(
                f"The grid has {combinations} combinations; at most {MAX_SWEEP_RUNS} are allowed."
            )
        return axes

    def clean(self):
        cleaned = super().clean()
        plugin_name, axes = cleaned.get("signal_plugin_key"), cleaned.get("grid")
        if plugin_name and axes:
            unknown = sorted(set(axes) - set(PLUGINS[plugin_name].params))
            if unknown:
                known = ", ".join(PLUGINS[plugin_name].params) or "none"
                self.add_error(
                    "grid", f"{plugin_name} has no parameter {', '.join(unknown)} (it has {known})."
                )
        return cleaned

    def base_config(self) -> dict[str, Any]:
        return {**self.run_config(), "signal_plugin_key": self.cleaned_data["signal_plugin_key"]}

    def param_grid(self) -> list[dict[str, Any]]:
        axes = self.cleaned_data["grid"]
        names = list(axes)
        return [
            {"signal_plugin_params": dict(zip(names, values, strict=True))}
            for values in itertools.product(*(axes[name] for name in names))
        ]


def _number(text: str) -> int | float:
    value = float(text.strip())
    return int(value) if value.is_integer() and "." not in text else value

"""Template filters for the analyst pages and the admin: metrics shown in their units."""

from django import template

from backtests.pages.selectors import metric_display
from metrics.presenters import v1_row_metrics

register = template.Library()


@register.filter
def metric(metrics, key: str) -> str:
    """``{{ backtest.metrics|metric:"total_return" }}`` → ``12.34%``: the v1 flat metric ``key``
    of a row's stored (core) metrics, in its unit; a missing value → ``—``."""
    return metric_display(key, v1_row_metrics(metrics).get(key))


@register.filter
def shown(value, key: str) -> str:
    """A bare metric value in the unit of ``key``."""
    return metric_display(key, value)


@register.filter
def described(backtest):
    """``{% with about=backtest|described %}``: the run's name, symbols, parameters, period."""
    from backtests.pages.selectors import run_description

    return run_description(backtest)


@register.filter
def parameters(values) -> str:
    """Overrides or parameters as words (``fast 20, slow 100``), never as raw JSON."""
    from backtests.pages.selectors import readable_parameters

    return readable_parameters(values if isinstance(values, dict) else {}) or "—"

"""Template filters for the analyst pages and the admin: metrics shown in their units."""

from django import template

from backtests.pages.selectors import metric_display

register = template.Library()


@register.filter
def metric(metrics, key: str) -> str:
    """``{{ backtest.metrics|metric:"total_return" }}`` → ``12.34%``; a missing value → ``—``."""
    return metric_display(key, (metrics or {}).get(key))


@register.filter
def shown(value, key: str) -> str:
    """A bare metric value in the unit of ``key``."""
    return metric_display(key, value)

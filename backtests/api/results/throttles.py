"""Rate limits of the results API: creates per user (failed logins: django-axes, see settings)."""

from rest_framework.throttling import UserRateThrottle


class BacktestCreateThrottle(UserRateThrottle):
    """``POST /api/backtests``: the ``results_create`` rate (10 per minute) per user."""

    scope = "results_create"

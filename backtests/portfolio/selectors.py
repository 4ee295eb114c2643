"""Reads of saved portfolio backtests (``source`` ``v2``), scoped by who may see them (SPEC §10).

``X-User-Id`` (``user_ref``) groups a caller's runs but is never an identity: a run its
``user_ref`` names is still hidden from a caller who may not see it by ownership.
"""

from __future__ import annotations

import uuid

from django.db.models import QuerySet

from backfolio.common.ownership import visible_to
from backtests.models import Backtest


def portfolio_runs_visible(*, user) -> QuerySet[Backtest]:
    return visible_to(Backtest.objects.filter(source=Backtest.Source.V2), user)


def portfolio_run_list(*, user, user_ref: str) -> QuerySet[Backtest]:
    """The runs saved under ``user_ref`` that ``user`` may see, newest first."""
    return (
        portfolio_runs_visible(user=user).filter(user_ref=user_ref).order_by("-created_at", "-id")
    )


def portfolio_run_get(*, user, backtest_id: str) -> Backtest | None:
    """The saved run, or None when it does not exist, is not a portfolio run, or is hidden."""
    try:
        key = uuid.UUID(str(backtest_id))
    except ValueError:
        return None
    return portfolio_runs_visible(user=user).filter(pk=key).first()

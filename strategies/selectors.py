"""Reads of strategies, always scoped to what the caller may see (SPEC §10)."""

import uuid

from django.db.models import QuerySet

from backfolio.common.ownership import visible_to
from strategies.models import Strategy


def parse_uuid(value) -> uuid.UUID | None:
    """``value`` as a UUID, or None when it is not one (a non-UUID id is simply not found)."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError):
        return None


def strategy_list(*, user) -> QuerySet[Strategy]:
    """Strategies the caller may see, oldest first."""
    return visible_to(Strategy.objects.all(), user).order_by("created_at")


def strategy_get(*, strategy_id, user) -> Strategy:
    """The strategy, or ``Strategy.DoesNotExist`` (also for one the caller may not see)."""
    key = parse_uuid(strategy_id)
    if key is None:
        raise Strategy.DoesNotExist(f"Strategy {strategy_id} not found.")
    try:
        return visible_to(Strategy.objects.all(), user).get(pk=key)
    except Strategy.DoesNotExist:
        raise Strategy.DoesNotExist(f"Strategy {strategy_id} not found.") from None

"""Who may see what (SPEC §10), as one queryset filter used by every selector.

Anonymous callers see only ownerless records; a user sees their own and ownerless ones; staff see
everything.
"""

from django.db.models import Q, QuerySet


def visible_to(queryset: QuerySet, user, *, owner_field: str = "owner") -> QuerySet:
    if user is not None and user.is_authenticated and user.is_staff:
        return queryset
    ownerless = Q(**{f"{owner_field}__isnull": True})
    if user is None or not user.is_authenticated:
        return queryset.filter(ownerless)
    return queryset.filter(ownerless | Q(**{owner_field: user}))


def owner_for(user):
    """The owner to record for something ``user`` creates (None when anonymous)."""
    return user if user is not None and user.is_authenticated else None

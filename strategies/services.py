"""Writes of strategies: the definition is validated by the strategy language first."""

from typing import Any

from backfolio.common.errors import Conflict, InvalidInput
from backfolio.common.ownership import visible_to
from strategies.language import symbol_format_problem, validate_definition
from strategies.models import Strategy

EDITABLE_FIELDS = ("name", "description", "kind", "universe", "timeframe", "definition", "status")


def strategy_problems(*, kind: str, definition: Any, universe: Any) -> dict[str, Any]:
    """Field-keyed problems with a strategy's kind, definition and universe (empty when valid).

    ``definition`` problems are keyed by their path inside the definition, so every problem the
    strategy language finds is reported where it is.
    """
    errors: dict[str, Any] = {}
    if kind in Strategy.Kind.values:
        definition_errors: dict[str, list[str]] = {}
        for problem in validate_definition(kind, definition):
            definition_errors.setdefault(problem.path or "non_field_errors", []).append(
                problem.message
            )
        if definition_errors:
            errors["definition"] = definition_errors
    if not isinstance(universe, list):
        errors["universe"] = ["Must be a list of symbols."]
    else:
        universe_errors = {
            str(index): [message]
            for index, symbol in enumerate(universe)
            if (message := symbol_format_problem(symbol))
        }
        if universe_errors:
            errors["universe"] = universe_errors
    return errors


def strategy_create(*, owner, name: str, **fields) -> Strategy:
    """Create a strategy; raises InvalidInput naming every problem."""
    strategy = Strategy(owner=owner, name=name, **fields)
    _check(strategy)
    strategy.save()
    return strategy


def strategy_update(*, strategy: Strategy, data: dict[str, Any]) -> Strategy:
    """Apply a partial update. A changed definition or kind bumps ``version``."""
    changed = [field for field in EDITABLE_FIELDS if field in data]
    bumps_version = any(
        field in ("definition", "kind") and data[field] != getattr(strategy, field)
        for field in changed
    )
    for field in changed:
        setattr(strategy, field, data[field])
    _check(strategy)
    if bumps_version:
        strategy.version += 1
        changed.append("version")
    if changed:
        strategy.save(update_fields=[*changed, "updated_at"])
    return strategy


def strategy_delete(*, strategy: Strategy, user) -> None:
    """Delete a strategy with everything built on it, all of which ``user`` may delete.

    A shared (ownerless) strategy may be deleted by anyone, but other users' private runs built
    on it (backtests, sweeps, research runs) are theirs: while any exist the strategy stays
    (``Conflict``), and nothing of theirs is touched.
    """
    if any(
        visible_to(runs, user).count() != runs.count() for runs in _owned_rows_built_on(strategy)
    ):
        raise Conflict(
            f"Strategy {strategy.pk} cannot be deleted: other users' runs are built on it."
        )
    strategy.delete()


def _owned_rows_built_on(strategy: Strategy):
    """Every owned row that deleting ``strategy`` would delete, per model that refers to it."""
    for relation in Strategy._meta.related_objects:
        model = relation.related_model
        if any(field.name == "owner" for field in model._meta.concrete_fields):
            yield model._default_manager.filter(**{relation.field.name: strategy})


def _check(strategy: Strategy) -> None:
    errors = strategy_problems(
        kind=strategy.kind, definition=strategy.definition, universe=strategy.universe
    )
    if errors:
        raise InvalidInput(errors)

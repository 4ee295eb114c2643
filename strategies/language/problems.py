"""The one shape every validation problem takes, whichever contract reports it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a user's document, located by a dotted path.

    ``path`` points into the document as the user wrote it, e.g.
    ``switching_logic[1].condition.conditions[0].left.window``; ``message`` says what is wrong
    with that spot ("must be a positive integer").

    Problems about the shape of a Backfolio allocation strategy use the contract's own wording,
    which already names its subject ("Missing required field: allocations", "Allocation 'growth'
    weights sum to 1.05, not 1.0"); those are ``standalone`` and print without the path, so a
    presenter can show ``str(problem)`` for every problem. ``standalone`` does not take part in
    equality.
    """

    path: str
    message: str
    standalone: bool = field(default=False, compare=False)

    def __str__(self) -> str:
        if self.standalone or not self.path:
            return self.message
        return f"{self.path}: {self.message}"


def join_path(base: str, key: str | int) -> str:
    """``join_path("a", "b")`` is ``a.b``, ``join_path("a", 0)`` is ``a[0]``, and
    ``join_path("", "b")`` is ``b``."""
    if isinstance(key, int):
        return f"{base}[{key}]"
    return f"{base}.{key}" if base else key

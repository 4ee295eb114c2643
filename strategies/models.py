from django.conf import settings
from django.db import models

from backfolio.common.models import TimeStampedModel
from backfolio.limits import DESCRIPTION_MAX_LENGTH, NAME_MAX_LENGTH


class Strategy(TimeStampedModel):
    """What to trade and when: a universe and a definition in the strategy language (SPEC §4).

    ``definition`` is validated by ``strategies.language``; a signal strategy without one follows
    its run configuration's signal, or buys and holds.
    """

    class Kind(models.TextChoices):
        SIGNAL = "signal", "Signal"
        ALLOCATION = "allocation", "Allocation"

    class Timeframe(models.TextChoices):
        DAILY = "1d", "Daily"
        WEEKLY = "1wk", "Weekly"
        MONTHLY = "1mo", "Monthly"

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        BACKTESTED = "backtested", "Backtested"
        VALIDATED = "validated", "Validated"
        PROMOTED = "promoted", "Promoted"
        ARCHIVED = "archived", "Archived"

    name = models.CharField(max_length=NAME_MAX_LENGTH)
    # Bounded so that a list of strategies stays a list, not megabytes of prose.
    description = models.TextField(blank=True, default="", max_length=DESCRIPTION_MAX_LENGTH)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.SIGNAL)
    universe = models.JSONField(default=list, blank=True)
    timeframe = models.CharField(max_length=4, choices=Timeframe.choices, default=Timeframe.DAILY)
    definition = models.JSONField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    version = models.PositiveIntegerField(default=1)
    # A deleted user's strategies go with them: an ownerless strategy is public (SPEC §10).
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="strategies",
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "strategies"

    def __str__(self) -> str:
        return self.name

    def run_snapshot(self) -> dict:
        """What a backtest of this strategy executes, copied onto the backtest when it is
        created: later edits of the strategy (anyone may edit a shared one) never change what
        an existing run executes."""
        return {
            "kind": self.kind,
            "definition": self.definition,
            "universe": list(self.universe or []),
            "timeframe": self.timeframe,
            "version": self.version,
        }

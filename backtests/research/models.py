"""Research sweeps (SPEC §13.2): one row per sweep, per chunk of entries, and per entry.

The rows are the truth; messages only say "look at chunk X". A chunk moves
``pending → running → completed`` through guarded conditional UPDATEs (``attempts`` is the claim
token), and its entries are inserted in the same transaction as the UPDATE that completes it, so
an entry exists once or not at all whichever worker ran or died.
"""

from django.conf import settings
from django.db import models

from backfolio.common.models import TimeStampedModel


class ResearchSweep(TimeStampedModel):
    """A grid over one strategy and engine, run as chunks; entries keep metrics and returns."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"

    strategy = models.ForeignKey(
        "strategies.Strategy", on_delete=models.CASCADE, related_name="research_sweeps"
    )
    # What the entries execute (``Strategy.run_snapshot``), copied when the sweep is created:
    # an edit of a shared strategy never changes a sweep under way, nor its entries' backtests.
    strategy_snapshot = models.JSONField(default=dict, editable=False)
    engine = models.CharField(max_length=40)
    base_config = models.JSONField(default=dict)
    grid = models.JSONField(null=True, blank=True)
    # [[number, overrides], ...] of the valid combinations, in combination order; overrides are
    # in param_grid form (a config key → its whole value).
    entries_plan = models.JSONField(default=list)
    skipped = models.JSONField(default=list, blank=True)
    n_skipped = models.PositiveIntegerField(default=0)
    rank_metric = models.CharField(max_length=60)
    initial_capital = models.FloatField(default=100_000.0)
    commission = models.FloatField(default=0.0)
    slippage = models.FloatField(default=0.0)
    benchmark = models.CharField(max_length=60)
    partitions = models.PositiveSmallIntegerField(default=16)
    spa_reps = models.PositiveIntegerField(default=1000)
    seed = models.PositiveBigIntegerField(default=0)
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    returns_uri = models.CharField(max_length=500, null=True, blank=True)  # noqa: DJ001
    overfitting = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    # The finishing step (returns matrix and overfitting block) is claimed with a token and kept
    # alive with a heartbeat, like a chunk.
    finish_token = models.UUIDField(null=True, blank=True)
    finish_heartbeat_at = models.DateTimeField(null=True, blank=True)
    task = models.OneToOneField(
        "backtests.Task",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="research_sweep",
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,  # never ownerless (public) once its owner is deleted
        related_name="research_sweeps",
    )
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(done__lte=models.F("total")),
                name="research_sweep_done_within_total",
            )
        ]

    def __str__(self) -> str:
        return f"Research sweep of {self.strategy} on {self.engine} ({self.total} entries)"


class ResearchSweepChunk(TimeStampedModel):
    """Entries ``entries_plan[first:first + size]`` of a sweep, run by one Dramatiq message."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"

    sweep = models.ForeignKey(ResearchSweep, on_delete=models.CASCADE, related_name="chunks")
    number = models.PositiveIntegerField()
    first = models.PositiveIntegerField()
    size = models.PositiveIntegerField()
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    attempts = models.PositiveIntegerField(default=0)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    returns_uri = models.CharField(max_length=500, null=True, blank=True)  # noqa: DJ001

    class Meta:
        ordering = ["sweep", "number"]
        constraints = [
            models.UniqueConstraint(fields=["sweep", "number"], name="research_chunk_unique")
        ]
        indexes = [models.Index(fields=["status", "heartbeat_at"])]

    def __str__(self) -> str:
        return f"Chunk {self.number} of {self.sweep_id} ({self.status})"


class ResearchSweepEntry(models.Model):
    """One combination's outcome: its core metrics (``compute_metrics``' keys and units, as a
    run's row keeps them; the research API presents them in v1 form), or the error it failed
    with (``metrics`` then holds only ``error``). ``score`` is the sweep's rank metric in v1
    units (losses positive), what the leaderboard orders by."""

    class Status(models.TextChoices):
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"

    id = models.BigAutoField(primary_key=True)
    sweep = models.ForeignKey(ResearchSweep, on_delete=models.CASCADE, related_name="entries")
    chunk = models.ForeignKey(ResearchSweepChunk, on_delete=models.CASCADE, related_name="entries")
    number = models.PositiveIntegerField()
    overrides = models.JSONField(default=dict)
    status = models.CharField(max_length=20, choices=Status.choices)
    metrics = models.JSONField(default=dict)
    score = models.FloatField(null=True, blank=True)
    fingerprint = models.CharField(max_length=64, blank=True, default="")
    error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["sweep", "number"]
        constraints = [
            # A chunk's entries are inserted once; a second insert would be a double count.
            models.UniqueConstraint(fields=["sweep", "number"], name="research_entry_unique")
        ]

    def __str__(self) -> str:
        return f"Entry {self.number} of {self.sweep_id} ({self.status})"

"""A walk-forward analysis and its folds. The rows are the truth; messages only carry ids."""

from django.conf import settings
from django.db import models

from backfolio.common.models import TimeStampedModel


class WalkForward(TimeStampedModel):
    """One walk-forward over one strategy and engine (SPEC §13.3).

    ``combinations`` are the valid overrides (``param_grid`` form) every fold ranks on its
    in-sample window; ``skipped`` lists the first invalid ones with their problems. ``done`` /
    ``total`` count runs: every combination on every in-sample window, then one out-of-sample run
    per fold. In-sample runs are counted as each part of a fold's batch ends (its fold's own
    ``done`` too), so progress moves within a fold; out-of-sample runs when the result is
    written. ``result`` is written once, when the analysis completes; its ``metrics`` (the
    stitched curve's), like a fold's ``in_sample_metrics`` and ``out_of_sample_metrics``, are
    the core's (``compute_metrics``' keys and units), presented in v1 form by the API.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"

    class Scheme(models.TextChoices):
        ROLLING = "rolling", "Rolling"
        ANCHORED = "anchored", "Anchored"

    strategy = models.ForeignKey(
        "strategies.Strategy", on_delete=models.CASCADE, related_name="walk_forwards"
    )
    # What every fold executes (``Strategy.run_snapshot``), copied when the walk-forward is
    # created: an edit of a shared strategy never changes a walk-forward under way.
    strategy_snapshot = models.JSONField(default=dict, editable=False)
    engine = models.CharField(max_length=40)
    base_config = models.JSONField(default=dict)
    grid = models.JSONField(null=True, blank=True)
    combinations = models.JSONField(default=list)
    n_skipped = models.PositiveIntegerField(default=0)
    skipped = models.JSONField(default=list, blank=True)
    rank_metric = models.CharField(max_length=60)
    scheme = models.CharField(max_length=20, choices=Scheme.choices)
    in_sample_months = models.PositiveIntegerField()
    out_of_sample_months = models.PositiveIntegerField()
    initial_capital = models.FloatField()
    commission = models.FloatField()
    slippage = models.FloatField()
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    result = models.JSONField(null=True, blank=True)
    task = models.OneToOneField(
        "backtests.Task",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="walk_forward",
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,  # never ownerless (public) once its owner is deleted
        related_name="walk_forwards",
    )
    out_of_sample_started_at = models.DateTimeField(null=True, blank=True)
    # Kept fresh while a worker runs the out-of-sample phase; a stale one means it died.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        app_label = "backtests"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return (
            f"Walk-forward of {self.strategy} on {self.engine} "
            f"({self.scheme}, {len(self.combinations)} combinations, {self.status})"
        )


class WalkForwardFold(models.Model):
    """One fold: its windows, and once its in-sample batch ran, the combination it chose."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        CHOSEN = "chosen", "Chosen"
        FAILED = "failed", "Failed"

    walk_forward = models.ForeignKey(WalkForward, on_delete=models.CASCADE, related_name="folds")
    index = models.PositiveIntegerField()
    in_sample_start = models.DateField()
    in_sample_end = models.DateField()
    out_of_sample_start = models.DateField()
    out_of_sample_end = models.DateField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    chosen_index = models.PositiveIntegerField(null=True, blank=True)
    in_sample_score = models.FloatField(null=True, blank=True)
    in_sample_metrics = models.JSONField(default=dict, blank=True)
    in_sample_failed = models.PositiveIntegerField(default=0)
    # In-sample runs of this fold counted in the analysis's ``done`` so far; a fold handed back
    # by the reaper takes them off again, so a re-run counts nothing twice.
    done = models.PositiveIntegerField(default=0)
    out_of_sample_metrics = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True, default="")
    # Kept fresh while a worker runs the fold's in-sample batch; a stale one means it died.
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        app_label = "backtests"
        ordering = ["walk_forward", "index"]
        constraints = [
            models.UniqueConstraint(fields=["walk_forward", "index"], name="walk_forward_fold_once")
        ]

    def __str__(self) -> str:
        return f"Fold {self.index} of walk-forward {self.walk_forward_id}"

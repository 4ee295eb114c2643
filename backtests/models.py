from django.conf import settings
from django.db import models

from backfolio.common.models import TimeStampedModel


class Sweep(TimeStampedModel):
    """A parameter grid over one strategy and engine; one child backtest per grid entry."""

    strategy = models.ForeignKey(
        "strategies.Strategy", on_delete=models.CASCADE, related_name="sweeps"
    )
    engine = models.CharField(max_length=40)
    base_config = models.JSONField(default=dict)
    param_grid = models.JSONField(default=list)
    rank_metric = models.CharField(max_length=60)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,  # never ownerless (public) once its owner is deleted
        related_name="sweeps",
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Sweep of {self.strategy} on {self.engine} ({len(self.param_grid)} runs)"


class Backtest(TimeStampedModel):
    """One strategy, one engine, one configuration, one date range: one run's truth.

    The row moves ``pending → running → completed | failed``; workers only ever act on what the
    row says. Metrics are stored flat (SPEC §5, v1 keys); equity curve and trades are Parquet
    artifacts in storage, referenced by URI.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"

    class Source(models.TextChoices):
        V1 = "v1", "v1 API"
        V2 = "v2", "Backfolio API"
        RESULTS_API = "results-api", "Results API"
        SWEEP = "sweep", "Sweep"
        UI = "ui", "Analyst UI"

    strategy = models.ForeignKey(
        "strategies.Strategy",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="backtests",
    )
    # The strategy as it was when the backtest was created (``Strategy.run_snapshot``): every run
    # and re-run executes this, whatever happens to the strategy since.
    strategy_snapshot = models.JSONField(null=True, blank=True, editable=False)
    engine = models.CharField(max_length=40, db_index=True)
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    initial_capital = models.FloatField(default=100_000.0)
    commission = models.FloatField(default=0.0)
    slippage = models.FloatField(default=0.0)
    config = models.JSONField(default=dict)
    # The run's metrics as the core computes them (``metrics.calculations.compute_metrics``: its
    # keys, its units), or ``{"error": …}`` for a failed run; each contract presents them in its
    # own units (``metrics.presenters``).
    metrics = models.JSONField(default=dict, blank=True)
    # Metric names a v1 PATCH wrote that are not the contract's, kept as written and shown next
    # to the contract's.
    extra_metrics = models.JSONField(default=dict, blank=True)
    metrics_spec_version = models.CharField(max_length=20, blank=True, default="")
    # The v1 contract shows a missing artifact as null, not "": null means "not written".
    equity_curve_uri = models.CharField(max_length=500, null=True, blank=True)  # noqa: DJ001
    trades_uri = models.CharField(max_length=500, null=True, blank=True)  # noqa: DJ001
    report_uri = models.CharField(max_length=500, null=True, blank=True)  # noqa: DJ001
    error = models.TextField(blank=True, default="")
    progress = models.PositiveSmallIntegerField(default=0)
    progress_message = models.CharField(max_length=200, blank=True, default="")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,  # never ownerless (public) once its owner is deleted
        related_name="backtests",
    )
    user_ref = models.CharField(max_length=200, blank=True, default="", db_index=True)
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.V1)
    # The symbol the run's pages hold it against unless another is chosen there (picked on the
    # run form); empty: the run's own symbol. Not an input of the run: neither its numbers nor its
    # fingerprint depend on it.
    benchmark = models.CharField(max_length=40, blank=True, default="")
    fingerprint = models.CharField(max_length=64, blank=True, default="", db_index=True)
    sweep = models.ForeignKey(
        Sweep, null=True, blank=True, on_delete=models.CASCADE, related_name="backtests"
    )
    sweep_index = models.PositiveIntegerField(null=True, blank=True)
    run_count = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [
            models.Index(fields=["strategy", "created_at"]),
            models.Index(fields=["owner", "created_at"]),
            models.Index(fields=["status", "heartbeat_at"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(initial_capital__gt=0), name="backtest_capital_positive"
            ),
            models.CheckConstraint(
                condition=models.Q(commission__gte=0, commission__lte=0.1),
                name="backtest_commission_range",
            ),
            models.CheckConstraint(
                condition=models.Q(slippage__gte=0, slippage__lte=0.1),
                name="backtest_slippage_range",
            ),
            models.CheckConstraint(
                condition=models.Q(progress__lte=100), name="backtest_progress_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.strategy or 'Portfolio'} on {self.engine} ({self.status})"

    def save(self, *args, **kwargs):
        if self.strategy_snapshot is None and self.strategy_id is not None:
            self.strategy_snapshot = self.strategy.run_snapshot()
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "strategy_snapshot"}
        super().save(*args, **kwargs)


class Task(TimeStampedModel):
    """One unit of asynchronous work a client can poll; the row, not the broker, is the truth."""

    class Kind(models.TextChoices):
        EXECUTE = "execute", "Execute"
        SWEEP = "sweep", "Sweep"
        RESEARCH_SWEEP = "research_sweep", "Research sweep"
        WALK_FORWARD = "walk_forward", "Walk-forward"

    class Status(models.TextChoices):
        PENDING = "PENDING", "Pending"
        STARTED = "STARTED", "Started"
        PROGRESS = "PROGRESS", "In progress"
        SUCCESS = "SUCCESS", "Success"
        FAILURE = "FAILURE", "Failure"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=1)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    backtest = models.ForeignKey(
        Backtest, null=True, blank=True, on_delete=models.CASCADE, related_name="tasks"
    )
    sweep = models.OneToOneField(
        Sweep, null=True, blank=True, on_delete=models.CASCADE, related_name="task"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,  # never ownerless (public) once its owner is deleted
        related_name="tasks",
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} task {self.id} ({self.status})"


class Robustness(TimeStampedModel):
    """The robustness of one completed run (SPEC §13.4) for one set of parameters: PSR,
    stationary-bootstrap confidence intervals and cost sensitivity.

    Computed on the first request and kept, so the same request gets the same answer without
    recomputing; keyed by the run it was computed from (``run_number``) and the parameters, so a
    re-executed backtest gets a fresh one. ``done``/``total`` count the steps (the bootstrap and
    each cost re-run) while a computation queued on the workers is in progress.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"

    backtest = models.ForeignKey(
        Backtest, on_delete=models.CASCADE, related_name="robustness_results"
    )
    run_number = models.PositiveIntegerField()
    resamples = models.PositiveIntegerField()
    confidence = models.FloatField()
    # Null: arch's optimal block length for the run's returns (the SPEC §13.1 default).
    block_length = models.PositiveIntegerField(null=True, blank=True)
    seed = models.PositiveBigIntegerField()
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=1)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    research_spec_version = models.CharField(max_length=20, blank=True, default="")
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "robustness results"
        constraints = [
            models.UniqueConstraint(
                fields=["backtest", "run_number", "resamples", "confidence", "seed"],
                condition=models.Q(block_length__isnull=True),
                name="robustness_one_per_parameters_auto_block",
            ),
            models.UniqueConstraint(
                fields=[
                    "backtest",
                    "run_number",
                    "resamples",
                    "confidence",
                    "block_length",
                    "seed",
                ],
                condition=models.Q(block_length__isnull=False),
                name="robustness_one_per_parameters",
            ),
            models.CheckConstraint(
                condition=models.Q(confidence__gt=0, confidence__lt=1),
                name="robustness_confidence_range",
            ),
        ]

    def __str__(self) -> str:
        block = "auto" if self.block_length is None else self.block_length
        return (
            f"Robustness of {self.backtest_id} (run {self.run_number}, {self.resamples} resamples, "
            f"confidence {self.confidence:g}, block {block}, seed {self.seed}): {self.status}"
        )


# Research models live in their own package; importing them here registers them with the app.
from backtests.research.models import (  # noqa: E402
    ResearchSweep,
    ResearchSweepChunk,
    ResearchSweepEntry,
)
from backtests.research.walk_forward.models import WalkForward, WalkForwardFold  # noqa: E402

__all__ = [
    "Backtest",
    "ResearchSweep",
    "ResearchSweepChunk",
    "ResearchSweepEntry",
    "Robustness",
    "Sweep",
    "Task",
    "WalkForward",
    "WalkForwardFold",
]

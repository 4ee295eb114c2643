"""The reaper: finds runs whose worker died and messages that were never picked up.

``reap_stale_runs`` fails every ``running`` row whose heartbeat is older than
``BACKFOLIO_HEARTBEAT_TIMEOUT_SECONDS`` and re-sends the messages of tasks that stayed
``PENDING`` that long (the actors are idempotent, so a duplicate is harmless). It runs when a
worker starts, periodically inside workers, at the start of every actor, and (throttled) whenever
the API reads a task or a backtest.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from backtests.jobs import messages
from backtests.jobs.outcomes import failed_fields, finish_run, heartbeat_timeout
from backtests.models import Backtest, Task

logger = logging.getLogger(__name__)

_reap_lock = threading.Lock()
_last_reap = 0.0


def maybe_reap() -> None:
    """``reap_stale_runs`` at most once per ``BACKFOLIO_REAPER_INTERVAL_SECONDS`` per process."""
    global _last_reap
    interval = float(getattr(settings, "BACKFOLIO_REAPER_INTERVAL_SECONDS", 15))
    now = time.monotonic()
    with _reap_lock:
        if now - _last_reap < interval:
            return
        _last_reap = now
    try:
        reap_stale_runs()
    except Exception:  # reaping is housekeeping: a failure must not break the caller
        logger.exception("Reaping stale backtests failed")


def reap_stale_runs() -> dict[str, int]:
    """Fail runs whose worker stopped beating, and re-send messages that were never picked up.

    Returns how many rows were failed and how many tasks re-queued.
    """
    timeout = heartbeat_timeout()
    now = timezone.now()
    cutoff = now - timedelta(seconds=timeout)
    stale = Backtest.objects.filter(status=Backtest.Status.RUNNING).filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, updated_at__lt=cutoff)
    )
    failed = 0
    for backtest_id, run_number, heartbeat_at, sweep_id in stale.values_list(
        "id", "run_count", "heartbeat_at", "sweep_id"
    ):
        last = heartbeat_at.isoformat() if heartbeat_at else "never"
        reason = (
            f"The worker running this backtest stopped responding (no heartbeat for more than "
            f"{timeout} s; last heartbeat: {last}); the run was abandoned."
        )
        if finish_run(backtest_id, run_number, failed_fields(reason), sweep_id=sweep_id):
            failed += 1
            logger.warning("Backtest %s: %s", backtest_id, reason)

    # An execute task whose worker died before it claimed the backtest.
    orphaned = Task.objects.filter(
        kind=Task.Kind.EXECUTE,
        status__in=(Task.Status.STARTED, Task.Status.PROGRESS),
        updated_at__lt=cutoff,
    ).exclude(backtest__status=Backtest.Status.RUNNING)
    failed += orphaned.update(
        status=Task.Status.FAILURE,
        error=f"The worker running this task stopped responding for more than {timeout} s.",
        finished_at=now,
        updated_at=now,
    )
    requeued = _requeue_lost_messages(cutoff, now)
    from backtests.research.jobs import reap_research_sweeps
    from backtests.research.walk_forward.jobs import reap_walk_forwards

    research = reap_research_sweeps()
    walk_forwards = reap_walk_forwards()
    requeued += research["chunks"] + research["finishes"]
    requeued += walk_forwards["folds"] + walk_forwards["finishes"]
    return {"failed": failed, "requeued": requeued}


def _requeue_lost_messages(cutoff, now) -> int:
    requeued = 0
    waiting = Task.objects.filter(
        Q(kind=Task.Kind.EXECUTE, status=Task.Status.PENDING)
        | Q(kind=Task.Kind.SWEEP, status__in=(Task.Status.PENDING, Task.Status.PROGRESS)),
        updated_at__lt=cutoff,
    ).values_list("id", "kind", "backtest_id", "sweep_id")
    for task_id, kind, backtest_id, sweep_id in waiting:
        # Bumping updated_at first makes a concurrent reaper skip this task.
        if not Task.objects.filter(pk=task_id, updated_at__lt=cutoff).update(updated_at=now):
            continue
        if kind == Task.Kind.EXECUTE:
            messages.send("execute_backtest", str(backtest_id), str(task_id))
        else:
            pending = Backtest.objects.filter(
                sweep_id=sweep_id, status=Backtest.Status.PENDING
            ).values_list("id", flat=True)
            for child_id in pending:
                messages.send("run_sweep_entry", str(child_id), str(task_id))
        requeued += 1
        logger.warning("Re-queued task %s: its message was not picked up in time", task_id)
    return requeued

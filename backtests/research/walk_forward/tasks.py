"""The walk-forward actors: one message per fold (its in-sample batch), idempotent by the fold's
claim, and the out-of-sample phase when the reaper re-sends it; not retried (a failed fold is a
result, recorded on the analysis)."""

import dramatiq

from backtests.jobs import reaper
from backtests.research.walk_forward import jobs
from backtests.tasks import RUN_TIME_LIMIT_MS


@dramatiq.actor(max_retries=0, time_limit=RUN_TIME_LIMIT_MS)
def run_walk_forward_fold(walk_forward_id: str, fold_index: int) -> None:
    reaper.maybe_reap()
    jobs.run_fold(walk_forward_id, fold_index)


@dramatiq.actor(max_retries=0, time_limit=RUN_TIME_LIMIT_MS)
def finish_walk_forward(walk_forward_id: str) -> None:
    reaper.maybe_reap()
    jobs.finish_walk_forward(walk_forward_id)

"""Dramatiq actors of research sweeps: they take ids, are idempotent, and leave the rest to
``backtests.research.jobs``. Not retried by Dramatiq: a chunk whose worker died is found by the
reaper (its heartbeat stops) and sent again."""

import dramatiq

from backtests.jobs import reaper
from backtests.research import jobs
from backtests.tasks import RUN_TIME_LIMIT_MS, TIME_LIMIT_BACKSTOP_GRACE_SECONDS

# A chunk message goes on with the sweep's next pending chunk while it has run for less than the
# run time limit, and each chunk is stopped at that limit by the core: twice the limit, and the
# backstop's grace.
CHUNK_TIME_LIMIT_MS = 2 * RUN_TIME_LIMIT_MS - TIME_LIMIT_BACKSTOP_GRACE_SECONDS * 1000


@dramatiq.actor(max_retries=0, time_limit=CHUNK_TIME_LIMIT_MS)
def run_research_chunk(chunk_id: str) -> None:
    reaper.maybe_reap()
    jobs.run_chunk(chunk_id)


@dramatiq.actor(max_retries=0, time_limit=RUN_TIME_LIMIT_MS)
def finish_research_sweep(sweep_id: str) -> None:
    reaper.maybe_reap()
    jobs.finish_sweep(sweep_id)

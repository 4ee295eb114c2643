"""The work behind the actors: each module one job, none of them imports an actor.

- ``outcomes``: a run's outcome fields and the guarded UPDATE that writes them (``finish_run``),
  settling its execute task or counting it on its sweep; the heartbeat and time-limit settings.
- ``leaderboard``: a sweep's ranked entries (SPEC §2).
- ``runner``: one backtest run: claim, heartbeat, progress, artifacts, outcome; the
  ``execute_backtest`` actor's body.
- ``sweeps``: a sweep's entries, one message each or in vectorised batches.
- ``reaper``: fails runs whose worker died and re-sends messages that were never picked up.
- ``heartbeat``: the thread that keeps a running job's heartbeat fresh (runs, research chunks,
  walk-forward folds).
- ``messages``: sending a message to an actor by its name.

The actors (``backtests.tasks``) import these; these never import the actors (the reaper
re-sends messages by actor name through the broker).
"""

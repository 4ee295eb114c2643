"""Sending a message to an actor by its name, so that the jobs never import the actors.

The actors (``tasks`` modules) import the jobs they run; a job that must send a message (the
reapers re-send lost ones) names the actor instead. ``BacktestsConfig.ready`` imports every
actor, so each is registered on the broker in every process.
"""

import dramatiq


def send(actor_name: str, *args) -> None:
    dramatiq.get_broker().get_actor(actor_name).send(*args)

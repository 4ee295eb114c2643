"""What a worker process does once its engines are loaded."""

import gc

from backfolio.workers import WARM_CALLBACKS_ENV, WarmEnginesMiddleware, freeze_loaded_objects


def test_loaded_objects_are_frozen_out_of_later_collections():
    gc.unfreeze()
    try:
        freeze_loaded_objects()
        frozen = gc.get_freeze_count()
        assert frozen > 100_000  # Django, pandas and the engines, loaded by the test run
        created = [[index] for index in range(1000)]  # noqa: F841  (alive, not frozen)
        # Frozen objects that other threads release leave the count; new ones never join it.
        assert gc.get_freeze_count() <= frozen
    finally:
        gc.unfreeze()


def test_a_dramatiq_worker_process_freezes_what_it_loaded_after_warming(monkeypatch):
    monkeypatch.setenv(WARM_CALLBACKS_ENV, "skip")  # no background compile in the test run
    gc.unfreeze()
    try:
        WarmEnginesMiddleware().after_worker_boot(broker=None, worker=None)
        assert gc.get_freeze_count() > 100_000
    finally:
        gc.unfreeze()

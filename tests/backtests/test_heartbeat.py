"""The heartbeat thread beside every long job (``backtests.jobs.heartbeat``)."""

import logging
import threading
import time

from backtests.jobs.heartbeat import HeartbeatThread


class CountingHeartbeat(HeartbeatThread):
    thread_name = "test-heartbeat"

    def __init__(self, fail_after: int | None = None) -> None:
        self.writes = 0
        self.fail_after = fail_after
        self.wrote = threading.Event()
        super().__init__()

    def __str__(self) -> str:
        return "Test heartbeat"

    def write(self) -> None:
        if self.fail_after is not None and self.writes >= self.fail_after:
            raise RuntimeError("database gone")
        self.writes += 1
        self.wrote.set()


def test_it_beats_every_quarter_timeout_until_the_work_ends(settings):
    settings.BACKFOLIO_HEARTBEAT_TIMEOUT_SECONDS = 1  # a quarter is under the 0.5 s floor
    beating = CountingHeartbeat()
    assert beating.interval == 0.5
    with beating:
        assert beating._thread.daemon and beating._thread.name == "test-heartbeat"
        assert beating.wrote.wait(timeout=10)
    assert not beating._thread.is_alive()
    written = beating.writes
    assert written >= 1
    time.sleep(0.6)  # longer than the interval
    assert beating.writes == written  # nothing after the work ended


def test_a_failed_write_is_logged_and_never_reaches_the_work(settings, caplog):
    settings.BACKFOLIO_HEARTBEAT_TIMEOUT_SECONDS = 1
    beating = CountingHeartbeat(fail_after=0)
    with caplog.at_level(logging.ERROR, logger="backtests.jobs.heartbeat"):
        with beating:
            beating._thread.join(timeout=10)  # the first write fails and ends the thread
        assert not beating._thread.is_alive()
    assert beating.writes == 0
    assert [record.getMessage() for record in caplog.records] == ["Test heartbeat failed"]

"""Real processes for the fault tests: a private redis-server and ``rundramatiq`` workers.

Everything started here is killed by the context managers, also when a test fails.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

from tests.reliability.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


def stop_process_group(process: subprocess.Popen, sig=signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)


class PrivateRedis:
    """A throw-away ``redis-server`` (no persistence) on a free port that can be stopped and
    started again on the same port, like a broker restart."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def crash(self) -> None:
        """Stop without saving: every queued message is gone."""
        if self.process is not None:
            stop_process_group(self.process)
            self.process = None

    def __enter__(self) -> PrivateRedis:
        if shutil.which("redis-server") is None:
            import pytest

            pytest.skip("redis-server is not installed")
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.crash()


@contextlib.contextmanager
def rundramatiq(
    *,
    redis_url: str,
    database_name: str,
    heartbeat_timeout: int,
    threads: int = 1,
    extra_env: dict[str, str] | None = None,
):
    """A ``manage.py rundramatiq`` worker tree on ``redis_url`` and the test database
    (``extra_env``: more settings for the worker, e.g. a shorter run time limit)."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    host = database["HOST"] or "127.0.0.1"
    credentials = f"{database['USER']}:{database['PASSWORD']}"
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="backfolio.settings.test",
        REDIS_URL=redis_url,
        DATABASE_URL=f"postgres://{credentials}@{host}:{database['PORT'] or 5432}/{database_name}",
        BACKFOLIO_HEARTBEAT_TIMEOUT_SECONDS=str(heartbeat_timeout),
        LOG_LEVEL="WARNING",
        **(extra_env or {}),
    )
    with tempfile.NamedTemporaryFile(
        prefix="backfolio-worker-", suffix=".log", delete=False
    ) as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "rundramatiq",
                "--processes",
                "1",
                "--threads",
                str(threads),
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        process.log_path = log.name
        try:
            yield process
        finally:
            stop_process_group(process)

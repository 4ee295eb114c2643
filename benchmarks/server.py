"""Start the service the way `make run` does (gunicorn, production settings) for benchmarks."""

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BIN = Path(PYTHON).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def service_environment(workdir: Path) -> dict[str, str]:
    """Embedded default in a private folder, or PostgreSQL + Redis when the caller exports them."""
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "backfolio.settings.base")
    env["SQLITE_PATH"] = str(workdir / "bench.sqlite3")
    env["MEDIA_ROOT"] = str(workdir / "media")
    env["STATIC_ROOT"] = str(ROOT / "var" / "staticfiles")
    env.setdefault("NUMBA_CACHE_DIR", str(ROOT / "var" / "numba-cache"))
    env["LOG_LEVEL"] = "WARNING"
    # Benchmarks and the load test measure throughput, not the write rate limits.
    env.setdefault("BACKFOLIO_ANON_WRITE_RATE", "1000000/min")
    env.setdefault("BACKFOLIO_USER_WRITE_RATE", "1000000/min")
    return env


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL
    )


# The environment of the service last started: the same database and media folder, for
# commands the benchmarks run next to it (``manage.py run_sweep``).
current_environment: dict[str, str] = {}
current_worker_pids: list[int] = []


def manage_output(*args: str, timeout: float = 3600) -> str:
    """Run a management command against the running service's database; returns its stdout."""
    if not current_environment:
        raise RuntimeError("no service is running")
    completed = subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=ROOT,
        env=current_environment,
        check=True,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return completed.stdout


@contextlib.contextmanager
def running_service(
    *,
    workers: int = 2,
    threads: int = 4,
    worker_threads: int = 2,
    dramatiq_processes: int = 2,
    dramatiq_threads: int = 2,
):
    """Yield ``(base_url, process, startup_seconds)`` for a gunicorn serving a fresh database.

    With Redis, ``rundramatiq`` runs ``dramatiq_processes`` × ``dramatiq_threads`` workers; its
    pid is in ``current_worker_pids`` while the service runs."""
    workdir = Path(tempfile.mkdtemp(prefix="backfolio-bench-"))
    env = service_environment(workdir)
    current_environment.clear()
    current_environment.update(env)
    env["BACKFOLIO_EMBEDDED_WORKER_THREADS"] = str(worker_threads)
    manage(env, "migrate", "--noinput")
    manage(env, "collectstatic", "--noinput", "-v", "0")
    port = free_port()
    started = time.perf_counter()
    process = subprocess.Popen(
        [
            str(BIN / "gunicorn"),
            "-c",
            "gunicorn.conf.py",
            "backfolio.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--timeout",
            "300",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    base_url = f"http://127.0.0.1:{port}"
    worker_processes = []
    if env.get("REDIS_URL"):
        # Production shape: the broker is Redis, so separate worker processes consume it.
        worker_processes.append(
            subprocess.Popen(
                [
                    PYTHON,
                    "manage.py",
                    "rundramatiq",
                    "--processes",
                    str(dramatiq_processes),
                    "--threads",
                    str(dramatiq_threads),
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
            )
        )
    current_worker_pids[:] = [worker.pid for worker in worker_processes]
    try:
        deadline = time.time() + 300
        while True:
            try:
                with urllib.request.urlopen(base_url + "/healthz", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                if process.poll() is not None:
                    raise RuntimeError("the service exited during start-up") from None
                if time.time() > deadline:
                    raise RuntimeError("the service did not become healthy in 300 s") from None
                time.sleep(0.1)
        yield base_url, process, time.perf_counter() - started
    finally:
        for worker in worker_processes:
            worker.terminate()
        process.terminate()
        for child in [process, *worker_processes]:
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()

"""A fault test needing PostgreSQL and Redis fails instead of skipping where they are required."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SKIPPING_TEST = """
import pytest


@pytest.mark.services
@pytest.mark.skipif(True, reason="needs PostgreSQL (DATABASE_URL)")
def test_needs_the_services():
    pass


@pytest.mark.skip(reason="not a service test")
def test_unrelated():
    pass
"""


def _run(tmp_path, *, required: bool) -> subprocess.CompletedProcess:
    (tmp_path / "test_skipping.py").write_text(SKIPPING_TEST)
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    env["PYTHONPATH"] = str(ROOT)
    env["COLUMNS"] = "300"  # the short summary keeps the whole reason
    env.pop("BACKFOLIO_REQUIRE_SERVICE_TESTS", None)
    if required:
        env["BACKFOLIO_REQUIRE_SERVICE_TESTS"] = "1"
    return subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-q", "-rEs", "-p", "no:django"),
            *("-p", "no:cacheprovider", "-p", "tests.service_tests"),
            *("-o", "markers=services: needs services", str(tmp_path)),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("required", [False, True])
def test_a_skipped_service_test_fails_only_where_services_are_required(tmp_path, required):
    result = _run(tmp_path, required=required)
    if required:
        assert result.returncode == 1, result.stdout
        assert "1 skipped, 1 error" in result.stdout
        assert (
            "Skipped although BACKFOLIO_REQUIRE_SERVICE_TESTS=1 requires it to run: "
            "needs PostgreSQL (DATABASE_URL)"
        ) in result.stdout
    else:
        assert result.returncode == 0, result.stdout
        assert "2 skipped" in result.stdout

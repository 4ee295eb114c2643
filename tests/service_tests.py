"""Fault tests that need PostgreSQL and Redis must not pass by skipping where they are required.

Those tests carry the ``services`` marker and skip when ``DATABASE_URL``/``REDIS_URL`` (or the
``redis-server`` they start privately) are missing, so that the embedded run stays green. Where
the services are meant to be present (CI's PostgreSQL/Redis run sets
``BACKFOLIO_REQUIRE_SERVICE_TESTS=1``) such a skip is reported as a failure instead.
"""

import os

import pytest

REQUIRED_ENV = "BACKFOLIO_REQUIRE_SERVICE_TESTS"


def services_required() -> bool:
    return os.environ.get(REQUIRED_ENV) == "1"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and services_required() and item.get_closest_marker("services"):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        reason = reason.removeprefix("Skipped: ")
        report.outcome = "failed"
        report.longrepr = f"Skipped although {REQUIRED_ENV}=1 requires it to run: {reason}"

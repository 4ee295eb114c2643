"""Fixtures shared by the whole suite: API clients, users, and real Dramatiq workers."""

import os

import dramatiq
import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

pytest_plugins = ["tests.service_tests"]

os.environ.setdefault(
    "NUMBA_CACHE_DIR", os.path.join(os.path.dirname(__file__), "..", "var", "numba-cache")
)


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def user(db):
    return get_user_model().objects.create_user(
        username="analyst", email="analyst@example.com", password="correct-horse-42"
    )


@pytest.fixture
def other_user(db):
    return get_user_model().objects.create_user(
        username="other", email="other@example.com", password="correct-horse-43"
    )


@pytest.fixture
def staff_user(db):
    return get_user_model().objects.create_user(
        username="staff",
        email="staff@example.com",
        password="correct-horse-44",
        is_staff=True,
        is_superuser=True,
    )


@pytest.fixture
def user_client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def broker():
    """The configured Dramatiq broker (in-process stub, or Redis when REDIS_URL is set), emptied."""
    broker = dramatiq.get_broker()
    broker.flush_all()
    yield broker
    broker.flush_all()


@pytest.fixture
def worker(broker):
    """Real Dramatiq worker threads consuming the broker for the duration of a test."""
    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=100)
    worker.start()
    yield worker
    worker.stop()

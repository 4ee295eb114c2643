import pytest
from django.core.cache import cache
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken


@pytest.fixture(autouse=True)
def empty_throttle_cache():
    """Throttle counts live in the cache; each test starts with none."""
    cache.clear()
    yield
    cache.clear()


def bearer_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


@pytest.fixture
def token_client(user) -> APIClient:
    return bearer_client(user)


@pytest.fixture
def other_token_client(other_user) -> APIClient:
    return bearer_client(other_user)


@pytest.fixture
def staff_token_client(staff_user) -> APIClient:
    return bearer_client(staff_user)

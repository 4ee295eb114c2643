import pytest
from django.test import Client


@pytest.fixture
def staff_client(staff_user) -> Client:
    client = Client()
    client.force_login(staff_user)
    return client


@pytest.fixture
def non_staff_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client

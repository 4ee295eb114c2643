"""JWTs end when they should: a refresh token works once, and a password change ends every token
issued before it (refresh and access). Logging in by email does the same work whether or not the
address belongs to an account."""

from unittest import mock

import pytest
from django.contrib.auth.hashers import get_hasher
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

pytestmark = pytest.mark.django_db

LOGIN = "/api/auth/login"
REFRESH = "/api/auth/refresh-token"
INVALID_REFRESH = {
    "error": {"code": "UNAUTHORIZED", "message": "Invalid or expired refresh token", "status": 401}
}
UNAUTHORIZED = {
    "error": {"code": "UNAUTHORIZED", "message": "Authentication required", "status": 401}
}


def login(username="analyst", password="correct-horse-42") -> dict:
    response = APIClient().post(LOGIN, {"username": username, "password": password}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def bearer(access: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


def refresh(token: str):
    return APIClient().post(REFRESH, {"refreshToken": token}, format="json")


def test_a_refresh_token_works_once(user):
    tokens = login()

    first = refresh(tokens["refreshToken"])
    second = refresh(tokens["refreshToken"])

    assert first.status_code == 200
    assert second.status_code == 401
    assert second.json() == INVALID_REFRESH
    # The rotated token works (once) in its turn.
    rotated = first.json()["refreshToken"]
    assert refresh(rotated).status_code == 200
    assert refresh(rotated).status_code == 401


def test_a_password_change_ends_every_earlier_token(user):
    tokens = login()
    second_device = login()
    assert bearer(tokens["accessToken"]).get("/api/backtests").status_code == 200

    user.set_password("a-new-horse-battery-77")
    user.save()

    for access in (tokens["accessToken"], second_device["accessToken"]):
        for url in ("/api/backtests", "/api/v1/backtests", "/api/v1/strategies"):
            response = bearer(access).get(url)
            if url == "/api/backtests":
                assert (response.status_code, response.json()) == (401, UNAUTHORIZED)
            else:
                assert response.status_code == 401, url
    for token in (tokens["refreshToken"], second_device["refreshToken"]):
        response = refresh(token)
        assert (response.status_code, response.json()) == (401, INVALID_REFRESH)
    assert not OutstandingToken.objects.filter(user=user, blacklistedtoken__isnull=True).exists()

    fresh = login(password="a-new-horse-battery-77")
    assert bearer(fresh["accessToken"]).get("/api/backtests").status_code == 200
    assert refresh(fresh["refreshToken"]).status_code == 200


def test_saving_a_user_without_a_new_password_keeps_their_tokens(user):
    tokens = login()
    user.first_name = "Ana"
    user.save()
    assert bearer(tokens["accessToken"]).get("/api/backtests").status_code == 200
    assert refresh(tokens["refreshToken"]).status_code == 200


def test_a_password_change_in_the_admin_ends_tokens(user, staff_user):
    from django.test import Client

    tokens = login()
    admin = Client()
    admin.force_login(staff_user)
    response = admin.post(
        f"/admin/auth/user/{user.pk}/password/",
        {"password1": "a-new-horse-battery-77", "password2": "a-new-horse-battery-77"},
    )
    assert response.status_code == 302, response.content
    assert bearer(tokens["accessToken"]).get("/api/backtests").status_code == 401
    assert refresh(tokens["refreshToken"]).status_code == 401


@pytest.mark.parametrize(
    "unknown",
    [
        {"email": "nobody@example.com"},
        {"username": "nobody"},
    ],
)
def test_an_unknown_login_runs_the_password_hasher_like_a_known_one(user, unknown):
    hasher_class = type(get_hasher())
    calls = []
    original = hasher_class.encode

    def counting_encode(self, password, salt, *args, **kwargs):
        calls.append(password)
        return original(self, password, salt, *args, **kwargs)

    def hasher_calls(body) -> int:
        calls.clear()
        with mock.patch.object(hasher_class, "encode", counting_encode):
            response = APIClient().post(LOGIN, {**body, "password": "wrong-guess"}, format="json")
        assert response.status_code == 401
        return len(calls)

    known = hasher_calls({"email": "analyst@example.com"})
    assert known == 1
    assert hasher_calls(unknown) == known

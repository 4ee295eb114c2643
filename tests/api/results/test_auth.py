"""Login, refresh, and what happens to missing, expired and forged tokens."""

import datetime as dt

import jwt
import pytest
from django.conf import settings
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

pytestmark = pytest.mark.django_db

LOGIN = "/api/auth/login"
REFRESH = "/api/auth/refresh-token"
DETAIL = "/api/backtests/00000000-0000-0000-0000-000000000001"

FOREIGN_KEY = "a-signing-key-that-is-not-this-services-key"
UNAUTHORIZED = {
    "error": {"code": "UNAUTHORIZED", "message": "Authentication required", "status": 401}
}


def _login(client, **body):
    return client.post(LOGIN, body, format="json")


def test_login_with_username_returns_a_token_pair_that_authenticates(api_client, user):
    response = _login(api_client, username="analyst", password="correct-horse-42")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"accessToken", "refreshToken", "expiresIn"}
    assert body["expiresIn"] == 15 * 60
    access = AccessToken(body["accessToken"])
    assert str(access["user_id"]) == str(user.pk)
    refresh = RefreshToken(body["refreshToken"])
    assert refresh["exp"] - refresh["iat"] == 7 * 24 * 3600

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {body['accessToken']}")
    assert client.get("/api/backtests").status_code == 200


def test_login_with_email_in_any_case(api_client, user):
    response = _login(api_client, email="Analyst@Example.com", password="correct-horse-42")

    assert response.status_code == 200
    assert str(AccessToken(response.json()["accessToken"])["user_id"]) == str(user.pk)


@pytest.mark.parametrize(
    "body",
    [
        {"username": "analyst", "password": "wrong"},
        {"email": "analyst@example.com", "password": "wrong"},
        {"username": "nobody", "password": "correct-horse-42"},
        {"email": "nobody@example.com", "password": "correct-horse-42"},
    ],
)
def test_wrong_credentials_are_401(api_client, user, body):
    response = _login(api_client, **body)

    assert response.status_code == 401
    assert response.json() == {
        "error": {"code": "UNAUTHORIZED", "message": "Invalid credentials", "status": 401}
    }


def test_inactive_user_cannot_log_in(api_client, user):
    user.is_active = False
    user.save()

    assert _login(api_client, username="analyst", password="correct-horse-42").status_code == 401


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"password": "x"}, "email or username is required"),
        ({"username": "analyst"}, "password: This field is required."),
        ({"email": "not-an-email", "password": "x"}, "email: Enter a valid email address."),
    ],
)
def test_malformed_login_is_a_validation_error(api_client, body, message):
    response = _login(api_client, **body)

    assert response.status_code == 400
    assert response.json() == {
        "error": {"code": "VALIDATION_ERROR", "message": message, "status": 400}
    }


def test_failed_logins_lock_out_per_address_and_username(api_client, user, other_user):
    limit = settings.AXES_FAILURE_LIMIT
    for _ in range(limit - 1):
        assert _login(api_client, username="analyst", password="wrong").status_code == 401

    blocked = _login(api_client, username="analyst", password="wrong")
    assert blocked.status_code == 429
    assert blocked.json() == {
        "error": {
            "code": "RATE_LIMITED",
            "message": "Too many failed login attempts; try again in 15 minutes",
            "status": 429,
        }
    }
    assert _login(api_client, username="analyst", password="correct-horse-42").status_code == 429

    # Another username from the same address, and the same username from another address,
    # are not affected.
    assert _login(api_client, username="other", password="correct-horse-43").status_code == 200
    elsewhere = APIClient(REMOTE_ADDR="10.9.8.7")
    assert _login(elsewhere, username="analyst", password="correct-horse-42").status_code == 200


def test_successful_logins_are_never_limited(api_client, user):
    for _ in range(settings.AXES_FAILURE_LIMIT + 3):
        response = _login(api_client, username="analyst", password="correct-horse-42")
        assert response.status_code == 200


def test_a_success_clears_the_failure_count(api_client, user):
    limit = settings.AXES_FAILURE_LIMIT
    for _ in range(limit - 1):
        _login(api_client, username="analyst", password="wrong")
    assert _login(api_client, username="analyst", password="correct-horse-42").status_code == 200
    for _ in range(limit - 1):
        assert _login(api_client, username="analyst", password="wrong").status_code == 401
    assert _login(api_client, username="analyst", password="correct-horse-42").status_code == 200


def test_refresh_returns_new_working_tokens(api_client, user):
    tokens = _login(api_client, username="analyst", password="correct-horse-42").json()

    response = api_client.post(REFRESH, {"refreshToken": tokens["refreshToken"]}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"accessToken", "refreshToken", "expiresIn"}
    assert body["refreshToken"] != tokens["refreshToken"]
    assert str(AccessToken(body["accessToken"])["user_id"]) == str(user.pk)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {body['accessToken']}")
    assert client.get("/api/backtests").status_code == 200


@pytest.mark.parametrize("which", ["access", "forged", "garbage"])
def test_refresh_rejects_anything_but_a_valid_refresh_token(api_client, user, which):
    refresh = RefreshToken.for_user(user)
    token = {
        "access": str(refresh.access_token),  # wrong token type
        "forged": jwt.encode(dict(refresh.payload), FOREIGN_KEY, algorithm="HS256"),
        "garbage": "abc.def.ghi",
    }[which]

    response = api_client.post(REFRESH, {"refreshToken": token}, format="json")

    assert response.status_code == 401
    assert response.json()["error"] == {
        "code": "UNAUTHORIZED",
        "message": "Invalid or expired refresh token",
        "status": 401,
    }


def test_refresh_for_a_deactivated_user_is_refused(api_client, user):
    refresh = str(RefreshToken.for_user(user))
    user.is_active = False
    user.save()

    response = api_client.post(REFRESH, {"refreshToken": refresh}, format="json")

    assert response.status_code == 401


def test_expired_refresh_token_is_refused(api_client, user):
    refresh = RefreshToken.for_user(user)
    refresh.set_exp(lifetime=-dt.timedelta(seconds=1))

    response = api_client.post(REFRESH, {"refreshToken": str(refresh)}, format="json")

    assert response.status_code == 401


def test_missing_credentials_are_401_in_the_contract_shape(api_client):
    response = api_client.get(DETAIL)

    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_expired_access_token_is_401(api_client, user):
    token = AccessToken.for_user(user)
    token.set_exp(lifetime=-dt.timedelta(seconds=1))
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    response = api_client.get(DETAIL)

    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED


def test_manually_built_expired_token_is_401(api_client, user):
    now = dt.datetime.now(dt.UTC)
    payload = {
        "token_type": "access",
        "user_id": str(user.pk),
        "jti": "0123456789abcdef",
        "iat": int((now - dt.timedelta(hours=1)).timestamp()),
        "exp": int((now - dt.timedelta(minutes=30)).timestamp()),
    }
    token = jwt.encode(payload, settings.SECRET_KEY, algorithm="HS256")
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    response = api_client.get("/api/backtests")

    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED


@pytest.mark.parametrize("header", ["forged", "tampered", "refresh", "not-bearer", "empty"])
def test_invalid_tokens_are_401(api_client, user, other_user, header):
    access = AccessToken.for_user(user)
    payload = dict(access.payload)
    signed_elsewhere = jwt.encode(payload, FOREIGN_KEY, algorithm="HS256")
    head, _, signature = str(access).split(".")
    other_body = str(AccessToken.for_user(other_user)).split(".")[1]
    value = {
        "forged": f"Bearer {signed_elsewhere}",
        "tampered": f"Bearer {head}.{other_body}.{signature}",
        "refresh": f"Bearer {RefreshToken.for_user(user)}",
        "not-bearer": f"Token {access}",
        "empty": "Bearer ",
    }[header]
    api_client.credentials(HTTP_AUTHORIZATION=value)

    response = api_client.get("/api/backtests")

    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED


def test_a_stale_token_does_not_block_logging_in_again(api_client, user):
    api_client.credentials(HTTP_AUTHORIZATION="Bearer expired.or.forged")

    assert _login(api_client, username="analyst", password="correct-horse-42").status_code == 200


def test_session_login_is_accepted(user):
    client = APIClient()
    client.force_login(user)

    assert client.get("/api/backtests").status_code == 200

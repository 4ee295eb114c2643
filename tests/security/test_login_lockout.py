"""Login lockout (django-axes) on every login path, with the client address taken from
``X-Forwarded-For`` only when a configured proxy sent it.

The attacks: 30 wrong passwords then the right one logged in on ``/admin/login/`` and
``/accounts/login/`` (no limit at all); the results API's limit was per process and keyed on a
client-supplied ``X-Forwarded-For``, so a different header per attempt was never limited.
"""

import itertools

import pytest
from django.conf import settings
from django.test import Client, override_settings
from rest_framework.test import APIClient

from backfolio.common.client_address import client_address

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-42"
GUESSES = 30
_addresses = (f"198.51.100.{n}" for n in itertools.count(1))


def fresh_address() -> str:
    return next(_addresses)


def api_login(client, password, **extra):
    return client.post(
        "/api/auth/login", {"username": "analyst", "password": password}, format="json", **extra
    )


def form_login(client, path, password, **extra):
    return client.post(path, {"username": "analyst", "password": password}, **extra)


def logged_in(client) -> bool:
    return "_auth_user_id" in client.session


@pytest.mark.parametrize("path", ["/admin/login/", "/accounts/login/"])
def test_wrong_passwords_lock_the_login_pages(staff_user, user, path):
    if path == "/admin/login/":
        user.is_staff = True
        user.save()
    client = Client(REMOTE_ADDR=fresh_address())
    for _ in range(GUESSES):
        form_login(client, path, "wrong")

    response = form_login(client, path, PASSWORD)

    assert response.status_code == 429
    assert response.content.decode() == (
        "Account locked: too many login attempts. Please try again later."
    )
    assert not logged_in(client)


def test_wrong_passwords_lock_the_api_login(user):
    client = APIClient(REMOTE_ADDR=fresh_address())
    statuses = [api_login(client, "wrong").status_code for _ in range(GUESSES)]

    response = api_login(client, PASSWORD)

    assert statuses.count(401) == settings.AXES_FAILURE_LIMIT - 1
    assert response.status_code == 429
    assert response.json() == {
        "error": {
            "code": "RATE_LIMITED",
            "message": "Too many failed login attempts; try again in 15 minutes",
            "status": 429,
        }
    }


def test_one_path_counts_for_all(user):
    """Failures on the login page and the API add up: the limit is per user and address."""
    address = fresh_address()
    page, api = Client(REMOTE_ADDR=address), APIClient(REMOTE_ADDR=address)
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        (form_login(page, "/accounts/login/", "wrong") if attempt % 2 else api_login(api, "x"))

    assert api_login(api, PASSWORD).status_code == 429
    assert form_login(page, "/accounts/login/", PASSWORD).status_code == 429


@pytest.mark.parametrize("path", ["/api/auth/login", "/accounts/login/", "/admin/login/"])
def test_a_different_forwarded_for_per_attempt_does_not_escape_the_lockout(user, path):
    user.is_staff = True
    user.save()
    address = fresh_address()
    forwarded = (f"203.0.113.{n}" for n in itertools.count(1))
    client = (
        APIClient(REMOTE_ADDR=address) if path.startswith("/api") else Client(REMOTE_ADDR=address)
    )

    def attempt(password):
        extra = {"HTTP_X_FORWARDED_FOR": next(forwarded)}
        if path.startswith("/api"):
            return api_login(client, password, **extra)
        return form_login(client, path, password, **extra)

    for _ in range(GUESSES):
        attempt("wrong")

    assert attempt(PASSWORD).status_code == 429


@override_settings(BACKFOLIO_TRUSTED_PROXIES=["10.0.0.0/8"])
def test_behind_a_configured_proxy_each_client_is_counted_apart(user):
    proxy = APIClient(REMOTE_ADDR="10.1.2.3")
    for _ in range(GUESSES):
        # A client may prepend anything; the proxy appends the address it saw.
        api_login(proxy, "wrong", HTTP_X_FORWARDED_FOR=f"{fresh_address()}, 203.0.113.7")

    locked = api_login(proxy, PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.7")
    someone_else = api_login(proxy, PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.8")

    assert locked.status_code == 429
    assert someone_else.status_code == 200


class _Request:
    def __init__(self, remote, forwarded=None):
        self.META = {"REMOTE_ADDR": remote}
        if forwarded is not None:
            self.META["HTTP_X_FORWARDED_FOR"] = forwarded


@pytest.mark.parametrize(
    ("trusted", "remote", "forwarded", "client"),
    [
        ([], "192.0.2.1", "203.0.113.9", "192.0.2.1"),
        (["10.0.0.1"], "192.0.2.1", "203.0.113.9", "192.0.2.1"),
        (["10.0.0.1"], "10.0.0.1", "203.0.113.9", "203.0.113.9"),
        (["10.0.0.1"], "10.0.0.1", "1.1.1.1, 203.0.113.9", "203.0.113.9"),
        (["10.0.0.0/8"], "10.0.0.1", "203.0.113.9, 10.0.0.2", "203.0.113.9"),
        (["10.0.0.1"], "10.0.0.1", None, "10.0.0.1"),
        (["10.0.0.1"], "10.0.0.1", "10.0.0.1", "10.0.0.1"),
        (["::1"], "::1", "2001:db8::5", "2001:db8::5"),
    ],
)
def test_client_address_reads_forwarded_for_only_from_trusted_proxies(
    trusted, remote, forwarded, client
):
    with override_settings(BACKFOLIO_TRUSTED_PROXIES=trusted):
        assert client_address(_Request(remote, forwarded)) == client

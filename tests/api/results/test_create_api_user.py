"""``manage.py create_api_user``: staff create plain users who can then log in."""

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db

User = get_user_model()


def _create(*args, **options) -> str:
    out = io.StringIO()
    call_command("create_api_user", *args, stdout=out, **options)
    return out.getvalue()


def test_creates_a_plain_user_who_can_log_in(api_client):
    output = _create("quant", email="quant@example.com", password="a-long-passphrase-9")

    user = User.objects.get(username="quant")
    assert f"Created API user quant (id {user.pk})" in output
    assert user.email == "quant@example.com"
    assert not user.is_staff and not user.is_superuser and user.is_active
    response = api_client.post(
        "/api/auth/login",
        {"email": "quant@example.com", "password": "a-long-passphrase-9"},
        format="json",
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("username", "email", "message"),
    [
        ("Analyst", "new@example.com", "A user named 'Analyst' already exists"),
        ("newcomer", "ANALYST@example.com", "A user with email 'ANALYST@example.com' already"),
        ("newcomer", "not-an-email", "--email: 'not-an-email' is not a valid email address"),
    ],
)
def test_refuses_duplicates_and_bad_emails(user, username, email, message):
    with pytest.raises(CommandError, match=message):
        _create(username, email=email, password="a-long-passphrase-9")
    assert not User.objects.filter(username="newcomer").exists()


def test_refuses_a_weak_password(db):
    with pytest.raises(CommandError, match="Password rejected: This password is too common"):
        _create("quant", email="quant@example.com", password="password")
    assert not User.objects.filter(username="quant").exists()


def test_asks_for_the_password_when_not_given(db, monkeypatch):
    answers = iter(["a-long-passphrase-9", "a-long-passphrase-9"])
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(answers))

    _create("quant", email="quant@example.com")

    assert User.objects.get(username="quant").check_password("a-long-passphrase-9")


def test_mismatched_typed_passwords_are_refused(db, monkeypatch):
    answers = iter(["a-long-passphrase-9", "a-long-passphrase-8"])
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(answers))

    with pytest.raises(CommandError, match="The passwords do not match"):
        _create("quant", email="quant@example.com")

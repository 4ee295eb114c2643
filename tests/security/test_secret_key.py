"""Nobody can forge a token: no key written in the source signs anything.

The attack: the settings used to fall back to a key written in ``base.py`` when
``DJANGO_SECRET_KEY`` was unset (as ``make run`` leaves it), so anyone could sign an access token
for any user id with it. Now the embedded default generates a random key on its first start,
keeps it owner-only in ``var/`` and reuses it.
"""

import ast
import os
import stat
import subprocess
import sys
from pathlib import Path

import jwt
import pytest
from django.conf import settings
from rest_framework_simplejwt.tokens import AccessToken

from backfolio.secret_key import SecretKeyFileError, embedded_secret_key

ROOT = Path(__file__).resolve().parents[2]
SETTINGS_DIR = ROOT / "backfolio" / "settings"
FORMER_SOURCE_KEY = "backfolio-embedded-development-key-not-secret"
DETAIL = "/api/backtests/00000000-0000-0000-0000-000000000001"
UNAUTHORIZED = {
    "error": {"code": "UNAUTHORIZED", "message": "Authentication required", "status": 401}
}


def _settings_value(env: dict[str, str], expression: str, module: str = "base"):
    """Evaluate ``expression`` on freshly imported settings in a clean interpreter."""
    code = (
        f"import django, os; os.environ['DJANGO_SETTINGS_MODULE']='backfolio.settings.{module}';"
        "from django.conf import settings; django.setup();"
        f"print({expression})"
    )
    clean = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SECRET_KEY", "DJANGO_SECRET_KEY_FILE"}
    }
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
    )


def test_first_start_creates_an_owner_only_key_file_and_later_starts_reuse_it(tmp_path):
    key_file = tmp_path / "var" / "secret_key"

    first = _settings_value({"DJANGO_SECRET_KEY_FILE": str(key_file)}, "settings.SECRET_KEY")
    second = _settings_value({"DJANGO_SECRET_KEY_FILE": str(key_file)}, "settings.SECRET_KEY")

    assert first.returncode == 0, first.stderr
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text().strip()
    assert len(key) >= 50
    assert first.stdout.strip() == key
    assert second.stdout.strip() == key


def test_simplejwt_signs_with_the_generated_key(tmp_path):
    key_file = tmp_path / "secret_key"
    out = _settings_value(
        {"DJANGO_SECRET_KEY_FILE": str(key_file)},
        "__import__('rest_framework_simplejwt.settings').settings.api_settings.SIGNING_KEY"
        " == settings.SECRET_KEY",
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"


def test_two_key_files_hold_different_random_keys(tmp_path):
    assert embedded_secret_key(tmp_path / "a") != embedded_secret_key(tmp_path / "b")


def test_a_key_file_others_can_read_is_made_owner_only_again(tmp_path):
    key_file = tmp_path / "secret_key"
    key = embedded_secret_key(key_file)
    os.chmod(key_file, 0o644)

    assert embedded_secret_key(key_file) == key
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_an_empty_key_file_is_refused_with_the_remedy(tmp_path):
    key_file = tmp_path / "secret_key"
    key_file.write_text("")

    with pytest.raises(SecretKeyFileError) as refused:
        embedded_secret_key(key_file)
    assert str(refused.value) == (
        f"{key_file} is empty: delete it to have a new key generated, or set DJANGO_SECRET_KEY."
    )


def test_the_environment_key_wins_over_the_key_file(tmp_path):
    key_file = tmp_path / "secret_key"
    out = _settings_value(
        {"DJANGO_SECRET_KEY": "k" * 60, "DJANGO_SECRET_KEY_FILE": str(key_file)},
        "settings.SECRET_KEY",
    )
    assert out.stdout.strip() == "k" * 60
    assert not key_file.exists()


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    key_file = tmp_path / "secret_key"
    out = _settings_value(
        {"DJANGO_SECRET_KEY_FILE": str(key_file), "DJANGO_ALLOWED_HOSTS": "example.com"},
        "settings.SECRET_KEY",
        module="prod",
    )
    assert out.returncode != 0
    assert "Set the DJANGO_SECRET_KEY environment variable in production." in out.stderr
    assert not key_file.exists()


def _forged_access_token(user, key: str) -> str:
    """A valid access token's claims for ``user`` (every claim the service checks), re-signed
    with ``key``: what an attacker who knows a signing key can mint."""
    claims = dict(AccessToken.for_user(user).payload)
    return jwt.encode(claims, key, algorithm="HS256")


@pytest.mark.django_db
def test_a_token_signed_with_the_former_source_key_is_refused(api_client, staff_user):
    assert settings.SECRET_KEY != FORMER_SOURCE_KEY
    api_client.credentials(
        HTTP_AUTHORIZATION=f"Bearer {_forged_access_token(staff_user, FORMER_SOURCE_KEY)}"
    )

    response = api_client.get(DETAIL)

    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED


@pytest.mark.django_db
def test_a_token_signed_with_the_service_key_is_accepted(api_client, staff_user):
    """The control for the forgery above: the same claims, signed with the real key, pass."""
    api_client.credentials(
        HTTP_AUTHORIZATION=f"Bearer {_forged_access_token(staff_user, settings.SECRET_KEY)}"
    )

    response = api_client.get(DETAIL)

    assert response.status_code == 404


def _literals(node: ast.AST) -> list[str]:
    """String literals under ``node``, except the names an ``env(...)`` call reads."""
    names = {
        id(call.args[0])
        for call in ast.walk(node)
        if isinstance(call, ast.Call) and call.args and isinstance(call.args[0], ast.Constant)
    }
    return [
        child.value
        for child in ast.walk(node)
        if isinstance(child, ast.Constant)
        and isinstance(child.value, str)
        and child.value
        and id(child) not in names
    ]


def _string_constants_assigned_to_keys(tree: ast.AST) -> list[str]:
    """String literals that could end up as ``SECRET_KEY`` or a signing key in a settings file:
    the value (or default) given to any name or dictionary entry ending in ``KEY``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id.upper().endswith("KEY")
            for target in node.targets
        ):
            found.extend(_literals(node.value))
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and str(key.value).upper().endswith("KEY"):
                    found.extend(_literals(value))
    return found


def test_no_settings_file_holds_a_literal_key():
    for path in sorted(SETTINGS_DIR.glob("*.py")):
        source = path.read_text()
        assert FORMER_SOURCE_KEY not in source, path
        assert _string_constants_assigned_to_keys(ast.parse(source)) == [], path

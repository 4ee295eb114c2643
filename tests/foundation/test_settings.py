import importlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _settings_in_subprocess(env: dict[str, str], expression: str) -> str:
    """Evaluate ``expression`` on freshly imported settings, in a clean interpreter."""
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='backfolio.settings.base';"
        "from django.conf import settings; django.setup();"
        f"print({expression})"
    )
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    }
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def test_embedded_default_uses_sqlite_local_files_and_the_in_process_broker():
    out = _settings_in_subprocess(
        {},
        "settings.DATABASES['default']['ENGINE'], settings.DRAMATIQ_BROKER['BROKER'],"
        " settings.STORAGES['default']['BACKEND'], settings.BACKFOLIO_EMBEDDED_WORKERS",
    )
    assert "sqlite3" in out
    assert "StubBroker" in out
    assert "FileSystemStorage" in out
    assert out.endswith("True")


def test_database_and_redis_urls_switch_to_postgres_and_the_redis_broker():
    out = _settings_in_subprocess(
        {"DATABASE_URL": "postgres://u@db:5432/x", "REDIS_URL": "redis://cache:6379/0"},
        "settings.DATABASES['default']['ENGINE'], settings.DRAMATIQ_BROKER['BROKER'],"
        " settings.CACHES['default']['BACKEND'], settings.BACKFOLIO_EMBEDDED_WORKERS",
    )
    assert "postgresql" in out
    assert "RedisBroker" in out
    assert "RedisCache" in out
    assert out.endswith("False")


def test_media_root_overrides_where_local_artifacts_go(tmp_path):
    out = _settings_in_subprocess(
        {"MEDIA_ROOT": str(tmp_path)}, "settings.STORAGES['default']['OPTIONS']['location']"
    )
    assert out == str(tmp_path)


def test_production_settings_pass_the_deploy_checks():
    env = {
        "DJANGO_SETTINGS_MODULE": "backfolio.settings.prod",
        "DJANGO_SECRET_KEY": "a-long-random-production-secret-" + "x" * 40,
        "DJANGO_ALLOWED_HOSTS": "backfolio.example.com",
    }
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env={**clean, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_settings_modules_import():
    for name in ("dev", "test"):
        importlib.import_module(f"backfolio.settings.{name}")

"""The embedded default's first start: a staff user with a one-time password, and demo content
of every kind, once, on SQLite only."""

import io
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.test import Client

from backtests import demo
from backtests.models import Backtest, Sweep
from backtests.portfolio.examples import examples
from strategies.language import PLUGINS
from strategies.models import Strategy

embedded_only = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="the first start acts on the embedded SQLite only"
)


def _first_start() -> str:
    out = io.StringIO()
    call_command("first_start", stdout=out)
    return out.getvalue()


@embedded_only
@pytest.mark.django_db(transaction=True)
def test_the_first_start_creates_a_staff_user_and_demo_runs_of_every_kind_once(settings, broker):
    settings.BACKFOLIO_DEMO = True

    output = _first_start()

    (password,) = re.findall(r"One-time password:\s+(\S+)", output)
    client = Client()
    login = client.post(
        "/accounts/login/", {"username": "admin", "password": password, "next": "/"}
    )
    assert login.status_code == 302
    assert client.get("/").status_code == 200
    staff = get_user_model().objects.get(username="admin")
    assert staff.is_staff and staff.is_superuser
    owner = get_user_model().objects.get(username="demo")
    assert not owner.has_usable_password()

    names = set(Strategy.objects.values_list("name", flat=True))
    assert {example["name"] for example in examples().values()} <= names
    assert Strategy.objects.filter(kind="signal").count() == len(PLUGINS)
    assert Strategy.objects.filter(kind="allocation").count() == len(examples())
    assert set(Strategy.objects.values_list("owner", flat=True)) == {owner.pk}

    runs = Backtest.objects.all()
    assert {run.status for run in runs} == {"completed"}
    assert {run.owner_id for run in runs} == {owner.pk}
    by_kind = {
        "signal": runs.filter(strategy__kind="signal", sweep__isnull=True).count(),
        "allocation": runs.filter(strategy__kind="allocation").count(),
        "portfolio": runs.filter(strategy__isnull=True, source="v2").count(),
        "sweep": runs.filter(sweep__isnull=False).count(),
    }
    assert by_kind == {"signal": 1, "allocation": 1, "portfolio": 1, "sweep": 4}
    sweep = Sweep.objects.get()
    assert (sweep.owner, sweep.task.status) == (owner, "SUCCESS")
    assert "First start: Demo content loaded." in output

    again = _first_start()

    assert "password" not in again.lower()
    assert "First start: The database already holds strategies or runs." in again
    assert Backtest.objects.count() == 7 and get_user_model().objects.count() == 2


@embedded_only
@pytest.mark.django_db
def test_demo_is_off_with_the_setting_and_the_password_never_comes_twice(settings):
    settings.BACKFOLIO_DEMO = False

    output = _first_start()

    assert "One-time password" in output
    assert "First start: BACKFOLIO_DEMO is off." in output
    assert not Strategy.objects.exists()
    assert "One-time password" not in _first_start()


@pytest.mark.django_db
def test_an_existing_user_means_no_staff_user_is_made(settings, user):
    settings.BACKFOLIO_DEMO = False

    output = _first_start()

    assert "One-time password" not in output
    assert list(get_user_model().objects.all()) == [user]


@pytest.mark.django_db
def test_production_settings_never_make_a_staff_user_or_demo_content(settings):
    settings.BACKFOLIO_DEMO = False
    settings.BACKFOLIO_FIRST_START_STAFF_USER = False

    assert demo.first_start() == demo.FirstStart(None, False, "BACKFOLIO_DEMO is off.")
    assert not get_user_model().objects.exists()


def test_production_settings_turn_the_first_start_off():
    import os
    import subprocess
    import sys

    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.BACKFOLIO_DEMO, settings.BACKFOLIO_FIRST_START_STAFF_USER)"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "backfolio.settings.prod",
        "DJANGO_SECRET_KEY": "x" * 50,
        "DJANGO_ALLOWED_HOSTS": "example.com",
        "BACKFOLIO_DEMO": "1",
    }
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False", "False"]


@pytest.mark.django_db
def test_never_on_postgresql(settings, monkeypatch):
    settings.BACKFOLIO_DEMO = True
    monkeypatch.setattr(demo, "is_embedded_database", lambda: False)

    outcome = demo.first_start()

    assert outcome == demo.FirstStart(None, False, "The database is not the embedded SQLite.")
    assert not Strategy.objects.exists() and not get_user_model().objects.exists()


@pytest.mark.skipif(connection.vendor == "sqlite", reason="needs a database other than SQLite")
@pytest.mark.django_db
def test_on_any_other_database_the_first_start_creates_nothing(settings):
    settings.BACKFOLIO_DEMO = True

    output = _first_start()

    assert "One-time password" not in output
    assert "First start: The database is not the embedded SQLite." in output
    assert not get_user_model().objects.exists()
    assert not Strategy.objects.exists() and not Backtest.objects.exists()

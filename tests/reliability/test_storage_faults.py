"""A storage write that fails: the run ends ``failed`` with a reason and references nothing."""

import pytest
from django.core.files.storage import FileSystemStorage

from backtests.models import Backtest

pytestmark = pytest.mark.django_db


class TradesWriteFails(FileSystemStorage):
    """Stores the equity curve, then fails on the trades file: a half-written run."""

    def _save(self, name, content):
        if name.endswith("trades.parquet"):
            raise OSError("disk full (simulated)")
        return super()._save(name, content)


def _use_storage(settings, backend: str, location) -> None:
    # Changing STORAGES resets django's cached default storage (setting_changed signal).
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": backend, "OPTIONS": {"location": str(location)}},
    }


def _assert_failed_without_artifacts(api_client, backtest_id, response):
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "failed"
    row = Backtest.objects.get(pk=backtest_id)
    assert row.status == Backtest.Status.FAILED
    assert "Could not store the run's artifacts" in row.error
    assert row.metrics == {"error": row.error}
    assert row.equity_curve_uri is None and row.trades_uri is None
    assert api_client.get(f"/api/v1/backtests/{backtest_id}/equity-curve").status_code == 409


def test_unwritable_storage_fails_the_run_with_a_reason(
    api_client, settings, tmp_path, signal_backtest_id
):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    _use_storage(settings, "django.core.files.storage.FileSystemStorage", blocker)

    response = api_client.post(f"/api/v1/backtests/{signal_backtest_id}/execute", {}, format="json")

    _assert_failed_without_artifacts(api_client, signal_backtest_id, response)


def test_second_artifact_failing_removes_the_first(
    api_client, settings, tmp_path, signal_backtest_id
):
    _use_storage(settings, f"{__name__}.TradesWriteFails", tmp_path)

    response = api_client.post(f"/api/v1/backtests/{signal_backtest_id}/execute", {}, format="json")

    _assert_failed_without_artifacts(api_client, signal_backtest_id, response)
    left_behind = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert left_behind == [], "the equity curve of a failed run was left in storage"


def test_run_completes_again_once_storage_recovers(
    api_client, settings, tmp_path, signal_backtest_id
):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    _use_storage(settings, "django.core.files.storage.FileSystemStorage", blocker)
    failed = api_client.post(f"/api/v1/backtests/{signal_backtest_id}/execute", {}, format="json")
    assert failed.json()["status"] == "failed"

    _use_storage(settings, "django.core.files.storage.FileSystemStorage", tmp_path / "media")
    recovered = api_client.post(
        f"/api/v1/backtests/{signal_backtest_id}/execute", {}, format="json"
    )

    assert recovered.json()["status"] == "completed", recovered.content
    row = Backtest.objects.get(pk=signal_backtest_id)
    assert row.equity_curve_uri and row.trades_uri and row.error == ""
    assert api_client.get(f"/api/v1/backtests/{signal_backtest_id}/equity-curve").status_code == 200

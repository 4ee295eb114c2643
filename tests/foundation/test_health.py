import pytest
from django.core.files.storage import storages


@pytest.mark.django_db
def test_healthz_reports_every_check_ok(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "broker", "storage"}
    assert all(check["ok"] for check in body["checks"].values())


@pytest.mark.django_db
def test_healthz_is_503_naming_storage_when_artifacts_cannot_be_written(client, settings, tmp_path):
    # A regular file where the storage expects a directory: every write really fails.
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(blocker)},
        },
    }
    storages._storages.pop("default", None)
    try:
        response = client.get("/healthz")
    finally:
        storages._storages.pop("default", None)

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["storage"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True


def test_healthz_rejects_other_methods(client):
    assert client.post("/healthz").status_code == 405

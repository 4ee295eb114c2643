import datetime as dt

import pytest

from marketdata.models import PriceSeries
from marketdata.store import get_store
from marketdata.uploaded import SOURCE_NAME

pytestmark = pytest.mark.django_db


def _uploaded_source():
    return get_store()._sources[SOURCE_NAME]


def test_version_is_remembered_within_the_ttl_and_forgotten_on_save(settings):
    settings.MARKETDATA_VERSION_TTL_SECONDS = 60
    source = _uploaded_source()
    source.forget_version()
    before = source.version()

    with NoQueries():
        assert source.version() == before

    PriceSeries.objects.create(
        symbol="ZZZ",
        first_date=dt.date(2020, 1, 2),
        last_date=dt.date(2020, 1, 3),
        rows=2,
        data=b"",
        sha256="0" * 64,
    )
    assert source.version() != before


class NoQueries:
    """The remembered version answers without touching the database."""

    def __enter__(self):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        self.capture = CaptureQueriesContext(connection)
        self.capture.__enter__()
        return self

    def __exit__(self, *exc):
        self.capture.__exit__(*exc)
        assert len(self.capture.captured_queries) == 0

"""The embedded default and production serve the pages' static files hashed, compressed and
cached for good (collectstatic with the shipped storage, then WhiteNoise as it runs there)."""

import gzip
import re

from django.conf import settings
from django.core.management import call_command
from django.http import HttpResponse
from django.test import RequestFactory, override_settings
from whitenoise.middleware import WhiteNoiseMiddleware

PLOTLY_FULL_BUILD_BYTES = 4_800_000
# As backfolio/settings/base.py has it (the test settings swap it for plain storage).
SHIPPED_STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}


def test_the_shipped_plotly_is_the_cartesian_build_and_a_third_of_the_full_one():
    source = (settings.BASE_DIR / "static" / "vendor" / "plotly.min.js").read_bytes()
    assert b"plotly.js (cartesian - minified)" in source[:200]
    assert len(source) < PLOTLY_FULL_BUILD_BYTES / 3
    assert len(gzip.compress(source)) < 600_000


def test_collected_files_are_hashed_gzipped_and_served_immutable(tmp_path):
    with override_settings(
        STATIC_ROOT=tmp_path, STORAGES=SHIPPED_STORAGES, WHITENOISE_USE_FINDERS=False, DEBUG=False
    ):
        call_command("collectstatic", "--noinput", "-v", "0")
        hashed = [
            path.name
            for path in (tmp_path / "vendor").iterdir()
            if re.fullmatch(r"plotly\.min\.[0-9a-f]{12}\.js", path.name)
        ]
        assert len(hashed) == 1
        assert (tmp_path / "vendor" / f"{hashed[0]}.gz").exists()

        middleware = WhiteNoiseMiddleware(lambda request: HttpResponse(status=404))
        request = RequestFactory().get(f"/static/vendor/{hashed[0]}", HTTP_ACCEPT_ENCODING="gzip")
        response = middleware(request)

    assert response.status_code == 200
    assert response["Content-Encoding"] == "gzip"
    assert response["Cache-Control"] == "max-age=315360000, public, immutable"

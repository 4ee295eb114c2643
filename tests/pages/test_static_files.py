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
PLOTLY_CARTESIAN_BUILD_BYTES = 1_500_041  # plotly.js-cartesian-dist-min 4.1.1, shipped before
# Every trace type plotly.js 4 has (its lib/ folder): what static/js draws must be in the build.
PLOTLY_TRACE_TYPES = frozenset(
    [
        "bar",
        "barpolar",
        "box",
        "candlestick",
        "carpet",
        "choropleth",
        "choroplethmap",
        "cone",
        "contour",
        "contourcarpet",
        "densitymap",
        "funnel",
        "funnelarea",
        "heatmap",
        "histogram",
        "histogram2d",
        "histogram2dcontour",
        "icicle",
        "image",
        "indicator",
        "isosurface",
        "mesh3d",
        "ohlc",
        "parcats",
        "parcoords",
        "pie",
        "quiver",
        "sankey",
        "scatter",
        "scatter3d",
        "scattercarpet",
        "scattergeo",
        "scattergl",
        "scattermap",
        "scatterpolar",
        "scatterpolargl",
        "scattersmith",
        "scatterternary",
        "splom",
        "streamtube",
        "sunburst",
        "surface",
        "table",
        "treemap",
        "violin",
        "volume",
        "waterfall",
    ]
)
# As backfolio/settings/base.py has it (the test settings swap it for plain storage).
SHIPPED_STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}


def _shipped_plotly() -> bytes:
    return (settings.BASE_DIR / "static" / "vendor" / "plotly.min.js").read_bytes()


def test_the_shipped_plotly_holds_only_the_traces_the_pages_draw():
    source = _shipped_plotly()
    banner = re.search(rb"plotly\.js \(([a-z, ]+) - minified\) v4\.1\.1", source[:300])
    assert banner is not None, "static/vendor/plotly.min.js is not scripts/build_plotly.sh's"
    built = {name.strip() for name in banner.group(1).decode().split(",")}
    scripts = "".join(
        path.read_text() for path in (settings.BASE_DIR / "static" / "js").glob("*.js")
    )
    drawn = set(re.findall(r'type: "([a-z0-9]+)"', scripts)) & PLOTLY_TRACE_TYPES
    assert drawn == built == {"scatter", "bar", "heatmap"}
    assert b"Licensed under the MIT license" in source[:300]


def test_the_shipped_plotly_is_smaller_than_the_cartesian_build_it_replaced():
    source = _shipped_plotly()
    assert len(source) < PLOTLY_CARTESIAN_BUILD_BYTES * 0.8
    assert len(source) < PLOTLY_FULL_BUILD_BYTES / 4
    assert len(gzip.compress(source)) < 420_000


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

"""Admin views of research sweeps, chunks and entries: staff only, read-only, the leaderboard's
head and the overfitting block on a sweep's page."""

import pytest
from django.test import Client
from django.urls import reverse

from backtests.research import jobs, services
from backtests.research.models import ResearchSweepChunk, ResearchSweepEntry
from tests.factories import StrategyFactory

pytestmark = pytest.mark.django_db

CHANGELISTS = (
    "admin:backtests_researchsweep_changelist",
    "admin:backtests_researchsweepchunk_changelist",
    "admin:backtests_researchsweepentry_changelist",
)


@pytest.fixture
def completed_sweep():
    sweep = services.research_sweep_create(
        strategy=StrategyFactory(kind="signal", definition=None, name="crossover"),
        engine="vectorbt",
        base_config={
            "symbol": "SPY",
            "start_date": "2016-01-01",
            "end_date": "2019-12-31",
            "signal_plugin_key": "sma_crossover",
        },
        grid={"signal_plugin_params.fast": [5, 10, 20], "signal_plugin_params.slow": [50]},
        rank_metric="perf_sharpe_ratio",
        partitions=4,
        spa_reps=50,
    )
    for chunk_id in sweep.chunks.values_list("id", flat=True):
        jobs.run_chunk(chunk_id)
    sweep.refresh_from_db()
    assert sweep.status == "completed"
    return sweep


def test_admin_pages_need_a_staff_login(completed_sweep, user):
    anonymous, analyst = Client(), Client()
    analyst.force_login(user)
    for name in CHANGELISTS:
        assert anonymous.get(reverse(name)).status_code == 302
        assert analyst.get(reverse(name)).status_code == 302


def test_changelists_and_pages_open_read_only(completed_sweep, staff_user):
    staff = Client()
    staff.force_login(staff_user)
    for name in CHANGELISTS:
        response = staff.get(reverse(name))
        assert response.status_code == 200, name
    page = staff.get(reverse("admin:backtests_researchsweep_change", args=[completed_sweep.pk]))
    assert page.status_code == 200
    text = page.content.decode()
    assert "crossover" in text and "3/3" in text
    assert "perf_sharpe_ratio" in text and "&quot;pbo&quot;" in text
    best = completed_sweep.overfitting["best"]
    assert f"<td>1</td><td>{best}</td>" in text  # rank 1 is the overfitting block's best
    chunk = ResearchSweepChunk.objects.first()
    entry = ResearchSweepEntry.objects.first()
    for name, pk in (
        ("admin:backtests_researchsweepchunk_change", chunk.pk),
        ("admin:backtests_researchsweepentry_change", entry.pk),
    ):
        assert staff.get(reverse(name, args=[pk])).status_code == 200
    assert staff.get(reverse("admin:backtests_researchsweep_add")).status_code == 403
    response = staff.post(
        reverse("admin:backtests_researchsweep_change", args=[completed_sweep.pk]),
        {"rank_metric": "total_return"},
    )
    assert response.status_code == 403
    completed_sweep.refresh_from_db()
    assert completed_sweep.rank_metric == "perf_sharpe_ratio"

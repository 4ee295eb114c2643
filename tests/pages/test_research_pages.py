"""The research sweep page: leaderboard, heatmap over chosen parameters, the overfitting panel
with its sentences, and the in-sample vs out-of-sample scatter (real sweep, real statistics)."""

import io
import math

import numpy as np
import pyarrow.parquet as pq
import pytest

from backtests.pages.charts import half_split_sharpes, parameter_heatmap
from backtests.research import jobs, services
from tests.factories import StrategyFactory

pytestmark = pytest.mark.django_db


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
        grid={"signal_plugin_params.fast": [5, 10, 20], "signal_plugin_params.slow": [50, 100]},
        rank_metric="perf_sharpe_ratio",
        partitions=4,
        spa_reps=50,
    )
    for chunk_id in sweep.chunks.values_list("id", flat=True):
        jobs.run_chunk(chunk_id)
    sweep.refresh_from_db()
    assert sweep.status == "completed"
    return sweep


def test_the_page_ranks_says_what_overfitting_means_and_offers_both_parameters(
    staff_client, completed_sweep
):
    response = staff_client.get(f"/research/sweeps/{completed_sweep.id}/")

    assert response.status_code == 200
    context = response.context
    assert [row["rank"] for row in context["leaderboard"]] == [1, 2, 3, 4, 5, 6]
    assert context["leaderboard"][0]["parameters"].startswith("fast ")
    assert context["parameters"] == ["signal_plugin_params.fast", "signal_plugin_params.slow"]
    sentences = context["overfitting"]
    pbo = completed_sweep.overfitting["pbo"]["value"]
    assert sentences["pbo"].startswith(f"In {pbo:.0%} of the 6 ways of splitting")
    assert "6 configurations tried" in sentences["dsr"]
    assert sentences["spa"].startswith("Hansen's test gives p = ")
    page = response.content.decode()
    assert 'id="lambda-chart"' in page and 'id="is-oos-chart"' in page


def test_chart_data_holds_the_heatmap_histogram_and_scatter(staff_client, completed_sweep):
    data = staff_client.get(
        f"/research/sweeps/{completed_sweep.id}/chart-data",
        {"x": "signal_plugin_params.slow", "y": "signal_plugin_params.fast"},
    ).json()

    heatmap = data["heatmap"]
    assert (heatmap["x"], heatmap["y"]) == ([50, 100], [5, 10, 20])
    scores = {
        (
            entry.overrides["signal_plugin_params"]["slow"],
            entry.overrides["signal_plugin_params"]["fast"],
        ): entry.score
        for entry in completed_sweep.entries.all()
    }
    for row, fast in enumerate(heatmap["y"]):
        for column, slow in enumerate(heatmap["x"]):
            assert heatmap["z"][row][column] == pytest.approx(scores[(slow, fast)])
    assert data["logit_histogram"] == completed_sweep.overfitting["pbo"]["logit_histogram"]
    assert len(data["scatter"]["in_sample"]) == 6

    # The scatter against an independent reading of the stored returns matrix.
    table = pq.read_table(
        io.BytesIO(
            staff_client.get(
                f"/api/v1/research/sweeps/{completed_sweep.id}/returns.parquet"
            ).content
        )
    ).to_pandas()
    common = table.dropna()
    half = len(common) // 2
    first = common.iloc[:half, 0]
    assert data["scatter"]["in_sample"][0] == pytest.approx(
        first.mean() / first.std(ddof=1) * math.sqrt(252)
    )


class TestCompareTop:
    def test_the_best_entries_become_backtests_once_and_are_compared(
        self, staff_client, completed_sweep, staff_user
    ):
        from backtests.models import Backtest
        from backtests.research.selectors import research_sweep_ranking

        page = staff_client.get(f"/research/sweeps/{completed_sweep.id}/")
        assert page.context["compare_choices"] == [2, 3, 4, 5, 6]
        assert page.context["compare_default"] == 5
        url = f"/research/sweeps/{completed_sweep.id}/compare-top"

        response = staff_client.post(url, {"count": "3"})

        best = research_sweep_ranking(sweep=completed_sweep)[1][:3]
        promoted = list(Backtest.objects.order_by("created_at"))
        assert [backtest.fingerprint for backtest in promoted] == [
            entry["fingerprint"] for entry in best
        ]
        assert {(b.status, b.owner, b.source) for b in promoted} == {
            ("completed", staff_user, "sweep")
        }
        ids = ",".join(str(backtest.id) for backtest in promoted)
        assert response.status_code == 302
        assert response["Location"] == f"/compare/?ids={ids}"
        assert staff_client.get(response["Location"]).status_code == 200

        # Again with one more: the three already made are reused, one is added.
        again = staff_client.post(url, {"count": "4"})
        assert Backtest.objects.count() == 4
        assert again["Location"].startswith(f"/compare/?ids={ids},")

    @pytest.mark.parametrize("count", ["1", "11", "five"])
    def test_a_count_outside_two_to_ten_makes_nothing(self, staff_client, completed_sweep, count):
        from backtests.models import Backtest

        response = staff_client.post(
            f"/research/sweeps/{completed_sweep.id}/compare-top", {"count": count}, follow=True
        )

        assert response.redirect_chain == [(f"/research/sweeps/{completed_sweep.id}/", 302)]
        assert "Compare between 2 and 10 of the best entries." in response.content.decode()
        assert not Backtest.objects.exists()

    def test_fewer_than_two_finished_entries_is_said_and_makes_nothing(self, staff_client):
        from backtests.models import Backtest

        sweep = services.research_sweep_create(
            strategy=StrategyFactory(kind="signal", definition=None),
            engine="vectorbt",
            base_config={
                "symbol": "SPY",
                "start_date": "2016-01-01",
                "end_date": "2019-12-31",
                "signal_plugin_key": "sma_crossover",
            },
            grid={"signal_plugin_params.fast": [5, 10]},
            rank_metric="perf_sharpe_ratio",
            partitions=4,
            spa_reps=50,
        )  # queued, nothing has run
        page = staff_client.get(f"/research/sweeps/{sweep.id}/")
        assert page.context["compare_choices"] == []
        assert 'id="compare-top-form"' not in page.content.decode()

        response = staff_client.post(
            f"/research/sweeps/{sweep.id}/compare-top", {"count": "2"}, follow=True
        )

        assert (
            f"Research sweep {sweep.id} has 0 finished entries: at least two are needed to "
            "compare." in response.content.decode()
        )
        assert not Backtest.objects.exists()

    def test_only_staff_and_only_post(self, client, staff_client, completed_sweep):
        url = f"/research/sweeps/{completed_sweep.id}/compare-top"
        assert "/accounts/login/" in client.post(url, {"count": "2"})["Location"]
        assert staff_client.get(url).status_code == 405


def test_parameter_heatmap_keeps_each_cells_best_score():
    entries = [
        {"parameters": {"a": 1, "b": 1, "c": 0}, "score": 0.5},
        {"parameters": {"a": 1, "b": 1, "c": 1}, "score": 0.9},
        {"parameters": {"a": 2, "b": 1, "c": 0}, "score": None},
    ]
    higher = parameter_heatmap(entries, "a", "b", higher_is_better=True)
    lower = parameter_heatmap(entries, "a", "b", higher_is_better=False)
    assert higher["z"] == [[0.9, None]]
    assert lower["z"] == [[0.5, None]]


def test_half_split_sharpes_by_hand():
    matrix = np.array([[0.01, 0.0], [0.03, 0.02], [np.nan, 0.5], [0.02, -0.01], [0.04, 0.01]])
    result = half_split_sharpes(matrix, bars_per_year=4)
    # Common rows: 0, 1, 3, 4 → halves [0.01, 0.03] and [0.02, 0.04] for the first column.
    assert result["bars"] == [2, 2]
    assert result["in_sample"][0] == pytest.approx(0.02 / math.sqrt(0.0002) * 2)
    assert result["out_of_sample"][0] == pytest.approx(0.03 / math.sqrt(0.0002) * 2)
    assert result["out_of_sample"][1] == pytest.approx(0.0 / 1.0)

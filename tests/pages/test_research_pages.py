"""The research sweep page: leaderboard, heatmap over chosen parameters, the overfitting panel
with its sentences, and the in-sample vs out-of-sample scatter (real sweep, real statistics)."""

import itertools
import math

import numpy as np
import pytest

from backtests.pages.charts import cscv_scatter, parameter_heatmap
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

    # The scatter is the PBO's own points: one per CSCV split, agreeing with the stored block.
    scatter = data["scatter"]
    pbo = completed_sweep.overfitting["pbo"]
    assert scatter["combinations"] == pbo["combinations"] == len(scatter["in_sample"]) == 6
    assert np.mean(scatter["below_median"]) == pytest.approx(pbo["value"])
    assert np.mean(np.array(scatter["out_of_sample"]) < 0) == pytest.approx(
        pbo["probability_of_loss"]
    )
    root = math.sqrt(252)  # the stored line is in per-bar Sharpes, the chart's annualised
    assert scatter["degradation"]["slope"] == pytest.approx(pbo["performance_degradation"]["slope"])
    assert scatter["degradation"]["intercept"] == pytest.approx(
        pbo["performance_degradation"]["intercept"] * root
    )


class TestCompareTop:
    def test_the_best_entries_become_backtests_once_and_are_compared(
        self, staff_client, completed_sweep, staff_user
    ):
        from backtests.models import Backtest
        from backtests.research.selectors import research_sweep_ranking, with_details

        page = staff_client.get(f"/research/sweeps/{completed_sweep.id}/")
        assert page.context["compare_choices"] == [2, 3, 4, 5, 6]
        assert page.context["compare_default"] == 5
        url = f"/research/sweeps/{completed_sweep.id}/compare-top"

        response = staff_client.post(url, {"count": "3"})

        best = with_details(completed_sweep, research_sweep_ranking(sweep=completed_sweep)[1][:3])
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


def test_cscv_points_by_hand():
    # Four blocks of twelve bars, two configurations: 6 splits; one bar not common to both.
    rng = np.random.default_rng(5)
    matrix = rng.normal(0.001, 0.01, size=(49, 2))
    matrix[20, 1] = np.nan
    result = cscv_scatter(matrix, partitions=4, bars_per_year=1)
    common = matrix[~np.isnan(matrix).any(axis=1)]
    blocks = np.array_split(np.arange(len(common)), 4)

    def sharpe(rows, column):
        values = common[rows, column]
        return values.mean() / values.std(ddof=1)

    expected_in, expected_out, expected_below = [], [], []
    for chosen in itertools.combinations(range(4), 2):
        inside = np.concatenate([blocks[b] for b in chosen])
        outside = np.concatenate([blocks[b] for b in range(4) if b not in chosen])
        in_sample = [sharpe(inside, c) for c in (0, 1)]
        best = int(np.argmax(in_sample))
        out = [sharpe(outside, c) for c in (0, 1)]
        expected_in.append(in_sample[best])
        expected_out.append(out[best])
        expected_below.append(out[best] <= out[1 - best])  # ω ≤ ½: λ ≤ 0
    order = np.lexsort((expected_out, expected_in))
    got = np.lexsort((result["out_of_sample"], result["in_sample"]))
    assert np.array(result["in_sample"])[got] == pytest.approx(np.array(expected_in)[order])
    assert np.array(result["out_of_sample"])[got] == pytest.approx(np.array(expected_out)[order])
    assert sorted(result["below_median"]) == sorted(expected_below)

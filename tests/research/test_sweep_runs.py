"""Research sweeps through real Dramatiq workers (the configured broker: in-process stub, or
Redis when REDIS_URL is set): chunks as separate messages, idempotent claims, the leaderboard,
the overfitting block, the downloads, and an entry made into a v1 backtest."""

import csv
import io
import itertools
import time

import numpy as np
import pandas as pd
import pytest
from rest_framework.test import APIClient

from backfolio.common.errors import Conflict
from backtests.models import Task
from backtests.research import jobs, returns_files, services
from backtests.research.models import ResearchSweep, ResearchSweepChunk, ResearchSweepEntry
from marketdata.store import get_store
from metrics.research import overfitting_report
from tests.factories import StrategyFactory

BASE_CONFIG = {
    "symbol": "SPY",
    "start_date": "2015-01-01",
    "end_date": "2020-12-31",
    "signal_plugin_key": "sma_crossover",
}
GRID = {"signal_plugin_params.fast": [5, 10, 20], "signal_plugin_params.slow": [50, 100, 150]}


def wait_for_sweep(client, sweep_id, *, timeout=120.0):
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        response = client.get(f"/api/v1/research/sweeps/{sweep_id}")
        if response.status_code == 200:
            body = response.json()
            seen.append((body["status"], body["done"]))
            if body["status"] in ("completed", "failed"):
                return body, seen
        time.sleep(0.1)
    raise AssertionError(f"sweep {sweep_id} did not finish: {seen[-5:]}")


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(services, "VECTORISED_CHUNK_SIZE", 4)
    monkeypatch.setattr(services, "SINGLE_RUN_CHUNK_SIZE", 2)


def post_sweep(client, strategy, **extra):
    body = {
        "strategy_id": str(strategy.id),
        "base_config": BASE_CONFIG,
        "grid": GRID,
        "rank_metric": "perf_sharpe_ratio",
        "commission": 0.0005,
        "slippage": 0.0005,
        "spa_reps": 200,
        "partitions": 8,
        **extra,
    }
    return client.post("/api/v1/research/sweeps", body, format="json")


@pytest.mark.django_db(transaction=True)
def test_sweep_runs_in_chunks_and_completes_with_the_overfitting_block(worker, small_chunks):
    client = APIClient()
    strategy = StrategyFactory(kind="signal", definition=None)

    response = post_sweep(client, strategy)
    assert response.status_code == 202, response.json()
    answer = response.json()
    assert answer["status"] == "pending"
    assert answer["n_configs"] == 9 and answer["n_skipped"] == 0 and answer["skipped"] == []
    sweep = ResearchSweep.objects.get(pk=answer["id"])
    # 9 entries, at most 4 per chunk, shrinking towards the end: the last ones are the smallest.
    assert list(sweep.chunks.values_list("size", flat=True)) == [2, 2, 2, 2, 1]

    body, seen = wait_for_sweep(client, answer["id"])
    assert body["status"] == "completed", body["error"]
    assert body["done"] == body["total"] == 9
    task = client.get(f"/api/v1/tasks/{answer['task_id']}").json()
    assert task["status"] == "SUCCESS" and task["done"] == task["total"] == 9
    assert task["kind"] == "research_sweep"
    assert all(done <= 9 for _status, done in seen)

    # Every chunk ran once, every entry exists once.
    assert list(sweep.chunks.values_list("status", "attempts")) == [("completed", 1)] * 5
    assert sorted(sweep.entries.values_list("number", flat=True)) == list(range(9))

    entries = body["leaderboard"]["entries"]
    assert [entry["rank"] for entry in entries] == list(range(1, 10))
    scores = [entry["score"] for entry in entries]
    assert scores == sorted(scores, reverse=True)
    assert entries[0]["overrides"] == {"signal_plugin_params": {"fast": 5, "slow": 50}} or (
        entries[0]["overrides"]["signal_plugin_params"].keys() == {"fast", "slow"}
    )

    # The returns matrix: a date index and one column per entry, named by its number. It is
    # not written while the sweep's completion waits, but from the chunks' files when first
    # asked for, and kept.
    sweep.refresh_from_db()
    assert sweep.returns_uri is None
    download = client.get(f"/api/v1/research/sweeps/{answer['id']}/returns.parquet")
    assert download.status_code == 200
    matrix = pd.read_parquet(io.BytesIO(download.content))
    assert list(matrix.columns) == [str(number) for number in range(9)]
    assert matrix.index.name == "date"
    sweep.refresh_from_db()
    assert sweep.returns_uri is not None
    again = client.get(f"/api/v1/research/sweeps/{answer['id']}/returns.parquet")
    assert again.content == download.content
    assert ResearchSweep.objects.get(pk=sweep.pk).returns_uri == sweep.returns_uri

    # The overfitting block is the research module's report on exactly that matrix, against
    # buy and hold of SPY on the same bars without costs.
    close = get_store().load(["SPY"], "2015-01-01", "2020-12-31").close["SPY"]
    close = close.loc[matrix.index]
    benchmark = np.concatenate(([0.0], close.to_numpy()[1:] / close.to_numpy()[:-1] - 1.0))
    best = entries[0]["number"]
    expected = overfitting_report(
        np.asfortranarray(matrix.to_numpy()),  # column-major, as the service passes it
        benchmark,
        best_index=best,
        benchmark="SPY",
        partitions=8,
        spa_reps=200,
        seed=0,
    )
    assert body["overfitting"] == {**expected, "best": best}
    assert body["overfitting"]["n_trials"] == 9

    # results.csv: one row per entry, parameters as dotted columns, metrics.
    text = client.get(f"/api/v1/research/sweeps/{answer['id']}/results.csv").content.decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [int(row["number"]) for row in rows] == list(range(9))
    assert rows[0]["signal_plugin_params.fast"] == "5"
    assert rows[0]["signal_plugin_params.slow"] == "50"
    by_number = {entry["number"]: entry for entry in entries}
    assert float(rows[4]["perf_sharpe_ratio"]) == by_number[4]["metrics"]["perf_sharpe_ratio"]


@pytest.mark.django_db(transaction=True)
def test_an_entry_made_into_a_v1_backtest_has_the_same_fingerprint_and_numbers(
    worker, small_chunks
):
    client = APIClient()
    strategy = StrategyFactory(kind="signal", definition=None)
    answer = post_sweep(client, strategy).json()
    body, _ = wait_for_sweep(client, answer["id"])
    entry = body["leaderboard"]["entries"][3]

    response = client.post(
        f"/api/v1/research/sweeps/{answer['id']}/entries/{entry['number']}/backtest"
    )
    assert response.status_code == 201, response.json()
    backtest = response.json()
    assert backtest["status"] == "completed"
    assert backtest["source"] == "sweep"
    assert backtest["fingerprint"] == entry["fingerprint"]
    assert backtest["metrics"] == entry["metrics"]
    assert backtest["commission"] == 0.0005 and backtest["slippage"] == 0.0005
    # Its artifacts exist, and its per-bar returns are the entry's column of the matrix.
    equity = client.get(f"/api/v1/backtests/{backtest['id']}/equity-curve").json()
    values = np.array([point["equity"] for point in equity])
    returns = values / np.concatenate(([backtest["initial_capital"]], values[:-1])) - 1.0
    matrix = pd.read_parquet(
        io.BytesIO(client.get(f"/api/v1/research/sweeps/{answer['id']}/returns.parquet").content)
    )
    np.testing.assert_array_equal(matrix[str(entry["number"])].to_numpy(), returns)


@pytest.mark.django_db(transaction=True)
def test_backtrader_sweep_runs_one_at_a_time_and_matches_vectorbt_ranks(worker, small_chunks):
    client = APIClient()
    strategy = StrategyFactory(kind="signal", definition=None)
    grid = {"signal_plugin_params.fast": [5, 10], "signal_plugin_params.slow": [50, 100]}
    answer = post_sweep(client, strategy, engine="backtrader", grid=grid).json()
    body, _ = wait_for_sweep(client, answer["id"], timeout=300)
    assert body["status"] == "completed", body["error"]
    assert ResearchSweepChunk.objects.filter(sweep=answer["id"]).count() == 4
    assert body["overfitting"]["n_trials"] == 4


@pytest.mark.django_db(transaction=True)
def test_duplicate_chunk_messages_count_each_entry_once(worker, broker, small_chunks):
    from backtests.research.tasks import run_research_chunk

    strategy = StrategyFactory(kind="signal", definition=None)
    sweep = services.research_sweep_create(
        strategy=strategy,
        engine="vectorbt",
        base_config=BASE_CONFIG,
        grid=GRID,
        rank_metric="perf_sharpe_ratio",
        partitions=8,
        spa_reps=100,
    )
    for chunk_id in sweep.chunks.values_list("id", flat=True):
        run_research_chunk.send(str(chunk_id))  # a second message for every chunk
    broker.join(run_research_chunk.queue_name)
    worker.join()
    sweep.refresh_from_db()
    assert sweep.status == "completed"
    assert sweep.done == sweep.total == 9
    assert ResearchSweepEntry.objects.filter(sweep=sweep).count() == 9
    assert set(sweep.chunks.values_list("attempts", flat=True)) == {1}
    assert Task.objects.get(pk=sweep.task_id).done == 9


@pytest.mark.django_db(transaction=True)
def test_a_chunk_whose_worker_died_is_rerun_once_and_nothing_counts_twice(settings, small_chunks):
    """The row a SIGKILLed worker leaves: a chunk ``running`` with a stale heartbeat. The reaper
    gives it back; the next claim runs it; the dead attempt's late completion is refused."""
    from datetime import timedelta

    from django.utils import timezone

    strategy = StrategyFactory(kind="signal", definition=None)
    sweep = services.research_sweep_create(
        strategy=strategy,
        engine="vectorbt",
        base_config=BASE_CONFIG,
        grid=GRID,
        rank_metric="perf_sharpe_ratio",
        partitions=8,
        spa_reps=100,
    )
    chunks = list(sweep.chunks.order_by("number"))
    dead = jobs.claim_chunk(chunks[0].pk)
    assert dead.attempts == 1
    ResearchSweepChunk.objects.filter(pk=dead.pk).update(
        heartbeat_at=timezone.now()
        - timedelta(seconds=settings.BACKFOLIO_HEARTBEAT_TIMEOUT_SECONDS + 5)
    )
    assert jobs.reap_research_sweeps()["chunks"] == 1
    chunk = ResearchSweepChunk.objects.get(pk=dead.pk)
    assert (chunk.status, chunk.attempts) == ("pending", 1)
    for each in chunks:
        jobs.run_chunk(each.pk)
    stale = ResearchSweepChunk.objects.filter(pk=dead.pk, status="running", attempts=1)
    assert not jobs._complete_chunk(stale, "unused", [], sweep)
    sweep.refresh_from_db()
    assert sweep.status == "completed"
    assert sweep.done == 9 and sweep.entries.count() == 9
    assert ResearchSweepChunk.objects.get(pk=dead.pk).attempts == 2


@pytest.mark.django_db(transaction=True)
def test_failed_entries_rank_last_and_a_sweep_of_only_failures_fails(worker):
    """vectorbt cannot reverse a position sized below 100% of equity: such an entry validates
    but fails in the engine, with the engine's reason."""
    client = APIClient()
    strategy = StrategyFactory(kind="signal", definition=None)
    base = {**BASE_CONFIG, "direction": "both", "signal_plugin_params": {"fast": 10, "slow": 50}}
    mixed = post_sweep(client, strategy, base_config=base, grid={"size": [0.5, 1.0]}).json()
    body, _ = wait_for_sweep(client, mixed["id"])
    assert body["status"] == "completed", body["error"]
    first, last = body["leaderboard"]["entries"]
    assert (first["number"], first["status"], last["number"], last["status"]) == (
        1, "completed", 0, "failed",
    )  # fmt: skip
    assert last["score"] is None and last["metrics"] == {} and last["fingerprint"] is None
    assert "vectorbt cannot reverse a position" in last["error"]
    assert body["overfitting"]["n_trials"] == 1 and body["overfitting"]["pbo"] is None

    failed = post_sweep(client, strategy, base_config=base, grid={"size": [0.5, 0.25]}).json()
    body, _ = wait_for_sweep(client, failed["id"])
    assert body["status"] == "failed"
    assert body["error"] == "Every entry failed; see the leaderboard for why."
    assert body["overfitting"] is None
    task = client.get(f"/api/v1/tasks/{failed['task_id']}").json()
    assert task["status"] == "FAILURE" and task["error"] == body["error"]
    assert client.get(f"/api/v1/research/sweeps/{failed['id']}/results.csv").status_code == 200
    response = client.post(f"/api/v1/research/sweeps/{failed['id']}/entries/0/backtest")
    assert response.status_code == 409
    assert response.json()["detail"].startswith(f"Entry 0 of sweep {failed['id']} failed: ")


def _age(queryset, field: str, seconds: float) -> None:
    from datetime import timedelta

    from django.utils import timezone

    queryset.update(**{field: timezone.now() - timedelta(seconds=seconds)})


@pytest.mark.django_db(transaction=True)
def test_pending_chunks_are_resent_only_when_their_sweep_is_idle(settings, broker, small_chunks):
    from tests.backtests.test_services import queued_messages

    timeout = settings.BACKFOLIO_HEARTBEAT_TIMEOUT_SECONDS
    sweep = services.research_sweep_create(
        strategy=StrategyFactory(kind="signal", definition=None),
        engine="vectorbt",
        base_config=BASE_CONFIG,
        grid=GRID,
        rank_metric="perf_sharpe_ratio",
        partitions=8,
        spa_reps=100,
    )
    broker.flush_all()
    first = sweep.chunks.order_by("number").first()
    jobs.run_claimed_chunk(jobs.claim_chunk(first.pk))  # progress: the sweep was updated just now
    _age(ResearchSweepChunk.objects.filter(sweep=sweep), "updated_at", timeout + 5)
    assert jobs.reap_research_sweeps() == {"chunks": 0, "finishes": 0}  # waiting, not lost

    _age(ResearchSweep.objects.filter(pk=sweep.pk), "updated_at", timeout + 5)
    assert jobs.reap_research_sweeps() == {"chunks": 4, "finishes": 0}  # idle: re-sent once
    assert queued_messages(broker) == 4
    assert jobs.reap_research_sweeps() == {"chunks": 0, "finishes": 0}


@pytest.mark.django_db(transaction=True)
def test_a_finish_whose_worker_died_is_sent_again_and_settles_once(settings):
    timeout = settings.BACKFOLIO_HEARTBEAT_TIMEOUT_SECONDS
    sweep = services.research_sweep_create(
        strategy=StrategyFactory(kind="signal", definition=None),
        engine="vectorbt",
        base_config=BASE_CONFIG,
        grid={"signal_plugin_params.fast": [5, 10], "signal_plugin_params.slow": [50]},
        rank_metric="perf_sharpe_ratio",
        partitions=8,
        spa_reps=100,
    )
    chunk = sweep.chunks.get()
    claimed = jobs.claim_chunk(chunk.pk)
    ours = ResearchSweepChunk.objects.filter(pk=chunk.pk, attempts=claimed.attempts)
    # The chunk completes but its worker dies before finishing the sweep: a claimed finish
    # whose heartbeat went stale.
    outcomes = jobs._outcomes(sweep, sweep.entries_plan)
    frame = jobs.runner.returns_frame(outcomes, [0, 1])
    uri = jobs.artifacts.save_bytes(
        "research/test/chunk.parquet", returns_files.returns_to_parquet(frame)
    )
    entries = [
        ResearchSweepEntry(sweep=sweep, chunk=chunk, number=n, overrides=o, status="completed",
                           metrics=out.metrics, fingerprint=out.fingerprint)
        for (n, o), out in zip(sweep.entries_plan, outcomes, strict=True)
    ]  # fmt: skip
    assert jobs._complete_chunk(ours, uri, entries, sweep)
    stale_token = jobs._claim_finish(sweep.pk)
    _age(ResearchSweep.objects.filter(pk=sweep.pk), "finish_heartbeat_at", timeout + 5)

    assert jobs.reap_research_sweeps() == {"chunks": 0, "finishes": 1}
    jobs.finish_sweep(sweep.pk)
    sweep.refresh_from_db()
    assert sweep.status == "completed" and sweep.overfitting["n_trials"] == 2
    assert sweep.finish_token not in (None, stale_token)
    # The dead claim's late settle matches no row.
    jobs._settle(
        ResearchSweep.objects.filter(pk=sweep.pk, status="running", finish_token=stale_token),
        {"status": "failed", "error": "late"},
    )
    sweep.refresh_from_db()
    assert sweep.status == "completed" and sweep.error == ""


def test_chunks_shrink_towards_the_end_of_a_sweep():
    sizes = services.chunk_sizes(934, 120)
    assert sum(sizes) == 934
    assert sizes[:3] == [117, 103, 90] and sizes[-3:] == [60, 59, 58]
    assert all(58 <= size <= 120 for size in sizes)
    assert all(later <= earlier for earlier, later in itertools.pairwise(sizes))
    assert services.chunk_sizes(10_000, 120)[:76] == [120] * 76
    assert services.chunk_sizes(10_000, 120)[-2:] == [45, 44]  # a small remainder is shared
    assert services.chunk_sizes(9, 120) == [9]
    assert services.chunk_sizes(100, 8)[-3:] == [4, 3, 2]


@pytest.mark.django_db(transaction=True)
def test_a_message_goes_on_with_the_sweeps_pending_chunks_and_one_whose_chunk_was_taken_helps(
    broker, small_chunks
):
    """A worker keeps taking the sweep's pending chunks (lowest number first) after its own, so no
    worker idles while another holds a queued message; a message whose chunk another worker took
    runs what is left instead of nothing."""
    sweep = services.research_sweep_create(
        strategy=StrategyFactory(kind="signal", definition=None),
        engine="vectorbt",
        base_config=BASE_CONFIG,
        grid=GRID,
        rank_metric="perf_sharpe_ratio",
        partitions=8,
        spa_reps=100,
    )
    broker.flush_all()  # no worker here: the test delivers the messages itself
    chunks = list(sweep.chunks.order_by("number"))
    elsewhere = jobs.claim_chunk(chunks[0].pk)  # another worker runs chunk 0
    jobs.run_chunk(chunks[0].pk)  # a duplicate message of chunk 0 arrives meanwhile
    assert list(sweep.chunks.order_by("number").values_list("status", "attempts")) == [
        ("running", 1),
        *[("completed", 1)] * (len(chunks) - 1),
    ]
    sweep.refresh_from_db()
    assert sweep.status == "running" and sweep.done == 9 - chunks[0].size
    assert jobs.run_claimed_chunk(elsewhere)  # the last chunk to complete
    jobs.finish_sweep(sweep.pk)
    sweep.refresh_from_db()
    assert sweep.status == "completed" and sweep.done == 9
    assert ResearchSweepEntry.objects.filter(sweep=sweep).count() == 9


@pytest.mark.django_db(transaction=True)
def test_a_message_that_ran_for_the_time_limit_takes_no_more_chunks(
    broker, small_chunks, monkeypatch
):
    from tests.backtests.test_services import queued_messages

    monkeypatch.setattr(services, "VECTORISED_CHUNK_SIZE", 2)  # one entry per chunk
    sweep = services.research_sweep_create(
        strategy=StrategyFactory(kind="signal", definition=None),
        engine="vectorbt",
        base_config=BASE_CONFIG,
        grid={"signal_plugin_params.fast": [5, 10], "signal_plugin_params.slow": [50]},
        rank_metric="perf_sharpe_ratio",
        partitions=8,
        spa_reps=100,
    )
    broker.flush_all()
    monkeypatch.setattr(jobs, "run_time_limit_seconds", lambda: 0.0)
    first, second = sweep.chunks.order_by("number")
    jobs.run_chunk(first.pk)
    assert list(sweep.chunks.order_by("number").values_list("status", flat=True)) == [
        "completed",
        "pending",  # its own message is still queued
    ]
    jobs.run_chunk(second.pk)
    # The last chunk completed after the message's time: the finishing step is sent, not run.
    assert queued_messages(broker) == 1
    sweep.refresh_from_db()
    assert sweep.status == "running"
    jobs.finish_sweep(sweep.pk)
    sweep.refresh_from_db()
    assert sweep.status == "completed"


@pytest.mark.django_db(transaction=True)
def test_chunks_carry_their_entries_statistics_and_the_finish_joins_them(worker, small_chunks):
    client = APIClient()
    answer = post_sweep(client, StrategyFactory(kind="signal", definition=None)).json()
    body, _ = wait_for_sweep(client, answer["id"])
    assert body["status"] == "completed", body["error"]
    uris = ResearchSweepChunk.objects.filter(sweep=answer["id"]).values_list(
        "returns_uri", flat=True
    )
    kept = [returns_files.ChunkReturns(uri).statistics for uri in uris]
    assert all(item is not None for item in kept) and len({item[0] for item in kept}) == 1
    assert sum(item[1].n_trials for item in kept) == 9


@pytest.mark.django_db(transaction=True)
def test_entries_on_different_bars_get_the_overfitting_block_of_their_common_bars(
    worker, small_chunks
):
    """Chunks whose entries trade different bars (a grid over the start date) cannot join their
    statistics: the finishing step computes them over the bars every entry has."""
    client = APIClient()
    base = {**BASE_CONFIG, "signal_plugin_params": {"fast": 10, "slow": 50}}
    grid = {"start_date": ["2015-01-01", "2016-01-04"], "signal_plugin_params.fast": [5, 10]}
    answer = post_sweep(
        client, StrategyFactory(kind="signal", definition=None), base_config=base, grid=grid
    ).json()
    body, _ = wait_for_sweep(client, answer["id"])
    assert body["status"] == "completed", body["error"]
    kept = {
        returns_files.ChunkReturns(uri).statistics[0]
        for uri in ResearchSweepChunk.objects.filter(sweep=answer["id"]).values_list(
            "returns_uri", flat=True
        )
    }
    assert len(kept) == 2  # two sets of bars
    matrix = pd.read_parquet(
        io.BytesIO(client.get(f"/api/v1/research/sweeps/{answer['id']}/returns.parquet").content)
    )
    assert list(matrix.columns) == ["0", "1", "2", "3"]
    assert matrix.index[0] == pd.Timestamp("2015-01-02")  # the union of the bars
    assert matrix.loc[:"2015-12-31", ["2", "3"]].isna().all().all()
    common = matrix.dropna(how="any")
    assert common.index[0] >= pd.Timestamp("2016-01-04")
    close = get_store().load(["SPY"], "2015-01-01", "2020-12-31").close["SPY"].loc[common.index]
    benchmark = np.concatenate(([0.0], close.to_numpy()[1:] / close.to_numpy()[:-1] - 1.0))
    best = body["leaderboard"]["entries"][0]["number"]
    expected = overfitting_report(
        common.to_numpy(), benchmark, best_index=best, benchmark="SPY", partitions=8,
        spa_reps=200, seed=0,
    )  # fmt: skip
    assert body["overfitting"] == {**expected, "best": best}


@pytest.mark.django_db(transaction=True)
def test_two_first_downloads_of_the_returns_matrix_keep_one_file(worker, small_chunks):
    """Two requests that both find no matrix both write one; the first UPDATE wins, the other
    request answers with the winner's file and removes its own copy."""
    from django.core.files.storage import default_storage

    client = APIClient()
    answer = post_sweep(client, StrategyFactory(kind="signal", definition=None)).json()
    body, _ = wait_for_sweep(client, answer["id"])
    assert body["status"] == "completed", body["error"]
    first, second = (ResearchSweep.objects.get(pk=answer["id"]) for _ in range(2))
    kept = services.research_sweep_returns_uri(sweep=first)
    assert second.returns_uri is None  # read before the first request wrote the matrix
    assert services.research_sweep_returns_uri(sweep=second) == kept
    folder = returns_files.sweep_folder(answer["id"])
    files = [name for name in default_storage.listdir(folder)[1] if name.startswith("returns")]
    assert files == [kept.rsplit("/", 1)[1]]


@pytest.mark.django_db(transaction=True)
def test_the_returns_matrix_of_a_running_sweep_is_a_conflict(worker, small_chunks):
    client = APIClient()
    answer = post_sweep(client, StrategyFactory(kind="signal", definition=None)).json()
    sweep = ResearchSweep.objects.get(pk=answer["id"])
    sweep.status = ResearchSweep.Status.RUNNING
    with pytest.raises(Conflict) as raised:
        services.research_sweep_returns_uri(sweep=sweep)
    assert "its returns matrix is ready when it has finished" in str(raised.value)
    wait_for_sweep(client, answer["id"])

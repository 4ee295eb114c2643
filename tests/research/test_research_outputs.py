"""What research sweeps and walk-forward analyses show, byte for byte, against a recorded copy.

How their rows store metrics is no contract's business: the research API (leaderboard in every
order, ``results.csv``), the walk-forward API (detail, list), the analyst pages and the admin
present them. A sweep (one entry failing) and a walk-forward are run by real workers and read
through each; the bodies must equal ``research_outputs.json`` exactly once ids and clock
readings are replaced by stable names (on PostgreSQL: equal as parsed JSON, floats within 1e-9).

``BACKFOLIO_WRITE_RESEARCH_OUTPUTS=1`` writes the file instead (after a deliberate change to an
output, never to make this test pass).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from backtests.models import Backtest, WalkForward
from backtests.research.models import ResearchSweepEntry
from backtests.research.selectors import RANKABLE_METRICS
from metrics.calculations import METRIC_KEYS
from tests.api.test_contract_outputs import Outputs, assert_alike, comparable
from tests.backtests.research.test_walk_forward_runs import poll_walk_forward
from tests.factories import StrategyFactory
from tests.research.test_sweep_runs import wait_for_sweep

RECORDED = Path(__file__).with_name("research_outputs.json")
SWEEPS = "/api/v1/research/sweeps"
WALK_FORWARDS = "/api/v1/research/walk-forward"
BASE_CONFIG = {
    "symbol": "SPY",
    "start_date": "2016-01-01",
    "end_date": "2019-12-31",
    "signal_plugin_key": "sma_crossover",
}
GRID = {"signal_plugin_params.fast": [5, 20], "signal_plugin_params.slow": [30, 100]}
# Each kind of ordering: the rank, the number, a metric shown as a positive loss (lower is
# better), a count, in their own and in the other order.
SORTS = (
    {},
    {"order": "desc"},
    {"sort": "number", "order": "desc"},
    {"sort": "risk_max_drawdown"},
    {"sort": "risk_cvar_95", "order": "desc"},
    {"sort": "trade_total_trades", "order": "asc"},
    {"sort": "perf_sortino_ratio"},
)
_SHOWN = re.compile(r'<table.*?</table>|<div class="readonly">.*?</div>', re.S)
# The admin's clock readings ("Nov. 30, 2026, 7:41 p.m."), not the rows' numbers.
_ADMIN_MOMENT = re.compile(
    r"[A-Z][a-z]{2,4}\.? \d{1,2}, \d{4}, \d{1,2}(:\d\d)? [ap]\.m\.|midnight|noon"
)

# A row's id cut to 8 hex digits in an admin list; a row's integer key (they depend on the
# tests run before).
_ADMIN_SHORT_ID = re.compile(r">[0-9a-f]{8}</a>")
_ADMIN_KEY = re.compile(r'(/|-id" value=")\d+(/change/|")')


def _tables(response) -> str:
    """What a page shows of the rows: its tables and read-only fields, in its main content
    (the rest is navigation, layout, forms and tokens)."""
    assert response.status_code == 200, response.status_code
    page = response.content.decode()
    main = page[page.find('id="content-main"') :] if 'id="content-main"' in page else page
    shown = _ADMIN_MOMENT.sub("<moment>", "\n".join(_SHOWN.findall(main)))
    shown = _ADMIN_KEY.sub(r"\1<key>\2", shown)
    return _ADMIN_SHORT_ID.sub("><short id></a>", shown)


def run_research(client, strategy) -> tuple[str, str]:
    """A finished research sweep (entry 3 fails: its data changed since it was validated) and a
    completed walk-forward, both ranked by a metric shown as a positive loss."""
    sweep = client.post(
        SWEEPS,
        {
            "strategy_id": str(strategy.pk),
            "base_config": BASE_CONFIG,
            "grid": GRID,
            "rank_metric": "risk_max_drawdown",
            "commission": 0.0005,
            "slippage": 0.0005,
            "spa_reps": 50,
            "partitions": 4,
        },
        format="json",
    )
    assert sweep.status_code == 202, sweep.json()
    sweep_id = sweep.json()["id"]
    walk_forward = client.post(
        WALK_FORWARDS,
        {
            "strategy_id": str(strategy.pk),
            "base_config": BASE_CONFIG,
            "grid": GRID,
            "rank_metric": "risk_max_drawdown",
            "scheme": "rolling",
            "in_sample_months": 24,
            "out_of_sample_months": 12,
            "commission": 0.0005,
            "slippage": 0.0005,
        },
        format="json",
    )
    assert walk_forward.status_code == 202, walk_forward.json()
    walk_forward_id = walk_forward.json()["id"]
    wait_for_sweep(client, sweep_id)
    poll_walk_forward(client, walk_forward_id)
    return sweep_id, walk_forward_id


def read_research(outputs: Outputs, sweep_id: str, walk_forward_id: str, *, user, staff) -> None:
    """Every view of the sweep and the walk-forward (``user`` owns them)."""
    api = APIClient()
    api.force_authenticate(user)
    for query in SORTS:
        name = " ".join(f"{key}={value}" for key, value in query.items()) or "default"
        outputs.add(f"sweep {name}", api.get(f"{SWEEPS}/{sweep_id}", query))
    outputs.add("sweep results.csv", api.get(f"{SWEEPS}/{sweep_id}/results.csv"))
    outputs.add("walk-forward detail", api.get(f"{WALK_FORWARDS}/{walk_forward_id}"))
    outputs.add("walk-forward list", api.get(WALK_FORWARDS))
    pages = Client()
    pages.force_login(staff)
    outputs.text("page sweep", _tables(pages.get(f"/research/sweeps/{sweep_id}/")))
    outputs.text(
        "page walk-forward", _tables(pages.get(f"/research/walk-forwards/{walk_forward_id}/"))
    )
    admin = "/admin/backtests"
    outputs.text("admin sweep", _tables(pages.get(f"{admin}/researchsweep/{sweep_id}/change/")))
    for entry in ResearchSweepEntry.objects.filter(sweep_id=sweep_id).order_by("number"):
        outputs.text(
            f"admin entry {entry.number}",
            _tables(pages.get(f"{admin}/researchsweepentry/{entry.pk}/change/")),
        )
    outputs.text(
        "admin walk-forward",
        _tables(pages.get(f"{admin}/walkforward/{walk_forward_id}/change/")),
    )
    outputs.text("admin walk-forward list", _tables(pages.get(f"{admin}/walkforward/")))


def check_recorded(outputs: Outputs) -> None:
    if os.environ.get("BACKFOLIO_WRITE_RESEARCH_OUTPUTS") == "1":
        RECORDED.write_text(json.dumps(outputs.bodies, indent=1, ensure_ascii=False) + "\n")
    recorded = json.loads(RECORDED.read_text())
    assert list(outputs.bodies) == list(recorded)
    for name, body in outputs.bodies.items():
        if connection.vendor == "sqlite":
            assert body == recorded[name], name
        else:
            assert_alike(_parsed(name, body), _parsed(name, recorded[name]), name)


def _parsed(name: str, body: str):
    """``comparable``, the CSV's rows by column name, and a failed entry's null fingerprint
    as an empty one (``assert_alike`` compares fingerprints by length)."""
    if name.endswith(".csv"):
        return list(csv.DictReader(io.StringIO(body)))

    def nulls(value):
        if isinstance(value, dict):
            return {
                key: "" if key == "fingerprint" and item is None else nulls(item)
                for key, item in value.items()
            }
        return [nulls(item) for item in value] if isinstance(value, list) else value

    return nulls(comparable(body))


@pytest.fixture
def failing_entry(monkeypatch):
    """Entry 3's configuration no longer validates when its chunk runs."""
    from backtests.research import jobs

    parse = jobs.stored_run_spec

    def stored_run_spec(config, **settings):
        if config.get("signal_plugin_params") == {"fast": 20, "slow": 100}:
            config = {**config, "size": 5.0}
        return parse(config, **settings)

    monkeypatch.setattr(jobs, "stored_run_spec", stored_run_spec)


@pytest.mark.django_db(transaction=True)
def test_research_shows_every_view_as_recorded(worker, user, staff_user, settings, failing_entry):
    settings.BACKFOLIO_REAPER_INTERVAL_SECONDS = 3600
    client = APIClient()
    client.force_authenticate(user)
    strategy = StrategyFactory(name="SMA crossover", kind="signal", definition=None, owner=user)
    sweep_id, walk_forward_id = run_research(client, strategy)
    outputs = Outputs()
    read_research(outputs, sweep_id, walk_forward_id, user=user, staff=staff_user)
    check_recorded(outputs)
    # Every rankable metric sorts the leaderboard (its order is the recorded ones' rule).
    for metric in RANKABLE_METRICS:
        assert client.get(f"{SWEEPS}/{sweep_id}", {"sort": metric}).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_rows_keep_the_core_metrics_and_an_entry_made_a_backtest_has_the_same(
    worker, user, settings, failing_entry
):
    settings.BACKFOLIO_REAPER_INTERVAL_SECONDS = 3600
    client = APIClient()
    client.force_authenticate(user)
    strategy = StrategyFactory(kind="signal", definition=None, owner=user)
    sweep_id, walk_forward_id = run_research(client, strategy)

    entries = {entry.number: entry for entry in ResearchSweepEntry.objects.filter(sweep=sweep_id)}
    assert entries[3].metrics == {"error": "Invalid configuration: size: Must be at most 1."}
    for number in (0, 1, 2):
        entry = entries[number]
        assert set(entry.metrics) == set(METRIC_KEYS), number
        assert entry.metrics["max_drawdown"] < 0  # a return, not the v1 positive loss
        assert entry.score == -entry.metrics["max_drawdown"]  # the rank metric in v1 units
    # Made a v1 backtest, an entry is the same run: its row holds the same metrics.
    made = client.post(f"{SWEEPS}/{sweep_id}/entries/1/backtest")
    assert made.status_code == 201, made.json()
    backtest = Backtest.objects.get(pk=made.json()["id"])
    assert backtest.fingerprint == entries[1].fingerprint
    assert (backtest.metrics, backtest.extra_metrics) == (entries[1].metrics, {})

    walk_forward = WalkForward.objects.get(pk=walk_forward_id)
    assert set(walk_forward.result["metrics"]) == set(METRIC_KEYS)
    assert walk_forward.result["metrics"]["max_drawdown"] < 0
    for fold in walk_forward.folds.all():
        assert set(fold.in_sample_metrics) == set(METRIC_KEYS)
        assert set(fold.out_of_sample_metrics) == set(METRIC_KEYS)
        assert fold.in_sample_score == -fold.in_sample_metrics["max_drawdown"]

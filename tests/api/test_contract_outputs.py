"""Every contract's output for representative runs, byte for byte, against a recorded copy.

How a row stores its metrics is not any contract's business: each contract presents them in its
own units. This test runs a v1 signal run, a v1 allocation run, a failed run, a run whose metrics
were corrected by PATCH, a Backfolio run, a v1 sweep and a research sweep entry made into a v1
backtest, and reads each through every contract that can show it (v1 detail, list and compare,
the sweep's task, the results API's detail and list, the Backfolio runs list and saved run, the
pages' metric tables and metric sorts). The bodies must equal ``contract_outputs.json``
exactly, once ids and clock readings are replaced by stable names.

``BACKFOLIO_WRITE_CONTRACT_OUTPUTS=1`` writes the file instead (after a deliberate change to a
contract's output, never to make this test pass).
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import F
from django.test import Client
from rest_framework.test import APIClient

from backtests.models import Backtest
from backtests.pages import selectors as page_selectors
from tests.factories import StrategyFactory

RECORDED = Path(__file__).with_name("contract_outputs.json")
V1 = "/api/v1/backtests"
SIGNAL_CONFIG = {
    "symbol": "SPY",
    "start_date": "2019-07-01",
    "end_date": "2020-06-30",
    "signal_plugin_key": "sma_crossover",
    "signal_plugin_params": {"fast": 10, "slow": 50},
}
ALLOCATION = {
    "allocations": {"stocks": {"SPY": 0.7, "AGG": 0.3}, "bonds": {"TLT": 1.0}},
    "fallback_allocation": "bonds",
    "switching_logic": [
        {
            "name": "trend",
            "condition": {
                "left": {"type": "Close", "symbol": "SPY"},
                "comparison": ">",
                "right": {"type": "SMA", "symbol": "SPY", "window": 100},
            },
            "target_allocation": "stocks",
        }
    ],
}
BACKFOLIO_REQUEST = {
    "name": "Trend with bonds",
    "strategy": ALLOCATION,
    "config": {
        "start_date": "2019-07-01",
        "end_date": "2020-06-30",
        "initial_capital": 10000,
        "rebalance_frequency": "monthly",
        "base_commission": 0.002,
    },
}

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_HEX_ID = re.compile(r"(?<![0-9a-f])[0-9a-f]{32}(?![0-9a-f])")
_MOMENT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?")
_USER_ID = re.compile(r'"userId": ?"\d+"')
_SHORT_ID = re.compile(r"· [0-9a-f]{8}</span>")
_CLOCK = re.compile(r'"(execution_time)": ?[0-9.e-]+')


class Outputs:
    """Bodies by name, ids replaced by the order they were first seen in."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.bodies: dict[str, str] = {}

    def _id(self, match: re.Match) -> str:
        raw = match.group(0).replace("-", "")
        return self.names.setdefault(raw, f"<id-{len(self.names) + 1}>")

    def add(self, name: str, response) -> None:
        assert response.status_code < 300, (name, response.status_code, response.content[:500])
        self.text(name, response.content.decode())

    def text(self, name: str, text: str) -> None:
        text = _UUID.sub(self._id, text)
        text = _HEX_ID.sub(self._id, text)
        text = _USER_ID.sub('"userId":"<user>"', text)
        text = _SHORT_ID.sub("· <short id></span>", text)
        text = _MOMENT.sub("<moment>", text)
        self.bodies[name] = _CLOCK.sub(r'"\1": <seconds>', text)


def _poll(client, task_id: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.get(f"/api/v1/tasks/{task_id}")
        if response.status_code == 200 and response.json()["status"] in ("SUCCESS", "FAILURE"):
            return
        time.sleep(0.1)
    raise AssertionError(f"task {task_id} did not finish")


def _wait_for_research(client, sweep_id: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.get(f"/api/v1/research/sweeps/{sweep_id}")
        if response.status_code == 200 and response.json()["status"] in ("completed", "failed"):
            return
        time.sleep(0.1)
    raise AssertionError(f"research sweep {sweep_id} did not finish")


def _v1_run(client, strategy, *, engine: str, config: dict) -> str:
    created = client.post(
        V1,
        {
            "strategy_id": str(strategy.id),
            "engine": engine,
            "initial_capital": 100_000,
            "commission": 0.001,
            "slippage": 0.0005,
            "config": config,
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    return created.json()["id"]


def _page_views(outputs: Outputs, ids: list[str]) -> None:
    """What the analyst pages show of the runs' metrics, and how their metric sorts order them."""
    rows = Backtest.objects.filter(pk__in=ids)
    groups = {
        str(row.pk): [
            [group, [[item.label, item.key, item.value, item.display] for item in items]]
            for group, items in page_selectors.metric_groups(row.metrics)
        ]
        for row in sorted(rows, key=lambda row: ids.index(str(row.pk)))
    }
    outputs.text("pages metric groups", json.dumps(groups))
    listed = page_selectors.backtests_for_list().filter(pk__in=ids)
    sorts = {
        f"{key} {direction}": [
            str(pk)
            for pk in listed.order_by(
                getattr(F(f"metric_{key}"), direction)(nulls_last=True), "created_at"
            ).values_list("pk", flat=True)
        ]
        for key in page_selectors.SORTABLE_METRICS
        for direction in ("asc", "desc")
    }
    outputs.text("pages metric sorts", json.dumps(sorts))


@pytest.mark.django_db(transaction=True)
def test_every_contract_shows_every_kind_of_run_as_recorded(worker, user, settings):
    settings.BACKFOLIO_REAPER_INTERVAL_SECONDS = 3600
    client = APIClient()
    client.force_authenticate(user)
    outputs = Outputs()

    signal_strategy = StrategyFactory(name="SMA crossover", owner=user)
    allocation_strategy = StrategyFactory(
        name="Trend with bonds",
        kind="allocation",
        universe=[],
        definition=ALLOCATION,
        owner=user,
    )

    # v1: a signal run on each engine, an allocation run, a failed run, a corrected run.
    signal_id = _v1_run(client, signal_strategy, engine="vectorbt", config=SIGNAL_CONFIG)
    outputs.add("v1 signal execute", client.post(f"{V1}/{signal_id}/execute"))
    signal_bt_id = _v1_run(client, signal_strategy, engine="backtrader", config=SIGNAL_CONFIG)
    client.post(f"{V1}/{signal_bt_id}/execute")
    allocation_id = _v1_run(
        client,
        allocation_strategy,
        engine="vectorbt",
        config={"start_date": "2019-07-01", "end_date": "2020-06-30"},
    )
    outputs.add("v1 allocation execute", client.post(f"{V1}/{allocation_id}/execute"))
    failed_id = _v1_run(client, signal_strategy, engine="vectorbt", config=SIGNAL_CONFIG)
    Backtest.objects.filter(pk=failed_id).update(config={**SIGNAL_CONFIG, "size": 5.0})
    client.post(f"{V1}/{failed_id}/execute")
    patched_id = _v1_run(client, signal_strategy, engine="vectorbt", config=SIGNAL_CONFIG)
    client.post(f"{V1}/{patched_id}/execute")
    # The contract's names in its table's order, then names of the caller's own (some of them
    # names of the core's metrics): a JSON object's key order is no contract's business, and a
    # database that keeps none (PostgreSQL's jsonb) never kept the caller's.
    patch = {
        "total_return": 0.25,
        "perf_sharpe_ratio": 2,
        "risk_max_drawdown": 0.125,
        "risk_var_95": 3,
        "trade_total_trades": 7,
        "note": 1.5,
        "cagr": 0.5,
        "n_bars": 12,
    }
    outputs.add("v1 patch", client.patch(f"{V1}/{patched_id}", {"metrics": patch}, format="json"))

    # Backfolio: a saved run, read back alone and in the runs list.
    posted = client.post("/api/v1/backtest", BACKFOLIO_REQUEST, format="json", HTTP_X_USER_ID="a")
    assert posted.status_code == 200, posted.json()
    backfolio_id = posted.json()["backtest_id"]

    # v1 sweep: the task's leaderboard and each entry.
    sweep = client.post(
        f"{V1}/sweep",
        {
            "strategy_id": str(signal_strategy.id),
            "engine": "vectorbt",
            "base_config": SIGNAL_CONFIG,
            "param_grid": [
                {"signal_plugin_params": {"fast": 5, "slow": 30}},
                {"signal_plugin_params": {"fast": 20, "slow": 100}},
            ],
            "rank_metric": "risk_max_drawdown",
        },
        format="json",
    )
    assert sweep.status_code == 200, sweep.json()
    _poll(client, sweep.json()["task_id"])
    outputs.add("v1 sweep task", client.get(f"/api/v1/tasks/{sweep.json()['task_id']}"))
    sweep_entry_ids = [
        str(pk)
        for pk in Backtest.objects.filter(sweep__isnull=False)
        .order_by("sweep_index")
        .values_list("pk", flat=True)
    ]

    # Research sweep: an entry made into a v1 backtest.
    research = client.post(
        "/api/v1/research/sweeps",
        {
            "strategy_id": str(signal_strategy.id),
            "base_config": {**SIGNAL_CONFIG, "signal_plugin_params": {}},
            "grid": {"signal_plugin_params.fast": [5, 10], "signal_plugin_params.slow": [50, 100]},
            "rank_metric": "perf_sharpe_ratio",
            "commission": 0.0005,
            "slippage": 0.0005,
            "spa_reps": 100,
            "partitions": 4,
        },
        format="json",
    )
    assert research.status_code == 202, research.json()
    research_id = research.json()["id"]
    _wait_for_research(client, research_id)
    outputs.add(
        "research entry backtest",
        client.post(f"/api/v1/research/sweeps/{research_id}/entries/2/backtest"),
    )
    promoted_id = str(Backtest.objects.get(source=Backtest.Source.SWEEP, sweep__isnull=True).pk)

    ids = [
        signal_id,
        signal_bt_id,
        allocation_id,
        failed_id,
        patched_id,
        backfolio_id,
        *sweep_entry_ids,
        promoted_id,
    ]
    read_contracts(outputs, ids, user=user, backfolio_id=backfolio_id)

    if os.environ.get("BACKFOLIO_WRITE_CONTRACT_OUTPUTS") == "1":
        RECORDED.write_text(json.dumps(outputs.bodies, indent=1, ensure_ascii=False) + "\n")
    recorded = json.loads(RECORDED.read_text())
    assert list(outputs.bodies) == list(recorded)
    for name, body in outputs.bodies.items():
        if connection.vendor == "sqlite":
            assert body == recorded[name], name
        else:
            assert_alike(comparable(body), comparable(recorded[name]), name)


def comparable(body: str):
    """What survives a database that keeps no key order in a JSON column (PostgreSQL's jsonb):
    the parsed JSON, or the cells of an HTML fragment's tables (a strategy shown as a document
    lists its keys in the order the database gives them)."""
    try:
        return json.loads(body)
    except ValueError:
        return sorted(re.findall(r"<td[^>]*>([^<{]*)</td>", body))


def assert_alike(value, recorded, path: str) -> None:
    """Equal, but for floats within 1e-9 of each other and fingerprints: a strategy stored in
    jsonb comes back with its allocation's symbols in another order, so sums run in another
    order and the prices are hashed in another order too."""
    if path.endswith(".fingerprint"):
        assert len(value) == len(recorded), path  # 64 hex digits, or none before a run
    elif isinstance(value, dict) and isinstance(recorded, dict):
        assert value.keys() == recorded.keys(), path
        for key in value:
            assert_alike(value[key], recorded[key], f"{path}.{key}")
    elif isinstance(value, list) and isinstance(recorded, list):
        assert len(value) == len(recorded), path
        for index, (item, other) in enumerate(zip(value, recorded, strict=True)):
            assert_alike(item, other, f"{path}[{index}]")
    elif isinstance(value, float) and isinstance(recorded, float):
        assert math.isclose(value, recorded, rel_tol=1e-9, abs_tol=1e-9), (path, value, recorded)
    else:
        assert value == recorded, path


def read_contracts(outputs: Outputs, ids: list[str], *, user, backfolio_id: str) -> None:
    """Every contract's view of the runs ``ids`` (all owned by ``user``)."""
    v1 = APIClient()
    v1.force_authenticate(user)
    for number, backtest_id in enumerate(ids, 1):
        outputs.add(f"v1 detail {number}", v1.get(f"{V1}/{backtest_id}"))
    outputs.add("v1 list", v1.get(V1, {"limit": 1000}))
    outputs.add(
        "v1 compare",
        v1.post(f"{V1}/compare", {"backtest_ids": ids[:10]}, format="json"),
    )

    results = APIClient()
    results.force_authenticate(user)
    for number, backtest_id in enumerate(ids, 1):
        outputs.add(f"results detail {number}", results.get(f"/api/backtests/{backtest_id}"))
    outputs.add("results list", results.get("/api/backtests", {"limit": 100}))

    outputs.add(
        "backfolio runs",
        v1.get("/api/v1/backtest/runs", HTTP_X_USER_ID="a"),
    )
    outputs.add(
        "backfolio saved run",
        v1.get(f"/api/v1/backtest/runs/{backfolio_id}", HTTP_X_USER_ID="a"),
    )
    _page_views(outputs, ids)
    staff = Client()
    staff.force_login(
        get_user_model().objects.get_or_create(username="pages", defaults={"is_staff": True})[0]
    )
    for number, backtest_id in enumerate(ids, 1):
        page = staff.get(f"/backtests/{backtest_id}/")
        assert page.status_code == 200
        sections = re.findall(
            r'<h2>Metrics</h2>.*?</section>|<section class="card error">.*?</section>',
            page.content.decode(),
            re.S,
        )
        assert sections
        outputs.text(f"page metrics {number}", "\n".join(sections))
    cells = re.findall(r'<td class="num">[^<]*</td>', staff.get("/backtests/").content.decode())
    outputs.text("page list metrics", "\n".join(cells))
    compare = staff.get("/compare/", {"ids": ",".join(ids[:10])})
    assert compare.status_code == 200
    tables = re.findall(r"<table.*?</table>", compare.content.decode(), re.S)
    outputs.text("page compare", "\n".join(tables))

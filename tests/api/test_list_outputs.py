"""Every list of every contract, byte for byte: envelopes, paging, filters and their 400s.

The rows are fixed (ids, timestamps, owners), so each response's exact bytes are known; they are
kept in ``list_outputs.json`` next to this file. A change to a list's envelope, its paging, its
filters or the wording of a bad parameter's 400 fails here. When such a change is intended, run
this module with ``BACKFOLIO_RECORD_LIST_OUTPUTS=1`` once and review the file's diff.

Row contents (metrics, configs) are kept minimal: what is pinned here is the lists' shape, not
each contract's presentation of a run.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from backtests.models import Backtest
from backtests.research.models import ResearchSweep, ResearchSweepChunk, ResearchSweepEntry
from strategies.models import Strategy

pytestmark = pytest.mark.django_db

OUTPUTS = Path(__file__).with_name("list_outputs.json")
RECORD = os.environ.get("BACKFOLIO_RECORD_LIST_OUTPUTS") == "1"
T0 = dt.datetime(2024, 3, 1, 12, 0, tzinfo=dt.UTC)


def uid(n: int) -> uuid.UUID:
    return uuid.UUID(int=n)


def at(minutes: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def stamp(model, pk, minutes: int, **extra) -> None:
    """Fixed timestamps (``auto_now`` fields are set by an UPDATE, not by ``save``)."""
    model.objects.filter(pk=pk).update(created_at=at(minutes), updated_at=at(minutes), **extra)


@pytest.fixture
def world():
    """Two strategies; v1 runs of every status and source; a user's results-API runs; saved
    Backfolio runs under two user ids; a research sweep with entries. Configs are written in
    PostgreSQL's jsonb key order so that their bytes are the same on every database."""
    user = get_user_model().objects.create_user(
        id=9001, username="lister", email="lister@example.com", password="correct-horse-77"
    )
    first = Strategy.objects.create(
        id=uid(1), name="First", kind="signal", universe=["SPY"], definition=None
    )
    second = Strategy.objects.create(
        id=uid(2), name="Second", kind="signal", universe=["QQQ"], definition=None
    )
    stamp(Strategy, first.pk, 0)
    stamp(Strategy, second.pk, 1)

    config = {"symbol": "SPY", "end_date": "2020-12-31", "start_date": "2019-01-01"}
    shared = [
        # (number, strategy, engine, status, source)
        (10, first, "vectorbt", "completed", "v1"),
        (11, first, "backtrader", "failed", "v1"),
        (12, second, "vectorbt", "pending", "sweep"),
        (13, second, "backtrader", "running", "ui"),
        (14, first, "vectorbt", "completed", "results-api"),
    ]
    for number, strategy, engine, status, source in shared:
        Backtest.objects.create(
            id=uid(number),
            strategy=strategy,
            engine=engine,
            status=status,
            source=source,
            config=config,
            metrics={},
        )
        stamp(Backtest, uid(number), number)

    owned = [
        # (number, strategy, status, completed minute)
        (20, first, "completed", 25),
        (21, first, "failed", 26),
        (22, second, "pending", None),
        (23, first, "running", None),
        (24, second, "completed", 24),
    ]
    for number, strategy, status, completed in owned:
        Backtest.objects.create(
            id=uid(number),
            strategy=strategy,
            owner=user,
            engine="vectorbt",
            status=status,
            source="results-api",
            config=config,
            metrics={},
            error="It broke" if status == "failed" else "",
        )
        stamp(
            Backtest,
            uid(number),
            number,
            completed_at=None if completed is None else at(completed),
        )

    request = {
        "name": "Saved",
        "config": {
            "end_date": "2021-06-30",
            "start_date": "2021-01-01",
            "initial_capital": 10000,
            "rebalance_frequency": "monthly",
        },
    }
    for number, user_ref in [(30, "alice"), (31, "alice"), (32, "bob"), (33, "alice")]:
        Backtest.objects.create(
            id=uid(number),
            strategy=None,
            engine="vectorbt",
            status="completed",
            source="v2",
            user_ref=user_ref,
            config=request,
            metrics={},
        )
        stamp(Backtest, uid(number), number, completed_at=at(number))

    sweep = ResearchSweep.objects.create(
        id=uid(40),
        strategy=first,
        engine="vectorbt",
        base_config=config,
        grid={"signal_plugin_params.fast": [5, 10, 20]},
        rank_metric="perf_sharpe_ratio",
        benchmark="SPY",
        status="running",
        done=4,
        total=5,
    )
    stamp(ResearchSweep, sweep.pk, 40)
    chunk = ResearchSweepChunk.objects.create(
        id=uid(41), sweep=sweep, number=0, first=0, size=5, status="completed"
    )
    for number, score, status in [(0, 0.5, "completed"), (1, None, "failed"), (2, 1.5, "completed"),
                                  (3, 0.5, "completed")]:  # fmt: skip
        ResearchSweepEntry.objects.create(
            sweep=sweep,
            chunk=chunk,
            number=number,
            overrides={"signal_plugin_params": {"fast": 5 + number}},
            status=status,
            score=score,
            error="" if status == "completed" else "No trades",
            fingerprint=f"{number:064d}" if status == "completed" else "",
        )
    return user


def _token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


V1_BACKTESTS = [
    "",
    "?skip=1&limit=2",
    "?skip=100",
    "?limit=1000",
    f"?strategy_id={uid(2)}",
    "?status=completed",
    "?status=",
    "?engine=backtrader",
    "?source=ui",
    "?source=v2",
    "?source=results-api",
    "?status=completed&engine=vectorbt&skip=1",
    "?limit=0",
    "?limit=1001",
    "?limit=1.5",
    "?skip=-1",
    "?skip=x",
    "?skip=1000000001",
    "?status=done",
    "?source=fax",
    "?strategy_id=x",
    "?skip=-1&limit=0&strategy_id=x&status=done&source=fax",
    "?status=done&limit=0",
]
V1_STRATEGIES = ["", "?skip=1", "?limit=1", "?skip=5", "?limit=0", "?skip=x&limit=1001"]
RESULTS = [
    "",
    "?page=2&limit=2",
    "?page=9&limit=3",
    f"?algorithmId={uid(2)}",
    "?status=running",
    "?status=pending",
    "?status=completed",
    f"?status=completed&algorithmId={uid(1)}",
    "?sort=completedAt&order=asc",
    "?sort=completedAt",
    "?sort=status&order=asc",
    "?order=asc&limit=2&page=2",
    "?status=&sort=",
    "?limit=101",
    "?limit=0",
    "?page=0",
    "?page=x",
    "?page=10000001",
    "?algorithmId=42",
    "?status=done",
    "?sort=name",
    "?order=up",
    "?page=0&limit=0&algorithmId=42&status=done&sort=name&order=up",
    "?order=up&page=x",
]
PORTFOLIO = [
    "",
    "?page=2&page_size=2",
    "?page=5&page_size=2",
    "?page_size=1&page=2&extra=yes",
    "?limit=1&offset=1",
    "?limit=2",
    "?offset=2",
    "?offset=1&page=3",
    "?limit=&offset=",
    "?page=&page_size=",
    "?page_size=0",
    "?page=0",
    "?page=x",
    "?page=10000001",
    "?page_size=101",
    "?limit=0",
    "?limit=101",
    "?offset=-1",
    "?offset=1000000001",
    "?offset=x&limit=0",
    "?page=x&page_size=0",
]
LEADERBOARD = [
    "",
    "?skip=1&limit=2",
    "?skip=10",
    "?sort=number&order=desc",
    "?sort=rank&order=desc",
    "?sort=number",
    "?order=asc",
    "?sort=colour",
    "?order=up",
    "?limit=0",
    "?limit=1001",
    "?skip=-1",
    "?skip=-1&limit=0&sort=colour&order=up",
]


def _requests(user):
    anonymous = APIClient()
    token = _token_client(user)
    for query in V1_BACKTESTS:
        yield f"GET /api/v1/backtests{query}", anonymous.get(f"/api/v1/backtests{query}")
    for query in V1_STRATEGIES:
        yield f"GET /api/v1/strategies{query}", anonymous.get(f"/api/v1/strategies{query}")
    for query in RESULTS:
        yield f"GET /api/backtests{query}", token.get(f"/api/backtests{query}")
    for version in ("v1", "v2"):
        for query in PORTFOLIO:
            path = f"/api/{version}/backtest/runs{query}"
            yield f"GET {path} (alice)", anonymous.get(path, HTTP_X_USER_ID="alice")
    for header in (None, "   "):
        extra = {} if header is None else {"HTTP_X_USER_ID": header}
        yield (
            f"GET /api/v1/backtest/runs (X-User-Id {header!r})",
            anonymous.get("/api/v1/backtest/runs", **extra),
        )
    for query in LEADERBOARD:
        path = f"/api/v1/research/sweeps/{uid(40)}{query}"
        yield f"GET {path}", anonymous.get(path)


def test_every_list_answers_exactly_as_recorded(world):
    outputs = [
        {"request": label, "status": response.status_code, "body": response.content.decode()}
        for label, response in _requests(world)
    ]
    if RECORD:
        OUTPUTS.write_text(json.dumps(outputs, indent=1, ensure_ascii=False) + "\n")
    recorded = json.loads(OUTPUTS.read_text())
    assert [output["request"] for output in outputs] == [output["request"] for output in recorded]
    for output, expected in zip(outputs, recorded, strict=True):
        assert output == expected

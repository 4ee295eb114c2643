"""Property-based fuzzing of every operation in the project's own OpenAPI schema (schemathesis).

The schema is read from ``/api/schema`` of the WSGI application at collection time, so the test
covers whatever operations exist when it runs. Each operation gets bounded, deterministic
examples (fixed seed, no shrinking) of schema-valid and schema-invalid requests, and every one of
schemathesis' checks applies: no 5xx, only documented status codes, content types and headers,
bodies matching the documented schemas, schema-invalid requests refused, schema-valid requests
accepted, and authentication enforced wherever the schema says it is required.

A schema-valid request may still be refused with a 400 where the request carries a rule JSON
Schema cannot state (``SEMANTIC_RULES``: a referenced record must exist, a date must follow
another, weights must sum to 1, the prices must cover the range); each such operation says why.

Path parameters cannot be guessed (they are UUIDs), so they are pinned to real records created
once per module: a strategy, a completed backtest, its task, a portfolio run. Requests carry a
JWT for a user, and the records are ownerless, so the results API (which needs a user) and the
v1/Backfolio APIs (which accept anyone) all reach their real code paths.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings
from rest_framework.test import APIClient
from schemathesis.checks import CHECKS as REGISTERED_CHECKS
from schemathesis.config import SchemathesisConfig
from schemathesis.generation import GenerationMode

from backtests.api.results.auth import token_pair
from backtests.models import Backtest, ResearchSweep, ResearchSweepChunk, Task
from backtests.research import jobs as research_jobs
from strategies.models import Strategy

# Operations whose schema-valid requests may break a rule that only the server can check.
SEMANTIC_RULES = {
    ("POST", "/api/v1/backtests"): "the strategy must exist; the config must suit its kind and "
    "the market data",
    ("POST", "/api/v1/backtests/sweep"): "the strategy must exist; each grid entry must suit it",
    ("POST", "/api/v1/strategies"): "the definition must suit the kind; group weights sum to 1",
    ("PATCH", "/api/v1/strategies/{strategy_id}"): "the definition must suit the stored kind",
    ("PATCH", "/api/v1/backtests/{backtest_id}"): "a status change must be one the row allows",
    ("POST", "/api/v1/backtest/"): "weights sum to 1, the start precedes the end, data covers it",
    ("POST", "/api/v2/backtest/"): "weights sum to 1, the start precedes the end, data covers it",
    ("POST", "/api/backtests"): "endDate follows startDate; the prices cover the range",
}
ACCEPTED_STATUSES = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]
FUZZ_CONFIG = SchemathesisConfig.from_dict(
    {
        "operations": [
            {
                "include-method": method,
                "include-path": path,
                "checks": {
                    "positive_data_acceptance": {"expected-statuses": [*ACCEPTED_STATUSES, "400"]}
                },
            }
            for method, path in SEMANTIC_RULES
        ]
    }
)

APPLICATION = get_wsgi_application()
SCHEMA = schemathesis.openapi.from_wsgi("/api/schema", APPLICATION, config=FUZZ_CONFIG)
OPERATIONS = {
    operation.label: operation
    for result in SCHEMA.get_all_operations()
    if (operation := result.ok()) is not None
}
CHECKS = REGISTERED_CHECKS.get_all()
DEFAULT_EXAMPLES = 15
# Operations that run a backtest synchronously cost 0.1-1 s per valid request; fewer examples
# keep the whole module within a couple of minutes on two cores.
EXAMPLES_BY_SUFFIX = {"/execute/": 6, "/execute": 6, "/api/v1/backtest/": 8, "/api/v2/backtest/": 8}

SIGNAL_CONFIG = {
    "symbol": "SPY",
    "start_date": "2018-01-01",
    "end_date": "2019-12-31",
    "signal_plugin_key": "sma_crossover",
    "signal_plugin_params": {"fast": 10, "slow": 40},
}
PORTFOLIO_REQUEST = {
    "strategy": {
        "allocations": {"core": {"SPY": 0.6, "AGG": 0.4}},
        "fallback_allocation": "core",
        "switching_logic": [],
    },
    "config": {
        "start_date": "2015-01-01",
        "end_date": "2016-12-31",
        "initial_capital": 10000,
        "rebalance_frequency": "monthly",
    },
}


# Operations with a known, reported defect: strict, so a fix turns them red until the entry is
# removed. Empty: everything this test found has been fixed.
KNOWN_FAILURES: dict[str, str] = {}


def _operation_params():
    for label in sorted(OPERATIONS):
        marks = []
        known = KNOWN_FAILURES.get(label) or KNOWN_FAILURES.get(label.rstrip("/") + "/")
        if known:
            marks.append(pytest.mark.xfail(reason=known, strict=True))
        yield pytest.param(label, marks=marks, id=label)


def _examples_for(label: str) -> int:
    path = label.split(" ", 1)[1]
    for suffix, examples in EXAMPLES_BY_SUFFIX.items():
        if path.endswith(suffix):
            return examples
    return DEFAULT_EXAMPLES


@pytest.fixture(scope="module")
def fuzz_records(django_db_setup, django_db_blocker):
    """Ownerless records every ``{..._id}`` path parameter resolves to, and a user's JWT."""
    with django_db_blocker.unblock():
        client = APIClient()
        strategy = client.post(
            "/api/v1/strategies", {"name": "fuzz", "kind": "signal"}, format="json"
        )
        assert strategy.status_code == 201, strategy.content
        strategy_id = strategy.json()["id"]
        backtest = client.post(
            "/api/v1/backtests",
            {
                "strategy_id": strategy_id,
                "engine": "backtrader",
                "initial_capital": 10000,
                "config": SIGNAL_CONFIG,
            },
            format="json",
        )
        assert backtest.status_code == 201, backtest.content
        backtest_id = backtest.json()["id"]
        executed = client.post(f"/api/v1/backtests/{backtest_id}/execute", {}, format="json")
        assert executed.status_code == 200, executed.content
        assert executed.json()["status"] == "completed", executed.content
        task = Task.objects.create(
            kind=Task.Kind.EXECUTE,
            status=Task.Status.SUCCESS,
            backtest_id=backtest_id,
            result={"backtest_id": backtest_id, "status": "completed"},
        )
        sweep = client.post(
            "/api/v1/research/sweeps",
            {
                "strategy_id": strategy_id,
                "base_config": SIGNAL_CONFIG,
                "grid": {"signal_plugin_params.fast": [5, 10], "signal_plugin_params.slow": [40]},
                "rank_metric": "perf_sharpe_ratio",
                "spa_reps": 50,
                "partitions": 4,
            },
            format="json",
        )
        assert sweep.status_code == 202, sweep.content
        for chunk_id in ResearchSweepChunk.objects.values_list("id", flat=True):
            research_jobs.run_chunk(chunk_id)  # completes the sweep here, without a worker
        portfolio = client.post("/api/v1/backtest", PORTFOLIO_REQUEST, format="json")
        assert portfolio.status_code == 200, portfolio.content
        portfolio_run = Backtest.objects.exclude(pk=backtest_id).latest("created_at")
        user = get_user_model().objects.create_user(
            username="fuzzer", email="fuzzer@example.com", password="correct-horse-99"
        )
        records = {
            "path_parameters": {
                "strategy_id": strategy_id,
                "backtest_id": backtest_id,
                "task_id": str(task.pk),
                "sweep_id": sweep.json()["id"],
            },
            "portfolio_run_id": str(portfolio_run.pk),
            "authorization": f"Bearer {token_pair(user)['accessToken']}",
        }
    yield records
    with django_db_blocker.unblock():
        ResearchSweep.objects.all().delete()
        Task.objects.all().delete()
        Backtest.objects.all().delete()
        Strategy.objects.all().delete()
        user.delete()


def _path_parameters(operation, records) -> dict[str, str]:
    names = {parameter.name for parameter in operation.path_parameters}
    values = {
        name: records["path_parameters"][name] for name in names & records["path_parameters"].keys()
    }
    if "backtest_id" in names and "/backtest/runs/" in operation.path:
        values["backtest_id"] = records["portfolio_run_id"]
    return values


@pytest.fixture
def connections_kept_across_requests():
    """Schemathesis calls the WSGI application directly, so Django's request signals close the
    test's database connection after every request (the test client disconnects them; do the
    same), which would end the test's transaction under it."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.mark.parametrize("label", list(_operation_params()))
def test_operation_survives_fuzzing(
    label, fuzz_records, db, broker, connections_kept_across_requests
):
    operation = OPERATIONS[label]
    path_parameters = _path_parameters(operation, fuzz_records)
    headers = {"Authorization": fuzz_records["authorization"]}

    @settings(
        max_examples=_examples_for(label),
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(
        case=operation.as_strategy(
            GenerationMode.POSITIVE, path_parameters=path_parameters, headers=headers
        )
        | operation.as_strategy(
            GenerationMode.NEGATIVE, path_parameters=path_parameters, headers=headers
        )
    )
    def fuzz(case):
        cache.clear()  # login and create throttles would otherwise answer 429 after ten calls
        case.call_and_validate(checks=CHECKS)

    fuzz()

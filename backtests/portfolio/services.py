"""Run a Backfolio portfolio backtest for an HTTP caller and save it as a ``Backtest``.

Every run that completes is saved (SPEC §8): ``source`` ``v2``, no strategy row, the request as
its ``config`` (defaults filled in), the metrics in the v1 flat form, ``user_ref`` from
``X-User-Id``, and three artifacts in ``runs/<id>/1/``: ``report.json`` (the contract's whole
``result`` block, served again by ``GET /api/v1/backtest/runs/{id}``), ``equity.parquet`` and
``trades.parquet`` (so the v1 results endpoints, the admin and the pages work for these runs too).
A request that fails validation is not a run and saves nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from backfolio.common.ownership import owner_for
from backfolio.deadline import RunTimeLimitExceeded, run_time_limit
from backtests import artifacts
from backtests.engines import EngineError, get_engine
from backtests.models import Backtest
from backtests.portfolio.requests import (
    InvalidPortfolioRequest,
    PortfolioRequest,
    data_problems,
    dates_in_payload,
    parse_portfolio_request,
    symbols_in_payload,
    work_limit_problems,
)
from backtests.portfolio.runner import PortfolioRun, fingerprint, run_portfolio
from marketdata.store import MarketDataError, get_store
from metrics.jsonsafe import json_safe

USER_REF_MAX_LENGTH = 200
REPORT_NAME = "report.json"
EQUITY_NAME = "equity.parquet"
TRADES_NAME = "trades.parquet"


@dataclass(frozen=True)
class PortfolioOutcome:
    backtest: Backtest
    result: dict[str, Any]


def portfolio_backtest_run(*, payload: Any, user, user_ref: str = "") -> PortfolioOutcome:
    """Validate, run and save one portfolio backtest.

    Raises ``InvalidPortfolioRequest`` listing every problem (request and market data alike), or
    naming the run time limit when the run goes past ``BACKFOLIO_RUN_TIME_LIMIT_SECONDS`` (it
    stops there, whether or not the client still waits; nothing is saved).
    """
    clock = time.perf_counter()
    started_at = timezone.now()
    store = get_store()
    try:
        request = parse_portfolio_request(payload)
    except InvalidPortfolioRequest as invalid:
        dates = dates_in_payload(payload)
        if dates is not None:
            symbols = symbols_in_payload(payload)
            invalid.messages.extend(
                message
                for message in data_problems(store, symbols, *dates)
                if message not in invalid.messages
            )
        raise

    benchmark_is_explicit = payload["config"].get("benchmark") is not None
    problems = data_problems(store, request.symbols, request.start_date, request.end_date)
    benchmark_problems = data_problems(
        store, [request.benchmark], request.start_date, request.end_date
    )
    if benchmark_is_explicit:
        problems.extend(f"Benchmark: {message}" for message in benchmark_problems)
    if not problems:
        problems.extend(work_limit_problems(store, request))
    if problems:
        raise InvalidPortfolioRequest(problems)

    warnings: list[str] = []
    try:
        with run_time_limit(float(settings.BACKFOLIO_RUN_TIME_LIMIT_SECONDS)):
            run = _load_and_run(request, store, benchmark_problems, warnings, request.engine)
    except (MarketDataError, EngineError, RunTimeLimitExceeded) as error:
        raise InvalidPortfolioRequest([str(error)]) from error
    run.result["execution_time"] = time.perf_counter() - clock

    backtest = _save_run(
        request=request, run=run, user=user, user_ref=user_ref, started_at=started_at
    )
    return PortfolioOutcome(backtest=backtest, result=run.result)


def portfolio_run(request: PortfolioRequest, *, engine: str) -> PortfolioRun:
    """Run a parsed request on ``engine`` and save nothing (a parity check runs a saved request
    on the other engine). Raises ``InvalidPortfolioRequest`` as ``portfolio_backtest_run``."""
    store = get_store()
    problems = data_problems(store, request.symbols, request.start_date, request.end_date)
    if problems:
        raise InvalidPortfolioRequest(problems)
    benchmark_problems = data_problems(
        store, [request.benchmark], request.start_date, request.end_date
    )
    try:
        with run_time_limit(float(settings.BACKFOLIO_RUN_TIME_LIMIT_SECONDS)):
            return _load_and_run(request, store, benchmark_problems, [], engine)
    except (MarketDataError, EngineError, RunTimeLimitExceeded) as error:
        raise InvalidPortfolioRequest([str(error)]) from error


def _load_and_run(
    request: PortfolioRequest,
    store,
    benchmark_problems: list[str],
    warnings: list[str],
    engine: str,
) -> PortfolioRun:
    prices = store.load(
        request.symbols,
        request.start_date,
        request.end_date,
        adjustment=request.price_adjustment,
        warmup_bars=request.warmup_bars,
    )
    benchmark_close = None
    if benchmark_problems:
        warnings.append(
            f"Benchmark {request.benchmark} data not available for requested date range; "
            "benchmark_comparison is empty"
        )
    else:
        benchmark_close = store.load(
            [request.benchmark],
            request.start_date,
            request.end_date,
            adjustment=request.price_adjustment,
        ).close[request.benchmark]
    return run_portfolio(
        request,
        prices,
        engine=get_engine(engine),
        benchmark_close=benchmark_close,
        warnings=warnings,
    )


def saved_request(request: PortfolioRequest) -> dict[str, Any]:
    """The request as saved with the run: what was posted, every default filled in."""
    return {
        "name": request.name,
        "description": request.description,
        "strategy": request.strategy,
        "config": request.canonical_config(),
    }


def _save_run(
    *, request: PortfolioRequest, run: PortfolioRun, user, user_ref: str, started_at
) -> Backtest:
    backtest = Backtest(
        strategy=None,
        engine=request.engine,
        status=Backtest.Status.COMPLETED,
        initial_capital=request.initial_capital,
        commission=request.base_commission,
        slippage=0.0,
        config=saved_request(request),
        metrics=json_safe(run.metrics),
        metrics_spec_version=str(run.metrics.get("metrics_spec_version") or ""),
        progress=100,
        progress_message="Completed",
        owner=owner_for(user),
        user_ref=(user_ref or "").strip()[:USER_REF_MAX_LENGTH],
        source=Backtest.Source.V2,
        fingerprint=fingerprint(request, run.data_hash),
        run_count=1,
        started_at=started_at,
    )
    folder = artifacts.run_folder(backtest.id, 1)
    backtest.report_uri = artifacts.save_json(f"{folder}/{REPORT_NAME}", run.result)
    backtest.equity_curve_uri = artifacts.save_bytes(
        f"{folder}/{EQUITY_NAME}", artifacts.equity_to_parquet(run.equity)
    )
    backtest.trades_uri = artifacts.save_bytes(
        f"{folder}/{TRADES_NAME}", artifacts.trades_to_parquet(run.trades)
    )
    backtest.completed_at = timezone.now()
    with transaction.atomic():
        backtest.save(force_insert=True)
    return backtest


def saved_result(backtest: Backtest) -> dict[str, Any]:
    """The ``result`` block a saved run returned (raises ``ArtifactMissing``)."""
    return orjson.loads(artifacts.read_bytes(backtest.report_uri))

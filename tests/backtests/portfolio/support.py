"""Running portfolio requests in the pure core, the way the service does, for the tests."""

from __future__ import annotations

from backtests.engines import get_engine
from backtests.portfolio.requests import parse_portfolio_request
from backtests.portfolio.runner import PortfolioRun, run_portfolio
from marketdata.store import get_store


def payload(allocations, *, fallback=None, rules=(), **config):
    return {
        "strategy": {
            "allocations": allocations,
            "fallback_allocation": fallback or next(iter(allocations)),
            "switching_logic": list(rules),
        },
        "config": {"start_date": "2020-01-01", "end_date": "2021-12-31", **config},
    }


def load_prices(request):
    """Prices as the service loads them, for a parsed request or a request document."""
    if isinstance(request, dict):
        request = parse_portfolio_request(request)
    return get_store().load(
        request.symbols,
        request.start_date,
        request.end_date,
        adjustment=request.price_adjustment,
        warmup_bars=request.warmup_bars,
    )


def run(document, *, engine: str | None = None) -> PortfolioRun:
    request = parse_portfolio_request(document)
    store = get_store()
    benchmark = store.load([request.benchmark], request.start_date, request.end_date).close[
        request.benchmark
    ]
    return run_portfolio(
        request,
        load_prices(request),
        engine=get_engine(engine or request.engine),
        benchmark_close=benchmark,
    )


def rule(condition, target):
    return {"condition": condition, "target_allocation": target}


def above(left, right):
    return {"left": left, "comparison": ">", "right": right}


def constant(value):
    return {"type": "constant", "value": value}

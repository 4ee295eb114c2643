"""One request cannot ask for unbounded work: every bound of ``backfolio.limits`` is a 400 that
names it, in each contract's error shape, and nothing is created or run.

The attack: a Backfolio request with 100 TA-Lib CCI comparisons of window ~12,000 on GSPC
1928–2026 ran for 27 s (a 2 MB body of them, about an hour). Now the comparisons per strategy,
the distinct signals per run, each indicator's window against its symbol's history, the indicator
work (bars × window) and symbols × bars are bounded before anything runs.
"""

import pytest
from rest_framework.test import APIClient

from backfolio.limits import (
    MAX_CONDITIONS_PER_STRATEGY,
    MAX_INDICATOR_WORK,
    MAX_SIGNALS_PER_RUN,
    MAX_SYMBOL_BARS,
)
from backtests.models import Backtest
from marketdata.store import get_store
from strategies.models import Strategy
from tests.api.results.conftest import bearer_client
from tests.factories import BacktestFactory, StrategyFactory

pytestmark = pytest.mark.django_db

V1 = "/api/v1/backtests"
BACKFOLIO = "/api/v1/backtest"
RESULTS = "/api/backtests"
GSPC_SINCE_1950 = {"symbol": "GSPC", "start_date": "1950-01-03", "end_date": "2025-12-31"}


def _cci(window: int, symbol: str | None = None, comparison: str = ">") -> dict:
    left = {"type": "talib", "function": "CCI", "timeperiod": window}
    if symbol:
        left["symbol"] = symbol
    return {"left": left, "comparison": comparison, "right": 100}


def _any_of(leaves: list[dict]) -> dict:
    return {"op": "or", "conditions": leaves}


def _sma_pairs(count: int, symbol: str | None = None) -> list[dict]:
    """``count`` comparisons of two distinct SMAs each: 2 × ``count`` distinct signals."""

    def sma(window):
        return {"type": "SMA", "window": window, **({"symbol": symbol} if symbol else {})}

    return [
        {"left": sma(2 * index + 2), "comparison": ">", "right": sma(2 * index + 3)}
        for index in range(count)
    ]


TOO_MANY_CONDITIONS = _any_of(_sma_pairs(MAX_CONDITIONS_PER_STRATEGY + 1))
CONDITIONS_MESSAGE = (
    f"Too many conditions: {MAX_CONDITIONS_PER_STRATEGY + 1} comparisons in the strategy "
    f"(at most {MAX_CONDITIONS_PER_STRATEGY})"
)
# Eight CCI of window ~12,000 on GSPC since 1950: about (19,000 + 5,500 warm-up bars) × 12,000 × 8.
HEAVY_CCI = _any_of([_cci(12_000 + offset) for offset in range(8)])
HEAVY_CCI_LOOKBACKS = [12_000 + offset - 1 for offset in range(8)]  # TA-Lib CCI: timeperiod − 1


def _bars_loaded(symbols, start, end, warmup=0) -> int:
    """What the run would load, counted on the loaded prices themselves."""
    return len(get_store().load(symbols, start, end, warmup_bars=warmup).close)


def _work_message(bars: int, lookbacks: list[int]) -> str:
    work = bars * sum(lookbacks)
    assert work > MAX_INDICATOR_WORK
    return (
        f"Too much indicator work: {work:,} bar-windows (bars × window summed over the "
        f"signals; at most {MAX_INDICATOR_WORK:,} per run); use shorter windows, fewer "
        "indicators or a shorter date range"
    )


def _history_of_spy_through_2020() -> int:
    return _bars_loaded(["SPY"], "1993-01-29", "2020-12-31")


LEVERAGED_GSPC = [f"GSPC?L={leverage / 4:g}" for leverage in range(1, 25) if leverage != 4]


def _v1_create(client, strategy, config):
    before = Backtest.objects.count()
    response = client.post(V1, {"strategy_id": str(strategy.id), "config": config}, format="json")
    assert Backtest.objects.count() == before, "a refused request creates nothing"
    return response


# --- v1 -----------------------------------------------------------------------------------------


def test_v1_refuses_more_comparisons_than_a_strategy_may_have():
    response = _v1_create(
        APIClient(),
        StrategyFactory(),
        {**GSPC_SINCE_1950, "signal": {"entry": TOO_MANY_CONDITIONS}},
    )

    assert response.status_code == 400
    assert response.json() == {"config": {"signal": [CONDITIONS_MESSAGE]}}


def test_v1_strategy_api_refuses_a_definition_with_too_many_comparisons():
    response = APIClient().post(
        "/api/v1/strategies",
        {"name": "wide", "definition": {"entry": TOO_MANY_CONDITIONS}},
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == {"definition": {"non_field_errors": [CONDITIONS_MESSAGE]}}
    assert not Strategy.objects.exists()


def test_v1_refuses_an_indicator_window_longer_than_the_symbols_history():
    config = {
        "symbol": "SPY",
        "start_date": "2020-01-02",
        "end_date": "2020-12-31",
        "signal": {
            "entry": {"left": {"type": "SMA", "window": 9000}, "comparison": ">", "right": 1}
        },
    }

    response = _v1_create(APIClient(), StrategyFactory(), config)

    assert response.status_code == 400
    assert response.json() == {
        "config": {
            "signal.entry.left": [
                f"the indicator needs 9000 bars of SPY but SPY has {_history_of_spy_through_2020()}"
                " bars up to the end date (an indicator's window must be shorter than its data)"
            ]
        }
    }


def test_v1_refuses_more_distinct_signals_than_a_run_may_compute():
    # 26 comparisons of two SMAs, run on two symbols: 104 distinct signals.
    config = {
        "symbols": ["SPY", "QQQ"],
        "start_date": "2020-01-02",
        "end_date": "2020-12-31",
        "signal": {"entry": _any_of(_sma_pairs(26))},
    }

    response = _v1_create(APIClient(), StrategyFactory(), config)

    assert response.status_code == 400
    assert response.json() == {
        "config": {
            "signal": [
                "Too many signals: the run would compute 104 distinct signals "
                f"(at most {MAX_SIGNALS_PER_RUN} per run)"
            ]
        }
    }


def test_v1_refuses_more_indicator_work_than_a_run_may_do():
    response = _v1_create(
        APIClient(), StrategyFactory(), {**GSPC_SINCE_1950, "signal": {"entry": HEAVY_CCI}}
    )

    assert response.status_code == 400
    bars = _bars_loaded(["GSPC"], "1950-01-03", "2025-12-31", warmup=12_005)
    assert response.json() == {"config": {"signal": [_work_message(bars, HEAVY_CCI_LOOKBACKS)]}}


def test_v1_refuses_more_symbols_times_bars_than_a_run_may_load():
    symbols = ["GSPC", *LEVERAGED_GSPC]
    config = {"symbols": symbols, "start_date": "1928-01-03", "end_date": "2025-12-31"}

    response = _v1_create(APIClient(), StrategyFactory(), config)

    assert response.status_code == 400
    bars = _bars_loaded(["GSPC"], "1928-01-03", "2025-12-31")
    assert len(symbols) == 24 and 24 * bars > MAX_SYMBOL_BARS
    assert response.json() == {
        "config": {
            "symbols": [
                f"Too much data: 24 symbols × {bars:,} bars = {24 * bars:,} symbol-bars "
                f"(at most {MAX_SYMBOL_BARS:,} per run); shorten the date range or use fewer "
                "symbols."
            ]
        }
    }


def test_v1_execute_refuses_a_stored_definition_over_the_limits():
    """A strategy stored before the bounds existed cannot run past them either."""
    strategy = StrategyFactory(definition={"entry": HEAVY_CCI})  # the factory does not validate
    backtest = BacktestFactory(strategy=strategy, config=GSPC_SINCE_1950)

    response = APIClient().post(f"{V1}/{backtest.id}/execute", {}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "failed"
    assert body["error"].startswith("Invalid configuration: definition: Too much indicator work:")


# --- Backfolio ----------------------------------------------------------------------------------


def _backfolio(condition, *, start="1950-01-03", end="2025-12-31", allocations=None):
    return {
        "strategy": {
            "allocations": allocations or {"stocks": {"GSPC": 1.0}, "cash": {"CASH": 1.0}},
            "fallback_allocation": "stocks",
            "switching_logic": [{"condition": condition, "target_allocation": "cash"}],
        },
        "config": {"start_date": start, "end_date": end, "benchmark": "GSPC"},
    }


def _refused(body: dict, messages: list[str]) -> None:
    response = APIClient().post(BACKFOLIO, body, format="json")
    assert response.status_code == 400
    assert response.json() == {
        "success": False,
        "error": "Backtest failed",
        "warnings": messages,
        "errors": messages,
    }
    assert not Backtest.objects.exists()


def test_backfolio_refuses_more_comparisons_than_a_strategy_may_have():
    _refused(_backfolio(_any_of(_sma_pairs(51, "GSPC"))), [CONDITIONS_MESSAGE])


def test_backfolio_refuses_an_indicator_window_longer_than_the_symbols_history():
    condition = _cci(9000, "SPY")
    _refused(
        _backfolio(condition, start="2020-01-02", end="2020-12-31"),
        [
            "strategy.switching_logic[0].condition.left: the indicator needs 9000 bars of SPY "
            f"but SPY has {_history_of_spy_through_2020()} bars up to the end date (an "
            "indicator's window must be shorter than its data)"
        ],
    )


def test_backfolio_refuses_the_reported_attack_of_a_hundred_wide_cci_indicators():
    # The review's request: 100 CCI comparisons of window ~12,000 on GSPC since 1928.
    condition = _any_of([_cci(12_000 + offset, "GSPC") for offset in range(100)])
    response = APIClient().post(BACKFOLIO, _backfolio(condition, start="1928-01-03"), format="json")

    assert response.status_code == 400
    assert response.json()["errors"][0] == (
        f"Too many conditions: 100 comparisons in the strategy (at most "
        f"{MAX_CONDITIONS_PER_STRATEGY})"
    )


def test_backfolio_refuses_more_indicator_work_than_a_run_may_do():
    condition = _any_of([_cci(12_000 + offset, "GSPC") for offset in range(8)])
    bars = _bars_loaded(["GSPC"], "1950-01-03", "2025-12-31", warmup=12_005)
    _refused(_backfolio(condition), [_work_message(bars, HEAVY_CCI_LOOKBACKS)])


def test_backfolio_refuses_more_symbols_times_bars_than_a_run_may_load():
    weights = dict.fromkeys(LEVERAGED_GSPC, 1 / len(LEVERAGED_GSPC))
    bars = _bars_loaded(["GSPC"], "1928-01-03", "2025-12-31", warmup=1)  # Close reads 1 bar back
    _refused(
        _backfolio(
            {"left": {"type": "Close", "symbol": "GSPC"}, "comparison": ">", "right": 0},
            start="1928-01-03",
            allocations={"stocks": weights, "plain": {"GSPC": 1.0}, "cash": {"CASH": 1.0}},
        ),
        [
            f"Too much data: 24 symbols × {bars:,} bars = {24 * bars:,} symbol-bars (at most "
            f"{MAX_SYMBOL_BARS:,} per run); shorten the date range or use fewer symbols"
        ],
    )


# --- results API --------------------------------------------------------------------------------


def test_results_api_refuses_an_algorithm_over_the_limits(user):
    strategy = StrategyFactory(owner=user, definition={"entry": HEAVY_CCI})
    body = {
        "algorithmId": str(strategy.id),
        "startDate": "1950-01-03",
        "endDate": "2025-12-31",
        "initialBalance": 100000,
        "symbols": ["GSPC"],
    }

    response = bearer_client(user).post(RESULTS, body, format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert error["message"].startswith("algorithmId: Too much indicator work:"), error
    assert not Backtest.objects.exists()

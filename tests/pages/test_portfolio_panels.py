"""An allocation run's panels: the held group over time, rolling metrics, correlations, risk
contribution, drawdown periods, benchmark comparison and transactions, as its saved result (a
Backfolio run) or its saved analysis (a v1 allocation run) holds them; real runs through the
services."""

import pytest

from backtests.portfolio.examples import examples
from backtests.portfolio.services import portfolio_backtest_run, saved_result

pytestmark = pytest.mark.django_db


@pytest.fixture
def portfolio_run():
    switching = next(
        document for document in examples().values() if document["strategy"].get("switching_logic")
    )
    return portfolio_backtest_run(payload=switching, user=None).backtest


def test_the_held_group_is_shown_as_segments_that_rebuild_the_allocation_log(
    staff_client, portfolio_run
):
    data = staff_client.get(f"/backtests/{portfolio_run.id}/chart-data").json()

    portfolio = data["portfolio"]
    log = saved_result(portfolio_run)["allocation_log"]
    days = list(log)
    rebuilt = {}
    for segment in portfolio["allocation"]:
        inside = days[days.index(segment["start"]) : days.index(segment["end"]) + 1]
        rebuilt.update(dict.fromkeys(inside, segment["group"]))
    assert rebuilt == log
    assert all(
        before["group"] != after["group"]
        for before, after in zip(portfolio["allocation"], portfolio["allocation"][1:], strict=False)
    )
    result = saved_result(portfolio_run)
    assert portfolio["correlation"] == result["correlation_matrix"]
    assert portfolio["risk_contribution"] == result["risk_contribution"]
    assert portfolio["transaction_analysis"] == result["transaction_analysis"]
    assert portfolio["rolling"]["dates"] == list(result["rolling_metrics"])
    page = staff_client.get(f"/backtests/{portfolio_run.id}/").content.decode()
    assert 'id="allocation-chart"' in page and 'id="correlation-chart"' in page


def test_a_signal_run_has_no_portfolio_panels(staff_client):
    from tests.pages.runs import completed_backtest

    backtest = completed_backtest()
    assert staff_client.get(f"/backtests/{backtest.id}/chart-data").json()["portfolio"] is None
    page = staff_client.get(f"/backtests/{backtest.id}/").content.decode()
    assert 'id="allocation-chart"' not in page
    assert "allocation-analytics-missing" not in page


def test_the_benchmark_comparison_is_one_block_naming_its_benchmark(staff_client, portfolio_run):
    data = staff_client.get(f"/backtests/{portfolio_run.id}/chart-data").json()

    saved = saved_result(portfolio_run)["benchmark_comparison"]
    (name, block), *_ = saved.items()
    assert data["portfolio"]["benchmark_comparison"] == {"benchmark": name, **block}


ALLOCATION = {
    "allocations": {"stocks": {"SPY": 0.6, "QQQ": 0.4}, "bonds": {"TLT": 0.5, "CASH": 0.5}},
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
V1_CONFIG = {"start_date": "2016-01-04", "end_date": "2020-12-31", "rebalance_frequency": "monthly"}


def _v1_allocation_run(**fields):
    from backtests import services
    from strategies.models import Strategy
    from tests.factories import StrategyFactory

    strategy = StrategyFactory(kind=Strategy.Kind.ALLOCATION, definition=ALLOCATION)
    backtest = services.backtest_create(
        strategy=strategy,
        engine="vectorbt",
        config=fields.pop("config", V1_CONFIG),
        initial_capital=100_000,
        commission=0.001,
        **fields,
    )
    return services.backtest_execute(backtest=backtest)


class TestV1AllocationRuns:
    def test_the_run_saves_its_allocation_analytics_next_to_its_artifacts(self):
        import numpy as np
        import orjson

        from backtests import artifacts
        from marketdata.store import get_store
        from metrics import analytics
        from strategies.language import compile_allocation_strategy

        backtest = _v1_allocation_run(benchmark="QQQ")

        assert backtest.status == "completed", backtest.error
        assert backtest.report_uri == f"runs/{backtest.id}/1/analysis.json"
        report = orjson.loads(artifacts.read_bytes(backtest.report_uri))
        equity = artifacts.read_equity(backtest.equity_curve_uri)
        # The held group is the compiled plan's, bar by bar.
        prices = get_store().load(
            ["SPY", "QQQ", "TLT"], "2016-01-04", "2020-12-31", warmup_bars=100
        )
        plan = compile_allocation_strategy(ALLOCATION, prices, rebalance="monthly")
        days = [day.strftime("%Y-%m-%d") for day in equity.index]
        assert list(report["allocation_log"]) == days
        assert list(report["allocation_log"].values()) == plan.groups.loc[equity.index].tolist()
        assert {entry["allocation"] for entry in report["allocation_summary"]} == {
            "stocks",
            "bonds",
        }
        # Correlations of the held assets' daily returns (CASH has none), computed apart.
        close = prices.close.loc[equity.index, ["SPY", "QQQ", "TLT"]]
        expected = close.pct_change().corr()
        for row in ("SPY", "QQQ", "TLT"):
            for column in ("SPY", "QQQ", "TLT"):
                assert report["correlation_matrix"][row][column] == pytest.approx(
                    expected.loc[row, column]
                )
        assert sum(report["risk_contribution"].values()) == pytest.approx(1.0)
        assert report["drawdown_analysis"] == analytics.drawdown_analysis(
            equity, backtest.initial_capital
        )
        assert list(report["benchmark_comparison"]) == ["QQQ"]
        assert report["transaction_analysis"]["total_trades"] > 0
        assert report["rolling_metrics"] == analytics.rolling_metrics(
            equity / np.concatenate([[backtest.initial_capital], equity.to_numpy()[:-1]]) - 1,
            window=63,
        )

    def test_its_page_draws_the_panels_from_that_analysis(self, staff_client):
        backtest = _v1_allocation_run()

        page = staff_client.get(f"/backtests/{backtest.id}/").content.decode()
        portfolio = staff_client.get(f"/backtests/{backtest.id}/chart-data").json()["portfolio"]

        assert 'id="allocation-chart"' in page and 'id="drawdown-periods"' in page
        assert "allocation-analytics-missing" not in page
        assert [segment["group"] for segment in portfolio["allocation"]][:1] in (
            ["stocks"],
            ["bonds"],
        )
        assert portfolio["benchmark_comparison"]["benchmark"] == "SPY"
        assert set(portfolio["correlation"]) == {"SPY", "QQQ", "TLT"}
        assert portfolio["drawdown_periods"] and portfolio["allocation_summary"]
        assert len(portfolio["rolling"]["dates"]) == len(portfolio["rolling"]["rolling_sharpe"])

    def test_a_run_made_before_analytics_were_saved_says_to_run_it_again(self, staff_client):
        from backtests.models import Backtest

        backtest = _v1_allocation_run()
        Backtest.objects.filter(pk=backtest.pk).update(report_uri=None)

        page = staff_client.get(f"/backtests/{backtest.id}/").content.decode()

        assert 'id="allocation-analytics-missing"' in page
        assert 'id="allocation-chart"' not in page
        assert staff_client.get(f"/backtests/{backtest.id}/chart-data").json()["portfolio"] is None

    def test_a_failed_run_points_at_no_analysis(self):
        from backtests import services
        from strategies.models import Strategy
        from tests.factories import StrategyFactory

        config = {**V1_CONFIG, "start_date": "1990-01-02"}  # before the data: the run fails
        strategy = StrategyFactory(kind=Strategy.Kind.ALLOCATION, definition=ALLOCATION)
        backtest = services.backtest_create(strategy=strategy, engine="vectorbt", config=V1_CONFIG)
        backtest.config = config
        backtest.save()

        backtest = services.backtest_execute(backtest=backtest)

        assert backtest.status == "failed"
        assert backtest.report_uri is None

"""Starting runs from a strategy's page without JSON: typed parameters, allocation runs, grids
over built-in and rule parameters, research sweeps and walk-forwards."""

import pytest
from django.contrib import admin
from django.urls import reverse

from backfolio.common.errors import Conflict, InvalidInput
from backtests.models import Backtest, Sweep, Task
from backtests.pages import selectors
from backtests.pages.forms import parse_values, rule_parameters
from backtests.research.models import ResearchSweep
from backtests.research.walk_forward.models import WalkForward
from strategies.models import Strategy
from tests.factories import StrategyFactory

pytestmark = pytest.mark.django_db

SIGNAL_RULES = {
    "entry": {
        "op": "and",
        "conditions": [
            {"left": {"type": "Close"}, "comparison": ">", "right": {"type": "SMA", "window": 50}},
            {"left": {"type": "RSI", "window": 14}, "comparison": "<", "right": 70},
        ],
    },
    "exit": {"left": {"type": "Close"}, "comparison": "<", "right": {"type": "SMA", "window": 50}},
}
ALLOCATION = {
    "allocations": {"stocks": {"SPY": 1.0}, "bonds": {"TLT": 0.5, "CASH": 0.5}},
    "fallback_allocation": "bonds",
    "switching_logic": [
        {
            "name": "trend",
            "condition": {
                "left": {"type": "Close", "symbol": "SPY"},
                "comparison": ">",
                "right": {"type": "SMA", "symbol": "SPY", "window": 200},
            },
            "target_allocation": "stocks",
        }
    ],
}


def _run_fields(prefix: str, **extra) -> dict[str, str]:
    fields = {
        "engine": "vectorbt",
        "symbol": "SPY",
        "start_date": "2016-01-04",
        "end_date": "2020-12-31",
        "initial_capital": "100000",
        "commission": "0.001",
        "slippage": "0",
        **extra,
    }
    return {f"{prefix}-{name}": value for name, value in fields.items()}


class TestBacktestForm:
    def test_built_in_parameters_are_typed_fields_with_help(self, staff_client):
        strategy = StrategyFactory()

        form = staff_client.get(f"/strategies/{strategy.id}/").context["backtest_form"]

        fast = form.fields["sma_crossover__fast"]
        assert (fast.initial, fast.min_value, fast.max_value) == (10, 2, 10_000)
        assert fast.help_text == "Whole number, at least 2 and at most 10000; default 10."
        assert form.fields["rsi_reversion__lower"].help_text.endswith("default 30.")

    def test_typed_parameters_become_the_run_configuration(self, staff_client):
        strategy = StrategyFactory()

        response = staff_client.post(
            f"/strategies/{strategy.id}/backtests/new",
            _run_fields(
                "run",
                signal_plugin_key="rsi_reversion",
                rsi_reversion__window="10",
                rsi_reversion__lower="25.5",
                # another signal's fields are not read, whatever they hold
                sma_crossover__fast="not a number",
            ),
        )

        backtest = Backtest.objects.get()
        assert response.status_code == 302
        assert backtest.config["signal_plugin_params"] == {
            "window": 10,
            "lower": 25.5,
            "upper": 70.0,
        }

    @pytest.mark.parametrize(
        ("fields", "field", "message"),
        [
            ({"sma_crossover__fast": "1"}, "sma_crossover__fast", "greater than or equal to 2"),
            ({"sma_crossover__fast": "2.5"}, "sma_crossover__fast", "Enter a whole number."),
            (
                {"sma_crossover__fast": "60", "sma_crossover__slow": "50"},
                "sma_crossover__fast",
                "must be less than slow (50)",
            ),
        ],
    )
    def test_a_bad_parameter_is_named_on_its_field_and_nothing_is_saved(
        self, staff_client, fields, field, message
    ):
        strategy = StrategyFactory()

        response = staff_client.post(
            f"/strategies/{strategy.id}/backtests/new",
            _run_fields("run", signal_plugin_key="sma_crossover", **fields),
        )

        assert response.status_code == 400
        errors = response.context["backtest_form"].errors[field]
        assert any(message in error for error in errors), errors
        assert not Backtest.objects.exists()

    def test_the_benchmark_chosen_on_the_form_is_the_runs_pages_default(self, staff_client):
        strategy = StrategyFactory()
        form = staff_client.get(f"/strategies/{strategy.id}/").context["backtest_form"]
        choices = dict(form.fields["benchmark"].choices)
        assert choices[""] == "The traded symbol" and "QQQ" in choices and "TLT" in choices

        response = staff_client.post(
            f"/strategies/{strategy.id}/backtests/new", _run_fields("run", benchmark="QQQ")
        )

        backtest = Backtest.objects.get()
        assert response.status_code == 302
        assert backtest.benchmark == "QQQ"
        assert "benchmark" not in backtest.config  # not an input of the run
        assert selectors.default_benchmark(backtest) == "QQQ"

    def test_without_a_choice_the_benchmark_is_the_traded_symbol(self, staff_client):
        strategy = StrategyFactory()

        staff_client.post(
            f"/strategies/{strategy.id}/backtests/new", _run_fields("run", symbol="TLT")
        )

        backtest = Backtest.objects.get()
        assert backtest.benchmark == ""
        assert selectors.default_benchmark(backtest) == "TLT"

    def test_an_unknown_benchmark_is_named_on_its_field_and_nothing_is_saved(self, staff_client):
        strategy = StrategyFactory()

        response = staff_client.post(
            f"/strategies/{strategy.id}/backtests/new", _run_fields("run", benchmark="NOPE")
        )

        assert response.status_code == 400
        assert response.context["backtest_form"].errors["benchmark"] == [
            "Select a valid choice. NOPE is not one of the available choices."
        ]
        assert not Backtest.objects.exists()

    def test_the_service_refuses_a_benchmark_without_prices_with_the_runs_own_problems(self):
        from backtests import services

        strategy = StrategyFactory()
        with pytest.raises(InvalidInput) as raised:
            services.backtest_create(
                strategy=strategy,
                engine="vectorbt",
                config={"symbol": "SPY", "start_date": "2020-01-02", "end_date": "2019-01-02"},
                benchmark="NOPE",
            )
        assert raised.value.errors["benchmark"] == [
            "Unknown symbol 'NOPE': choose one the service has prices for."
        ]
        assert "end_date" in raised.value.errors["config"]
        assert not Backtest.objects.exists()

    def test_dates_are_limited_to_the_datas_coverage_and_say_so(self, staff_client):
        strategy = StrategyFactory(universe=["SPY"])

        form = staff_client.get(f"/strategies/{strategy.id}/").context["backtest_form"]

        from marketdata.selectors import symbol_list

        spy = next(c for c in symbol_list() if c.symbol == "SPY")
        attrs = form.fields["start_date"].widget.attrs
        assert (attrs["min"], attrs["max"]) == (str(spy.first_date), str(spy.last_date))
        assert form.fields["end_date"].help_text == (
            f"The data covers {spy.first_date} to {spy.last_date}."
        )

    def test_an_allocation_strategy_runs_without_a_symbol(self, staff_client, staff_user):
        strategy = StrategyFactory(kind=Strategy.Kind.ALLOCATION, definition=ALLOCATION)

        page = staff_client.get(f"/strategies/{strategy.id}/")
        fields = dict(
            _run_fields(
                "run",
                rebalance_frequency="quarterly",
                evaluation_frequency="daily",
                signal_delay="0",
            )
        )
        del fields["run-symbol"]
        response = staff_client.post(f"/strategies/{strategy.id}/backtests/new", fields)

        form = page.context["backtest_form"]
        assert "symbol" not in form.fields and "signal_plugin_key" not in form.fields
        backtest = Backtest.objects.get()
        assert response.status_code == 302
        assert backtest.config == {
            "start_date": "2016-01-04",
            "end_date": "2020-12-31",
            "rebalance_frequency": "quarterly",
        }
        assert Task.objects.get().backtest == backtest

    def test_an_allocation_run_evaluated_weekly_and_acting_a_bar_later(self, staff_client):
        strategy = StrategyFactory(kind=Strategy.Kind.ALLOCATION, definition=ALLOCATION)
        fields = _run_fields(
            "run",
            rebalance_frequency="monthly",
            evaluation_frequency="weekly",
            signal_delay="1",
        )
        del fields["run-symbol"]

        response = staff_client.post(f"/strategies/{strategy.id}/backtests/new", fields)
        refused = staff_client.post(
            f"/strategies/{strategy.id}/backtests/new", {**fields, "run-signal_delay": "3"}
        )

        backtest = Backtest.objects.get()
        assert response.status_code == 302
        assert (backtest.config["evaluation_frequency"], backtest.config["signal_delay"]) == (
            "weekly",
            1,
        )
        assert refused.status_code == 400
        assert refused.context["backtest_form"].errors["signal_delay"] == [
            "Ensure this value is less than or equal to 2."
        ]

    def test_an_allocation_run_with_quarterly_withdrawals(self, staff_client):
        strategy = StrategyFactory(kind=Strategy.Kind.ALLOCATION, definition=ALLOCATION)
        fields = _run_fields(
            "run",
            rebalance_frequency="monthly",
            evaluation_frequency="daily",
            signal_delay="0",
            cashflow_amount="-500",
            cashflow_frequency="quarterly",
        )
        del fields["run-symbol"]

        response = staff_client.post(f"/strategies/{strategy.id}/backtests/new", fields)
        refused = staff_client.post(
            f"/strategies/{strategy.id}/backtests/new", {**fields, "run-cashflow_frequency": ""}
        )

        backtest = Backtest.objects.get()
        assert response.status_code == 302
        assert backtest.config["cashflow_amount"] == -500
        assert backtest.config["cashflow_frequency"] == "quarterly"
        assert refused.status_code == 400
        assert refused.context["backtest_form"].errors["cashflow_amount"] == [
            "Needs cashflow_frequency (give both or neither)."
        ]

    def test_a_date_outside_the_data_is_named_on_the_date(self, staff_client):
        strategy = StrategyFactory()

        response = staff_client.post(
            f"/strategies/{strategy.id}/backtests/new",
            _run_fields("run", start_date="1950-01-03", end_date="1951-12-29"),
        )

        assert response.status_code == 400
        form = response.context["backtest_form"]
        assert form.errors.keys() - {"__all__"}, form.errors
        assert not Backtest.objects.exists()


class TestGrids:
    def test_values_are_lists_or_inclusive_ranges(self):
        assert parse_values("5, 10, 20") == [5, 10, 20]
        assert parse_values("10:30:10") == [10, 20, 30]
        assert parse_values("0.1:0.3:0.1") == [0.1, 0.2, 0.3]
        for bad, message in [
            ("a, b", "values must be numbers separated by commas"),
            ("1:5", "write a range as start:stop:step"),
            ("5:1:1", "a range's stop must not be below its start"),
            ("1:5:0", "a range's step must be a number greater than 0"),
            ("1:100000:1", "the range has 100,000 values; at most 1,000"),
            ("1, 1", "a value appears twice"),
        ]:
            with pytest.raises(ValueError, match=message.replace("(", r"\(")):
                parse_values(bad)

    def test_rule_parameters_are_the_definitions_numbers_as_dotted_paths(self):
        assert rule_parameters(SIGNAL_RULES) == [
            ("entry.conditions.0.right.window", 50),
            ("entry.conditions.1.left.window", 14),
            ("entry.conditions.1.right", 70),
            ("exit.right.window", 50),
        ]
        assert rule_parameters(ALLOCATION) == [("switching_logic.0.condition.right.window", 200)]

    def test_a_sweep_over_the_strategys_own_rule_parameters(self, staff_client):
        strategy = StrategyFactory(definition=SIGNAL_RULES)

        response = staff_client.post(
            f"/strategies/{strategy.id}/sweeps/new",
            _run_fields(
                "sweep",
                grid="entry.conditions.1.right = 60, 70\nexit.right.window = 20:40:20",
                rank_metric="total_return",
            ),
        )

        sweep = Sweep.objects.get()
        assert response.status_code == 302
        assert "signal_plugin_key" not in sweep.base_config
        thresholds = [
            (
                entry["signal"]["entry"]["conditions"][1]["right"],
                entry["signal"]["exit"]["right"]["window"],
            )
            for entry in sweep.param_grid
        ]
        assert thresholds == [(60, 20), (60, 40), (70, 20), (70, 40)]
        # everything not varied is the strategy's own definition
        assert (
            sweep.param_grid[0]["signal"]["entry"]["conditions"][0]
            == (SIGNAL_RULES["entry"]["conditions"][0])
        )

    def test_a_built_in_signal_and_rule_parameters_are_not_mixed(self, staff_client):
        strategy = StrategyFactory(definition=SIGNAL_RULES)

        response = staff_client.post(
            f"/strategies/{strategy.id}/sweeps/new",
            _run_fields(
                "sweep",
                signal_plugin_key="sma_crossover",
                grid="fast = 5, 10\nexit.right.window = 20, 40",
                rank_metric="total_return",
            ),
        )

        assert response.status_code == 400
        assert response.context["sweep_form"].errors["grid"] == [
            "A built-in signal replaces the strategy's rules: vary either its parameters or "
            "the rules' numbers, not both."
        ]
        assert not Sweep.objects.exists()

    def test_an_unknown_parameter_names_the_known_ones(self, staff_client):
        strategy = StrategyFactory(definition=SIGNAL_RULES)

        response = staff_client.post(
            f"/strategies/{strategy.id}/sweeps/new",
            _run_fields("sweep", grid="entry.window = 5, 10", rank_metric="total_return"),
        )

        assert response.status_code == 400
        assert response.context["sweep_form"].errors["grid"] == [
            "The strategy has no parameter entry.window (it has "
            "entry.conditions.0.right.window, entry.conditions.1.left.window, "
            "entry.conditions.1.right, exit.right.window)."
        ]


class TestResearchForms:
    def test_a_research_sweep_starts_and_lands_on_its_page(self, staff_client, staff_user):
        strategy = StrategyFactory()

        response = staff_client.post(
            f"/strategies/{strategy.id}/research-sweeps/new",
            _run_fields(
                "research",
                signal_plugin_key="sma_crossover",
                grid="fast = 5:20:5\nslow = 50, 100",
                rank_metric="perf_sharpe_ratio",
                benchmark="",
            ),
        )

        sweep = ResearchSweep.objects.get()
        assert response.status_code == 302
        assert response["Location"] == reverse("pages:research_sweep_detail", args=[sweep.id])
        assert sweep.grid == {
            "signal_plugin_params.fast": [5, 10, 15, 20],
            "signal_plugin_params.slow": [50, 100],
        }
        assert (sweep.total, sweep.owner, sweep.benchmark) == (8, staff_user, "SPY")
        page = staff_client.get(response["Location"])
        assert page.status_code == 200
        assert 'id="research-progress"' in page.content.decode()
        status = staff_client.get(reverse("pages:research_sweep_status", args=[sweep.id])).json()
        assert status == {
            "status": "pending",
            "done": 0,
            "total": 8,
            "finished": False,
            "error": "",
        }

    def test_a_research_sweep_over_rules_inside_lists_sends_whole_documents(self, staff_client):
        strategy = StrategyFactory(definition=SIGNAL_RULES)

        response = staff_client.post(
            f"/strategies/{strategy.id}/research-sweeps/new",
            _run_fields(
                "research",
                grid="entry.conditions.1.left.window = 10, 14",
                rank_metric="perf_sharpe_ratio",
            ),
        )

        sweep = ResearchSweep.objects.get()
        assert response.status_code == 302
        assert sweep.grid is None
        windows = [
            overrides["signal"]["entry"]["conditions"][1]["left"]["window"]
            for _number, overrides in sweep.entries_plan
        ]
        assert windows == [10, 14]

    def test_a_walk_forward_starts_and_lands_on_its_page(self, staff_client):
        strategy = StrategyFactory(definition=SIGNAL_RULES)

        response = staff_client.post(
            f"/strategies/{strategy.id}/walk-forwards/new",
            _run_fields(
                "wf",
                grid="exit.right.window = 20, 50",
                rank_metric="perf_sharpe_ratio",
                scheme="rolling",
                in_sample_months="24",
                out_of_sample_months="12",
            ),
        )

        walk_forward = WalkForward.objects.get()
        assert response.status_code == 302
        assert response["Location"] == reverse("pages:walk_forward_detail", args=[walk_forward.id])
        assert walk_forward.grid == {"signal.exit.right.window": [20, 50]}
        assert staff_client.get(response["Location"]).status_code == 200

    def test_a_span_too_short_for_one_fold_is_named_on_the_end_date(self, staff_client):
        strategy = StrategyFactory()

        response = staff_client.post(
            f"/strategies/{strategy.id}/walk-forwards/new",
            _run_fields(
                "wf",
                start_date="2019-01-02",
                end_date="2019-12-31",
                signal_plugin_key="sma_crossover",
                grid="fast = 5, 10",
                rank_metric="perf_sharpe_ratio",
                scheme="anchored",
                in_sample_months="24",
                out_of_sample_months="6",
            ),
        )

        assert response.status_code == 400
        assert response.context["walk_forward_form"].errors["end_date"]
        assert not WalkForward.objects.exists()


class TestAdmin:
    def test_one_tasks_entry_the_services_own(self):
        from django_dramatiq.models import Task as DramatiqTask

        assert not admin.site.is_registered(DramatiqTask)
        assert admin.site.is_registered(Task)

    @pytest.mark.parametrize(
        ("kind", "definition"),
        [(Strategy.Kind.SIGNAL, SIGNAL_RULES), (Strategy.Kind.ALLOCATION, ALLOCATION)],
    )
    def test_the_strategys_analyst_page_link_opens_its_page(self, staff_client, kind, definition):
        import re

        strategy = StrategyFactory(kind=kind, definition=definition)

        change = staff_client.get(f"/admin/strategies/strategy/{strategy.id}/change/")
        (link,) = re.findall(r'href="([^"]+)">Open the strategy page', change.content.decode())

        assert link == f"/strategies/{strategy.id}/"
        assert staff_client.get(link).status_code == 200


class TestRunAgain:
    def test_rerun_is_a_new_queued_run_of_the_same_inputs(self, staff_client, staff_user):
        from tests.pages.runs import completed_backtest

        strategy = StrategyFactory(definition=SIGNAL_RULES)
        original = completed_backtest(strategy=strategy)
        strategy.definition = None  # later edits of the strategy do not change the re-run
        strategy.save()

        response = staff_client.post(reverse("pages:backtest-rerun", args=[original.id]))

        copy = Backtest.objects.exclude(pk=original.pk).get()
        assert response.status_code == 302
        assert response["Location"] == f"/backtests/{copy.id}/"
        assert (copy.status, copy.source, copy.owner) == ("pending", "ui", staff_user)
        assert copy.strategy_snapshot == original.strategy_snapshot
        assert copy.strategy_snapshot["definition"] == SIGNAL_RULES
        assert (copy.engine, copy.config, copy.initial_capital, copy.commission) == (
            original.engine,
            original.config,
            original.initial_capital,
            original.commission,
        )
        assert Task.objects.get().backtest == copy

    def test_rerun_and_clone_keep_the_chosen_benchmark(self, staff_client):
        from tests.pages.runs import completed_backtest

        strategy = StrategyFactory(definition=SIGNAL_RULES)
        original = completed_backtest(strategy=strategy, benchmark="GLD")

        staff_client.post(reverse("pages:backtest-rerun", args=[original.id]))
        page = staff_client.get(f"/strategies/{strategy.id}/", {"from": str(original.id)})

        assert Backtest.objects.exclude(pk=original.pk).get().benchmark == "GLD"
        assert page.context["backtest_form"]["benchmark"].value() == "GLD"
        detail = staff_client.get(f"/backtests/{original.id}/").content.decode()
        assert '<option value="GLD" selected>' in detail
        chart = staff_client.get(f"/backtests/{original.id}/chart-data").json()
        assert chart["benchmark"]["symbol"] == "GLD"

    def test_a_backfolio_run_is_run_again_from_its_saved_request(self, staff_client, staff_user):
        from backtests.portfolio.examples import examples
        from backtests.portfolio.services import portfolio_backtest_run

        original = portfolio_backtest_run(
            payload=examples()["conservative_portfolio"], user=staff_user
        ).backtest

        page = staff_client.get(f"/backtests/{original.id}/").content.decode()
        response = staff_client.post(reverse("pages:backtest-rerun", args=[original.id]))

        again = Backtest.objects.exclude(pk=original.pk).get()
        assert 'id="rerun-button"' in page and 'id="clone-button"' not in page
        assert response["Location"] == f"/backtests/{again.id}/"
        assert (again.status, again.source, again.config) == ("completed", "v2", original.config)
        assert again.metrics["total_return"] == original.metrics["total_return"]

    def test_the_rerun_service_refuses_a_backfolio_run(self):
        from backtests import services
        from tests.factories import BacktestFactory

        portfolio = BacktestFactory(strategy=None, source=Backtest.Source.V2)

        with pytest.raises(Conflict, match="is a Backfolio portfolio run"):
            services.backtest_rerun(backtest=portfolio)
        assert Backtest.objects.count() == 1

    def test_retry_queues_a_failed_run_again_on_the_same_row(self, staff_client):
        from tests.factories import BacktestFactory

        failed = BacktestFactory(status=Backtest.Status.FAILED, error="Worker lost")

        page = staff_client.get(f"/backtests/{failed.id}/").content.decode()
        response = staff_client.post(reverse("pages:backtest-retry", args=[failed.id]))

        failed.refresh_from_db()
        assert 'id="retry-button"' in page
        assert response["Location"] == f"/backtests/{failed.id}/"
        assert failed.status == "pending"
        assert Task.objects.get().backtest == failed

    def test_only_a_failed_run_is_retried(self, staff_client):
        from tests.pages.runs import completed_backtest

        completed = completed_backtest()

        page = staff_client.get(f"/backtests/{completed.id}/").content.decode()
        response = staff_client.post(
            reverse("pages:backtest-retry", args=[completed.id]), follow=True
        )

        assert 'id="retry-button"' not in page
        assert (
            f"Backtest {completed.id} is completed: only a failed run can be retried."
            in response.content.decode()
        )
        assert not Task.objects.exists()

    def test_clone_fills_the_form_with_the_runs_settings(self, staff_client):
        strategy = StrategyFactory()
        staff_client.post(
            f"/strategies/{strategy.id}/backtests/new",
            _run_fields(
                "run",
                engine="backtrader",
                signal_plugin_key="sma_crossover",
                sma_crossover__fast="7",
                sma_crossover__slow="70",
                initial_capital="25000",
            ),
        )
        original = Backtest.objects.get()

        detail = staff_client.get(f"/backtests/{original.id}/").content.decode()
        page = staff_client.get(f"/strategies/{strategy.id}/", {"from": str(original.id)})

        assert f"/strategies/{strategy.id}/?from={original.id}" in detail
        form = page.context["backtest_form"]
        assert form["engine"].value() == "backtrader"
        assert form["sma_crossover__fast"].value() == 7
        assert form["sma_crossover__slow"].value() == 70
        assert form["initial_capital"].value() == 25000.0
        assert form["start_date"].value() == "2016-01-04"
        other = staff_client.get(f"/strategies/{strategy.id}/", {"from": "not-a-run"})
        assert other.status_code == 404


class TestPortfolioForm:
    def _fields(self, **extra):
        fields = {
            "engine": "vectorbt",
            "start_date": "2020-01-02",
            "end_date": "2023-12-29",
            "initial_capital": "10000",
            "rebalance_frequency": "monthly",
            "base_commission": "0.0035",
            "benchmark": "SPY",
            "price_adjustment": "total_return",
            "evaluation_frequency": "daily",
            "signal_delay": "0",
            **extra,
        }
        return {f"portfolio-{name}": value for name, value in fields.items()}

    def test_only_allocation_strategies_have_it(self, staff_client):
        signal = StrategyFactory()
        allocation = StrategyFactory(kind=Strategy.Kind.ALLOCATION, definition=ALLOCATION)

        assert "portfolio_form" not in staff_client.get(f"/strategies/{signal.id}/").context
        page = staff_client.get(f"/strategies/{allocation.id}/")
        from backtests.portfolio.requests import CONFIG_FIELDS

        assert set(page.context["portfolio_form"].fields) == set(CONFIG_FIELDS)
        response = staff_client.post(f"/strategies/{signal.id}/portfolio-runs/new", self._fields())
        assert response.status_code == 404

    def test_a_portfolio_run_with_risk_management_completes(self, staff_client, staff_user):
        strategy = StrategyFactory(
            kind=Strategy.Kind.ALLOCATION, definition=ALLOCATION, name="Trend"
        )

        response = staff_client.post(
            f"/strategies/{strategy.id}/portfolio-runs/new",
            self._fields(enable_risk_management="on", stop_loss="0.1", target_volatility="0.12"),
        )

        run = Backtest.objects.get()
        assert response.status_code == 302
        assert response["Location"] == f"/backtests/{run.id}/"
        assert (run.status, run.source, run.owner) == ("completed", "v2", staff_user)
        saved = run.config
        assert saved["strategy"] == ALLOCATION
        assert saved["config"]["stop_loss"] == 0.1
        assert saved["config"]["target_volatility"] == 0.12
        assert saved["config"]["enable_risk_management"] is True

    def test_a_portfolio_run_with_monthly_contributions_completes(self, staff_client):
        strategy = StrategyFactory(kind=Strategy.Kind.ALLOCATION, definition=ALLOCATION)

        response = staff_client.post(
            f"/strategies/{strategy.id}/portfolio-runs/new",
            self._fields(cashflow_amount="250", cashflow_frequency="monthly"),
        )

        run = Backtest.objects.get()
        assert response.status_code == 302 and run.status == "completed"
        assert run.config["config"]["cashflow_amount"] == 250
        assert run.config["config"]["cashflow_frequency"] == "monthly"

    @pytest.mark.parametrize(
        ("fields", "field", "message"),
        [
            (
                {"stop_loss": "1.5", "enable_risk_management": "on"},
                "stop_loss",
                "stop_loss must be a fraction between 0 and 1 (exclusive)",
            ),
            ({"benchmark": "CASH"}, "benchmark", "CASH has no returns to compare against"),
            ({"start_date": "2024-01-02", "end_date": "2023-01-03"}, "start_date", "before"),
            (
                {"cashflow_amount": "100"},
                "cashflow_amount",
                "cashflow_amount needs cashflow_frequency (give both or neither)",
            ),
            (
                {"cashflow_frequency": "monthly"},
                "cashflow_frequency",
                "cashflow_frequency needs cashflow_amount (give both or neither)",
            ),
        ],
    )
    def test_the_contracts_problems_land_on_their_fields(
        self, staff_client, fields, field, message
    ):
        strategy = StrategyFactory(kind=Strategy.Kind.ALLOCATION, definition=ALLOCATION)

        response = staff_client.post(
            f"/strategies/{strategy.id}/portfolio-runs/new", self._fields(**fields)
        )

        assert response.status_code == 400
        errors = response.context["portfolio_form"].errors[field]
        assert any(message in error for error in errors), errors
        assert not Backtest.objects.exists()


def test_an_allocation_strategys_rule_parameters_are_swept(staff_client):
    strategy = StrategyFactory(kind=Strategy.Kind.ALLOCATION, definition=ALLOCATION)
    fields = _run_fields(
        "sweep",
        grid="switching_logic.0.condition.right.window = 100, 200",
        rank_metric="total_return",
        rebalance_frequency="monthly",
    )
    del fields["sweep-symbol"]

    response = staff_client.post(f"/strategies/{strategy.id}/sweeps/new", fields)

    sweep = Sweep.objects.get()
    assert response.status_code == 302
    windows = [
        entry["signal"]["switching_logic"][0]["condition"]["right"]["window"]
        for entry in sweep.param_grid
    ]
    assert windows == [100, 200]
    assert sweep.param_grid[0]["signal"]["allocations"] == ALLOCATION["allocations"]

"""An analyst's work without JSON, in a real Chromium: build each kind of strategy through the
builder, see a field's problem next to it, run the strategy and watch it finish; start a research
sweep and a walk-forward from the strategy page."""

import pytest

from backtests.models import Backtest
from strategies.models import Strategy
from tests.factories import StrategyFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RUN_TIMEOUT_MS = 60_000


def _run_backtest(page, *, symbol=True, benchmark=""):
    form = page.locator("#backtest-form")
    form.locator("select[name=run-engine]").select_option("vectorbt")
    if symbol:
        form.locator("select[name=run-symbol]").select_option("SPY")
    form.locator("select[name=run-benchmark]").select_option(benchmark)
    form.locator("input[name=run-start_date]").fill("2016-01-04")
    form.locator("input[name=run-end_date]").fill("2020-12-31")
    form.locator("button[type=submit]").click()
    page.wait_for_url("**/backtests/*/")
    # The page follows the run and reloads onto its result.
    page.wait_for_selector("#equity-chart .main-svg", timeout=RUN_TIMEOUT_MS)


def test_a_signal_strategy_built_in_the_browser_runs(logged_in_page, live_server, serial_worker):
    page = logged_in_page
    page.goto(f"{live_server.url}/strategies/")
    page.click("#new-strategy")
    page.wait_for_url("**/strategies/new")
    page.fill("#id_name", "RSI dip in an uptrend")

    # A bad window: the problem appears next to that field, before anything is saved.
    window = page.locator('[data-path="entry.right.window"] input')
    window.fill("0")
    problem = page.locator('[data-path="entry.right.window"] small.problem')
    problem.wait_for()
    assert problem.inner_text() == "must be a positive integer"
    window.fill("100")
    page.wait_for_function("document.getElementById('validation-state').textContent === 'Valid.'")

    # Nest the entry into a group and add a second comparison on a TA-Lib function.
    page.locator('#rule-entry [data-path="entry"] > button', has_text="Group").click()
    page.locator("#rule-entry .group-head button", has_text="+ comparison").click()
    second = page.locator('[data-path="entry.conditions[1].left"]')
    second.locator("select.operand-type").select_option("talib")
    # TA-Lib's parameters are fields of their own, with its kinds and defaults: a list-valued
    # one (matype) is a choice, and a function with several outputs offers them.
    function = second.locator("input.talib-function")
    function.fill("BBANDS")
    function.dispatch_event("change")
    bands = page.locator('[data-path="entry.conditions[1].left.matype"] select')
    assert bands.locator("option").nth(1).inner_text() == "0 · Simple Moving Average"
    assert (
        page.locator('[data-path="entry.conditions[1].left.nbdevup"] input').get_attribute(
            "placeholder"
        )
        == "2"
    )
    assert second.locator("select.talib-output option").all_inner_texts() == [
        "upperband (default)",
        "middleband",
        "lowerband",
    ]
    function.fill("WILLR")
    function.dispatch_event("change")
    assert page.locator('[data-path="entry.conditions[1].left.matype"]').count() == 0
    period = page.locator('[data-path="entry.conditions[1].left.timeperiod"] input')
    assert period.get_attribute("placeholder") == "14"
    # A value TA-Lib refuses: the problem shows next to that parameter.
    period.fill("1")
    refused = page.locator('[data-path="entry.conditions[1].left.timeperiod"] small.problem')
    refused.wait_for()
    assert refused.inner_text() == "TA-Lib WILLR refuses timeperiod = 1 (default 14)"
    period.fill("14")
    page.locator('[data-path="entry.conditions[1].right"] select.operand-type').select_option(
        "number"
    )
    page.locator('[data-path="entry.conditions[1].right"] input.operand-number').fill("-20")
    page.locator('[data-path="entry.conditions[1]"] select.comparison-op').select_option("<")

    # The JSON view shows the same document; an edit there is kept when going back.
    page.click("#view-json")
    text = page.locator("#id_definition").input_value()
    assert '"function": "WILLR"' in text and '"op": "and"' in text
    page.locator("#id_definition").fill(text.replace('"window": 100', '"window": 150'))
    page.click("#view-builder")
    assert page.locator('[data-path="entry.conditions[0].right.window"] input').input_value() == (
        "150"
    )
    page.wait_for_function("document.getElementById('validation-state').textContent === 'Valid.'")

    page.click("#save-strategy")
    page.wait_for_url("**/strategies/*/")
    strategy = Strategy.objects.get(name="RSI dip in an uptrend")
    entry = strategy.definition["entry"]
    assert entry["op"] == "and"
    assert entry["conditions"][0]["right"] == {"type": "SMA", "window": 150}
    assert entry["conditions"][1] == {
        "left": {"type": "talib", "function": "WILLR", "timeperiod": 14},
        "comparison": "<",
        "right": -20,
    }

    # Held against QQQ, chosen on the run form: the result page draws it so.
    _run_backtest(page, benchmark="QQQ")
    run = Backtest.objects.get(strategy=strategy)
    assert (run.status, run.benchmark) == ("completed", "QQQ")
    page.wait_for_function("document.getElementById('backtest-charts').dataset.drawn === 'QQQ'")
    assert "QQQ buy and hold" in page.locator("#equity-chart .legend").text_content()
    assert page.locator("#benchmark-choice").input_value() == "QQQ"
    assert page.console_errors == []


def test_an_allocation_strategy_built_in_the_browser_runs(
    logged_in_page, live_server, serial_worker
):
    page = logged_in_page
    page.goto(f"{live_server.url}/strategies/")
    page.click("#new-allocation-strategy")
    page.fill("#id_name", "Trend or safety")
    page.fill("#id_universe", "SPY, QQQ?L=2, TLT, CASH")

    stocks = page.locator('.group-card[data-path="allocations.stocks"]')
    stocks.locator("button", has_text="+ symbol").click()
    new_row = page.locator('.weight-row[data-path="allocations.stocks.CASH"]')
    new_row.locator("input.weight-symbol").fill("QQQ?L=2")
    new_row.locator("input.weight-symbol").dispatch_event("change")
    leveraged = page.locator('.weight-row[data-path="allocations.stocks.QQQ?L=2"]')
    leveraged.locator("input.weight-value").fill("0.5")

    # SPY 1.0 + QQQ?L=2 0.5: the group's problem shows on the group.
    problem = stocks.locator("small.problem")
    problem.wait_for()
    assert problem.inner_text() == "Allocation 'stocks' weights sum to 1.5, not 1.0"
    page.locator('.weight-row[data-path="allocations.stocks.SPY"] input.weight-value').fill("0.5")
    page.wait_for_function("document.getElementById('validation-state').textContent === 'Valid.'")

    page.locator(".rules button", has_text="+ rule").click()
    page.locator(
        '[data-path="switching_logic[1].condition.right"] select.operand-type'
    ).select_option("number")
    page.locator('[data-path="switching_logic[1].condition.right"] input.operand-number').fill("0")
    page.locator(
        '[data-path="switching_logic[1].condition.left"] select.operand-type'
    ).select_option("Momentum")
    page.locator('[data-path="switching_logic[1].condition.left.window"] input').fill("126")
    page.locator('[data-path="switching_logic[1].condition.left"] input.symbol').fill("TLT")
    page.select_option("#fallback-select", "defensive")
    page.wait_for_function("document.getElementById('validation-state').textContent === 'Valid.'")

    page.click("#save-strategy")
    page.wait_for_url("**/strategies/*/")
    strategy = Strategy.objects.get(name="Trend or safety")
    assert strategy.definition["allocations"]["stocks"] == {"SPY": 0.5, "QQQ?L=2": 0.5}
    assert strategy.definition["switching_logic"][1]["condition"]["left"] == {
        "type": "Momentum",
        "window": 126,
        "symbol": "TLT",
    }

    assert page.locator("#backtest-form select[name=run-symbol]").count() == 0
    _run_backtest(page, symbol=False)
    assert Backtest.objects.get(strategy=strategy).status == "completed"
    assert page.console_errors == []


def test_only_the_chosen_signals_parameters_show_and_the_grid_counts(logged_in_page, live_server):
    page = logged_in_page
    strategy = StrategyFactory()

    page.goto(f"{live_server.url}/strategies/{strategy.id}/")
    form = page.locator("#backtest-form")
    assert form.locator('[data-plugin="sma_crossover"]').first.is_hidden()
    form.locator("select[name=run-signal_plugin_key]").select_option("sma_crossover")
    assert form.locator('[data-field="sma_crossover__fast"]').is_visible()
    assert form.locator('[data-field="rsi_reversion__window"]').is_hidden()

    grid = page.locator("#research-form textarea[name=research-grid]")
    grid.fill("fast = 5:50:5\nslow = 100, 150, 200")
    assert page.locator("#research-form output.combinations").inner_text() == "30 combinations"
    assert page.console_errors == []


def test_a_research_sweep_and_a_walk_forward_start_from_the_page(
    logged_in_page, live_server, serial_worker
):
    page = logged_in_page
    strategy = StrategyFactory(name="Crossover research")

    page.goto(f"{live_server.url}/strategies/{strategy.id}/")
    form = page.locator("#research-form")
    form.locator("input[name=research-start_date]").fill("2018-01-02")
    form.locator("input[name=research-end_date]").fill("2020-12-31")
    form.locator("select[name=research-signal_plugin_key]").select_option("sma_crossover")
    form.locator("textarea[name=research-grid]").fill("fast = 10:20:10\nslow = 50, 100")
    form.locator("button[type=submit]").click()
    page.wait_for_url("**/research/sweeps/*/")
    page.wait_for_function(
        "document.getElementById('research-status').textContent.toLowerCase() === 'completed'",
        timeout=RUN_TIMEOUT_MS,
    )
    assert page.locator("#research-done").inner_text() == "4"

    page.goto(f"{live_server.url}/strategies/{strategy.id}/")
    form = page.locator("#walk-forward-form")
    form.locator("input[name=wf-start_date]").fill("2016-01-04")
    form.locator("input[name=wf-end_date]").fill("2020-12-31")
    form.locator("select[name=wf-signal_plugin_key]").select_option("sma_crossover")
    form.locator("textarea[name=wf-grid]").fill("fast = 10, 20")
    form.locator("input[name=wf-in_sample_months]").fill("24")
    form.locator("input[name=wf-out_of_sample_months]").fill("12")
    form.locator("button[type=submit]").click()
    page.wait_for_url("**/research/walk-forwards/*/")
    page.wait_for_function(
        "document.getElementById('research-status').textContent.toLowerCase() === 'completed'",
        timeout=RUN_TIMEOUT_MS,
    )
    assert page.console_errors == []

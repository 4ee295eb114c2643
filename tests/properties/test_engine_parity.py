"""Both engines give the same backtest for strategies drawn across the whole language (SPEC §6).

- ``test_engines_agree_on_generated_strategies``: a fixed, derandomised set of generated cases
  (the same ones on every run), kept small because backtrader is slow, plus
  ``parity_cases.EXPLICIT_CASES`` (``@example``, run in hypothesis' explicit phase): evaluation
  frequency, signal delay and cash flows with risk exits are in the set whatever the generator
  draws.
- ``test_engines_agree_on_saved_counterexamples``: every case a search ever found, replayed.
- ``test_parity_search``: the long search ``make parity`` runs (``PARITY_EXAMPLES`` cases, random
  seeds); the smallest counterexample it finds is appended to ``parity_regressions.json`` before
  the test fails, so it becomes a regular test.
"""

from __future__ import annotations

import os
import time

import pytest
from hypothesis import HealthCheck, Phase, event, example, given, settings

from tests.properties.parity_cases import (
    EXPLICIT_CASES,
    FIRST_DAY,
    LAST_DAY,
    assert_parity,
    cases,
    regression_cases,
    save_regression,
)

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("warm_vectorbt")]

CI_EXAMPLES = 24
CI_MAX_DAYS = 400
SEARCH_EXAMPLES = int(os.environ.get("PARITY_EXAMPLES", "0"))
SEARCH_MAX_DAYS = (LAST_DAY - FIRST_DAY).days  # any length the bundled data allows


@pytest.fixture(scope="module")
def warm_vectorbt():
    from backtests.engines.warmup import warm_engines

    warm_engines()


def describe(case, outcome) -> None:
    """What the examples covered (``--hypothesis-show-statistics``)."""
    if outcome.problem is not None:
        event(f"{case['kind']}: refused by both")
    else:
        event(f"{case['kind']}: {'traded' if len(outcome.trades) else 'no trades'}")


def with_explicit_cases(test):
    """``@example`` for each of ``EXPLICIT_CASES``."""
    for case in EXPLICIT_CASES:
        test = example(case=case)(test)
    return test


@with_explicit_cases
@settings(
    max_examples=CI_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=cases(max_days=CI_MAX_DAYS))
def test_engines_agree_on_generated_strategies(case):
    describe(case, assert_parity(case)[0])


@pytest.mark.parametrize(
    "case", regression_cases(), ids=lambda case: f"{case['kind']}-{hash(str(case)) % 10**6}"
)
def test_engines_agree_on_saved_counterexamples(case):
    assert_parity(case)


@pytest.mark.skipif(not SEARCH_EXAMPLES, reason="the long search runs with `make parity`")
def test_parity_search():
    failing = []
    examples = []
    started = time.perf_counter()

    @settings(
        max_examples=SEARCH_EXAMPLES,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases(max_days=SEARCH_MAX_DAYS))
    def search(case):
        examples.append(case["kind"])
        try:
            describe(case, assert_parity(case)[0])
        except AssertionError:
            failing.append(case)
            raise

    try:
        search()
    except (AssertionError, ExceptionGroup) as failure:
        # hypothesis replays the smallest case of each distinct failure last, one per failure.
        distinct = len(failure.exceptions) if isinstance(failure, ExceptionGroup) else 1
        for case in failing[-distinct:]:
            save_regression(case)
        raise
    finally:
        print(
            f"\nparity search: {len(examples)} examples ({examples.count('signal')} signal, "
            f"{examples.count('allocation')} allocation) in {time.perf_counter() - started:.0f} s"
        )

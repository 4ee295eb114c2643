"""Bad input is a 400 in the contract's shape, never a 500: integers past 64 bits in list query
strings, bodies nested 1,000 levels deep in any field, and names and descriptions of any length.

The attacks: ``skip``/``offset``/``page`` of 2**64 overflowed SQLite's OFFSET on three lists; a
free-text field nested 1,000 levels made serializer fields recurse until Python gave out; twenty
1.9 MB descriptions made a 38 MB strategy list.
"""

import pytest
from django.test import Client
from rest_framework.test import APIClient

from backfolio.limits import (
    DESCRIPTION_MAX_LENGTH,
    MAX_JSON_DEPTH,
    MAX_LIST_OFFSET,
    MAX_LIST_PAGE,
    NAME_MAX_LENGTH,
)
from backtests.models import Backtest, Sweep
from strategies.models import Strategy
from tests.api.results.conftest import bearer_client
from tests.factories import StrategyFactory

pytestmark = pytest.mark.django_db

BEYOND_64_BITS = [str(2**64), "9" * 40]
NESTED = 1000
TOO_DEEP = f"JSON parse error - nested more than {MAX_JSON_DEPTH} levels deep"
SHORT_SPY = {"symbol": "SPY", "start_date": "2019-01-01", "end_date": "2020-12-31"}
BUY_AND_HOLD = {
    "allocations": {"stocks": {"SPY": 1.0}},
    "fallback_allocation": "stocks",
    "switching_logic": [],
}
BACKFOLIO_CONFIG = {"start_date": "2020-01-01", "end_date": "2020-12-31"}


def _nested_array(levels: int) -> str:
    return "[" * levels + '"text"' + "]" * levels


def _body_with(raw_field: str, value_json: str, **fields) -> str:
    """A JSON body whose ``raw_field`` is ``value_json`` verbatim (the test client's encoder,
    the standard library's, could not even write a 1,000-level value)."""
    import json

    body = json.dumps({**fields, raw_field: "@raw@"})
    return body.replace('"@raw@"', value_json)


# --- integers past 64 bits on lists --------------------------------------------------------------


@pytest.mark.parametrize("value", BEYOND_64_BITS)
@pytest.mark.parametrize("path", ["/api/v1/backtests", "/api/v1/strategies"])
def test_v1_lists_refuse_a_skip_past_the_limit(path, value):
    response = APIClient().get(f"{path}?skip={value}")

    assert response.status_code == 400
    assert response.json() == {
        "skip": [f"Ensure this value is less than or equal to {MAX_LIST_OFFSET}."]
    }


@pytest.mark.parametrize("value", BEYOND_64_BITS)
@pytest.mark.parametrize(
    ("name", "bound"),
    [("offset", f"between 0 and {MAX_LIST_OFFSET}"), ("page", f"between 1 and {MAX_LIST_PAGE}")],
)
def test_backfolio_run_list_refuses_an_offset_or_page_past_the_limit(name, bound, value):
    response = APIClient().get(f"/api/v1/backtest/runs?{name}={value}", HTTP_X_USER_ID="me")

    assert response.status_code == 400
    message = f"{name} must be a whole number {bound}, got '{value}'"
    assert response.json() == {
        "success": False,
        "error": "Invalid pagination",
        "warnings": [message],
        "errors": [message],
    }


@pytest.mark.parametrize("value", BEYOND_64_BITS)
def test_results_list_refuses_a_page_past_the_limit(user, value):
    response = bearer_client(user).get(f"/api/backtests?page={value}")

    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "VALIDATION_ERROR",
            "message": f"page: Ensure this value is less than or equal to {MAX_LIST_PAGE}.",
            "status": 400,
        }
    }


@pytest.mark.parametrize("value", BEYOND_64_BITS)
@pytest.mark.parametrize("path", ["/backtests/", "/strategies/"])
def test_staff_pages_show_the_last_page_for_a_page_past_64_bits(staff_user, path, value):
    client = Client()
    client.force_login(staff_user)

    assert client.get(f"{path}?page={value}").status_code == 200


# --- 1,000 levels of nesting in any field --------------------------------------------------------


@pytest.mark.parametrize("field", ["name", "description", "universe", "definition"])
def test_strategy_fields_nested_a_thousand_levels_are_a_400(field):
    body = _body_with(field, _nested_array(NESTED), **({} if field == "name" else {"name": "n"}))

    response = APIClient().post("/api/v1/strategies", body, content_type="application/json")

    assert response.status_code == 400
    assert response.json() == {"detail": TOO_DEEP}
    assert not Strategy.objects.exists()


def test_sweep_grid_nested_a_thousand_levels_is_a_400():
    strategy = StrategyFactory()
    entry = '{"signal_plugin_params":' * NESTED + "1" + "}" * NESTED
    body = _body_with(
        "param_grid",
        f"[{entry}]",
        strategy_id=str(strategy.id),
        base_config=SHORT_SPY,
    )

    response = APIClient().post("/api/v1/backtests/sweep", body, content_type="application/json")

    assert response.status_code == 400
    assert response.json() == {"detail": TOO_DEEP}
    assert not Sweep.objects.exists()


def test_backfolio_description_nested_a_thousand_levels_is_a_400():
    body = _body_with(
        "description", _nested_array(NESTED), strategy=BUY_AND_HOLD, config=BACKFOLIO_CONFIG
    )

    response = APIClient().post("/api/v1/backtest", body, content_type="application/json")

    assert response.status_code == 400
    message = f"Malformed JSON: {TOO_DEEP}"
    assert response.json() == {
        "success": False,
        "error": "Backtest failed",
        "warnings": [message],
        "errors": [message],
    }


def test_results_create_nested_a_thousand_levels_is_a_400(user):
    body = _body_with("symbols", _nested_array(NESTED), algorithmId=str(StrategyFactory().id))

    response = bearer_client(user).post("/api/backtests", body, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"]["status"] == 400
    assert response.json()["error"]["message"] == TOO_DEEP
    assert not Backtest.objects.exists()


def test_a_condition_tree_within_the_json_limit_still_gets_its_own_message():
    """The body limit sits above every valid document: a condition 33 levels deep (about 70 JSON
    levels) still reaches the strategy language, which names the path."""
    leaf = {"left": {"type": "Close"}, "comparison": ">", "right": 1}
    condition = leaf
    for _ in range(34):
        condition = {"op": "and", "conditions": [condition]}

    response = APIClient().post(
        "/api/v1/strategies",
        {"name": "deep", "definition": {"entry": condition}},
        format="json",
    )

    assert response.status_code == 400
    problems = response.json()["definition"]
    assert list(problems.values()) == [["conditions are nested more than 32 levels deep"]]


# --- names and descriptions have a length limit -------------------------------------------------


def test_strategy_description_over_the_limit_is_a_400_naming_the_field():
    response = APIClient().post(
        "/api/v1/strategies",
        {"name": "long", "description": "x" * (DESCRIPTION_MAX_LENGTH + 1)},
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == {
        "description": [f"Ensure this field has no more than {DESCRIPTION_MAX_LENGTH} characters."]
    }
    assert not Strategy.objects.exists()


def test_strategy_name_over_the_limit_is_a_400_naming_the_field():
    strategy = StrategyFactory()

    response = APIClient().patch(
        f"/api/v1/strategies/{strategy.id}", {"name": "x" * (NAME_MAX_LENGTH + 1)}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == {
        "name": [f"Ensure this field has no more than {NAME_MAX_LENGTH} characters."]
    }


def test_strategy_description_at_the_limit_is_stored():
    response = APIClient().post(
        "/api/v1/strategies",
        {"name": "long", "description": "x" * DESCRIPTION_MAX_LENGTH},
        format="json",
    )

    assert response.status_code == 201
    assert len(Strategy.objects.get().description) == DESCRIPTION_MAX_LENGTH


@pytest.mark.parametrize(
    ("field", "longest"), [("name", NAME_MAX_LENGTH), ("description", DESCRIPTION_MAX_LENGTH)]
)
def test_backfolio_name_and_description_over_the_limit_are_a_400(field, longest):
    body = {field: "x" * (longest + 1), "strategy": BUY_AND_HOLD, "config": BACKFOLIO_CONFIG}

    response = APIClient().post("/api/v1/backtest", body, format="json")

    assert response.status_code == 400
    message = f"{field} is too long: {longest + 1} characters (at most {longest})"
    assert response.json() == {
        "success": False,
        "error": "Backtest failed",
        "warnings": [message],
        "errors": [message],
    }
    assert not Backtest.objects.exists()

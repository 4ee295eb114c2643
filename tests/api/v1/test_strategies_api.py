"""/api/v1/strategies: CRUD with every definition problem returned at its path."""

import uuid

import pytest

from strategies.models import Strategy
from tests.factories import StrategyFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/strategies"
SMA_ENTRY = {"left": {"type": "Close"}, "comparison": ">", "right": {"type": "SMA", "window": 200}}


def test_create_with_only_a_name(client):
    response = client.post(URL, {"name": "Plain"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert (body["kind"], body["definition"], body["status"], body["version"]) == (
        "signal",
        None,
        "draft",
        1,
    )
    assert body["owner_id"] is None


def test_crud_round_trip_with_and_without_slash(client):
    created = client.post(
        f"{URL}/", {"name": "Trend", "definition": {"entry": SMA_ENTRY}}, format="json"
    ).json()
    strategy_url = f"{URL}/{created['id']}"
    assert client.get(strategy_url).json()["definition"] == {"entry": SMA_ENTRY}
    assert [row["id"] for row in client.get(URL).json()] == [created["id"]]

    patched = client.patch(
        f"{strategy_url}/", {"definition": None, "status": "validated"}, format="json"
    ).json()
    assert (patched["definition"], patched["status"], patched["version"]) == (None, "validated", 2)
    assert client.delete(strategy_url).status_code == 204
    assert client.get(strategy_url).status_code == 404


def test_every_definition_problem_is_returned_with_its_path(client):
    definition = {
        "entry": {"left": {"type": "SMA"}, "comparison": "=>", "right": {"type": "Nope"}},
        "exitt": {},
    }
    response = client.post(URL, {"name": "Bad", "definition": definition}, format="json")

    assert response.status_code == 400
    errors = response.json()["definition"]
    assert set(errors) >= {"exitt", "entry.left.window", "entry.comparison", "entry.right.type"}
    assert not Strategy.objects.exists()


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({}, {"name": ["This field is required."]}),
        ({"name": "x", "kind": "magic"}, {"kind": ['"magic" is not a valid choice.']}),
        ({"name": "x", "timeframe": "1h"}, {"timeframe": ['"1h" is not a valid choice.']}),
        ({"name": "x", "colour": "red"}, {"colour": ["Unknown field."]}),
        ({"name": "x", "universe": "SPY"}, {"universe": ["Must be a list of symbols."]}),
        (
            {"name": "x", "kind": "allocation"},
            {
                "definition": {
                    "non_field_errors": ["an allocation strategy definition must be an object"]
                }
            },
        ),
    ],
)
def test_bad_strategy_input(client, body, errors):
    response = client.post(URL, body, format="json")
    assert response.status_code == 400
    if "kind" in body and body["kind"] == "allocation":
        assert list(response.json()) == ["definition"]
    else:
        assert response.json() == errors
    assert not Strategy.objects.exists()


def test_bad_universe_symbol_is_named_by_index(client):
    response = client.post(URL, {"name": "x", "universe": ["SPY", "BAD SYMBOL"]}, format="json")
    assert response.status_code == 400
    errors = response.json()["universe"]
    assert list(errors) == ["1"] and "'BAD SYMBOL'" in errors["1"][0]


def test_patch_validates_against_the_merged_kind(client):
    strategy = StrategyFactory(definition={"entry": SMA_ENTRY})
    response = client.patch(f"{URL}/{strategy.id}", {"kind": "allocation"}, format="json")
    assert response.status_code == 400
    assert list(response.json()) == ["definition"]
    strategy.refresh_from_db()
    assert strategy.kind == "signal"


def test_unknown_and_non_uuid_ids_are_404(client):
    missing = uuid.uuid4()
    assert client.get(f"{URL}/{missing}").json() == {"detail": f"Strategy {missing} not found."}
    response = client.patch(f"{URL}/xyz", {"name": "y"}, format="json")
    assert response.status_code == 404
    assert response.json() == {"detail": "Strategy xyz not found."}

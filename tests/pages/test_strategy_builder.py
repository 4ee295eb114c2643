"""The strategy builder's server side: pages, the validate endpoint, built-in definitions, and
saving through the strategy services (every problem named by its path, nothing half-saved)."""

import json

import pytest

from strategies.language import build_plugin
from strategies.models import Strategy
from tests.factories import StrategyFactory

pytestmark = pytest.mark.django_db

VALID_SIGNAL = {
    "entry": {
        "op": "or",
        "conditions": [
            {"left": {"type": "RSI", "window": 14}, "comparison": "<", "right": 30},
            {
                "op": "and",
                "conditions": [
                    {
                        "left": {"type": "talib", "function": "WILLR", "timeperiod": 14},
                        "comparison": "<",
                        "right": -80,
                    },
                    {
                        "left": {"type": "Close"},
                        "comparison": ">",
                        "right": {"type": "SMA", "window": 200},
                    },
                ],
            },
        ],
    },
    "exit": {"left": {"type": "RSI", "window": 14}, "comparison": ">", "right": 70},
}
VALID_ALLOCATION = {
    "allocations": {"growth": {"QQQ?L=3": 0.5, "SPY": 0.5}, "safe": {"TLT": 0.6, "CASH": 0.4}},
    "fallback_allocation": "safe",
    "switching_logic": [
        {
            "name": "trend",
            "condition": {
                "left": {"type": "Close", "symbol": "SPY"},
                "comparison": ">",
                "right": {"type": "SMA", "symbol": "SPY", "window": 200},
            },
            "target_allocation": "growth",
        }
    ],
}


def _post(client, url, **fields):
    data = {
        "name": "Builder strategy",
        "kind": "signal",
        "timeframe": "1d",
        "status": "draft",
        "universe": "SPY",
        "description": "",
        **fields,
    }
    if not isinstance(data.get("definition", ""), str):
        data["definition"] = json.dumps(data["definition"])
    return client.post(url, data)


def _validate(client, body):
    return client.post("/strategies/validate", json.dumps(body), content_type="application/json")


class TestPages:
    def test_new_strategy_page_offers_both_kinds_with_a_starter_definition(self, staff_client):
        listing = staff_client.get("/strategies/").content.decode()
        signal = staff_client.get("/strategies/new")
        allocation = staff_client.get("/strategies/new", {"kind": "allocation"})

        assert 'href="/strategies/new"' in listing
        assert signal.status_code == 200 and allocation.status_code == 200
        assert '"entry"' in signal.context["definition_text"]
        assert '"allocations"' in allocation.context["definition_text"]
        catalogue = signal.context["catalogue"]
        willr = next(f for f in catalogue["talib_functions"] if f["name"] == "WILLR")
        assert willr["params"] == [
            {
                "name": "timeperiod",
                "display_name": "Time Period",
                "help": "Time period",
                "kind": "int",
                "default": 14,
                "choices": [],
            }
        ]
        assert {"SMA", "Correlation", "MarketRegime"} <= {s["name"] for s in catalogue["signals"]}
        assert catalogue["signal_rules"] == ["entry", "exit", "short_entry", "short_exit"]
        assert 'id="builder-catalogue"' in signal.content.decode()

    def test_pages_need_staff(self, non_staff_client):
        for url in ("/strategies/new", "/strategies/validate", "/strategies/builtin"):
            response = non_staff_client.post(url, {})
            assert response.status_code == 302 and "/accounts/login/" in response["Location"]


class TestValidate:
    def test_a_valid_definition(self, staff_client):
        response = _validate(staff_client, {"kind": "signal", "definition": VALID_SIGNAL})

        assert response.status_code == 200
        assert response.json() == {"valid": True, "problems": [], "universe": None}

    def test_every_problem_carries_the_path_of_its_field(self, staff_client):
        definition = json.loads(json.dumps(VALID_ALLOCATION))
        definition["allocations"]["safe"]["CASH"] = 0.3
        definition["switching_logic"][0]["condition"]["right"]["window"] = 0
        definition["fallback_allocation"] = "nowhere"

        response = _validate(
            staff_client, {"kind": "allocation", "definition": definition, "universe": ["SPY", "?"]}
        )

        body = response.json()
        assert response.status_code == 200 and body["valid"] is False
        paths = {problem["path"]: problem["message"] for problem in body["problems"]}
        assert paths == {
            "allocations.safe": "Allocation 'safe' weights sum to 0.9, not 1.0",
            "fallback_allocation": "Unknown fallback allocation 'nowhere' (allocation groups: "
            "growth, safe)",
            "switching_logic[0].condition.right.window": "must be a positive integer",
        }
        assert list(body["universe"]) == ["1"]

    def test_a_talib_parameter_talib_refuses_is_named_on_that_parameter(self, staff_client):
        definition = {
            "entry": {
                "left": {"type": "talib", "function": "STOCH", "slowk_matype": 42},
                "comparison": "<",
                "right": {"type": "talib", "function": "WILLR", "timeperiod": 1, "period": 5},
            }
        }

        body = _validate(staff_client, {"kind": "signal", "definition": definition}).json()

        assert {problem["path"]: problem["message"] for problem in body["problems"]} == {
            "entry.left.slowk_matype": "TA-Lib STOCH refuses slowk_matype = 42 (default 0)",
            "entry.right.period": "unknown parameter for TA-Lib WILLR (known: symbol, output, "
            "timeperiod)",
        }

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            ("not json", "Send a JSON object: {kind, definition, universe}."),
            ("[1, 2]", "Send a JSON object: {kind, definition, universe}."),
            ('{"kind": "options"}', "kind must be one of: signal, allocation."),
        ],
    )
    def test_bad_requests_are_400_with_a_message(self, staff_client, body, message):
        response = staff_client.post("/strategies/validate", body, content_type="application/json")

        assert response.status_code == 400
        assert response.json() == {"detail": message}


class TestBuiltin:
    def test_a_built_in_definition_with_typed_parameters(self, staff_client):
        response = staff_client.post(
            "/strategies/builtin",
            json.dumps({"key": "sma_crossover", "params": {"fast": 5, "slow": 30}}),
            content_type="application/json",
        )

        assert response.status_code == 200
        assert response.json() == {
            "definition": build_plugin("sma_crossover", {"fast": 5, "slow": 30})
        }

    def test_bad_parameters_are_named(self, staff_client):
        response = staff_client.post(
            "/strategies/builtin",
            json.dumps({"key": "sma_crossover", "params": {"fast": 50, "slow": 30}}),
            content_type="application/json",
        )

        assert response.status_code == 400
        assert response.json() == {
            "problems": [
                {"path": "signal_plugin_params.fast", "message": "must be less than slow (30)"}
            ]
        }


class TestSave:
    def test_creating_a_signal_strategy(self, staff_client, staff_user):
        response = _post(staff_client, "/strategies/new", definition=VALID_SIGNAL)

        strategy = Strategy.objects.get()
        assert response.status_code == 302
        assert response["Location"] == f"/strategies/{strategy.id}/"
        assert (strategy.name, strategy.owner, strategy.definition) == (
            "Builder strategy",
            staff_user,
            VALID_SIGNAL,
        )
        assert strategy.universe == ["SPY"]

    def test_creating_an_allocation_strategy(self, staff_client):
        response = _post(
            staff_client,
            "/strategies/new",
            kind="allocation",
            universe="SPY, QQQ?L=3, TLT, CASH",
            definition=VALID_ALLOCATION,
        )

        strategy = Strategy.objects.get()
        assert response.status_code == 302
        assert (strategy.kind, strategy.universe) == (
            "allocation",
            ["SPY", "QQQ?L=3", "TLT", "CASH"],
        )

    def test_an_invalid_definition_saves_nothing_and_names_each_problem(self, staff_client):
        definition = json.loads(json.dumps(VALID_SIGNAL))
        definition["exit"]["left"]["window"] = -1

        response = _post(staff_client, "/strategies/new", definition=definition)

        assert response.status_code == 400
        assert response.context["problems"] == [
            {"path": "exit.left.window", "message": "must be a positive integer"}
        ]
        assert response.context["form"].errors["definition"] == [
            "The definition has 1 problem; each is shown next to its field."
        ]
        content = response.content.decode()
        assert 'data-problem-path="exit.left.window"' in content
        assert not Strategy.objects.exists()

    @pytest.mark.parametrize(
        ("fields", "field", "message"),
        [
            ({"definition": "{not json"}, "definition", "The definition is not valid JSON: "),
            ({"name": ""}, "name", "This field is required."),
            ({"kind": "options"}, "kind", "Select a valid choice."),
            ({"universe": "SPY, ?L=2"}, "universe", "Invalid symbol"),
        ],
    )
    def test_bad_fields_save_nothing(self, staff_client, fields, field, message):
        response = _post(staff_client, "/strategies/new", **{"definition": VALID_SIGNAL, **fields})

        assert response.status_code == 400
        assert any(message in error for error in response.context["form"].errors[field])
        assert not Strategy.objects.exists()

    def test_editing_bumps_the_version_and_keeps_the_owner(self, staff_client):
        strategy = StrategyFactory(definition=VALID_SIGNAL)
        page = staff_client.get(f"/strategies/{strategy.id}/edit")
        changed = json.loads(json.dumps(VALID_SIGNAL))
        changed["exit"]["right"] = 75

        response = _post(
            staff_client, f"/strategies/{strategy.id}/edit", name="Renamed", definition=changed
        )

        assert json.loads(page.context["definition_text"]) == VALID_SIGNAL
        strategy.refresh_from_db()
        assert response.status_code == 302
        assert (strategy.name, strategy.version, strategy.definition) == ("Renamed", 2, changed)

    def test_an_invalid_edit_changes_nothing(self, staff_client):
        strategy = StrategyFactory(name="Kept", definition=VALID_SIGNAL)

        response = _post(
            staff_client,
            f"/strategies/{strategy.id}/edit",
            name="Changed",
            definition={"entry": {"left": {"type": "Nope"}, "comparison": ">", "right": 1}},
        )

        strategy.refresh_from_db()
        assert response.status_code == 400
        assert (strategy.name, strategy.version, strategy.definition) == ("Kept", 1, VALID_SIGNAL)

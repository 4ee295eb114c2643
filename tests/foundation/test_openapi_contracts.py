"""The OpenAPI document describes the real requests and every real response of each contract."""

from __future__ import annotations

import copy

import jsonschema
import pytest
from django.test import override_settings
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from backtests import run_config
from backtests.portfolio import requests as portfolio_requests
from strategies.language import PLUGINS
from strategies.language.signals import SIGNAL_TYPES

PORTFOLIO_PREFIXES = ("/api/v1/backtest/", "/api/v2/backtest/")
RESULTS_PREFIXES = ("/api/backtests", "/api/auth/")
ERROR_COMPONENT = {
    "v1": "ErrorDetail",
    "portfolio": "PortfolioErrorSchema",
    "results": "ErrorSchema",
}


def _generate() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


@pytest.fixture(scope="module")
def schema():
    return _generate()


def _contract(path: str) -> str:
    if path.startswith(PORTFOLIO_PREFIXES):
        return "portfolio"
    if path.startswith(RESULTS_PREFIXES):
        return "results"
    assert path.startswith("/api/v1/"), path
    return "v1"


def _operations(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            yield path, method.upper(), operation


def _json_schema(document: dict, schema: dict) -> dict:
    """An OpenAPI 3.0 schema as JSON Schema: ``nullable`` becomes a null alternative, and the
    document's components travel along so that ``$ref`` resolves."""

    def convert(node):
        if isinstance(node, dict):
            node = {key: convert(value) for key, value in node.items()}
            if node.pop("nullable", False):
                return {"anyOf": [node, {"type": "null"}]}
            return node
        if isinstance(node, list):
            return [convert(item) for item in node]
        return node

    return {**convert(copy.deepcopy(schema)), "components": convert(document["components"])}


def _response_schema(document, path, method, status) -> dict:
    response = document["paths"][path][method.lower()]["responses"][str(status)]
    return _json_schema(document, response["content"]["application/json"]["schema"])


def test_every_operation_documents_the_errors_every_view_can_answer(schema):
    for path, method, operation in _operations(schema):
        responses = operation["responses"]
        contract = _contract(path)
        expected = {"503"}
        if "requestBody" in operation:
            expected |= {"400", "413", "415"}
        if operation.get("security"):
            expected |= {"401", "403"}
        if "{" in path:
            expected.add("404")
        assert expected <= set(responses), (method, path, sorted(expected - set(responses)))
        for status in ("401", "403", "404", "413", "415", "429", "503"):
            if status not in responses:
                continue
            body = responses[status]["content"]["application/json"]["schema"]
            assert body == {"$ref": f"#/components/schemas/{ERROR_COMPONENT[contract]}"}, (
                method,
                path,
                status,
            )


def test_throttled_operations_document_429(schema):
    assert "429" in schema["paths"]["/api/backtests"]["post"]["responses"]
    assert "429" in schema["paths"]["/api/auth/login"]["post"]["responses"]
    assert "429" not in schema["paths"]["/api/backtests"]["get"]["responses"]


def test_open_operations_say_credentials_are_optional_and_the_results_api_requires_them(schema):
    for path, method, operation in _operations(schema):
        security = operation.get("security")
        if path.startswith("/api/auth/"):
            assert not security, path
        elif _contract(path) == "results":
            assert {} not in security and {"jwtAuth": []} in security, (method, path)
        else:
            assert security == [{"jwtAuth": []}, {"cookieAuth": []}, {}], (method, path)


@override_settings(BACKFOLIO_REQUIRE_AUTH=True)
def test_with_authentication_required_no_operation_is_documented_as_open():
    for path, method, operation in _operations(_generate()):
        if not path.startswith("/api/auth/"):
            assert {} not in operation["security"], (method, path)


def test_the_run_configuration_is_a_real_schema(schema):
    components = schema["components"]["schemas"]
    config = components["RunConfig"]
    assert config["additionalProperties"] is False
    keys = {*run_config.COMMON_KEYS, *run_config.SIGNAL_ONLY_KEYS, *run_config.ALLOCATION_ONLY_KEYS}
    assert set(config["properties"]) == keys
    assert config["properties"]["timeframe"]["enum"] == list(run_config.TIMEFRAMES)
    assert config["properties"]["signal_plugin_key"]["enum"] == list(PLUGINS)
    assert config["properties"]["direction"]["enum"] == list(run_config.DIRECTIONS)
    create = components["V1BacktestCreateRequest"]["properties"]
    assert create["config"] == {"$ref": "#/components/schemas/RunConfig"}
    sweep = components["SweepRequest"]["properties"]
    assert sweep["base_config"] == {"$ref": "#/components/schemas/RunConfig"}
    assert sweep["param_grid"]["items"] == {"$ref": "#/components/schemas/RunConfig"}


def test_strategy_definitions_are_real_schemas(schema):
    components = schema["components"]["schemas"]
    definition = components["StrategyWriteRequest"]["properties"]["definition"]
    assert definition["anyOf"] == [
        {"$ref": "#/components/schemas/SignalDefinition"},
        {"$ref": "#/components/schemas/AllocationDefinition"},
    ]
    signal_branches = components["Signal"]["anyOf"]
    titles = [branch.get("title") for branch in signal_branches[1:-1]]
    assert titles == [signal_type.name for signal_type in SIGNAL_TYPES]
    sma = next(branch for branch in signal_branches if branch.get("title") == "SMA")
    assert sma["required"] == ["type", "window"]
    assert sma["properties"]["window"]["minimum"] == 1
    assert components["Comparison"]["properties"]["comparison"]["enum"] == [
        ">",
        "<",
        ">=",
        "<=",
        "==",
    ]
    assert components["AllocationDefinition"]["required"] == [
        "allocations",
        "fallback_allocation",
        "switching_logic",
    ]


def test_the_backfolio_request_is_a_real_schema(schema):
    components = schema["components"]["schemas"]
    request = components["PortfolioBacktestRequestSchemaRequest"]
    assert request["additionalProperties"] is False
    assert request["properties"]["strategy"] == {"$ref": "#/components/schemas/PortfolioStrategy"}
    assert request["properties"]["config"] == {"$ref": "#/components/schemas/PortfolioConfig"}
    config = components["PortfolioConfig"]
    assert set(config["properties"]) == set(portfolio_requests.CONFIG_FIELDS)
    assert config["required"] == ["start_date", "end_date"]
    assert config["properties"]["engine"]["enum"] == list(portfolio_requests.ENGINES)


def test_every_documented_request_example_fits_its_schema(schema):
    checked = 0
    for path, method, operation in _operations(schema):
        content = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if not content or not content.get("examples"):
            continue
        body_schema = _json_schema(schema, content["schema"])
        for name, example in content["examples"].items():
            errors = list(jsonschema.Draft7Validator(body_schema).iter_errors(example["value"]))
            assert not errors, (method, path, name, [error.message for error in errors])
            checked += 1
    assert checked >= 10


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/strategies", "/api/v1/backtest/", "/api/backtests"])
def test_a_body_over_the_limit_is_a_documented_413(schema, user, path):
    client = APIClient()
    client.force_authenticate(user)
    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=64):
        response = client.generic(
            "POST", path, b'{"name": "' + b"x" * 200 + b'"}', content_type="application/json"
        )
    assert response.status_code == 413
    jsonschema.validate(response.json(), _response_schema(schema, path, "POST", 413))


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/strategies", "/api/v1/backtest/runs/", "/api/backtests"])
def test_a_bad_token_is_a_documented_401(schema, path):
    response = APIClient().get(
        path, HTTP_AUTHORIZATION="Bearer not-a-token", HTTP_X_USER_ID="someone"
    )
    assert response.status_code == 401
    jsonschema.validate(response.json(), _response_schema(schema, path, "GET", 401))


def test_shape_comparison_reports_undocumented_and_missing_keys(schema):
    from tests.openapi_shapes import shape_mismatches

    summary = {"$ref": "#/components/schemas/PortfolioRunMetricsSchema"}
    body = dict.fromkeys(
        ["final_value", "total_return", "cagr", "sharpe_ratio", "sortino_ratio", "volatility"], 1.0
    )
    assert shape_mismatches(schema, summary, {**body, "max_drawdown": -0.1}) == []
    assert shape_mismatches(schema, summary, {**body, "max_drawdown": None}) == []
    assert shape_mismatches(schema, summary, body) == [
        "$.max_drawdown: documented as required, missing"
    ]
    assert shape_mismatches(schema, summary, {**body, "max_drawdown": "x", "drawdown": 1}) == [
        "$.max_drawdown: str where the document says number",
        "$.drawdown: not in the document",
    ]

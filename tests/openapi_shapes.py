"""Compare a real response body with what the OpenAPI document says it is, key by key.

Schema conformance alone lets a body carry keys the document never mentions, and lets the
document promise optional keys the body never has. ``shape_mismatches`` walks both together and
reports, by path, every key that is in one and not the other (a documented key may be absent only
when it is not required and null-or-missing is its real meaning: such keys are listed as optional
by the document), and every value whose JSON type the document does not allow.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.generators import SchemaGenerator

_TYPES = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "integer": int,
    "number": (int, float),
}


def openapi_document() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def response_schema(document: dict, path: str, method: str, status: int) -> dict:
    response = document["paths"][path][method.lower()]["responses"][str(status)]
    return response["content"]["application/json"]["schema"]


def _resolve(document: dict, schema: dict) -> dict:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = document["components"]["schemas"][name]
    return schema


def _type_ok(schema: dict, value: Any) -> bool:
    if value is None:
        return bool(schema.get("nullable")) or "type" not in schema
    expected = schema.get("type")
    if expected is None:
        return True
    if isinstance(value, bool) and expected in ("integer", "number"):
        return False
    return isinstance(value, _TYPES[expected])


def shape_mismatches(document: dict, schema: dict, body: Any, path: str = "$") -> list[str]:
    """Every place where ``body`` and ``schema`` disagree (empty when they match)."""
    if body is None and schema.get("nullable"):
        return []
    schema = _resolve(document, schema)
    for combinator in ("anyOf", "oneOf"):
        if combinator in schema:
            attempts = [
                shape_mismatches(document, option, body, path) for option in schema[combinator]
            ]
            return min(attempts, key=len) if all(attempts) else []
    if "allOf" in schema:
        return [
            problem
            for part in schema["allOf"]
            for problem in shape_mismatches(document, part, body, path)
        ]
    if not _type_ok(schema, body):
        return [f"{path}: {type(body).__name__} where the document says {schema.get('type')}"]
    if body is None:
        return []
    problems: list[str] = []
    if isinstance(body, dict):
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, value in body.items():
            if key in properties:
                problems.extend(shape_mismatches(document, properties[key], value, f"{path}.{key}"))
            elif isinstance(extra, dict):
                problems.extend(shape_mismatches(document, extra, value, f"{path}.{key}"))
            elif extra is not True and (properties or extra is False):
                problems.append(f"{path}.{key}: not in the document")
        for key in schema.get("required", []):
            if key not in body:
                problems.append(f"{path}.{key}: documented as required, missing")
    elif isinstance(body, list) and "items" in schema:
        for index, item in enumerate(body[:5]):
            problems.extend(shape_mismatches(document, schema["items"], item, f"{path}[{index}]"))
    return problems

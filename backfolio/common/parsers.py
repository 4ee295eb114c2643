"""A JSON parser that is fast and refuses what the standard library would crash on.

orjson parses several times faster than the standard library, rejects the non-standard NaN and
Infinity literals, and stops at 1,024 levels of nesting with a decode error instead of the
``RecursionError`` the standard library raises on a deeply nested body. Serializer fields, the
database's JSON encoding and deep copies recurse too, and give out well before 1,024 levels, so a
body nested deeper than ``MAX_JSON_DEPTH`` is refused here as well: a 400 in every contract's
error shape, never a 500, whichever field holds the nesting.
"""

import orjson
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from backfolio.limits import MAX_JSON_DEPTH


def nesting_exceeds(document, limit: int) -> bool:
    """Whether ``document`` nests arrays/objects more than ``limit`` levels (without recursing)."""
    pending = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        children = value.values() if isinstance(value, dict) else value
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


class FastJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        body = stream.read() if stream is not None else b""
        if not body:
            raise ParseError("JSON parse error - the body is empty")
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
        if isinstance(document, dict | list) and nesting_exceeds(document, MAX_JSON_DEPTH):
            raise ParseError(f"JSON parse error - nested more than {MAX_JSON_DEPTH} levels deep")
        return document
